"""The README's result tables are what plot_results.py computes from the committed run records."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import learning_check as lc  # noqa: E402
import plot_results as pr  # noqa: E402


def test_readme_tables_equal_what_the_records_give():
    text = (ROOT / "README.md").read_text()
    blocks = {m.group(2): m.group(3) for m in pr.README_TABLE.finditer(text)}
    assert {"paper/paper", "paper/hetero", "paper/aggregate", "claims"} <= set(blocks)
    computed = pr.readme_tables(pr.Args(records=ROOT / "records"), list(blocks))
    for name, table in blocks.items():
        assert table == computed[name], f"README table {name!r} differs from the records: run " \
                                        "`python plot_results.py --readme README.md`"


def learning_check_rows(capsys, records, out, flags=""):
    """The `small` rows benchmarks/learning_check.py prints from a folder of records (no training)."""
    lc.main(lc.Args(scenarios=["small"], scripts=["sac_marl_baseline.py", "tasam_marl_sac.py"], records=records,
                    out=out / "learning_check.png", only_plot=True, flags=flags))
    return [line for line in capsys.readouterr().out.splitlines() if line.startswith("| small ")]


def test_readme_learning_check_rows_are_what_the_records_give(tmp_path, capsys):
    readme = (ROOT / "README.md").read_text()
    checks = {"": "", "num-envs1": "", "small-flags": "--gamma 0.9 --target-entropy -0.5 --lr-decay-to 0 --num-envs 1",
              "small-paper-defaults": "--num-envs 2 --gamma 0.99 --target-entropy -1 --lr-decay-to 1"}
    for folder, flags in checks.items():
        records = ROOT / "docs" / "learning_check" / folder
        rows = learning_check_rows(capsys, records, tmp_path, flags)
        assert rows and all(row in readme for row in rows), f"README's learning check table differs from {records}"


def test_learning_check_refuses_records_trained_with_other_flags(tmp_path, capsys):
    record = ROOT / "docs" / "learning_check" / "sac_marl_baseline__small__s1.json"
    (tmp_path / record.name).write_text(json.dumps({**json.loads(record.read_text()), "flags": ["--init-bias", "0.3"]}))
    with pytest.raises(SystemExit, match=r"sac_marl_baseline__small__s1.json was trained with the flags"):
        learning_check_rows(capsys, tmp_path, tmp_path)
    rows = learning_check_rows(capsys, tmp_path, tmp_path, flags="--init-bias 0.3")
    assert len(rows) == 1 and "| small | sac_marl_baseline | 20000 | 1 |" in rows[0]


def test_learning_check_records_a_run_only_with_the_arguments_its_flags_give(tmp_path):
    flags = "--learning-starts 100 --batch-size 32 --eval-interval 0"
    args = lc.Args(runs=tmp_path / "runs", records=tmp_path / "records", total_timesteps=200, eval_episodes=2,
                   flags=flags)
    lc.train(args, "sac_marl_baseline.py", "small", 1)  # a real run, then its record
    record_path = lc.record_path(args, "sac_marl_baseline.py", "small", 1)
    assert json.loads(record_path.read_text())["flags"] == flags.split()
    record_path.unlink()
    with pytest.raises(SystemExit, match=r"other values of \['batch_size'\]"):  # flags that are not the run's
        lc.train(lc.Args(**{**vars(args), "flags": "--learning-starts 100 --eval-interval 0", "record_only": True}),
                 "sac_marl_baseline.py", "small", 1)
    summary_path = args.runs / "sac_marl_baseline" / "small200" / "s1" / "summary.json"
    summary = json.loads(summary_path.read_text())
    summary_path.write_text(json.dumps({**summary, "args": {**summary["args"], "gamma": 0.5}}))
    with pytest.raises(SystemExit, match=r"other values of \['gamma'\]"):  # a run trained with other values
        lc.train(lc.Args(**{**vars(args), "record_only": True}), "sac_marl_baseline.py", "small", 1)
    assert not record_path.exists()
