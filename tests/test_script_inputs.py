"""Bad input, stopping and the review fixes of the training scripts: every bad invocation of the
scripts, the runner, plot_results.py and both simulators' make_config ends with a short message
naming the flag or field and no traceback; SIGTERM checkpoints and the printed command resumes the
run; evaluation never touches training."""
import json
import math
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import comp_env  # noqa: E402
import oran_env  # noqa: E402
import sac_marl_baseline  # noqa: E402
import sac_marl_l2  # noqa: E402
import tasam_marl_sac  # noqa: E402

TINY = ["--scenario", "small", "--total-timesteps", "300", "--learning-starts", "150",
        "--hidden-sizes", "16", "--batch-size", "16", "--eval-episodes", "2",
        "--eval-interval", "100", "--torch-threads", "1"]

# flags rejected while parsing: (module, flags, text the message must contain)
BAD_FLAGS = [
    (sac_marl_baseline, ["--q-lr", "inf"], "--q-lr must be a finite number in (0, 1]"),
    (sac_marl_baseline, ["--policy-lr", "inf"], "--policy-lr"),
    (sac_marl_baseline, ["--alpha-lr", "inf"], "--alpha-lr"),
    (sac_marl_baseline, ["--no-autotune", "--alpha", "nan"], "--alpha must be a finite number"),
    (sac_marl_baseline, ["--gamma", "nan"], "--gamma"),
    (sac_marl_baseline, ["--lr-decay-to", "1.5"],
     "--lr-decay-to must be a finite number in [0, 1]"),
    (tasam_marl_sac, ["--target-entropy", "inf"], "--target-entropy must be a finite number"),
    (sac_marl_baseline, ["--seed", "-1"], "--seed must be a finite number in [0, 4294967295]"),
    (sac_marl_baseline, ["--seed", "99999999999999"], "--seed"),
    (sac_marl_baseline, ["--batch-size", "1"],
     "--batch-size must be a finite number in [2, 65536]"),
    (sac_marl_baseline, ["--buffer-size", "50", "--batch-size", "256"],
     "--batch-size (256) must not exceed"),
    (sac_marl_baseline, ["--total-timesteps", "0"],
     "--total-timesteps must be a finite number in [1, 1e12]"),
    (sac_marl_baseline, ["--progress-interval", "0"], "--progress-interval"),
    (sac_marl_baseline, ["--scenario", "nowhere"], "--scenario nowhere"),
    (sac_marl_baseline, ["--inter-site-distance-m", "inf"], "inter_site_distance_m"),
    (sac_marl_baseline, ["--tx-power-dbm", "nan"], "tx_power_dbm"),
    (sac_marl_baseline, ["--delay-report-cap-ms", "nan"], "delay_report_cap_ms"),
    (sac_marl_baseline, ["--env-id", "comp", "--scenario", "small", "--tx-power-dbm", "inf"],
     "tx_power_dbm"),
    (sac_marl_l2, ["--l2-coef", "inf"], "--l2-coef must be a finite number in [0, 1]"),
    (sac_marl_l2, ["--l2-coef", "nan"], "--l2-coef"),
    (tasam_marl_sac, ["--rho-schedule", "fixed", "--rho-actor", "nan", "--rho-critic", "nan"],
     "--rho-actor"),
    (tasam_marl_sac, ["--rho-init", "inf"], "--rho-init"),
    (tasam_marl_sac, ["--td-var-threshold", "nan"], "--td-var-threshold"),
    (tasam_marl_sac, ["--td-var-ema", "1.0"], "--td-var-ema must be a finite number in [0, 1)"),
    (tasam_marl_sac, ["--sharpness-tol", "0"], "--sharpness-tol"),
]


# a named experiment
RUNNER = ("run_experiments.py", "learning-check-rerun", "--dry-run", "--results-dir")


@pytest.mark.parametrize("module, flags, message", BAD_FLAGS)
def test_bad_flags_exit_2_naming_the_flag(module, flags, message, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["script.py", *flags])
    with pytest.raises(SystemExit) as exit_info:
        module.parse_args()
    out = capsys.readouterr()
    assert exit_info.value.code == 2
    assert message in " ".join((out.out + out.err).replace("│", " ").split())


