"""ppo_comp.py: GAE, the clipped objective and the KL penalty on hand-made cases, comp_env's
integer-action entry point (noop / toggle mapping), the presets, determinism for a seed, smoke runs
with updates on `small` in both modes, the rllib preset's flags in the update and the reward option
in the training env. Bad flags, signals, the run folder and resume: test_ppo_robustness.py."""
import json
import math
import runpy
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import comp_env  # noqa: E402
import ppo_comp  # noqa: E402

TINY = ("--scenario", "small", "--total-timesteps", "256", "--num-envs", "2", "--num-steps", "64",
        "--hidden-sizes", "16", "--eval-episodes", "3", "--eval-interval", "128",
        "--torch-threads", "1")


def test_gae_matches_hand_computation():
    rewards, values = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.5, 1.0, 1.5])
    next_value, gamma, lam = torch.tensor(2.0), 0.9, 0.5
    # delta_t = r_t + gamma V_{t+1} - V_t: 1.4, 2.35, 3.3; A_t = delta_t + gamma lam A_{t+1}
    adv, ret = ppo_comp.gae(rewards, values, torch.zeros(3), next_value, gamma, lam)
    torch.testing.assert_close(adv, torch.tensor([1.4 + 0.45 * 3.835, 2.35 + 0.45 * 3.3, 3.3]))
    torch.testing.assert_close(ret, adv + values)
    # the episode ends with step 1: no bootstrap from V_2 there and no advantage flows back across
    # it
    adv, _ = ppo_comp.gae(rewards, values, torch.tensor([0.0, 1.0, 0.0]), next_value, gamma, lam)
    torch.testing.assert_close(adv, torch.tensor([1.4 + 0.45 * 1.0, 1.0, 3.3]))


def test_gae_limits_are_td_error_and_monte_carlo_return():
    gen = torch.Generator().manual_seed(0)
    rewards, values, next_value = (torch.randn(5, 4, generator=gen),
                                   torch.randn(5, 4, generator=gen), torch.randn(4))
    dones, gamma = torch.zeros(5, 4), 0.95
    adv, _ = ppo_comp.gae(rewards, values, dones, next_value, gamma, 0.0)
    next_values = torch.cat([values[1:], next_value[None]])
    torch.testing.assert_close(adv, rewards + gamma * next_values - values)
    _, ret = ppo_comp.gae(rewards, values, dones, next_value, gamma, 1.0)
    discounts = gamma ** torch.arange(5.0)
    torch.testing.assert_close(ret[0],
                               (discounts[:, None] * rewards).sum(0) + gamma**5 * next_value)


@pytest.mark.parametrize("ratio, advantage, expected_loss, clipped", [
    (1.5, 1.0, -1.2, True),    # gain beyond 1 + eps is cut off
    (1.5, -1.0, 1.5, False),   # the pessimistic (unclipped) side wins
    (0.5, 1.0, -0.5, False),
    (0.5, -1.0, 0.8, True),    # a loss below 1 - eps is cut off
    (1.1, 2.0, -2.2, False),   # inside the trust region: plain surrogate
])
def test_clipped_objective_on_hand_made_cases(ratio, advantage, expected_loss, clipped):
    newlogprob = torch.tensor([math.log(ratio)], requires_grad=True)
    loss, _, approx_kl, clipfrac = ppo_comp.clipped_policy_loss(newlogprob, torch.zeros(1),
                                                                torch.tensor([advantage]), 0.2)
    assert loss.item() == pytest.approx(expected_loss)
    assert clipfrac.item() == (1.0 if abs(ratio - 1) > 0.2 else 0.0)
    assert approx_kl.item() == pytest.approx((ratio - 1) - math.log(ratio), abs=1e-6)
    # d loss / d log pi = -A r where the unclipped term is active, 0 where the clip binds
    loss.backward()
    assert newlogprob.grad.item() == pytest.approx(0.0 if clipped else -advantage * ratio)


