"""Property-based tests of both simulators (Hypothesis, derandomised so that every run draws the
same examples): random configs, with valid and invalid field values (NaN, inf, huge, negative,
wrong types), and random actions (also NaN, inf, out of range, of the wrong shape or dtype). Every
draw ends either in a ValueError that names the bad field or the actions, or in finite
observations, rewards and metrics of the documented shapes."""
import dataclasses
import math
import re
import sys
import typing
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import comp_env  # noqa: E402
import oran_env  # noqa: E402

BAD_NUMBERS = (math.nan, math.inf, -math.inf, 1e308, -1e308, 1e300, -1.0, -1e9, 1e9, 0.0)
BAD_VALUES = ("3", None, True, (), (1.0, math.nan))
FIELDS = {cls: {f.name for f in dataclasses.fields(cls)}
          for cls in (oran_env.ORANConfig, comp_env.CompConfig)}
SETTINGS = settings(derandomize=True, database=None, max_examples=40, deadline=None,
                    suppress_health_check=list(HealthCheck))


@dataclasses.dataclass
class Simulator:
    module: typing.Any
    config_class: type
    ranges: dict
    scenario: str
    small: dict  # upper bounds of valid counts that keep an example fast
    templates: dict  # the shape of tuple fields whose preset value is empty


SIMULATORS = {
    "oran": Simulator(oran_env, oran_env.ORANConfig, oran_env.ORAN_RANGES, "small",
                      dict(num_dus=3, num_ues=40, num_rbs=30, episode_length=4, ue_slots=30,
                           fading_block_rbs=30, sched_rounds=5),
                      dict(du_ue_weights=(1.0, 1.0), du_slice_mix=((1 / 3,) * 3,) * 2)),
    "comp": Simulator(comp_env, comp_env.CompConfig, comp_env.COMP_RANGES, "small",
                      dict(num_slow_ues=4, num_fast_ues=4, episode_length=4, pause_steps=5),
                      {}),
}


def interval(text):
    low, high = (float(x) for x in text[1:-1].split(","))
    return low, high, text[0] == "(", text[-1] == ")"


@st.composite
def valid_number(draw, kind, text, cap=None):
    low, high, open_low, open_high = interval(text)
    if kind is int:
        return draw(st.integers(int(low), int(min(high, cap if cap is not None else high))))
    # half the draws near the low end, where the quantities are small (dB, rates)
    top = draw(st.sampled_from((high, min(high, low + 10.0))))
    return draw(st.floats(low, top, exclude_min=open_low, exclude_max=open_high and top == high,
                          allow_nan=False))


@st.composite
def field_value(draw, sim, field, kind):
    """A valid value of the field (the preset's shape), an invalid number in it or a wrong type."""
    preset = getattr(sim.module.make_config(sim.scenario), field.name)
    template = sim.templates.get(field.name, preset)
    text = sim.ranges.get(field.name)
    how = draw(st.sampled_from(("valid", "valid", "bad number", "bad value")))
    if how == "bad value":
        return draw(st.sampled_from(BAD_VALUES))

    def number(element_kind):
        if how == "bad number" and draw(st.booleans()):
            return draw(st.sampled_from(BAD_NUMBERS))
        if text is None:  # a name, not a number
            return draw(st.sampled_from(typing.get_args(kind)))
        return draw(valid_number(element_kind, text, sim.small.get(field.name)))

    def like(value, element_kind):  # the template's shape, tuples at any depth
        if isinstance(value, tuple):
            return tuple(like(v, element_kind) for v in value)
        return number(element_kind)

    args = typing.get_args(kind)
    element_kind = int if kind is int or int in args else float
    if isinstance(template, tuple) and draw(st.booleans()) and how == "valid":
        return template  # tuples drawn at random rarely meet their sums: keep some valid
    return like(template, element_kind) if isinstance(template, tuple) else number(kind)


@st.composite
def overrides(draw, sim):
    hints = typing.get_type_hints(sim.config_class)
    fields = draw(st.lists(st.sampled_from(dataclasses.fields(sim.config_class)), min_size=1,
                           max_size=4, unique_by=lambda f: f.name))
    return {f.name: draw(field_value(sim, f, hints[f.name])) for f in fields}


