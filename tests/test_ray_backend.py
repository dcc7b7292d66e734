"""run_experiments.py --backend ray on a real local Ray instance (two CPUs), with the real training
scripts."""

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import experiments as ex  # noqa: E402
import records  # noqa: E402
import run_experiments as rx  # noqa: E402
from test_run_folder_safety import wait_for  # noqa: E402

pytestmark = pytest.mark.slow  # real Ray clusters and training runs

ray = pytest.importorskip("ray")

# A tiny grid: No-SAM and TA-SAM x seeds 1, 2 on `small`, 200 steps, evaluations every 100 steps.
FLAGS = ("--eval-episodes", "1", "--learning-starts", "100", "--eval-interval", "100",
         "--batch-size", "32", "--save-model")
rx.EXPERIMENTS["tiny"] = ex.Experiment("tiny grid", (ex.NOSAM, ex.TASAM_DYNAMIC), ("small",),
                                       (1, 2), 200, FLAGS)
rx.EXPERIMENTS["tiny-checkpoints"] = ex.Experiment("one tiny run with checkpoints", (ex.NOSAM,),
                                                   ("small",), (1,),
                                                   300, FLAGS + ("--checkpoint-interval", "100"))
TINY = dict(experiment="tiny", references=False, workers=2, torch_threads=1)


@pytest.fixture(scope="module")
def local_ray():
    cwd = os.getcwd()
    os.chdir(ROOT)  # the grid's commands name the scripts relative to the repository
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    os.chdir(cwd)


def finals(grid_dir: Path) -> dict:
    out = {}
    for path in sorted(grid_dir.glob("*/summary.json")):
        summary = json.loads(path.read_text())
        assert summary["status"] == "finished"
        out[path.parent.name] = (summary["final_eval"]["episodic_return"], summary["eval_history"])
    return out


def test_ray_grid_matches_the_local_one_and_sends_run_folders_back(local_ray, tmp_path):
    assert rx.main(rx.Args(results_dir=tmp_path / "local", records=tmp_path / "local-records",
                           **TINY)) == 0
    # `copy`: each task trains in a temporary folder on its worker, as on a node without the
    # driver's disk
    args = rx.Args(results_dir=tmp_path / "ray", records=tmp_path / "records", backend="ray",
                   ray_storage="copy", **TINY)
    assert rx.main(args) == 0
    local, remote = finals(tmp_path / "local" / "tiny"), finals(tmp_path / "ray" / "tiny")
    assert sorted(remote) == ["nosam__none__small__s1", "nosam__none__small__s2",
                              "ta-sam__dynamic__small__s1", "ta-sam__dynamic__small__s2"]
    assert remote == local  # same seeds: the same final returns and evaluation histories
    for run_id in remote:
        assert records.read_record(tmp_path / "records" / "tiny" / f"{run_id}.json")["finished"]
        run_dir = tmp_path / "ray" / "tiny" / run_id
        command = (run_dir / rx.RUN_LOG).read_text().splitlines()[0].split()
        trained_in = Path(command[command.index("--run-dir") + 1])
        # not the driver's folder
        assert trained_in.name == run_id and not trained_in.is_relative_to(tmp_path)
        # the temporary folder is gone; its files arrived on the driver:
        assert not trained_in.exists()
        assert len(list(run_dir.glob("events.out.tfevents.*"))) == 1
        assert (run_dir / rx.MODEL_FILE).is_file() and (run_dir / rx.CHECKPOINT).is_file()
    # a second call skips the finished runs; an interrupted run (here: its record and summary gone,
    # its final checkpoint kept) travels with its task to the worker, is resumed there and comes
    # back
    resumable = tmp_path / "ray" / "tiny" / "nosam__none__small__s1"
    (resumable / rx.SUMMARY).unlink()
    (tmp_path / "records" / "tiny" / "nosam__none__small__s1.json").unlink()
    assert rx.main(args) == 0
    commands = [line for line in (resumable / rx.RUN_LOG).read_text().splitlines()
                if line.startswith("$ ")]
    assert len(commands) == 2 and commands[1].endswith(" --resume")
    # the final evaluation redone from the same weights
    assert finals(tmp_path / "ray" / "tiny") == remote


def training_processes(run_id: str) -> list[tuple[int, int, Path]]:
    """(pid, parent pid, run folder) of the training processes whose --run-dir ends in run_id."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().decode().split("\0")
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if "--run-dir" in argv and argv[argv.index("--run-dir") + 1].endswith(run_id):
            found.append((int(proc.name), ppid, Path(argv[argv.index("--run-dir") + 1])))
    return found


@pytest.mark.parametrize("storage", ["auto", "copy"])
def test_killed_ray_worker_is_retried_and_its_run_completes(local_ray, tmp_path, storage):
    steps = 300
    args = rx.Args(**{**TINY, "experiment": "tiny-checkpoints"}, results_dir=tmp_path,
                   records=tmp_path / "records", backend="ray", ray_storage=storage)
    run_id = "nosam__none__small__s1"
    returned = []
    driver = threading.Thread(target=lambda: returned.append(rx.main(args)))
    driver.start()
    try:
        # mid-run: the training process has written a checkpoint (every episode of 100 steps)
        pid, worker, folder = wait_for(
            lambda: next((p for p in training_processes(run_id)
                          if (p[2] / rx.CHECKPOINT).is_file()), None),
            90, "the first checkpoint")
        assert not (folder / rx.SUMMARY).exists()
        os.kill(worker, signal.SIGKILL)  # the Ray worker process running the task
        wait_for(lambda: not Path(f"/proc/{pid}/cmdline").exists() or pid not in
                 [p[0] for p in training_processes(run_id)], 10,
                 "the training process to die with its worker")
    finally:
        driver.join(timeout=120)
    assert returned == [0]
    summary = json.loads((tmp_path / "tiny-checkpoints" / run_id / rx.SUMMARY).read_text())
    assert summary["status"] == "finished" and summary["global_step"] == steps
    # no gap, no repeat
    assert [s for s, _ in summary["eval_history"]] == list(range(100, steps + 1, 100))
    commands = [line for line
                in (tmp_path / "tiny-checkpoints" / run_id / rx.RUN_LOG).read_text().splitlines()
                if line.startswith("$ ")]
    if storage == "auto":
        # this node shares the driver's disk: Ray's retry resumed from the checkpoint
        assert (len(commands) == 2 and commands[1].endswith(" --resume")
                and "--resume" not in commands[0])
    else:
        # the killed attempt's temporary folder was lost with it: the retry trained anew in another
        # one
        assert (len(commands) == 1 and f"--run-dir {folder} " not in commands[0]
                and "--resume" not in commands[0])


def test_ray_backend_is_optional_and_named_when_missing(tmp_path):
    script = ("import sys; import run_experiments as rx; assert 'ray' not in sys.modules; "
              "sys.modules['ray'] = None; "  # as if Ray were not installed
              f"rx.main(rx.Args(experiment='learning-check-rerun', "
              f"results_dir=__import__('pathlib').Path("
              f"{str(tmp_path)!r}), "
              f"records=__import__('pathlib').Path({str(tmp_path / 'records')!r}), "
              "backend='ray', references=False))")
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode != 0
    assert ("--backend ray needs the `ray` package" in proc.stderr
            and "pip install ray" in proc.stderr)
    assert not (tmp_path / "learning-check-rerun" / "nosam__none__paper__s1").exists()