def test_integer_choices_map_to_noop_and_toggles():
    env = comp_env.make_env("small", num_envs=1, seed=0, num_slow_ues=1, num_fast_ues=0)
    env.position[:] = [[[50.0, 50.0]]]  # on BS 1 (index 0), 50 m from BS 2: in range of both
    env._update_radio()
    env.waypoint[:] = env.position
    env.speed[:] = 0.0
    env.step_choices(np.array([[1]]))
    assert env.connected.tolist() == [[[True, False]]]
    env.step_choices(np.array([[2]]))
    assert env.connected.tolist() == [[[True, True]]]
    env.step_choices(np.array([[0]]))  # noop keeps both
    assert env.connected.tolist() == [[[True, True]]]
    env.step_choices(np.array([[1]]))  # toggling a connected BS disconnects it
    assert env.connected.tolist() == [[[False, True]]]
    env.position[:] = [[[50.0, 130.0]]]  # 80 m from BS 1: out of range, so "connect" does nothing
    env._update_radio()
    env.connected[:] = False
    env.step_choices(np.array([[1]]))
    assert not env.connected.any()
    for bad in (np.array([[3]]), np.array([[-1]]), np.array([[0.0]]), np.array([0])):
        with pytest.raises(ValueError, match="choices"):
            env.step_choices(bad)


def test_scores_and_integer_choices_step_identically():
    a, b = (comp_env.make_env("medium", num_envs=4, seed=3),
            comp_env.make_env("medium", num_envs=4, seed=3))
    rng = np.random.default_rng(0)
    for _ in range(150):  # crosses an episode end (100 steps)
        scores = rng.uniform(-1, 1, (4, a.n_agents, a.act_dim))
        out_a, out_b = a.step(scores), b.step_choices(scores.argmax(axis=2))
        for x, y in zip(out_a[:4], out_b[:4]):
            np.testing.assert_array_equal(x, y)


def test_central_rows_concatenate_every_ue_observation():
    obs = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    assert ppo_comp.agent_rows(obs, "multi") is obs
    np.testing.assert_array_equal(ppo_comp.agent_rows(obs, "central"), obs.reshape(2, 1, 12))
    agent = ppo_comp.Agent(12, n_heads=3, n_choices=5, hidden=(8,))
    action, logprob, entropy, value = agent.get_action_and_value(
        torch.as_tensor(obs.reshape(2, 1, 12)))
    assert action.shape == (2, 1, 3) and logprob.shape == entropy.shape == value.shape == (2, 1)
    # near-uniform initial heads (output std 0.01): the joint entropy is about 3 log 5
    assert entropy.detach().numpy() == pytest.approx(3 * math.log(5), rel=1e-3)


def test_kl_penalty_is_the_exact_categorical_kl_summed_over_heads():
    old = torch.tensor([[[0.0, 1.0, 2.0], [1.0, 1.0, 1.0]]])  # one row, two heads of three choices
    new = torch.tensor([[[2.0, 1.0, 0.0], [0.0, 0.0, 3.0]]])
    dist = torch.distributions
    old_dist, new_dist = dist.Categorical(logits=old), dist.Categorical(logits=new)
    expected = dist.kl_divergence(old_dist, new_dist).sum(-1)
    torch.testing.assert_close(ppo_comp.categorical_kl(old, new), expected)
    assert ppo_comp.categorical_kl(old, old).item() == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("kl, expected", [
    (0.03, 0.3),     # above 2 x target: x1.5
    (0.02, 0.2),     # at 2 x target: kept
    (0.01, 0.2),
    (0.005, 0.2),    # at target / 2: kept
    (0.004, 0.1),    # below target / 2: x0.5
])
def test_kl_coefficient_adapts_as_rllibs_update_kl(kl, expected):
    assert ppo_comp.adapted_kl_coef(0.2, kl, 0.01) == pytest.approx(expected)


