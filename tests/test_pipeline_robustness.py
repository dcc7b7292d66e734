"""Bad input, single writers and signals of the experiment pipeline: run_experiments.py (the
runner), records.py (the record schema) and plot_results.py (tables and figures from records)."""

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import experiments
import plot_results as pr
import records
import run_experiments as rx
from test_experiments import fake_experiment  # noqa: F401 (a fixture: a grid of a fake script)
from test_resume import caught_signals

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*argv, cwd=ROOT, timeout=120):
    return subprocess.run([sys.executable, *map(str, argv)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


def assert_bad_input(proc, named: str) -> None:
    """Exit 2, a message naming the flag or file, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-500:], proc.stderr[-1500:])
    assert named in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-1500:]


# ------------------------------------------------------------------------------------------------
# the runner's flags
# ------------------------------------------------------------------------------------------------
RUNNER_RANGES = {"workers": (0, 100_000), "torch_threads": (0, 5000), "nice": (-1, 20),
                 "cpus_per_run": (0.0, math.inf, math.nan), "gpus_per_run": (-1.0, math.inf),
                 "ray_max_retries": (-1, 10**6), "seeds": ((-1,), (2**32,))}


@pytest.mark.parametrize("field,value", [(f, v) for f, vs in RUNNER_RANGES.items() for v in vs])
def test_runner_numbers_are_finite_and_bounded(field, value):
    flag = "--" + field.replace("_", "-")
    with pytest.raises(ValueError, match=f"{flag} must be a finite number in"):
        rx.Args(experiment="rb-paper", **{field: value})


def test_every_published_entry_leaves_the_runners_flags_alone():
    for name, exp in experiments.EXPERIMENTS.items():
        rx.check_flags(name, exp)


@pytest.mark.slow
@pytest.mark.parametrize("case", [
    "workers 0", "workers huge", "threads inf", "nice", "cpus nan", "gpus negative", "seed",
    "unknown experiment", "definitions missing", "definitions folder", "definitions syntax",
    "definitions owned flag", "results under a file", "records a file"])
def test_runner_bad_input_exits_2_naming_it(case, tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    (tmp_path / "syntax.py").write_text("EXPERIMENTS = {\n")
    (tmp_path / "owned.py").write_text(
        "from experiments import Experiment, NOSAM\n"
        "EXPERIMENTS = {'mine': Experiment('x', (NOSAM,), ('small',), (1,), 3000,"
        " ('--seed', '5'))}\n")
    where = ["--results-dir", tmp_path / "runs", "--records", tmp_path / "records"]
    argv, named = {
        "workers 0": (["rb-paper", "--workers", "0"], "--workers"),
        "workers huge": (["rb-paper", "--workers", "100000"], "--workers"),
        "threads inf": (["rb-paper", "--torch-threads", "100000"], "--torch-threads"),
        "nice": (["rb-paper", "--nice", "-5"], "--nice"),
        "cpus nan": (["rb-paper", "--cpus-per-run", "nan"], "--cpus-per-run"),
        "gpus negative": (["rb-paper", "--gpus-per-run", "-1"], "--gpus-per-run"),
        "seed": (["rb-paper", "--seeds", "1", "-3"], "--seeds"),
        "unknown experiment": (["nope"], "experiment must be one of"),
        "definitions missing": (["mine", "--definitions", tmp_path / "no.py"], "--definitions"),
        "definitions folder": (["mine", "--definitions", tmp_path], "--definitions"),
        "definitions syntax": (["mine", "--definitions", tmp_path / "syntax.py"], "SyntaxError"),
        "definitions owned flag": (["mine", "--definitions", tmp_path / "owned.py"], "--seed"),
        "results under a file": (["rb-paper", "--results-dir", a_file / "x"], "--results-dir"),
        "records a file": (["rb-paper", "--records", a_file], "--records"),
    }[case]
    proc = run_cli(ROOT / "run_experiments.py", *where, *argv, "--dry-run")  # the last flag wins
    assert_bad_input(proc, named)
    if case == "unknown experiment":
        assert "rb-paper" in proc.stderr and "learning-check" in proc.stderr  # the names
    assert not (tmp_path / "runs").exists() and not (tmp_path / "records").exists()


# ------------------------------------------------------------------------------------------------
# what the runner owns, what it counts as finished, one process per run folder
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("where,flags,named", [
    ("experiment", ("--seed", "5"), "--seed"),
    ("experiment", ("--total-timesteps=50",), "--total-timesteps"),
    ("method", ("--run-dir", "elsewhere"), "--run-dir"),
    ("per_scenario", ("--no-resume",), "--resume"),
    ("experiment", ("--total_timesteps", "4"), "--total-timesteps"),
    ("method", ("--scenario", "paper"), "--scenario"),
    ("experiment", ("--gamma", "0.5"), "--gamma"),  # the method's own flag (the run's variant)
])
def test_entries_that_override_what_the_runner_or_the_run_name_owns_are_refused(
        where, flags, named):
    method = experiments.Method("nosam", "none", experiments.SAC, ("--gamma", "0.9"))
    exp = experiments.Experiment("x", (method,), ("small",), (1,), 300)
    exp = dataclasses.replace(exp, **{
        "experiment": {"flags": flags}, "per_scenario": {"per_scenario": (("small", flags),)},
        "method": {"methods": (dataclasses.replace(method, flags=method.flags + flags),)}}[where])
    with pytest.raises(ValueError, match=f"set {named}[ ,]"):
        rx.check_flags("x", exp)


def test_a_script_that_makes_another_seed_budget_or_scenario_is_refused():
    run = (experiments.NOSAM, "small", 1)
    rx.check_resolved(run, experiments.SAC, {"seed": 1, "total_timesteps": 300,
                                             "scenario": "small"}, 300)
    for key, value in (("seed", 5), ("total_timesteps", 600), ("scenario", "paper")):
        resolved = {"seed": 1, "total_timesteps": 300, "scenario": "small", key: value}
        with pytest.raises(ValueError, match=f"{key} {value!r} \\(its name says"):
            rx.check_resolved(run, experiments.SAC, resolved, 300)


def test_a_run_named_twice_is_one_run():
    exp = experiments.Experiment("x", (experiments.NOSAM, experiments.NOSAM), ("small", "small"),
                                 (1, 2, 1), 300, references=("random", "random"))
    runs = experiments.training_runs(exp, seeds=(3, 3, 4))
    assert [experiments.run_name(*r) for r in runs] == ["nosam__none__small__s3",
                                                        "nosam__none__small__s4"]
    other = dataclasses.replace(experiments.NOSAM, flags=("--gamma", "0.5"))
    with pytest.raises(ValueError, match="two methods of the entry have the run name"):
        experiments.training_runs(dataclasses.replace(exp, methods=(experiments.NOSAM, other)))


@pytest.mark.slow
def test_a_duplicated_scenario_and_seed_start_one_process_per_run_folder(
        fake_experiment, monkeypatch, capsys):  # noqa: F811
    exp = rx.EXPERIMENTS["fake"]
    monkeypatch.setitem(rx.EXPERIMENTS, "fake", dataclasses.replace(
        exp, scenarios=("small", "small"), references=("half", "half")))
    args = rx.Args(**{**vars(fake_experiment), "seeds": (1, 2, 1)})
    assert rx.main(args) == 0
    out = capsys.readouterr().out
    assert "3 records | 0 there | 2 runs to train, 1 rows to score" in out
    for seed in (1, 2):
        log = (args.results_dir / "fake" / f"nosam__none__small__s{seed}" / rx.RUN_LOG).read_text()
        assert log.count("$ ") == 1  # one command, one writer


@pytest.mark.slow
def test_a_record_or_run_folder_of_another_budget_is_not_the_requested_run(
        fake_experiment, monkeypatch, capsys):  # noqa: F811
    args = rx.Args(**{**vars(fake_experiment), "seeds": (1,), "references": False})
    assert rx.main(args) == 0  # 100 steps
    run_dir = args.results_dir / "fake" / "nosam__none__small__s1"
    record = args.records / "fake" / "nosam__none__small__s1.json"
    summary = (run_dir / "summary.json").read_text()
    capsys.readouterr()
    monkeypatch.setitem(rx.EXPERIMENTS, "fake", dataclasses.replace(rx.EXPERIMENTS["fake"],
                                                                    steps=200))
    assert rx.main(rx.Args(**{**vars(args), "dry_run": True})) == 0
    out = capsys.readouterr().out
    assert "1 records | 0 there" in out
    assert "its record has other ['total_timesteps']: total_timesteps 100 (asked 200)" in out
    assert "[conflict] nosam__none__small__s1" in out  # the folder holds the 100-step run
    assert rx.main(args) == 1
    captured = capsys.readouterr()
    assert "holds a finished run of other arguments, total_timesteps 100 (asked 200)" in \
        captured.out and "nothing started" in captured.err
    assert (run_dir / "summary.json").read_text() == summary  # left as it was
    assert records.read_record(record)["args"]["total_timesteps"] == 100
    assert rx.run_training([sys.executable, "-c", "raise SystemExit(9)"], run_dir, dict(os.environ),
                           requested={**records.read_record(record)["args"],
                                      "total_timesteps": 200})[0] == "failed"


# ------------------------------------------------------------------------------------------------
# signals: a real runner, real training processes, real signals
# ------------------------------------------------------------------------------------------------
SLOW_SCRIPT = textwrap.dedent('''
    import dataclasses, os, signal, sys, time
    import tyro

    @dataclasses.dataclass
    class Args:
        seed: int = 1
        scenario: str = "small"
        total_timesteps: int = 100
        torch_threads: int = 1
        run_dir: str = ""
        resume: bool = False

    if __name__ == "__main__":
        received = []
        signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
        args = tyro.cli(Args)
        open(os.path.join(args.run_dir, "started"), "w").write(str(os.getpid()))
        while not received:
            time.sleep(0.05)
        time.sleep(1.5)  # the checkpoint takes a while: the runner is still stopping
        open(os.path.join(args.run_dir, "checkpoint.pt"), "w").write(str(len(received)))
        sys.exit(128 + received[0])
''')


@pytest.mark.slow
@pytest.mark.parametrize("first", [signal.SIGTERM, signal.SIGINT])
def test_a_second_sigterm_while_the_runner_stops_changes_nothing(first, tmp_path):
    script = tmp_path / "slow_train.py"
    script.write_text(SLOW_SCRIPT)
    (tmp_path / "defs.py").write_text(
        "from experiments import Experiment, Method\n"
        f"EXPERIMENTS = {{'slow': Experiment('x', (Method('nosam', 'none', {str(script)!r}),), "
        "('small',), (1, 2), 100)}\n")
    runner = subprocess.Popen(
        [sys.executable, ROOT / "run_experiments.py", "slow", "--definitions", tmp_path / "defs.py",
         "--results-dir", tmp_path / "runs", "--records", tmp_path / "records", "--workers", "2",
         "--no-references"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    folders = [tmp_path / "runs" / "slow" / f"nosam__none__small__s{seed}" for seed in (1, 2)]
    deadline = time.time() + 120
    while not all((f / "started").exists() for f in folders) and time.time() < deadline:
        time.sleep(0.1)
    assert all((f / "started").exists() for f in folders), runner.communicate(timeout=30)
    runner.send_signal(first)
    time.sleep(0.5)
    runner.send_signal(signal.SIGTERM)  # what `timeout` sends while the runs checkpoint
    out, err = runner.communicate(timeout=60)
    assert runner.returncode == 128 + first, (out, err)
    assert "Traceback" not in err and f"interrupted ({first.name})" in out
    for folder in folders:  # each run got one SIGTERM, checkpointed and is gone
        assert (folder / "checkpoint.pt").read_text() == "1"
        pid = int((folder / "started").read_text())
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


# ------------------------------------------------------------------------------------------------
# records: every record validated, each bad one named with its reason
# ------------------------------------------------------------------------------------------------
def good_record(experiment="paper", variant="nosam", seed=1, value=10.0) -> dict:
    return records.make_record(
        experiment, records.run_id(variant, "none", "paper", seed), kind="train",
        script="sac_marl_baseline.py", args={"seed": seed}, global_step=100, wall_time_s=1.0,
        eval_history=[[50, value - 1], [100, value]],
        final_eval={"episodic_return": value, "metrics": {"qos_embb": 0.5}})


def corrupt(record: dict, case: str) -> dict:
    record = json.loads(json.dumps(record))
    if case == "return true":
        record["final_eval"]["episodic_return"] = True
    elif case == "return a string":
        record["final_eval"]["episodic_return"] = "275.5"
    elif case == "NaN evaluation":
        record["eval_history"][1][1] = math.nan
    elif case == "absurd score":
        record["eval_history"][1][1] = record["score"] = 1e308
    elif case == "infinite metric":
        record["final_eval"]["metrics"]["qos_embb"] = math.inf
    elif case == "missing history":
        del record["eval_history"]
    elif case == "step a bool":
        record["eval_history"][0][0] = True
    elif case == "old version":
        record["record_version"] = 1
    elif case == "unknown kind":
        record["kind"] = "magic"
    elif case == "score not its evaluations'":
        record["score"] = 99.0
    return record


CORRUPTIONS = {"return true": "final_eval.episodic_return: expected number, got true",
               "return a string": "final_eval.episodic_return: expected number",
               "NaN evaluation": "record.eval_history[1][1]: nan is not a finite number",
               "absurd score": "record.score: 1e+308 is not a finite number",
               "infinite metric": "record.final_eval.metrics.qos_embb: inf",
               "missing history": "eval_history: missing",
               "step a bool": "eval_history[0]: expected [step, return, ...]",
               "old version": "not a record of version 2",
               "unknown kind": "kind 'magic' not in",
               "score not its evaluations'": "score 99.0 is not its evaluations' score"}


@pytest.mark.parametrize("case", CORRUPTIONS)
def test_validate_names_what_is_wrong_with_a_record(case):
    assert records.validate(good_record()) == []
    problems = records.validate(corrupt(good_record(), case))
    assert any(CORRUPTIONS[case] in p for p in problems), problems


def write_bad_grid(root: Path) -> dict[str, str]:
    """records/paper: No-SAM seeds 1-2 (scores 10 and 20), the corruptions of seeds 3.., an
    unknown method, a file named after another run and one that is not JSON; returns the reason
    expected for each bad file."""
    for seed, value in ((1, 10.0), (2, 20.0)):
        records.write_record(root, good_record(seed=seed, value=value))
    expected = {}
    for seed, case in enumerate(CORRUPTIONS, start=3):
        path = records.record_path(root, "paper", records.run_id("nosam", "none", "paper", seed))
        path.write_text(json.dumps(corrupt(good_record(seed=seed, value=275.5), case)))
        expected[path.name] = CORRUPTIONS[case]
    records.write_record(root, good_record(variant="bogus-sam"))
    expected["bogus-sam__none__paper__s1.json"] = "unknown method bogus-sam__none"
    records.write_record(root, {**good_record(), "run": "nosam__bogus__paper__s1"})
    expected["nosam__bogus__paper__s1.json"] = "unknown method nosam__bogus"
    moved = records.record_path(root, "paper", "nosam__none__paper__s90")
    moved.write_text(json.dumps(good_record(seed=91)))
    expected[moved.name] = "holds paper/nosam__none__paper__s91"
    moved.with_name("nosam__none__paper__s92.json").write_text('{"record_version": 2, "run')
    expected["nosam__none__paper__s92.json"] = "not a readable JSON file"
    return expected


def test_records_validate_names_each_bad_record_and_why(tmp_path, capsys):
    expected = write_bad_grid(tmp_path)
    assert records.main(["validate", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    for name, why in expected.items():
        line = next(line for line in out.splitlines() if line.startswith(str(tmp_path / "paper" /
                                                                            name)))
        assert why in line, line
    assert f"{len(expected) + 2} records, {len(expected)} invalid" in out
    assert records.main(["validate", str(tmp_path / "missing")]) == 2


def test_committed_records_are_valid(capsys):
    assert records.main(["validate", str(ROOT / "records")]) == 0, capsys.readouterr().out


def test_plot_results_skips_each_bad_record_with_its_reason_and_no_bad_number_reaches_a_table(
        tmp_path):
    expected = write_bad_grid(tmp_path / "records")
    notes = []
    runs = pr.load_grid(tmp_path / "records" / "paper", notes)
    assert sorted(r.seed for r in runs) == [1, 2] and {r.variant for r in runs} == {"nosam"}
    for name, why in expected.items():
        assert any(n.startswith(f"skipped {tmp_path / 'records' / 'paper' / name}: ") and why in n
                   for n in notes), (name, notes)
    table = pr.method_table(pr.group(runs), pr.Args(n_boot=100), pr.section_rng(0, "t"))
    no_sam = next(line for line in table if line.startswith("| No-SAM |"))
    assert no_sam.startswith("| No-SAM | 2 | 15.00 [")  # the mean of 10 and 20 alone
    text = "\n".join(table)
    assert "bogus" not in text and "nan" not in text and "e+308" not in text


def test_a_statistic_that_is_not_finite_is_shown_as_a_dash():
    lines = ["text about nan stays", "| a | b |", "| --- | --- |", "| full_info | 1.0 [nan, nan] |",
             "| x | +inf% | -inf | 2 |"]
    assert pr.finite_cells(lines) == ["text about nan stays", "| a | b |", "| --- | --- |",
                                      "| full_info | - |", "| x | - | - | 2 |"]


# ------------------------------------------------------------------------------------------------
# plot_results: flags and every path checked before any figure is written
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("field,value", [("n_boot", 5), ("n_boot", 10**9), ("curve_points", 1),
                                         ("seed", -1), ("shift_step", -5)])
def test_plot_results_numbers_are_bounded(field, value):
    with pytest.raises(ValueError, match=f"--{field.replace('_', '-')} must be a finite number"):
        pr.Args(**{field: value})


def test_plot_results_main_rho_is_a_rho_setting():
    assert pr.Args(main_rho="fixed0.02").main_rho == "fixed0.02"
    with pytest.raises(ValueError, match="--main-rho must be one of dynamic, equal, unequal"):
        pr.Args(main_rho="bogus")


@pytest.mark.slow
@pytest.mark.parametrize("case", ["records missing", "records a file", "out a file",
                                  "out under a file", "readme without README.md",
                                  "readme table without records", "n-boot", "main-rho"])
def test_plot_results_bad_input_exits_2_before_any_figure(case, tmp_path):
    records.write_record(tmp_path / "records", good_record(seed=1))
    records.write_record(tmp_path / "records", good_record(seed=2, value=12.0))
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    repo = tmp_path / "repo"
    (repo / "docs").mkdir(parents=True)
    if case == "readme table without records":
        (repo / "README.md").write_text("<!-- table: paper/heavy -->\n<!-- /table -->\n")
    out = tmp_path / "out"
    argv, named = {
        "records missing": (["--records", tmp_path / "none"], "--records"),
        "records a file": (["--records", a_file], "--records"),
        "out a file": (["--out", a_file], "--out"),
        "out under a file": (["--out", a_file / "figures"], "--out"),
        "readme without README.md": (["--readme", "--root", repo], "--root"),
        "readme table without records": (["--readme", "--root", repo], "paper/heavy"),
        "n-boot": (["--n-boot", "0"], "--n-boot"),
        "main-rho": (["--main-rho", "nope"], "--main-rho"),
    }[case]
    proc = run_cli(ROOT / "plot_results.py", "--records", tmp_path / "records", "--out", out,
                   *argv, cwd=tmp_path)
    assert_bad_input(proc, named)
    assert not out.exists()  # no figure, no results.md



@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_the_runner_imports_stops_without_a_traceback(signum):
    """Sent as soon as the runner's first handler is in place (SIGHUP caught), while it imports
    numpy, torch and the experiments: one line, exit 128 + signum."""
    proc = subprocess.Popen([sys.executable, "run_experiments.py", "--list"], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while signal.SIGHUP not in caught_signals(proc.pid) and time.time() < deadline:
        time.sleep(0.002)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum and "Traceback" not in err, err
    assert out == f"{signum.name}: stopped before any run started\n"
