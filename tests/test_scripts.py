"""Smoke tests of the three training scripts: every variant and ablation runs end to end on the
`small` scenario (updates, SAM and sharpness code included), writes its run folder, resumes after
being killed, and rejects bad flags with a clear message."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import sac_marl_baseline  # noqa: E402
import sac_marl_l2  # noqa: E402
import tasam_marl_sac  # noqa: E402

pytestmark = pytest.mark.slow  # training runs of every script

TINY = ("--total-timesteps", "300", "--learning-starts", "150", "--hidden-sizes", "16",
        "--batch-size", "16",
        "--eval-episodes", "2", "--eval-interval", "200", "--log-interval", "20",
        # the smoke runs go in parallel: one thread each keeps the cores unshared
        "--torch-threads", "1")

VARIANTS = {
    "baseline": ("sac_marl_baseline.py",),
    "l2": ("sac_marl_l2.py", "--l2-coef", "1e-3", "--critic-joint-actions"),
    "tasam": ("tasam_marl_sac.py", "--sharpness-interval", "50", "--critic-joint-actions"),
    "critic_sam": ("tasam_marl_sac.py", "--no-sam-actor"),
    "actor_sam": ("tasam_marl_sac.py", "--no-sam-critic", "--rho-schedule", "fixed",
                  "--rho-actor", "0.05"),
    "both_sam": ("tasam_marl_sac.py", "--no-selective", "--rho-init", "0.5", "--rho-final", "0.01"),
    "absolute_td": ("tasam_marl_sac.py", "--td-var-mode", "absolute", "--td-var-threshold", "0.0",
                    "--critic-joint-obs", "--num-envs", "2"),
    "comp": ("tasam_marl_sac.py", "--env-id", "comp", "--scenario", "small"),
}


def command(script, run_dir, *flags):
    scenario = () if "--scenario" in flags else ("--scenario", "small")
    return [sys.executable, str(ROOT / script), *scenario, *TINY, "--run-dir", str(run_dir), *flags]


def run(script, run_dir, *flags):
    return subprocess.run(command(script, run_dir, *flags), cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_every_variant_runs_and_writes_its_summary(tmp_path):
    # started together: each run is mostly interpreter and torch start-up
    procs = {name: subprocess.Popen(command(v[0], tmp_path / name, *v[1:]), cwd=ROOT,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, v in VARIANTS.items()}
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"{name}: {err}"
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        assert summary["status"] == "finished" and summary["script"] == VARIANTS[name][0]
        assert summary["global_step"] == 300
        assert summary["args"]["total_timesteps"] == 300 and "env" in summary["args"]
        assert [step for step, _ in summary["eval_history"]] == [200, 300]
        final = summary["final_eval"]
        assert len(final["episodic_returns"]) == 2
        assert final["episodic_return"] == pytest.approx(sum(final["episodic_returns"]) / 2)
        assert summary["best_eval_return"] == max(r for _, r in summary["eval_history"])
        assert final["metrics"] and all(isinstance(v, float) for v in final["metrics"].values())
        if name != "comp":  # oran_env reports per-UE throughput: 30 UEs x 2 episodes
            assert len(final["ue_throughput_mbps"]) == 60 and "qos_urllc" in final["metrics"]
        assert any(f.name.startswith("events.out.tfevents") for f in (tmp_path / name).iterdir())
        assert (tmp_path / name / "checkpoint.pt").exists()


def scalars(run_dir, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return ([(e.step, e.value) for e in events.Scalars(tag)] if tag in events.Tags()["scalars"]
            else [])


def test_killed_run_resumes_from_its_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    flags = ("--checkpoint-interval", "100", "--sharpness-interval", "50",
             "--total-timesteps", "100000")
    proc = subprocess.Popen(command("tasam_marl_sac.py", run_dir, *flags), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ckpt, deadline = run_dir / "checkpoint.pt", time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if ckpt.exists() and torch.load(ckpt, weights_only=True)["global_step"] >= 300:
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.stderr.read()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = torch.load(ckpt, weights_only=True)["global_step"]
    assert not (run_dir / "summary.json").exists()

    result = run("tasam_marl_sac.py", run_dir, *flags[:-2], "--total-timesteps", "600", "--resume")
    assert result.returncode == 0, result.stderr
    assert f"resumed {run_dir} at global_step={killed_at}" in result.stdout
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["global_step"] == 600
    steps = [step for step, _ in summary["eval_history"]]
    # history kept across the kill
    assert steps == sorted(set(steps)) and steps[0] == 200 and steps[-1] == 600
    # TensorBoard keeps one series: nothing after the checkpoint is logged twice
    returns = [step for step, _ in scalars(run_dir, "charts/episodic_return")]
    assert returns == sorted(set(returns)) and returns[-1] == 600
    assert len(scalars(run_dir, "sharpness/critic_top_eig")) >= 2

    again = run("tasam_marl_sac.py", run_dir, *flags[:-2], "--total-timesteps", "600", "--resume")
    assert again.returncode == 0 and "finished" in again.stdout

    # killed between the final checkpoint (saved without the replay buffer) and summary.json
    (run_dir / "summary.json").unlink()
    rerun = run("tasam_marl_sac.py", run_dir, *flags[:-2], "--total-timesteps", "600", "--resume")
    assert rerun.returncode == 0, rerun.stderr
    redone = json.loads((run_dir / "summary.json").read_text())
    assert redone["global_step"] == 600
    # the final evaluation is not listed twice
    assert redone["eval_history"] == summary["eval_history"]
    assert redone["final_eval"]["episodic_return"] == summary["final_eval"]["episodic_return"]
    (run_dir / "summary.json").unlink()
    extend = run("tasam_marl_sac.py", run_dir, *flags[:-2], "--total-timesteps", "900", "--resume")
    assert extend.returncode != 0 and "Traceback" not in extend.stderr
    assert "without its replay buffer" in extend.stderr


def test_corrupt_or_foreign_checkpoint_gives_a_clear_error(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "checkpoint.pt").write_bytes(b"not a checkpoint")
    result = run("sac_marl_baseline.py", run_dir, "--resume")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "cannot resume from" in result.stderr and "checkpoint.pt" in result.stderr


BAD_FLAGS = [
    (sac_marl_baseline, ["--total-timesteps", "0"],
     "--total-timesteps must be a finite number in [1, 1e12]"),
    (sac_marl_baseline, ["--batch-size", "-4"],
     "--batch-size must be a finite number in [2, 65536]"),
    (sac_marl_baseline, ["--total-timesteps", "1000", "--learning-starts", "1000"],
     "--learning-starts (1000)"),
    (sac_marl_baseline, ["--scenario", "nowhere"], "scenario"),
    (sac_marl_baseline, ["--env-id", "atari"], "invalid choice"),
    (sac_marl_baseline, ["--num-dus", "0"], "num_dus"),
    (sac_marl_baseline, ["--resume"], "--resume needs --run-dir"),
    (sac_marl_l2, ["--l2-coef", "-1"], "--l2-coef must be a finite number in [0, 1]"),
    (tasam_marl_sac, ["--rho-init", "-0.1"], "--rho-init must be a finite number in [0, 10]"),
    (tasam_marl_sac, ["--rho-critic", "-1"], "--rho-critic must be a finite number in [0, 10]"),
    (tasam_marl_sac, ["--td-var-ema", "1.0"], "--td-var-ema must be a finite number in [0, 1)"),
    (tasam_marl_sac, ["--td-var-mode", "median"], "median"),
]


@pytest.mark.parametrize("module, flags, message", BAD_FLAGS)
def test_bad_flags_exit_with_a_clear_message(module, flags, message, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["script.py", *flags])
    with pytest.raises(SystemExit) as exit_info:
        module.parse_args()
    out = capsys.readouterr()
    text = " ".join((out.out + out.err + str(exit_info.value.code)).split()).replace("│", "")
    assert exit_info.value.code not in (0, None)
    assert message in " ".join(text.split())


@pytest.mark.parametrize("module", [sac_marl_baseline, sac_marl_l2, tasam_marl_sac])
def test_help_shows_the_chosen_preset(module, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["script.py", "--scenario", "small", "--help"])
    with pytest.raises(SystemExit) as exit_info:
        module.parse_args()
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "--num-dus INT" in text and "(default: 2)" in text and "--total-timesteps" in text


def test_defaults_parse_to_the_documented_main_job(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["tasam_marl_sac.py"])
    args = tasam_marl_sac.parse_args()
    assert (args.env_id, args.scenario, args.env.num_dus) == ("oran", "paper", 6)
    assert args.sam_actor and args.sam_critic and args.selective and args.rho_schedule == "dynamic"
    assert args.learning_starts < args.total_timesteps
    assert (args.num_envs, args.gamma, args.target_entropy, args.lr_decay_to) == (
        2, 0.99, -1.0, 1.0)
    assert (args.alpha_init, args.init_bias) == (1e-3, 1.0)


@pytest.mark.parametrize("flags", [["--scenario", "small"], ["--env-id", "comp"],
                                   ["--action-mode", "slice_share"]])
def test_no_flag_default_depends_on_another_flag(flags, monkeypatch):
    """--env-id and --scenario choose only the environment's preset: every other default is the one
    --help shows."""
    monkeypatch.setattr(sys, "argv", ["sac_marl_baseline.py"])
    main_job = sac_marl_baseline.parse_args()
    monkeypatch.setattr(sys, "argv", ["sac_marl_baseline.py", *flags])
    args = sac_marl_baseline.parse_args()
    differ = [k for k in vars(args) if getattr(args, k) != getattr(main_job, k)]
    assert set(differ) <= {"env_id", "scenario", "env"}


@pytest.mark.parametrize("script", list(dict.fromkeys(v[0] for v in VARIANTS.values())))
def test_a_script_copied_with_oran_env_and_run_utils_runs_its_default_job(script, tmp_path):
    """The default job (paper, RB-level) with a tiny budget, from a folder holding the three files
    only."""
    for name in (script, "oran_env.py", "run_utils.py"):
        (tmp_path / name).write_bytes((ROOT / name).read_bytes())
    tiny = ["--total-timesteps", "60", "--learning-starts", "40", "--hidden-sizes", "8",
            "--batch-size", "8", "--eval-episodes", "1", "--eval-interval", "0",
            "--torch-threads", "1", "--sharpness-interval", "0"]
    result = subprocess.run([sys.executable, script, *tiny[: None if "tasam" in script else -2]],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert run_dir.name.startswith(f"oran-paper__{script[:-3]}__1__")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["args"]["num_envs"] == 2
