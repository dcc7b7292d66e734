"""Tests of the DeepCoMP cell-selection environment (comp_env.py), docs/comp.md."""

import numpy as np
import pytest

import comp_env as ce


def unshared_rate_at(distance_m, cfg=None):
    cfg = cfg or ce.make_config("medium")
    ue = np.stack(
        [np.asarray(distance_m, dtype=float), np.zeros_like(distance_m, dtype=float)], axis=-1
    )
    return ce.unshared_rate(ce.snr(ue, np.zeros((1, 2)), cfg), cfg)[..., 0]


def snr_at(distance_m, cfg=None):
    cfg = cfg or ce.make_config("medium")
    ue = np.array([[distance_m, 0.0]])
    return ce.snr(ue, np.zeros((1, 2)), cfg)[0, 0]


def static_env(scenario="small", **overrides):
    """An environment whose UEs never move (speed 0), so that only the actions change the state."""
    return ce.make_env(
        scenario, num_envs=1, seed=0, slow_speed=(0, 0), fast_speed=(0, 0), **overrides
    )


def place(env, positions):
    """Put the UEs of env copy 0 at `positions` (U, 2) and refresh the radio state."""
    env.position[0] = positions
    env.waypoint[0] = np.asarray(positions) + 50.0  # never reached at speed 0
    env._update_radio()


def toggle(env, bs_per_ue):
    """Actions (1, U, B+1): choice bs_per_ue[u] (0 = noop, i = toggle BS i)."""
    return ce._scores(np.asarray(bs_per_ue)[None], env.act_dim)


# -- radio model -----------------------------------------------------------------------------------

def test_rate_strictly_falls_with_distance_and_is_one_at_46_2_m():
    d = np.linspace(1.0, 300.0, 3000)
    rate = unshared_rate_at(d)
    assert np.all(np.diff(rate) < 0)
    d_one = d[np.argmin(np.abs(rate - 1.0))]
    assert d_one == pytest.approx(46.2, abs=0.1)


def test_connection_only_when_snr_above_threshold_about_68_9_m():
    d = np.linspace(60.0, 80.0, 20001)
    cfg = ce.make_config("medium")
    in_range = unshared_rate_at(d) > 0  # all positive; the threshold is on the SNR
    assert in_range.all()
    snr = np.array([snr_at(x) for x in d[::100]])
    edge = d[::100][np.argmax(snr <= cfg.snr_threshold)]
    assert edge == pytest.approx(68.9, abs=0.15)

    env = static_env()
    bs = env.bs_pos[0]
    place(env, [bs + [68.7, 0.0], bs + [69.1, 0.0], bs - [68.7, 0.0]])
    _, _, _, _, info = env.step(toggle(env, [1, 1, 0]))
    assert info["connected"][0, :, 0].tolist() == [True, False, False]


def test_threshold_is_strict():
    env = static_env()
    place(env, [env.bs_pos[0] + [30.0, 0.0]] * env.n_agents)
    env.config.snr_threshold = float(env.snr[0, 0, 0])  # SNR exactly at the threshold: not enough
    env._update_radio()
    _, _, _, _, info = env.step(toggle(env, [1] * env.n_agents))
    assert not info["connected"][0, :, 0].any()


def test_utility_values():
    np.testing.assert_allclose(
        ce.utility([0.0, 1.0, 100.0, 1e6, 1e-9, 10.0]), [-20, 0, 20, 20, -20, 10]
    )


# -- sharing models --------------------------------------------------------------------------------

def random_state(rng, e=64, u=6, b=3):
    connected = rng.random((e, u, b)) < 0.5
    rate_unshared = rng.uniform(0.1, 300.0, (e, u, b))
    ewma = np.where(rng.random((e, u)) < 0.3, 0.0, rng.uniform(0.1, 200.0, (e, u)))
    return connected, rate_unshared, ewma


@pytest.mark.parametrize("model", ["resource-fair", "rate-fair", "proportional-fair", "max-cap"])
def test_sharing_fractions_sum_to_one_at_each_bs(model):
    connected, rate_unshared, ewma = random_state(np.random.default_rng(1))
    frac = ce.sharing_fractions(connected, rate_unshared, ewma, model)
    assert np.all(frac[~connected] == 0) and np.all(frac >= 0)
    busy = connected.any(axis=1)  # (E, B)
    np.testing.assert_allclose(frac.sum(axis=1)[busy], 1.0, rtol=1e-12)


