"""The RB-level defaults of the training scripts (docs/results.md, the main job on the RB-level
action): the first deterministic policy is the equal RB split, the temperatures start at
--alpha-init, and the env's RB shares per slice, the policy's per-dimension std and entropy are
logged."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import oran_env  # noqa: E402
from run_experiments import fixed_split  # noqa: E402
from records import EVAL_SEED  # noqa: E402


def evaluate_heuristic(scenario, policy, episodes):
    """Team returns (E,) and metrics of a heuristic (its name, or a policy(env)) on the scripts'
    evaluation episodes."""
    policy = oran_env.HEURISTICS.get(policy, policy)
    envs = oran_env.make_env(scenario, num_envs=episodes, seed=EVAL_SEED)
    returns, metrics, _ = oran_env.evaluate(lambda obs, env: policy(env), envs, EVAL_SEED)
    return returns, metrics

TINY = ("--scenario", "small", "--total-timesteps", "260", "--learning-starts", "200",
        "--hidden-sizes", "32", "--batch-size", "16", "--eval-episodes", "4",
        "--eval-interval", "100", "--log-interval", "20", "--torch-threads", "1")


def train_side_by_side(tmp_path, runs):
    """Tiny `sac_marl_baseline.py` runs in parallel, one per entry of runs (name -> extra flags), in
    tmp_path/name."""
    procs = {name: subprocess.Popen([sys.executable, str(ROOT / "sac_marl_baseline.py"), *TINY,
                                     "--run-dir", str(tmp_path / name), *flags], cwd=ROOT,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for name, flags in runs.items()}
    for name, proc in procs.items():
        assert proc.wait(timeout=300) == 0, proc.stderr.read()


def events(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    return acc


@pytest.mark.slow
def test_rb_level_defaults_start_at_the_equal_split_and_log_the_claims(tmp_path):
    runs = {"ours": (), "cleanrl": ("--alpha-init", "1", "--init-bias", "0")}
    train_side_by_side(tmp_path, runs)
    summary = {name: json.loads((tmp_path / name / "summary.json").read_text()) for name in runs}
    static = evaluate_heuristic("small", "static_equal", 4)[0].mean()
    # step 100, before any update: the deterministic policy is the static equal split (the hidden
    # layers' random weights may flip an odd score); CleanRL's init claims about half of the 75
    # scores, far over K
    assert summary["ours"]["eval_history"][0][1] == pytest.approx(static, rel=0.03)
    assert summary["cleanrl"]["eval_history"][0][1] < static - 100
    acc = {name: events(tmp_path / name) for name in runs}
    for name, alpha_init in (("ours", 1e-3), ("cleanrl", 1.0)):
        # after 20 updates of at most ~lr each in log
        first_alpha = acc[name].Scalars("losses/alpha")[0].value
        assert abs(math.log(first_alpha / alpha_init)) < 0.05
        assert "policy/std" in acc[name].Tags()["histograms"]
        assert acc[name].Scalars("policy/entropy_per_dim")
        # the env's RB shares per slice, logged per episode as they come in info["metrics"]
        assert all(acc[name].Scalars(f"env/rb_share_{s}") for s in ("embb", "mmtc", "urllc"))
        shares = [summary[name]["final_eval"]["metrics"][f"rb_share_{s}"]
                  for s in ("embb", "mmtc", "urllc")]
        assert all(0.0 <= s <= 1.0 for s in shares) and sum(shares) <= 1.0 + 1e-9
        # still the equal split after 30 small updates: a third of the RBs per slice
        if name == "ours":
            assert shares == pytest.approx([1 / 3] * 3, abs=0.05)


@pytest.mark.slow
def test_updates_per_step_and_target_entropy(tmp_path):
    """--updates-per-step k runs k updates per env step after the warm-up; --target-entropy moves
    every temperature towards it: up when the target per dim lies above any reachable entropy (log 2
    for an action in [-1, 1]), down when it lies far below."""
    one = ("--num-envs", "1")  # one env copy: an update round per env step
    runs = {"more": ("--updates-per-step", "2", "--target-entropy", "5", *one),
            "less": ("--target-entropy", "-20", *one)}
    train_side_by_side(tmp_path, runs)
    ckpt = {name: torch.load(tmp_path / name / "checkpoint.pt", weights_only=True) for name in runs}
    # 60 env steps after the warm-up
    assert (ckpt["more"]["update"], ckpt["less"]["update"]) == (120, 60)
    alphas = {name: [s.value for s in events(tmp_path / name).Scalars("losses/alpha")]
              for name in runs}
    assert len(alphas["more"]) == 6 and len(alphas["less"]) == 3
    assert (all(b > a for a, b in zip(alphas["more"], alphas["more"][1:]))
            and alphas["more"][0] > 1e-3)
    assert (all(b < a for a, b in zip(alphas["less"], alphas["less"][1:]))
            and alphas["less"][0] < 1e-3)
    for name in runs:  # the temperatures are checkpointed per agent
        assert ((ckpt[name]["log_alpha"] > math.log(1e-3)) == (name == "more")).all()


@pytest.mark.slow
def test_defaults_and_the_learning_rate_schedule(tmp_path):
    """A run without flags uses the main job's values, whatever the scenario or action mode (no
    default depends on another flag): SAC's --gamma 0.99 --target-entropy -1 --lr-decay-to 1 with
    two env copies; `small`'s values (--gamma 0.9 --target-entropy -0.5 --lr-decay-to 0
    --num-envs 1) are flags a run spells.
    --lr-decay-to f scales the actors' and the critic's learning rate by 1 + (f - 1) step / budget
    (f at the last step) and leaves the temperatures' alone; a higher entropy target trains every
    temperature higher."""
    small = ("--gamma", "0.9", "--target-entropy", "-0.5", "--lr-decay-to", "0", "--num-envs", "1")
    sac = ("--gamma", "0.99", "--target-entropy", "-1", "--lr-decay-to", "1", "--num-envs", "2")
    runs = {"default": (), "small": small, "sac": sac, "half": ("--lr-decay-to", "0.5"),
            "te_high": ("--target-entropy", "-0.5"), "share": ("--action-mode", "slice_share")}
    train_side_by_side(tmp_path, runs)
    ckpt = {name: torch.load(tmp_path / name / "checkpoint.pt", weights_only=True) for name in runs}

    def same(a, b):  # the same training: equal critics and temperatures at the end
        return torch.equal(ckpt[a]["log_alpha"], ckpt[b]["log_alpha"]) and all(
            torch.equal(x, y) for x, y in zip(ckpt[a]["qf"].values(), ckpt[b]["qf"].values()))
    assert same("default", "sac") and not same("default", "small")
    assert not same("default", "te_high")
    assert [(ckpt[n]["args"]["num_envs"], ckpt[n]["update"])
            for n in ("default", "small", "share")] == [
        (2, 30), (1, 60), (2, 30)]  # 60 env steps after the warm-up
    for name in ("default", "share"):
        assert [ckpt[name]["args"][k] for k in ("gamma", "target_entropy", "lr_decay_to")] == [
            0.99, -1.0, 1.0]
    lrs = {name: [c[k]["param_groups"][0]["lr"]
                  for k in ("q_optimizer", "actor_optimizer", "a_optimizer")]
           for name, c in ckpt.items()}
    assert lrs["default"] == [1e-4, 1e-4, 1e-3] and lrs["small"] == [0.0, 0.0, 1e-3]
    assert lrs["half"] == pytest.approx([5e-5, 5e-5, 1e-3])
    assert (ckpt["te_high"]["log_alpha"] > ckpt["default"]["log_alpha"]).all()


def test_fixed_splits_play_one_constant_allocation():
    """run_experiments.fixed_split (the reference rows split-<eMBB>-<mMTC>-<URLLC>): the equal
    split's shares score as the static_equal heuristic, episode by episode, and the same eMBB, mMTC
    and URLLC blocks with idle RBs handed to eMBB score higher on the same episodes."""
    static = evaluate_heuristic("small", "static_equal", 4)
    # 9/8/8 of 25 RBs
    as_fixed = evaluate_heuristic("small", fixed_split((9 / 25, 8 / 25, 8 / 25)), 4)
    assert as_fixed[0].tolist() == static[0].tolist()
    with_idle, no_idle = (evaluate_heuristic("small", fixed_split(tuple(c / 25 for c in counts)), 4)
                          for counts in ((10, 3, 5), (17, 3, 5)))
    assert with_idle[1]["rb_utilisation"] < no_idle[1]["rb_utilisation"]
    assert no_idle[0].mean() > with_idle[0].mean() + 10
    with pytest.raises(ValueError, match="round to"):
        evaluate_heuristic("small", fixed_split((0.6, 0.3, 0.2)), 1)