@st.composite
def actions(draw, shape):
    """Valid scores in [-1, 1] of `shape`, or a bad array: NaN, inf, out of range, the wrong
    shape or dtype."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    a = rng.uniform(-1.0, 1.0, shape).astype(draw(st.sampled_from((np.float32, np.float64))))
    how = draw(st.sampled_from(("valid",) * 4 + ("nan", "inf", "range", "shape", "int")))
    index = tuple(int(rng.integers(n)) for n in shape)
    if how in ("nan", "inf", "range"):
        a[index] = {"nan": np.nan, "inf": -np.inf, "range": 1.5}[how]
    elif how == "shape":
        a = a[..., :-1] if draw(st.booleans()) else a[None]
    elif how == "int":
        a = a.astype(np.int64)
    return how, a


def check_step(env, result, num_envs):
    obs, reward, terminated, truncated, info = result
    agents = (num_envs, env.n_agents)
    assert obs.shape == (*agents, env.obs_dim) and np.isfinite(obs).all(), obs
    assert reward.shape == agents and np.isfinite(reward).all(), reward
    assert terminated.shape == truncated.shape == (num_envs,)
    for key, value in info["metrics"].items():
        assert np.shape(value) == (num_envs,) and np.isfinite(value).all(), (key, value)


def run_example(sim, config_overrides, data):
    try:
        config = sim.module.make_config(sim.scenario, **config_overrides)
    except ValueError as e:  # a clean error that names a field (another one when they conflict)
        named = re.match(rf"{sim.config_class.__name__}\.(\w+): expected ", str(e))
        assert named and named[1] in FIELDS[sim.config_class], (str(e), config_overrides)
        return
    num_envs = data.draw(st.integers(1, 2))
    env = (oran_env.ORANEnv if sim.module is oran_env else comp_env.CompEnv)(
        config, num_envs=num_envs, seed=data.draw(st.integers(0, 2**32 - 1)))
    obs, _ = env.reset()
    assert obs.shape == (num_envs, env.n_agents, env.obs_dim) and np.isfinite(obs).all()
    for _ in range(config.episode_length + 1):  # across the auto-reset
        how, a = data.draw(actions((num_envs, env.n_agents, env.act_dim)))
        if how != "valid":
            with pytest.raises(ValueError, match="actions"):
                env.step(a)
            continue
        check_step(env, env.step(a), num_envs)


@pytest.mark.parametrize("name", SIMULATORS)
@SETTINGS
@given(data=st.data())
def test_random_configs_and_actions_give_a_clean_error_or_finite_outputs(name, data):
    sim = SIMULATORS[name]
    run_example(sim, data.draw(overrides(sim), label="overrides"), data)


@pytest.mark.parametrize("name", SIMULATORS)
def test_every_numeric_field_has_an_interval(name):
    """The ranges table covers each numeric field of the config, and nothing else."""
    sim = SIMULATORS[name]
    hints = typing.get_type_hints(sim.config_class)

    def kinds(kind):  # the annotation and those nested in it
        return {kind}.union(*(kinds(k) for k in typing.get_args(kind)))

    assert set(sim.ranges) == {f for f, kind in hints.items() if {int, float} & kinds(kind)}


@pytest.mark.parametrize("make_config, field", [
    (oran_env.make_config, "du_ue_weights"), (oran_env.make_config, "heading_changes_deg"),
    (comp_env.make_config, "bs_positions")])
def test_none_for_a_tuple_of_any_length_is_a_clean_error(make_config, field):
    """Found by the property test: the type check took len(None) (a TypeError, not the field)."""
    with pytest.raises(ValueError, match=f"{field}: expected type"):
        make_config("small", **{field: None})


def test_one_du_with_noise_below_the_gains_resolution_observes_a_finite_sinr():
    """Found by the property test: with one DU (no interference) and a noise term below float32's
    resolution at the serving gain, the wideband SINR's denominator rounded to 0 and an infinite
    SINR reached the rich observation."""
    env = oran_env.make_env("small", num_envs=2, seed=0, num_dus=1, obs_mode="rich",
                            noise_psd_dbm_hz=-200.0, tx_power_dbm=60.0)
    for _ in range(3):
        check_step(env, env.step(np.zeros((2, 1, env.act_dim), np.float32)), 2)