def test_mixed_sharing_cycles_models_and_sums_to_one():
    cfg = ce.make_config("large", sharing="mixed")
    models = ce.bs_sharing_models(cfg)
    assert models[:4] == ["resource-fair", "rate-fair", "proportional-fair", "resource-fair"]
    connected, rate_unshared, ewma = random_state(np.random.default_rng(2), b=7)
    rate = ce.shared_rate(connected, rate_unshared, ewma, models)
    busy = connected.any(axis=1)
    np.testing.assert_allclose((rate / rate_unshared).sum(axis=1)[busy], 1.0, rtol=1e-12)


def test_rate_fair_gives_equal_rates():
    connected, rate_unshared, ewma = random_state(np.random.default_rng(3))
    rate = ce.shared_rate(connected, rate_unshared, ewma, ["rate-fair"] * 3)
    for e, b in zip(*np.nonzero(connected.any(axis=1))):
        at_bs = rate[e, connected[e, :, b], b]
        np.testing.assert_allclose(
            at_bs, 1.0 / np.sum(1.0 / rate_unshared[e, connected[e, :, b], b])
        )


def test_resource_fair_splits_rate_by_number_of_ues():
    connected, rate_unshared, ewma = random_state(np.random.default_rng(4))
    rate = ce.shared_rate(connected, rate_unshared, ewma, ["resource-fair"] * 3)
    n = connected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(rate, np.where(connected, rate_unshared / np.maximum(n, 1), 0.0))


@pytest.mark.parametrize(
    "sharing", ["resource-fair", "rate-fair", "proportional-fair", "max-cap", "mixed"]
)
def test_adding_a_connection_never_lowers_own_total_rate(sharing):
    rng = np.random.default_rng(5)
    models = ce.bs_sharing_models(ce.make_config("medium", sharing=sharing))
    connected, rate_unshared, ewma = random_state(rng, e=256)
    before = ce.shared_rate(connected, rate_unshared, ewma, models).sum(axis=2)
    e, u, b = np.nonzero(~connected)
    for i in range(0, len(e), 7):
        added = connected.copy()
        added[e[i], u[i], b[i]] = True
        after = ce.shared_rate(
            added[e[i]][None], rate_unshared[e[i]][None], ewma[e[i]][None], models
        )
        assert after[0, u[i]].sum() >= before[e[i], u[i]] * (1 - 1e-12)


def test_comp_rates_add_up():
    env = static_env()
    mid = env.bs_pos.mean(axis=0)
    # UE 0 between both BSs, the others far
    place(env, [mid, mid + [200.0, 0.0], mid + [200.0, 40.0]])
    _, _, _, _, info = env.step(toggle(env, [1, 0, 0]))
    single = info["ue_rate"][0, 0]
    _, _, _, _, info = env.step(toggle(env, [2, 0, 0]))
    assert info["connected"][0, 0].all()
    np.testing.assert_allclose(info["ue_rate"][0, 0], env.rate_unshared[0, 0].sum())
    assert info["ue_rate"][0, 0] == pytest.approx(2 * single)  # same distance to both BSs


# -- actions and dynamics --------------------------------------------------------------------------

@pytest.mark.parametrize("sharing", ["resource-fair", "proportional-fair"])
def test_toggling_twice_without_moving_restores_state(sharing):
    env = static_env("medium", sharing=sharing)
    rng = np.random.default_rng(6)
    for _ in range(5):  # reach some state with connections
        env.step(rng.uniform(-1, 1, (1, env.n_agents, env.act_dim)))
    position = env.position.copy()
    connected, rate = env.connected.copy(), env.rate.copy()
    choice = rng.integers(1, env.act_dim, env.n_agents)
    env.step(toggle(env, choice))
    assert not np.array_equal(env.connected, connected) or not env.in_range.any()
    env.step(toggle(env, choice))
    np.testing.assert_array_equal(env.position, position)
    np.testing.assert_array_equal(env.connected, connected)
    if sharing == "resource-fair":  # proportional-fair rates also depend on the EWMA history
        np.testing.assert_allclose(env.rate, rate)


