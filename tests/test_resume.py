"""Exact resume and signals of the SAC scripts
(docs/training.md#progress-stopping-non-finite-values): oran_env's state API continues a copy bit
for bit; a run stopped by a real SIGTERM at any point (the first steps, after the updates begin,
during an evaluation, during the final evaluation) and resumed ends with the same evaluation
histories and final metrics, ==, as the run left alone; a signal during the imports stops without a
traceback; bad --resume inputs stop with a clear error."""
import dataclasses
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import oran_env  # noqa: E402
import run_utils  # noqa: E402
import sac_marl_baseline  # noqa: E402

# slice shares; the literal RB and UE action with rich observations; home DUs and the shift
CONFIGS = {
    "default": {},
    "rb_slice_ue": {"action_mode": "rb_slice_ue", "obs_mode": "rich"},
    "homes_shift": {"du_ue_weights": (1.0, 3.0), "shift_after_steps": 150},
}


def same(a, b):
    """Equal values, types and dtypes, in nested dicts, tuples and arrays (NaN equal to NaN)."""
    if isinstance(a, np.random.Generator):
        return isinstance(b, np.random.Generator) and a.bit_generator.state == b.bit_generator.state
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, np.ndarray):
        return (isinstance(b, np.ndarray) and a.dtype == b.dtype
                and np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
    return type(a) is type(b) and a == b


def random_steps(env, rng, steps):
    return [env.step(rng.uniform(-1, 1, (env.num_envs, env.n_agents, env.act_dim))
                     .astype(np.float32))
            for _ in range(steps)]


@pytest.mark.parametrize("name", CONFIGS)
def test_env_state_continues_a_copy_exactly(name):
    """State after 130 steps (one episode boundary passed) through
    torch.save/load(weights_only=True) and JSON into an env of another seed: every attribute equal,
    then 250 more steps with the same actions give equal observations, rewards, flags and infos."""
    env = oran_env.make_env("small", num_envs=2, seed=1, **CONFIGS[name])
    random_steps(env, np.random.default_rng(0), 130)
    buffer = io.BytesIO()
    torch.save(env.state_dict(), buffer)
    buffer.seek(0)
    state = json.loads(json.dumps(torch.load(buffer, weights_only=True), allow_nan=False))
    copy = oran_env.make_env("small", num_envs=2, seed=99, **CONFIGS[name])
    assert not same(vars(copy), vars(env))
    copy.load_state_dict(state)
    assert [k for k in vars(env) if not same(getattr(env, k), getattr(copy, k))] == []
    steps = [random_steps(e, np.random.default_rng(5), 250) for e in (env, copy)]
    assert all(same(a, b) for a, b in zip(*steps))


def test_a_state_that_does_not_fit_is_refused_with_its_key_and_changes_nothing():
    env = oran_env.make_env("small", num_envs=2, seed=1)
    before = env.state_dict()
    other_copies = oran_env.make_env("small", num_envs=1, seed=1).state_dict()
    other_scenario = oran_env.make_env("paper", num_envs=2, seed=1).state_dict()
    missing = {k: v for k, v in before.items() if k != "pos"}
    cases = [(other_copies,
              "state['slice_of']: expected a int64 array of shape (2, 30), got shape (1, 30)"),
             (other_scenario, "shape"), (missing, "'pos' (missing)"),
             ({**before, "speed_kmh": 3}, "'speed_kmh' (unknown)"),
             ({**before, "rng": {"bit_generator": "MT19937"}},
              "state['rng']: expected the state of a PCG64"),
             ({**before, "t": 1.5}, "state['t']: expected int, got float"),
             ({**before, "_rows": {"order": []}}, "state['_rows']"), ([1, 2], "expected a dict")]
    for state, message in cases:
        with pytest.raises(ValueError) as error:
            env.load_state_dict(state)
        assert message in str(error.value)
        assert same(env.state_dict(), before)  # nothing half-loaded


# --- --resume inputs, checked before anything is written ------------------------------------------

def args_for(run_dir, total=600):
    return sac_marl_baseline.Args(scenario="small", env=oran_env.make_config("small"),
                                  run_dir=str(run_dir),
                                  resume=True, total_timesteps=total, learning_starts=100)


def open_run(args, capsys):
    with pytest.raises(SystemExit) as stop:
        run_utils.Run(args, "sac_marl_baseline.py", None)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return stop.value.code, out + err


@pytest.mark.parametrize("name", ["summary.json", "checkpoint.pt"])
def test_resume_where_a_run_file_is_a_folder_is_a_clear_error(tmp_path, capsys, name):
    (tmp_path / name).mkdir()
    code, message = open_run(args_for(tmp_path), capsys)
    assert code == 2 and f"--resume {tmp_path / name}: not a readable file (a folder)" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_resume_of_a_finished_run_with_a_larger_budget_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "summary.json").write_text(json.dumps({"status": "finished",
                                                       "script": "sac_marl_baseline.py",
                                                       "global_step": 600}))
    code, message = open_run(args_for(tmp_path, total=900), capsys)
    assert (code == 2 and "finished at global_step=600" in message
            and "cannot be extended" in message)
    for total in (600, 300):  # nothing more asked for: nothing to do
        assert open_run(args_for(tmp_path, total=total), capsys) == (
            0, f"{tmp_path / 'summary.json'} says finished; "
               "nothing to resume\n")


