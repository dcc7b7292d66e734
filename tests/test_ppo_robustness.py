"""ppo_comp.py as robust as the SAC scripts: bad flags exit 2 naming the flag (never a traceback),
one writer per run folder, SIGINT/SIGTERM stop with a checkpoint (or "nothing saved yet"), and a
run stopped by a real SIGTERM (or killed after a periodic checkpoint) and resumed gives the
uninterrupted run's results bit for bit, down to comp_env's state API that the checkpoint keeps
the environments with."""
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import comp_env  # noqa: E402
import ppo_comp  # noqa: E402
import records  # noqa: E402


# -- comp_env's state API ------------------------------------------------------------------------

def random_choices(rng, env):
    return rng.integers(0, env.act_dim, size=(env.num_envs, env.n_agents))


def test_env_state_round_trip_continues_bit_for_bit():
    env = comp_env.make_env("small", num_envs=3, seed=4, reward="central", sharing="mixed")
    actions = np.random.default_rng(0)
    for _ in range(95):  # the next 10 steps cross an episode end: the reset draws from the state
        env.step_choices(random_choices(actions, env))
    buffer = io.BytesIO()
    torch.save(env.state_dict(), buffer)  # as a checkpoint keeps it
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    copy = comp_env.make_env("small", num_envs=3, seed=99, reward="central", sharing="mixed")
    copy.step_choices(random_choices(np.random.default_rng(1), copy))  # elsewhere in its episode
    copy.load_state_dict(state)
    ended = []
    for _ in range(10):
        choice = random_choices(actions, env)
        out, out_copy = env.step_choices(choice), copy.step_choices(choice)
        for a, b in zip(out[:4], out_copy[:4]):
            assert np.array_equal(a, b)
        assert out[4].keys() == out_copy[4].keys()
        assert np.array_equal(out[4]["ue_utility"], out_copy[4]["ue_utility"])
        if "episode" in out[4]:
            ended.append(env.t)
            assert np.array_equal(out[4]["episode"]["return"], out_copy[4]["episode"]["return"])
    assert ended == [0]  # one episode end, and the next episode's steps agree too
    assert np.array_equal(env.policy_rng.random(4), copy.policy_rng.random(4))


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("ewma"), "missing keys ['ewma']"),
    (lambda s: s.update(gain=1.0), "unknown keys ['gain']"),
    (lambda s: s.update(position=s["position"][:1]), "'position' has shape (1, 3, 2)"),
    (lambda s: s.update(speed=[[1.0, 2.0], [3.0]]), "'speed'"),
])
def test_env_state_load_names_the_bad_key_and_changes_nothing(change, message):
    env = comp_env.make_env("small", num_envs=2, seed=1)
    state = env.state_dict()
    change(state)
    before = json.dumps(env.state_dict())
    with pytest.raises(ValueError, match=r"env state: .*" + message.replace("[", r"\[")
                       .replace("]", r"\]").replace("(", r"\(").replace(")", r"\)")):
        env.load_state_dict(state)
    assert json.dumps(env.state_dict()) == before


# -- bad flags -----------------------------------------------------------------------------------