def test_ue_moving_out_of_range_is_disconnected():
    env = ce.make_env("large", num_envs=16, seed=7)
    for _ in range(300):
        env.step(ce.full_comp(env))
        assert not (env.connected & ~env.in_range).any()
        assert (env.connected | ~env.in_range).any()  # full CoMP does hold connections


def test_random_waypoint_pauses_two_steps_and_never_exceeds_speed():
    env = ce.make_env(
        "small", num_envs=32, seed=8, num_slow_ues=3, num_fast_ues=3, episode_length=10_000
    )
    noop = np.zeros((env.num_envs, env.n_agents, env.act_dim))
    noop[..., 0] = 1.0
    positions, waypoints, speeds = [env.position.copy()], [env.waypoint.copy()], [env.speed.copy()]
    for _ in range(400):
        env.step(noop)
        positions.append(env.position.copy())
        waypoints.append(env.waypoint.copy())
        speeds.append(env.speed.copy())
    pos, wp, speed = np.array(positions), np.array(waypoints), np.array(speeds)  # (T, E, U, ...)
    step_len = np.linalg.norm(np.diff(pos, axis=0), axis=-1)
    assert np.all(step_len <= speed[1:] + 1e-9)
    assert np.all(speed[:, :, :3] >= 1) and np.all(speed[:, :, :3] <= 3)
    assert np.all(speed[:, :, 3:] >= 5) and np.all(speed[:, :, 3:] <= 10)
    assert np.all(wp >= 10) and np.all(wp[..., 0] <= 140) and np.all(wp[..., 1] <= 90)
    at_wp = np.all(pos == wp, axis=-1)
    arrivals = at_wp[1:-3] & (step_len[:-3] > 0)  # moved onto the waypoint at step t
    t, e, u = np.nonzero(arrivals)
    assert len(t) > 50
    t = t + 1
    np.testing.assert_array_equal(pos[t + 1, e, u], pos[t, e, u])
    np.testing.assert_array_equal(pos[t + 2, e, u], pos[t, e, u])
    # third step: a new leg starts (new waypoint) and the UE moves, unless the new waypoint is right
    # here
    new_leg = np.any(wp[t + 3, e, u] != wp[t, e, u], axis=-1)
    left = np.any(pos[t + 3, e, u] != pos[t, e, u], axis=-1)
    assert np.all(new_leg & (left | np.all(wp[t + 3, e, u] == pos[t, e, u], axis=-1)))


# -- observation, reward, episodes -----------------------------------------------------------------

@pytest.mark.parametrize("scenario", ["small", "medium", "large"])
def test_observation_bounds(scenario):
    env = ce.make_env(scenario, num_envs=8, seed=9)
    rng = np.random.default_rng(9)
    b = env.num_bs
    obs, _ = env.reset()
    for _ in range(150):
        assert obs.dtype == np.float32 and obs.shape == (8, env.n_agents, 3 * b + 1)
        assert np.all(np.isin(obs[..., :b], [0.0, 1.0]))
        assert np.all((obs[..., b:2 * b] >= 0) & (obs[..., b:2 * b] <= 1))
        np.testing.assert_allclose(obs[..., b:2 * b].max(axis=2), 1.0)
        assert np.all((obs[..., 2 * b] >= -1) & (obs[..., 2 * b] <= 1))
        assert np.all((obs[..., 2 * b + 1:] >= 0) & (obs[..., 2 * b + 1:] <= 1))
        load = np.broadcast_to(obs[..., :b].sum(axis=1, keepdims=True), obs[..., :b].shape)
        np.testing.assert_allclose(obs[..., 2 * b + 1:] * env.n_agents, load, atol=1e-5)
        obs, *_ = env.step(rng.uniform(-1, 1, (8, env.n_agents, env.act_dim)))