RLLIB = {"learning_rate": 5e-5, "anneal_lr": False, "num_envs": 20, "num_steps": 200, "gamma": 0.99,
         "gae_lambda": 1.0, "update_epochs": 30, "minibatch_rows": 128, "norm_adv": True,
         "norm_adv_over": "batch", "clip_coef": 0.3, "clip_vloss": True, "vf_clip": 10.0,
         "ent_coef": 0.0, "vf_coef": 2.0, "max_grad_norm": None, "kl_coef": 0.2, "kl_target": 0.01,
         "reward_scale": 1.0}


def test_presets_set_defaults_that_given_flags_override():
    assert ppo_comp.parse_args([]) == ppo_comp.Args()
    args = ppo_comp.parse_args(["--preset", "rllib"])
    assert args.preset == "rllib" and {k: getattr(args, k) for k in RLLIB} == RLLIB
    # a flag given wins wherever it stands; the others keep the preset's values
    for argv in (["--learning-rate", "1e-4", "--preset=rllib"],
                 ["--preset", "rllib", "--learning-rate", "1e-4"]):
        args = ppo_comp.parse_args(argv)
        assert args.learning_rate == 1e-4 and args.update_epochs == 30
    assert ppo_comp.parse_args(["--reward-aggregate", "avg"]).reward_aggregate == "avg"


def test_help_shows_the_presets_values(capsys):
    with pytest.raises(SystemExit) as exit_info:
        ppo_comp.parse_args(["--preset", "rllib", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.replace("\u2502", " ").split())  # without the box
    assert "(default: 5e-05)" in text and "(default: rllib)" in text and "(default: 30)" in text


def run_script(tmp_path, name, *flags, monkeypatch):
    """Run ppo_comp.py's `__main__` in this process (no second torch import) and read its
    summary."""
    return run_main(tmp_path, name, *flags, monkeypatch=monkeypatch)[0]


def run_main(tmp_path, name, *flags, monkeypatch):
    """`run_script`, also returning the script's globals after the run (optimizer, envs, ...)."""
    monkeypatch.setattr(sys, "argv",
                        ["ppo_comp.py", *TINY, "--run-dir", str(tmp_path / name), *flags])
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        run_globals = runpy.run_path(str(ROOT / "ppo_comp.py"), run_name="__main__")
    finally:  # the script catches both signals; give pytest its handlers back
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    return json.loads((tmp_path / name / "summary.json").read_text()), run_globals


@pytest.mark.slow
def test_runs_in_both_modes_are_deterministic_and_update(tmp_path, monkeypatch):
    summaries = {name: run_script(tmp_path, name, *flags, monkeypatch=monkeypatch)
                 for name, flags in (
                     ("multi", ("--eval-load-factors", "1", "2", "--save-model")),
                     ("multi_again", ("--eval-load-factors", "1", "2")),
                     ("central", ("--mode", "central", "--seed", "2")))}
    multi, central = summaries["multi"], summaries["central"]
    # same seed, same run: learning curve, final per-episode results and load sweep agree exactly
    for key in ("eval_history", "final_eval", "load_sweep"):
        assert multi[key] == summaries["multi_again"][key]
    for s in (multi, central):
        assert s["global_step"] == 256 and [h["step"] for h in s["eval_history"]] == [0, 128, 256]
        assert all(len(v) == 3 for v in s["final_eval"].values())
        assert all(-20 <= u <= 20 for u in s["final_eval"]["utility"])
    assert multi["load_sweep"]["2"]["num_ues"] == 2 * multi["load_sweep"]["1"]["num_ues"] == 6
    assert multi["load_sweep"]["1"]["utility"] == pytest.approx(
        np.mean(multi["final_eval"]["utility"]))

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    for name in ("multi", "central"):
        events = EventAccumulator(str(tmp_path / name)).Reload()
        tags = set(events.Tags()["scalars"])
        assert {"charts/episodic_return", "charts/SPS", "losses/value_loss", "losses/policy_loss",
                "losses/entropy", "losses/approx_kl", "losses/clipfrac", "eval/utility"} <= tags
        # two iterations of 4 epochs x 4 minibatches moved the policy away from the rollout policy
        assert all(e.value > 0 for e in events.Scalars("losses/approx_kl"))
    weights = torch.load(tmp_path / "multi" / "ppo_comp.cleanrl_model", weights_only=True)
    agent = ppo_comp.Agent(comp_env.make_env("small").obs_dim, 1, 3, (16,))
    agent.load_state_dict(weights)


@pytest.mark.slow
def test_the_rllib_presets_flags_reach_the_update(tmp_path, monkeypatch):
    # one iteration of 2 copies x 64 steps x 3 UEs = 384 agent rows: 3 minibatches of 128, 30 epochs
    summary, run = run_main(tmp_path, "rllib", "--preset", "rllib", "--total-timesteps", "128",
                            monkeypatch=monkeypatch)
    args = summary["args"]
    assert args["preset"] == "rllib" and summary["minibatch_size"] == 128
    assert summary["num_iterations"] == 1
    assert {k: args[k] for k in RLLIB if k not in ("num_envs", "num_steps")} == {
        k: v for k, v in RLLIB.items() if k not in ("num_envs", "num_steps")}
    optimizer = run["optimizer"]
    assert optimizer.param_groups[0]["lr"] == 5e-5  # not annealed
    assert all(optimizer.state[p]["step"].item() == 30 * 3 for p in run["agent"].parameters())

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(tmp_path / "rllib")).Reload()
    kl = events.Scalars("losses/kl")[-1].value
    assert events.Scalars("losses/kl_coef")[-1].value == pytest.approx(0.2)
    last_epoch_kl = np.mean(run["epoch_kls"])  # what the coefficient adapted on, as logged
    assert kl == pytest.approx(last_epoch_kl) and kl > 0
    assert run["kl_coef"] == ppo_comp.adapted_kl_coef(0.2, last_epoch_kl, 0.01)


