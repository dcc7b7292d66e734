"""The env-step counter: oran_env counts env steps over all copies (the scripts' global_step), so
the non-stationary traffic shift comes at the first episode start at or after --shift-after-steps
env steps for any --num-envs, and a run stopped by SIGTERM and resumed counts like an uninterrupted
one.
docs/model.md#scenarios, docs/training.md#logging"""
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import oran_env  # noqa: E402

SHIFT = 300  # env steps; `small` has 100-step episodes


@pytest.mark.parametrize("num_envs, first_shifted_episode", [(1, 300), (2, 400)])
def test_shift_comes_at_the_first_episode_start_after_the_documented_env_step(
        num_envs, first_shifted_episode):
    """Driven like the scripts drive it: global_step += num_envs per vectorised step. With two
    copies an episode spans 200 env steps, so the first one to start at or after 300 starts at 400
    (the old count, one per vectorised step, shifted at 600)."""
    env = oran_env.make_env("small", num_envs=num_envs, seed=1, shift_after_steps=SHIFT)
    env.env_steps = 0
    env.reset(seed=[1, 0])
    global_step, shifted_at = 0, None
    while global_step < 800 and shifted_at is None:
        global_step += num_envs
        env.step(oran_env.static_equal_split(env))
        assert env.env_steps == global_step
        shifted_at = global_step if env.shifted else None  # the next episode starts shifted
    assert shifted_at == first_shifted_episode


def test_evaluation_replays_the_episodes_before_the_shift_at_every_call():
    """An evaluation environment kept across evaluations (as the scripts keep theirs) adds E x 100
    env steps per call; each call still scores the same, unshifted episodes."""
    def policy(obs, envs):
        return oran_env.HEURISTICS["static_equal"](envs)

    env = oran_env.make_env("small", num_envs=2, seed=3, shift_after_steps=SHIFT)
    first = oran_env.evaluate(policy, env, 7)
    for _ in range(3):  # 600 more env steps: past the shift without the restart
        again = oran_env.evaluate(policy, env, 7)
        assert not env.shifted
    assert np.array_equal(first[0], again[0]) and first[1] == again[1]
    fresh = oran_env.make_env("small", num_envs=2, seed=3)  # no shift at all: the same episodes
    assert np.array_equal(oran_env.evaluate(policy, fresh, 7)[0], first[0])


def scalars(run_dir, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return {e.step: e.value for e in events.Scalars(tag)}


def idle_episodes(run_dir, starts):
    """For each episode start s: whether that episode (logged at s + 200) carried no eMBB
    traffic."""
    embb = scalars(run_dir, "env/throughput_embb_mbps")
    return [embb[s + 200] == 0.0 for s in starts]


@pytest.mark.slow
def test_a_resumed_run_shifts_like_an_uninterrupted_one_with_two_env_copies(tmp_path):
    """After the shift all traffic is off (--shift-slice-load 0 0 0), so an episode's logged eMBB
    throughput says whether it started shifted. Both runs: exactly the episodes that start at or
    after env step 300 are idle. The stopped run is resumed before step 200 in the middle of an
    episode, which it finishes (the envs' state is in the checkpoint): its logged throughput is the
    uninterrupted run's, value for value."""
    flags = ["--scenario", "small", "--total-timesteps", "800", "--learning-starts", "150",
             "--hidden-sizes", "16", "--batch-size", "16", "--eval-episodes", "1",
             "--eval-interval", "400", "--torch-threads", "1", "--num-envs", "2",
             "--shift-after-steps", str(SHIFT), "--shift-slice-load", "0", "0", "0"]
    script = [sys.executable, str(ROOT / "sac_marl_baseline.py"), *flags]
    whole = subprocess.Popen([*script, "--run-dir", str(tmp_path / "whole")], cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stopped = subprocess.Popen([*script, "--run-dir", str(tmp_path / "stopped")], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in stopped.stdout:
        if "warm-up done" in line:  # global_step 152: SIGTERM, a checkpoint soon after
            stopped.send_signal(signal.SIGTERM)
            break
    out, err = stopped.communicate(timeout=300)
    assert stopped.returncode == 128 + signal.SIGTERM, err
    stopped_at = int(out.split("checkpoint at global_step=")[1].split(";")[0])
    resumed = subprocess.run([*script, "--run-dir", str(tmp_path / "stopped"), "--resume"],
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"at global_step={stopped_at}" in resumed.stdout and "older format" not in resumed.stdout
    assert whole.wait(timeout=300) == 0, whole.stderr.read()

    starts = [0, 200, 400, 600]
    assert idle_episodes(tmp_path / "whole", starts) == [s >= SHIFT for s in starts]
    embb = [scalars(tmp_path / run, "env/throughput_embb_mbps") for run in ("whole", "stopped")]
    assert embb[0] == embb[1]