@pytest.mark.parametrize("reward", ["multi", "central"])
def test_reward_is_competing_set_or_central_sum(reward):
    env = ce.make_env("medium", num_envs=4, seed=10, reward=reward, num_slow_ues=6)
    rng = np.random.default_rng(10)
    for _ in range(30):
        _, r, _, _, info = env.step(rng.uniform(-1, 1, (4, env.n_agents, env.act_dim)))
        own = info["ue_utility"] / 20.0
        conn = info["connected"]
        for e in range(4):
            for u in range(env.n_agents):
                if reward == "central":
                    expected = own[e].sum()
                elif conn[e, u].any():
                    expected = sum(
                        own[e, v] for v in range(env.n_agents) if (conn[e, u] & conn[e, v]).any()
                    )
                else:
                    expected = own[e, u]
                assert r[e, u] == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_reward_is_taken_before_the_move_and_observation_after():
    env = ce.make_env("large", num_envs=4, seed=11)
    for _ in range(20):
        env.step(ce.dynamic_comp(env))
    connected = env.connected.copy()
    expected_rate = ce.shared_rate(
        connected, env.rate_unshared, env.ewma, env.bs_models
    ).sum(axis=2)
    obs, _, _, _, info = env.step(
        np.where(np.arange(env.act_dim) == 0, 1.0, -1.0) * np.ones((4, env.n_agents, 1))
    )
    np.testing.assert_allclose(info["ue_rate"], expected_rate)  # noop: rates before the move
    np.testing.assert_allclose(
        obs[..., 2 * env.num_bs], ce.utility(env.rate.sum(axis=2)) / 20, atol=1e-6
    )
    np.testing.assert_allclose(obs[..., :env.num_bs], env.connected)


def test_same_seed_same_episode_and_auto_reset():
    def run(seed):
        env = ce.make_env("medium", num_envs=3, seed=seed, episode_length=20)
        rng = np.random.default_rng(0)
        out = [env.reset()[0]]
        for t in range(45):
            obs, r, term, trunc, info = env.step(rng.uniform(-1, 1, (3, env.n_agents, env.act_dim)))
            out += [obs, r]
            assert not term.any()
            assert trunc.all() == ((t + 1) % 20 == 0)
            assert ("final_obs" in info) == ("episode" in info) == trunc.all()
            if trunc.all():
                assert info["episode"]["return"].shape == (3, env.n_agents)
                np.testing.assert_array_equal(info["episode"]["length"], 20)
                assert (
                    info["final_obs"].shape == obs.shape
                    and not np.array_equal(info["final_obs"], obs)
                )
                assert not obs[..., :env.num_bs].any()  # fresh episode: no connections
        return out

    a, b, c = run(1), run(1), run(2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_metrics_shapes_and_values():
    env = ce.make_env("small", num_envs=5, seed=12)
    _, _, _, _, info = env.step(ce.best_cell(env))
    m = info["metrics"]
    assert set(m) >= {"utility", "rate", "connections_per_ue", "unconnected_fraction"}
    assert all(v.shape == (5,) for v in m.values())
    np.testing.assert_allclose(m["utility"], ce.utility(info["ue_rate"]).mean(axis=1))
    np.testing.assert_allclose(
        m["connections_per_ue"] + 0, info["connected"].sum(axis=2).mean(axis=1)
    )


# -- heuristics ------------------------------------------------------------------------------------

def test_heuristics_behave_as_described():
    env = ce.make_env("large", num_envs=8, seed=13)
    for name, policy in ce.HEURISTICS.items():
        env.reset(seed=13)
        for _ in range(60):
            actions = policy(env)
            assert actions.shape == (8, env.n_agents, env.act_dim)
            assert actions.min() >= -1 and actions.max() <= 1
            env.step(actions)
            if name == "best_cell":
                assert env.connected.sum(axis=2).max() <= 1
        if name == "full_comp":  # after 60 steps almost every in-range BS is held
            assert (env.connected | ~env.in_range).mean() > 0.95
        if name == "best_cell":
            connected_best = np.take_along_axis(
                env.connected, env.snr.argmax(axis=2)[..., None], 2
            )[..., 0]
            assert connected_best[env.in_range.any(axis=2)].mean() > 0.8


def test_dynamic_comp_eps_limits():
    env = ce.make_env("large", num_envs=4, seed=14)
    for _ in range(30):
        env.step(ce.dynamic_comp(env, eps=1.0))
        assert env.connected.sum(axis=2).max() <= 1


# -- API, errors, PettingZoo -----------------------------------------------------------------------

def test_api_attributes():
    env = ce.make_env("large", num_envs=2)
    assert (
        (env.num_envs, env.n_agents, env.obs_dim, env.act_dim, env.episode_length)
        == (2, 15, 22, 8, 100)
    )
    assert set(ce.SCENARIOS) == {"small", "medium", "large"}
    assert ce.make_config("small").bs_positions == ((50.0, 50.0), (100.0, 50.0))
    assert ce.make_config("medium").bs_positions[2] == pytest.approx((60.0, 96.60), abs=0.01)


def test_config_fields_are_documented_and_parse_with_tyro():
    import ast
    import inspect

    tyro = pytest.importorskip("tyro")
    body = ast.parse(inspect.getsource(ce.CompConfig)).body[0].body
    fields = [
        (stmt.target.id, nxt)
        for stmt, nxt in zip(body, body[1:])
        if isinstance(stmt, ast.AnnAssign)
    ]
    assert len(fields) == len(ce.dataclasses.fields(ce.CompConfig))
    undocumented = [name for name, nxt in fields
                    if not (isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant))]
    assert not undocumented
    cfg = tyro.cli(ce.CompConfig, default=ce.make_config("large"),
                   args=["--sharing", "mixed", "--num-fast-ues", "0", "--slow-speed", "2", "4"])
    assert (cfg.sharing, cfg.num_fast_ues, cfg.slow_speed, cfg.num_bs) == ("mixed", 0, (2, 4), 7)
    cfg = tyro.cli(
        ce.CompConfig, args=["--bs-positions", "10", "10", "50", "50", "--reward", "central"]
    )
    assert cfg.bs_positions == ((10.0, 10.0), (50.0, 50.0)) and cfg.reward == "central"