@pytest.mark.slow
def test_reward_aggregate_reaches_the_training_env_only(tmp_path, monkeypatch):
    for mode in ("multi", "central"):
        summary, run = run_main(tmp_path, mode, "--mode", mode, "--reward-aggregate", "avg",
                                "--total-timesteps", "128", monkeypatch=monkeypatch)
        assert summary["args"]["reward_aggregate"] == "avg"
        assert run["envs"].config.reward_aggregate == "avg" and run["envs"].config.reward == mode
        # the reported return keeps the multi-agent sum
        eval_config = run["eval_env"].config
        assert eval_config.reward_aggregate == "sum" and eval_config.reward == "multi"


@pytest.mark.slow
def test_training_reward_returns_score_the_final_policy_and_the_heuristics(tmp_path, monkeypatch):
    import experiments
    import run_experiments as rx

    for aggregate in ("sum", "avg"):
        summary = run_script(tmp_path, aggregate, "--reward-aggregate", aggregate,
                             monkeypatch=monkeypatch)
        result = rx.training_reward_returns(tmp_path / aggregate)
        assert result["reward"] == f"multi {aggregate}"
        assert set(result["returns"]) == {"policy", *experiments.TRAINING_REWARD_ROWS}
        env = comp_env.make_env("small", num_envs=3, seed=0, reward="multi",
                                reward_aggregate=aggregate)
        best_cell = comp_env.evaluate(lambda obs, envs: comp_env.best_cell(envs), env, 0)[0]
        assert result["returns"]["best_cell"] == pytest.approx(float(np.mean(best_cell)))
        if aggregate == "sum":  # the run's own evaluation uses this reward: the same number
            assert result["returns"]["policy"] == pytest.approx(
                np.mean(summary["final_eval"]["return"]))
        else:
            assert result["returns"]["policy"] != pytest.approx(
                np.mean(summary["final_eval"]["return"]))
