"""One writer per run folder: the training scripts' run.lock, and the local runner's training
processes dying with it (real processes, real signals)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import records  # noqa: E402
import run_experiments as rx  # noqa: E402

pytestmark = pytest.mark.slow  # real training processes and real signals

SMALL = ["--scenario", "small", "--action-mode", "slice_share", "--learning-starts", "100",
         "--batch-size", "32",
         "--eval-episodes", "1", "--eval-interval", "100", "--torch-threads", "1"]


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains text (zombies have an empty one)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and text in (proc / "cmdline").read_bytes().decode():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def wait_for(condition, timeout: float, what: str):
    end = time.time() + timeout
    while time.time() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def test_second_process_on_a_locked_run_folder_exits_and_writes_nothing(tmp_path):
    run_dir = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "sac_marl_baseline.py", *SMALL,
                              "--total-timesteps", "100000", "--run-dir", str(run_dir)],
                             cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: list(run_dir.glob("events.out.tfevents.*")), 60,
                 "the first run's event file")
        assert rx.folder_in_use(run_dir)
        before = sorted(p.name for p in run_dir.iterdir())
        seconds = [subprocess.Popen([sys.executable, script, *SMALL, "--total-timesteps", "300",
                                     "--run-dir", str(run_dir), *extra],
                                    cwd=ROOT, stderr=subprocess.PIPE, text=True)
                   for script, extra in (("sac_marl_baseline.py", []), ("tasam_marl_sac.py", []),
                                         ("sac_marl_l2.py", ["--resume"]))]
        for second, resume in zip(seconds, (False, False, True)):
            assert second.wait(timeout=120) == 2
            # without --resume the folder's run files refuse it even before the lock
            err = second.stderr.read()
            assert (f"another process is training in {run_dir}" in err
                    or not resume and "already holds a run" in err)
        # no second event file, no summary
        assert sorted(p.name for p in run_dir.iterdir()) == before
        # the runner neither clears nor starts a run in a folder that another process holds
        outcome, message = rx.run_training(["python", "x.py"], run_dir, {})
        assert outcome == "failed" and "in use by another training process" in message
        assert sorted(p.name for p in run_dir.iterdir()) == before
    finally:
        first.kill()
        first.wait()
    assert not rx.folder_in_use(run_dir)  # the kernel dropped the lock with its process


# stands in for a training script that is still running
SLEEPER = "import sys, time\ntime.sleep(300)\n"
FLAGS = (*SMALL[2:], "--num-envs", "1", "--alpha-init", "1.0", "--init-bias", "0",
         "--checkpoint-interval", "100")


def runner_argv(tmp_path, steps: int) -> list[str]:
    """The runner on a definitions file of one experiment, `safety`: No-SAM and L2 on `small`,
    seed 1."""
    definitions = tmp_path / "safety_experiments.py"
    definitions.write_text("from experiments import Experiment, NOSAM, L2_METHOD\n"
                           f"EXPERIMENTS = {{'safety': Experiment('two runs', (NOSAM, L2_METHOD), "
                           f"('small',), (1,), {steps}, {FLAGS!r})}}\n")
    return ["safety", "--definitions", str(definitions), "--results-dir", str(tmp_path / "results"),
            "--records", str(tmp_path / "records"), "--no-references"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
def test_runner_signals_leave_no_training_process(tmp_path, signum):
    sleeper = tmp_path / "python_sleeper.py"
    sleeper.write_text(f"#!{sys.executable}\n" + SLEEPER)
    sleeper.chmod(0o755)
    runner = subprocess.Popen([sys.executable, "run_experiments.py", *runner_argv(tmp_path, 400),
                               "--python", str(sleeper)], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True)
    try:
        wait_for(lambda: len(processes_mentioning(str(tmp_path / "results"))) == 3, 60,
                 "the runner and its two training processes")
        runner.send_signal(signum)
        rc = runner.wait(timeout=30)
        wait_for(lambda: not processes_mentioning(str(tmp_path / "results")), 10,
                 "no training process left")
    finally:
        runner.kill()
        runner.wait()
    # stopped as Ctrl-C stops it, with the shell's exit status of the signal
    if signum != signal.SIGKILL:
        assert rc == 128 + signum and f"interrupted ({signum.name})" in runner.stdout.read()


def eval_steps(run_dir: Path) -> list[int]:
    return [step for step, _ in json.loads((run_dir / rx.SUMMARY).read_text())["eval_history"]]


def test_rerun_after_sigkill_of_the_runner_resumes_every_run_cleanly(tmp_path):
    steps = 400
    results = tmp_path / "results"
    argv = runner_argv(tmp_path, steps)
    runner = subprocess.Popen([sys.executable, "run_experiments.py", *argv], cwd=ROOT,
                              stdout=subprocess.DEVNULL)
    run_dirs = [results / "safety" / records.run_id(v, "none", "small", 1) for v in ("nosam", "l2")]
    try:
        wait_for(lambda: all((d / rx.CHECKPOINT).is_file() for d in run_dirs), 90,
                 "both runs' checkpoints")
        assert not any((d / rx.SUMMARY).exists() for d in run_dirs)  # killed mid-run
        runner.send_signal(signal.SIGKILL)
        runner.wait()
        wait_for(lambda: not processes_mentioning(str(results)), 10,
                 "the orphaned training processes to die")
    finally:
        runner.kill()
        runner.wait()
    rerun = subprocess.run([sys.executable, "run_experiments.py", *argv], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "2 runs to train" in rerun.stdout
    for run_dir in run_dirs:
        assert eval_steps(run_dir) == list(range(100, steps + 1, 100))  # no gap, no duplicate
        log = (run_dir / rx.RUN_LOG).read_text()
        commands = [line for line in log.splitlines() if line.startswith("$ ")]
        assert len(commands) == 2 and commands[1].endswith(" --resume") and "resumed " in log