def test_resume_with_a_budget_below_the_checkpoint_is_a_clear_error(tmp_path, capsys):
    args = args_for(tmp_path, total=300)
    saved = json.loads(json.dumps(dataclasses.asdict(args)))
    torch.save({"script": "sac_marl_baseline.py", "args": saved, "hidden": [16],
                "global_step": 400},
               tmp_path / "checkpoint.pt")
    code, message = open_run(args, capsys)
    assert (code == 2 and "--total-timesteps 300" in message
            and "already at global_step=400" in message)


# --- real runs, real signals ----------------------------------------------------------------------

# small: 100-step episodes; two copies end one every 200 env steps, where the evaluations are; 32
# evaluation episodes make an evaluation long enough (about a second) for a signal sent at its start
# to land inside it
FLAGS = ["--scenario", "small", "--total-timesteps", "600", "--learning-starts", "200",
         "--eval-interval", "200", "--eval-episodes", "32", "--hidden-sizes", "16",
         "--batch-size", "16", "--torch-threads", "1",
         "--checkpoint-interval", "150", "--log-interval", "20"]
SCRIPTS = {"baseline": ("sac_marl_baseline.py",),
           "tasam": ("tasam_marl_sac.py", "--sharpness-interval", "50")}
RESULTS = ("eval_history", "eval_sampled_history", "eval_episode_returns", "final_eval",
           "best_eval_return", "global_step")
# where to stop: the line after which SIGTERM is sent (the unbuffered output), the signals sent, and
# the step the checkpoint must be at (None: any)
STOPS = {
    # warm-up, mid-episode
    "first_steps": ("folder", [signal.SIGTERM], lambda step: 0 < step < 200),
    "updates": ("warm-up done", [signal.SIGTERM], lambda step: 200 < step < 600 and step % 200),
    "evaluation": ("global_step=400, episodic_return", [signal.SIGTERM, signal.SIGINT],
                   lambda step: step == 400),
    "final_evaluation": ("global_step=600, episodic_return", [signal.SIGTERM, signal.SIGTERM],
                         lambda step: step == 600),
}
CASES = {"baseline": list(STOPS), "tasam": ["updates", "final_evaluation"]}


def start(argv, run_dir, *extra, stdout=subprocess.PIPE):
    return subprocess.Popen([sys.executable, *argv, *FLAGS, "--run-dir", str(run_dir), *extra],
                            cwd=ROOT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            stdout=stdout, stderr=subprocess.PIPE)


def stop_after(proc, line_start, signals):
    """Read the run's output as it comes until a line containing `line_start`, then send `signals`;
    returns the whole output and the error output."""
    out = []
    for line in proc.stdout:
        out.append(line)
        if line_start in line:
            # a second one once the first is handled (both pending: SIGINT first)
            for signum in signals:
                proc.send_signal(signum)
                time.sleep(0.2)
            break
    rest, err = proc.communicate(timeout=600)
    return "".join(out) + rest, err