BAD_FLAGS = [  # (flags, text the message must contain)
    (["--learning-rate", "inf"], "--learning-rate must be a finite number in (0, 1]"),
    (["--learning-rate", "nan"], "--learning-rate"),
    (["--learning-rate", "0"], "--learning-rate"),
    (["--seed", "-1"], "--seed must be a finite number in [0, 4294967295]"),
    (["--seed", "4294967296"], "--seed"),
    (["--eval-seed", "-1"], "--eval-seed"),
    (["--total-timesteps", "0"], "--total-timesteps must be a finite number in [1, inf)"),
    (["--num-envs", "0"], "--num-envs"),
    (["--num-envs", "1000000"], "--num-envs must be a finite number in [1, 100000]"),
    (["--num-steps", "1000000"], "--num-steps"),
    (["--hidden-sizes", "10000000", "10000000"],
     "--hidden-sizes must be a finite number in [1, 100000]"),
    (["--hidden-sizes", "0"], "--hidden-sizes"),
    (["--hidden-sizes"], "--hidden-sizes needs one or more layer sizes"),
    (["--exp-name", "a/b"], "--exp-name must be a name without '/'"),
    (["--eval-episodes", "0"], "--eval-episodes"),
    (["--eval-load-factors", "0"], "--eval-load-factors"),
    (["--torch-threads", "0"], "--torch-threads"),
    (["--gamma", "nan"], "--gamma"),
    (["--gae-lambda", "1.5"], "--gae-lambda must be a finite number in [0, 1]"),
    (["--clip-coef", "-0.1"], "--clip-coef must be a finite number in (0, inf)"),
    (["--ent-coef", "inf"], "--ent-coef"),
    (["--vf-coef", "1e308"], "--vf-coef must be a finite number in [0, 1000]"),
    (["--kl-coef", "-0.2"], "--kl-coef"),
    (["--kl-target", "0"], "--kl-target"),
    (["--target-kl", "inf"], "--target-kl"),
    (["--reward-scale", "1e300"], "--reward-scale"),
    (["--max-grad-norm", "0"], "--max-grad-norm"),
    (["--minibatch-rows", "0"], "--minibatch-rows"),
    (["--update-epochs", "0"], "--update-epochs"),
    (["--num-minibatches", "0"], "--num-minibatches"),
    (["--checkpoint-interval", "-1"], "--checkpoint-interval"),
    (["--eval-interval", "-5"], "--eval-interval"),
    # derived values are no flags: given, they are an error, never silently overwritten
    (["--batch-size", "5", "--num-iterations", "99"], "Unrecognized options: --batch-size"),
    (["--minibatch-size", "7"], "--minibatch-size"),
    # flags that must agree
    (["--num-envs", "4", "--num-steps", "128", "--total-timesteps", "100"],
     "--total-timesteps (100) must be at least --num-envs * --num-steps = 512 (one rollout)"),
    (["--num-envs", "2", "--num-steps", "8", "--total-timesteps", "16", "--num-minibatches", "17"],
     "--num-minibatches (17) must be at most"),
    (["--mode", "central", "--num-envs", "1", "--num-steps", "4", "--total-timesteps", "8",
      "--num-minibatches", "4"], "a minibatch of one agent row (4 rows in minibatches of 1)"),
    (["--scenario", "small", "--num-envs", "1", "--num-steps", "3", "--total-timesteps", "8",
      "--minibatch-rows", "4"], "(9 rows in minibatches of 4)"),  # the last one is one row
    (["--vf-clip", "10"], "--vf-clip needs --clip-vloss"),
    (["--mode", "central", "--eval-load-factors", "2"], "--eval-load-factors needs --mode multi"),
    (["--resume"], "--resume needs --run-dir"),
    (["--run-dir", ""], "--run-dir must name a folder"),
    # names, and the environment's config (comp_env's check, named by the flag)
    (["--scenario", "huge"], "--scenario must be one of small, medium, large, got 'huge'"),
    (["--scenario", ""], "--scenario must be one of"),
    (["--preset", "fast"], "--preset must be one of cleanrl, rllib, got 'fast'"),
    (["--preset"], "--preset must be one of"),
    (["--mode", "both"], "--mode"),
    (["--reward-aggregate", "max"], "--reward-aggregate"),
    (["--norm-adv-over", "epoch"], "--norm-adv-over"),
    (["--sharing", "greedy"], "--sharing greedy"),
    (["--num-slow-ues", "-1"], "--num-slow-ues"),
    (["--num-slow-ues", "0", "--num-fast-ues", "0"], "--num-slow-ues, --num-fast-ues"),
]


@pytest.mark.parametrize("flags, message", BAD_FLAGS)
def test_bad_flags_exit_2_naming_the_flag(flags, message, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["ppo_comp.py", *flags])
    with pytest.raises(SystemExit) as exit_info:  # any other exception fails the test
        ppo_comp.parse_args()
    out = capsys.readouterr()
    assert exit_info.value.code == 2
    assert message in " ".join((out.out + out.err).replace("\u2502", " ").split())