def test_invalid_actions_raise_clear_errors():
    env = ce.make_env("small", num_envs=2)
    good = np.zeros((2, env.n_agents, env.act_dim))
    with pytest.raises(ValueError, match="shape"):
        env.step(good[:, :, :-1])
    with pytest.raises(ValueError, match="float"):
        env.step(good.astype(int))
    bad = good.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        env.step(bad)
    bad[0, 0, 0] = 1.5
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        env.step(bad)


def test_invalid_config_raises_clear_errors():
    with pytest.raises(ValueError, match="scenario"):
        ce.make_config("huge")
    with pytest.raises(ValueError, match="num_bss"):
        ce.make_config("small", num_bss=3)
    with pytest.raises(ValueError, match="sharing"):
        ce.make_config("small", sharing="fair")
    with pytest.raises(ValueError, match="reward"):
        ce.make_config("small", reward="sum")
    with pytest.raises(ValueError, match="bs_positions"):
        ce.make_config("small", bs_positions=((500.0, 0.0),))
    with pytest.raises(ValueError, match="slow_speed"):
        ce.make_config("small", slow_speed=(3, 1))
    with pytest.raises(ValueError, match="num_slow_ues"):
        ce.make_config("small", num_slow_ues=0, num_fast_ues=0)
    with pytest.raises(ValueError, match="num_envs"):
        ce.make_env("small", num_envs=0)


def test_pettingzoo_parallel_api():
    pytest.importorskip("pettingzoo")
    from pettingzoo.test import parallel_api_test

    parallel_api_test(ce.ParallelEnv(), num_cycles=120)  # medium, 100-step episodes
    env = ce.parallel_env("small", seed=0, episode_length=30)
    parallel_api_test(env, num_cycles=100)
    obs, _ = env.reset(seed=1)
    assert all(env.observation_space(a).contains(o) for a, o in obs.items())
    steps = 0
    while env.agents:
        obs, rewards, term, trunc, infos = env.step(
            {a: env.action_space(a).sample() for a in env.agents}
        )
        assert all(env.observation_space(a).contains(o) for a, o in obs.items())
        steps += 1
    assert steps == 30 and all(trunc.values())
    with pytest.raises(RuntimeError, match="reset"):
        env.step({})