def results(run_dir):
    summary = json.loads((run_dir / "summary.json").read_text())
    return {key: summary[key] for key in RESULTS}


def scalars(run_dir, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


@pytest.mark.slow
@pytest.mark.parametrize("variant", CASES)
def test_a_run_stopped_by_sigterm_anywhere_resumes_exactly(variant, tmp_path):
    """Each stop: exit 143 (the second signal changes nothing), a checkpoint at the stop, no
    summary; the printed command finishes the run with results == the uninterrupted run's, also the
    training episodes' returns. An older checkpoint without the envs' state resumes with a warning
    from a fresh episode."""
    argv = SCRIPTS[variant]
    whole = start(argv, tmp_path / "whole", stdout=subprocess.DEVNULL)
    stopped = {name: start(argv, tmp_path / name) for name in CASES[variant]}
    with ThreadPoolExecutor(len(stopped)) as pool:  # each run's output read as it comes
        outputs = pool.map(lambda name: stop_after(stopped[name], *STOPS[name][:2]), stopped)
    for (name, proc), (out, err) in zip(stopped.items(), outputs):
        where = STOPS[name][2]
        assert proc.returncode == 128 + signal.SIGTERM and "Traceback" not in err, (name, err)
        step = torch.load(tmp_path / name / "checkpoint.pt", weights_only=True)["global_step"]
        assert (where(step)
                and f"SIGTERM: checkpoint at global_step={step}; resume with:" in out), (name, out)
        assert not (tmp_path / name / "summary.json").exists()
    # the same stop as written by the code before the envs' state was saved
    if variant == "baseline":
        shutil.copytree(tmp_path / "updates", tmp_path / "older")
        checkpoint = torch.load(tmp_path / "older" / "checkpoint.pt", weights_only=True)
        for key in ("envs", "eval_envs", "obs", "episode_metrics"):
            del checkpoint[key]
        torch.save(checkpoint, tmp_path / "older" / "checkpoint.pt")
    names = [*stopped, *["older"] * (variant == "baseline")]
    resumed = {name: start(argv, tmp_path / name, "--resume") for name in names}
    assert whole.wait(timeout=600) == 0, whole.stderr.read()
    expected = results(tmp_path / "whole")
    for name, proc in resumed.items():
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0 and "Traceback" not in err, (name, err)
        if name == "older":
            assert "is of an older format, without envs, eval_envs" in out
            assert results(tmp_path / name)["global_step"] == 600
            continue
        assert "older format" not in out
        assert results(tmp_path / name) == expected, name
        for tag in ("charts/episodic_return", "env/qos_urllc"):  # the training episodes too
            assert scalars(tmp_path / name, tag) == scalars(tmp_path / "whole", tag), (name, tag)
    # the finished run: a larger budget cannot extend it (its final checkpoint holds no replay
    # buffer)
    extend = start(argv, tmp_path / "whole", "--resume", "--total-timesteps", "800")
    _, err = extend.communicate(timeout=300)
    assert extend.returncode == 2 and "cannot be extended" in err and "Traceback" not in err


def caught_signals(pid):
    """The signals that process `pid` has handlers for (SigCgt in /proc/<pid>/status)."""
    status = Path(f"/proc/{pid}/status").read_text()
    mask = int(status.split("SigCgt:")[1].split()[0], 16)
    return {signum for signum in signal.Signals if mask >> (signum - 1) & 1}


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_the_imports_stops_without_a_traceback(signum, tmp_path):
    """Sent as soon as the script's first handler is in place (SIGTERM caught), while torch is
    imported: a line saying nothing was saved, exit 128 + signum, no run folder."""
    proc = subprocess.Popen([sys.executable, "sac_marl_baseline.py", *FLAGS,
                             "--run-dir", str(tmp_path / "run")],
                            cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while signal.SIGTERM not in caught_signals(proc.pid) and time.time() < deadline:
        time.sleep(0.002)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum and "Traceback" not in err, err
    assert out == f"{signum.name}: stopped before the run started: nothing saved\n"
    assert not (tmp_path / "run").exists()