@pytest.mark.parametrize("make_config, scenario, field, value", [
    (oran_env.make_config, "small", f, v) for f, v in (
        ("tx_power_dbm", math.nan), ("noise_psd_dbm_hz", math.inf), ("min_sinr_db", math.nan),
        ("shadowing_db", math.inf), ("pf_window_steps", math.inf), ("load", "abc"),
        ("num_dus", True), ("delay_report_cap_ms", math.nan), ("slice_load", (1.0, 2.0)),
        ("action_mode", "rb"))
] + [(comp_env.make_config, "small", f, v) for f, v in (
        ("tx_power_dbm", math.nan), ("map_width", "wide"), ("num_slow_ues", True),
        ("slow_speed", (1.5, 2)), ("bs_positions", ((1.0, math.inf),)))])
def test_make_config_names_the_bad_field(make_config, scenario, field, value):
    with pytest.raises(ValueError, match=field):
        make_config(scenario, **{field: value})


def script(name, *flags):
    return [sys.executable, str(ROOT / name), *flags]


@pytest.mark.slow
def test_bad_invocations_stop_before_any_work_without_traceback(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    (tmp_path / "not_executable").write_text("#!/bin/sh\n")
    corrupt, non_object, finished = (tmp_path / n for n in ("corrupt", "non_object", "finished"))
    for folder, text in ((corrupt, "{not json"), (non_object, "[1, 2]"),
                         (finished,
                          json.dumps({"status": "finished", "script": "sac_marl_baseline.py"}))):
        folder.mkdir()
        (folder / "summary.json").write_text(text)
    alone = tmp_path / "alone"  # the script next to the O-RAN simulator and run_utils.py only
    alone.mkdir()
    for name in ("sac_marl_baseline.py", "oran_env.py", "run_utils.py"):
        shutil.copy(ROOT / name, alone)
    cases = {  # name: (command, exit code, text the message must contain)
        "huge buffer": (script("sac_marl_baseline.py", *TINY, "--buffer-size", "10000000000",
                               "--run-dir", str(tmp_path / "r1")), 2,
                        "--buffer-size 10000000000: the replay buffer needs"),
        "run dir is a file": (script("sac_marl_baseline.py", *TINY, "--run-dir", str(a_file)), 2,
                              "--run-dir"),
        "run dir under a file": (script("sac_marl_baseline.py", *TINY, "--run-dir",
                                        str(a_file / "run")), 2,
                                 "--run-dir"),
        "corrupt summary": (script("sac_marl_baseline.py", *TINY, "--resume", "--run-dir",
                                   str(corrupt)), 2,
                            "--resume"),
        "non-object summary": (script("sac_marl_baseline.py", *TINY, "--resume", "--run-dir",
                                      str(non_object)), 2,
                               "--resume"),
        "finished run without --resume": (script("sac_marl_baseline.py", *TINY, "--run-dir",
                                                 str(finished)), 2,
                                          "already holds a run"),
        "another script's run": (script("tasam_marl_sac.py", *TINY, "--resume", "--run-dir",
                                        str(finished)), 2,
                                 "not a summary.json of tasam_marl_sac.py"),
        "one agent, relative selection": (script("tasam_marl_sac.py", *TINY, "--num-dus", "1",
                                                 "--run-dir", str(tmp_path / "r2")), 2,
                                          "--td-var-mode relative"),
        "comp_env.py missing": ([sys.executable, str(alone / "sac_marl_baseline.py"),
                                 "--env-id", "comp"], 2,
                                "--env-id comp"),
        "runner results dir is a file": (script(*RUNNER, str(a_file)), 2,
                                         "--results-dir"),
        "runner results dir under a file": (script(*RUNNER,
                                                   str(a_file / "results")), 2, "--results-dir"),
        "runner python missing": (script(*RUNNER, str(tmp_path / "res"),
                                         "--python", str(tmp_path / "no_python")), 2, "--python"),
        "runner python not executable": (script(*RUNNER,
                                                str(tmp_path / "res"), "--python",
                                                str(tmp_path / "not_executable")),
                                         2, "--python"),
        "plot out is a file": (script("plot_results.py", "--records", str(tmp_path), "--out",
                                      str(a_file)), 2, "--out"),
        "plot out under a file": (script("plot_results.py", "--records", str(tmp_path), "--out",
                                         str(a_file / "x")),
                                  2, "--out"),
    }
    if not torch.cuda.is_available():
        cases["--cuda without a GPU"] = (script("sac_marl_baseline.py", *TINY, "--cuda",
                                                "--run-dir", str(tmp_path / "r3")), 2, "--cuda")
    # in parallel: each is mostly interpreter start-up
    procs = {name: subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
             for name, (cmd, _, _) in cases.items()}
    for name, proc in procs.items():
        out, _ = proc.communicate(timeout=300)
        assert (proc.returncode, "Traceback" in out) == (cases[name][1], False), f"{name}: {out}"
        assert cases[name][2] in out, f"{name}: {out}"
    assert (a_file.read_text() == "x"
            and json.loads((finished / "summary.json").read_text())["status"] == "finished")
    assert (corrupt / "summary.json").read_text() == "{not json"  # nothing already written is lost
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()


def scalars(run_dir, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


@pytest.mark.slow
def test_sigterm_during_updates_checkpoints_and_the_printed_command_resumes(tmp_path):
    """A real SIGTERM during the updates: checkpoint, resume command, exit 143 without traceback;
    the resumed run ends with an unbroken evaluation history, and the traffic shift (all traffic off
    after env step 300) comes at the first episode start after step 300 counted in the run's env
    steps, not restarted by the resume."""
    run_dir = tmp_path / "run"
    flags = [*TINY, "--total-timesteps", "500", "--run-dir", str(run_dir),
             "--shift-after-steps", "300", "--shift-slice-load", "0", "0", "0",
             "--progress-interval", "0.5", "--num-envs", "1"]  # 100-step episodes
    proc = subprocess.Popen(script("sac_marl_baseline.py", *flags), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if "warm-up done" in line:  # the updates have started
            proc.send_signal(signal.SIGTERM)
            break
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM and "Traceback" not in err, err
    stopped_at = torch.load(run_dir / "checkpoint.pt", weights_only=True)["global_step"]
    assert 150 < stopped_at < 500 and not (run_dir / "summary.json").exists()
    assert f"SIGTERM: checkpoint at global_step={stopped_at}; resume with:" in out
    resume = shlex.split(out.split("resume with:")[1].strip().splitlines()[0])
    assert resume[-1] == "--resume"

    result = subprocess.run(resume, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"resumed {run_dir} at global_step={stopped_at}" in result.stdout
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["global_step"] == 500
    for key in ("eval_history", "eval_sampled_history", "eval_episode_returns"):
        assert [step for step, _ in summary[key]] == [100, 200, 300, 400, 500], key
    # the resumed run finishes the episode it stopped in (the envs' state is in the checkpoint):
    # episodes start at 0, 100, ..., and the first one starting at or after step 300 is idle
    embb = dict(scalars(run_dir, "env/throughput_embb_mbps"))
    assert sorted(embb) == [100, 200, 300, 400, 500], (stopped_at, embb)
    assert all((embb[s + 100] == 0.0) == (s >= 300) for s in range(0, 500, 100)), (stopped_at, embb)


@pytest.mark.slow
def test_evaluation_never_changes_the_training_run(tmp_path):
    """Deterministic and sampled evaluation at every 100 steps or only at the end: the same final
    weights."""
    runs = {name: tmp_path / name for name in ("often", "final_only")}
    procs = [subprocess.Popen(script("sac_marl_baseline.py", *TINY, "--eval-interval", interval,
                                     "--save-model", "--run-dir", str(runs[name])), cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for name, interval in (("often", "100"), ("final_only", "0"))]
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read()
    often, final_only = (torch.load(runs[n] / "model.pt", weights_only=True)
                         for n in ("often", "final_only"))
    for net in ("actor", "qf"):
        assert all(torch.equal(often[net][k], final_only[net][k]) for k in often[net])
    summary = json.loads((runs["often"] / "summary.json").read_text())
    assert [s for s, _ in summary["eval_history"]] == [100, 200, 300]
    assert [s for s, _ in summary["eval_sampled_history"]] == [100, 200, 300]
    assert all(len(returns) == 2 for _, returns in summary["eval_episode_returns"])
    final = summary["final_eval"]
    assert final["episodic_return"] == summary["eval_history"][-1][1]
    assert final["sampled_episodic_return"] == summary["eval_sampled_history"][-1][1]
    assert final["sampled_episodic_return"] != final["episodic_return"]
    assert summary["non_finite_as_null"] is False
    assert json.loads((runs["final_only"] / "summary.json").read_text())["final_eval"] == final