def test_the_size_of_a_run_is_checked_against_the_machines_memory():
    args = ppo_comp.parse_args(["--num-envs", "100000", "--num-steps", "100000",
                                "--total-timesteps", str(10**10)])
    assert ppo_comp.memory_gib(args, comp_env.make_config("medium")) > 10_000
    assert ppo_comp.memory_gib(ppo_comp.parse_args([]), comp_env.make_config("large")) < 1


def ppo(*flags, **kwargs):
    """ppo_comp.py in a subprocess (unbuffered output, so its lines arrive as printed)."""
    return subprocess.Popen([sys.executable, "ppo_comp.py", *flags], cwd=ROOT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("flags, message", [
    (["--learning-rate", "inf"], "--learning-rate must be a finite number"),
    (["--seed", "-1"], "--seed"),
    (["--batch-size", "5", "--num-iterations", "99"], "--batch-size"),
    (["--num-envs", "100000", "--num-steps", "100000", "--total-timesteps", str(10**10)],
     "--num-envs 100000 --num-steps 100000"),
    (["--scenario", "small", "--run-dir", "ppo_comp.py/run"], "--run-dir ppo_comp.py/run"),
])
def test_bad_input_exits_2_without_traceback(flags, message):
    proc = ppo(*flags, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert message in " ".join((out + err).replace("\u2502", " ").split())
    assert "Traceback" not in err


# -- the run folder, signals and exact resume ----------------------------------------------------

SMALL = ["--scenario", "small", "--num-envs", "2", "--num-steps", "64", "--hidden-sizes", "16",
         "--eval-episodes", "3", "--torch-threads", "1"]


def wait_for(condition, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        if value := condition():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def read_until(proc, text, timeout=120):
    """The lines proc printed up to the first that contains `text`."""
    lines, end = [], time.time() + timeout
    while time.time() < end:
        lines.append(proc.stdout.readline())
        if text in lines[-1]:
            return lines
        assert lines[-1], f"the process ended before printing {text!r}: {''.join(lines)}"
    raise AssertionError(f"no {text!r} within {timeout} s")


def summary(run_dir):
    return json.loads((run_dir / "summary.json").read_text())


@pytest.mark.slow
def test_a_second_writer_is_refused_and_writes_nothing(tmp_path):
    run_dir = tmp_path / "run"
    first = ppo(*SMALL, "--total-timesteps", "10000000", "--run-dir", str(run_dir),
                stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: list(run_dir.glob("events.out.tfevents.*")), 120, "the first run's events")
        before = sorted(p.name for p in run_dir.iterdir())
        for extra, message in (([], f"--run-dir {run_dir} already holds a run"),
                               (["--resume"], f"another process is training in {run_dir}")):
            second = ppo(*SMALL, "--total-timesteps", "256", "--run-dir", str(run_dir), *extra,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            out, err = second.communicate(timeout=120)
            assert second.returncode == 2 and message in err and "Traceback" not in err
        assert sorted(p.name for p in run_dir.iterdir()) == before
    finally:
        first.kill()
        first.wait()


@pytest.mark.slow
def test_a_signal_before_the_run_starts_saves_nothing_and_says_so(tmp_path):
    run_dir = tmp_path / "run"
    proc = ppo(*SMALL, "--total-timesteps", "256", "--run-dir", str(run_dir),
               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    read_until(proc, "preset cleanrl")  # parsed: the handlers are in place, the run not yet made
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGINT
    assert "SIGINT before the run started: nothing saved yet" in out
    assert "Traceback" not in err and not run_dir.exists()


def stop_and_resume(proc, run_dir, signals, expected_step=None):
    """Send `signals` to the running proc; check the clean stop; run the printed resume command."""
    for signum in signals:  # a second signal during the stop changes nothing
        proc.send_signal(signum)
        time.sleep(0.5)  # one at a time: pending signals are delivered lowest number first
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signals[0], out + err
    assert "Traceback" not in err and not (run_dir / "summary.json").exists()
    stop_line = next(line for line in out.splitlines() if "checkpoint at global_step=" in line)
    assert stop_line.startswith(signal.Signals(signals[0]).name)
    step = int(stop_line.split("global_step=")[1].split(";")[0])
    assert expected_step in (None, step)
    command = out.split("resume with:\n")[1].strip()
    assert "--resume" in command and str(run_dir) in command
    resumed = subprocess.run(command, shell=True, cwd=ROOT, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"resumed {run_dir} at global_step={step}" in resumed.stdout
    return step


@pytest.mark.slow
@pytest.mark.parametrize("flags", [
    ["--mode", "multi", "--eval-load-factors", "1", "2"],
    ["--mode", "central", "--preset", "rllib", "--seed", "3"],  # KL penalty, adaptive coefficient
])
def test_sigterm_mid_run_and_resume_give_the_uninterrupted_runs_results(tmp_path, flags):
    flags = [*SMALL, *flags, "--total-timesteps", "1280", "--eval-interval", "256"]
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    proc = ppo(*flags, "--run-dir", str(whole), stdout=subprocess.DEVNULL)
    assert proc.wait(timeout=300) == 0
    proc = ppo(*flags, "--run-dir", str(stopped), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    read_until(proc, "global_step=512, eval")  # in the rollout of iteration 4 of 10
    step = stop_and_resume(proc, stopped, [signal.SIGTERM])
    assert 512 <= step < 1280  # stopped mid-run, at the end of an iteration
    expected, got = summary(whole), summary(stopped)
    for key in ("eval_history", "final_eval", "load_sweep", "global_step", "num_iterations"):
        assert got[key] == expected[key], key
    assert got["status"] == "finished"


@pytest.mark.slow
def test_signals_during_the_final_evaluation_stop_it_and_resume_redoes_it(tmp_path):
    flags = [*SMALL, "--eval-episodes", "1000", "--eval-interval", "0", "--total-timesteps", "256",
             "--eval-load-factors", "1", "2", "4"]
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    proc = ppo(*flags, "--run-dir", str(whole), stdout=subprocess.DEVNULL)
    assert proc.wait(timeout=300) == 0
    proc = ppo(*flags, "--run-dir", str(stopped), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # the checkpoint is first written after training, before the final evaluation
    wait_for(lambda: (stopped / "checkpoint.pt").exists(), 300, "the checkpoint")
    stop_and_resume(proc, stopped, [signal.SIGTERM, signal.SIGINT], expected_step=256)
    expected, got = summary(whole), summary(stopped)
    assert [h["step"] for h in got["eval_history"]] == [0, 256]  # the final evaluation once
    for key in ("eval_history", "final_eval", "load_sweep"):
        assert got[key] == expected[key], key
    # a finished run has nothing to resume
    again = ppo(*flags, "--run-dir", str(stopped), "--resume", stdout=subprocess.PIPE)
    assert again.wait(timeout=120) == 0 and "nothing to resume" in again.stdout.read()


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_last_periodic_checkpoint_exactly(tmp_path):
    flags = [*SMALL, "--total-timesteps", "1280", "--eval-interval", "256",
             "--checkpoint-interval", "256"]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert ppo(*flags, "--run-dir", str(whole), stdout=subprocess.DEVNULL).wait(timeout=300) == 0
    proc = ppo(*flags, "--run-dir", str(killed), stdout=subprocess.PIPE)
    read_until(proc, "global_step=768, eval")  # checkpoints at 256 and 512 are written
    proc.kill()  # no handler runs: what is on disk is all there is
    proc.wait()
    assert not (killed / "summary.json").exists()
    step = torch.load(killed / "checkpoint.pt", weights_only=True)["global_step"]
    resumed = ppo(*flags, "--run-dir", str(killed), "--resume", stdout=subprocess.PIPE)
    assert f"resumed {killed} at global_step={step}" in resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0 and 256 <= step < 1280
    expected, got = summary(whole), summary(killed)
    for key in ("eval_history", "final_eval", "global_step"):
        assert got[key] == expected[key], key
    # the event files too: the resumed writer dropped what the killed run logged after the step
    curves, resumed_curves = records.read_scalars(whole), records.read_scalars(killed)
    assert curves.keys() == resumed_curves.keys()
    for tag in set(curves) - {"charts/SPS"}:
        assert all(np.array_equal(a, b) for a, b in zip(curves[tag], resumed_curves[tag])), tag
