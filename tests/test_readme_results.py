"""The generated tables of README.md and docs/*.md are what plot_results.py computes from the
records."""

from pathlib import Path

import pytest

import plot_results as pr

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "records"


def published_text() -> str:
    return "\n".join(path.read_text() for path in pr.marked_files(ROOT))


@pytest.mark.slow
def test_marked_tables_equal_what_the_records_give():
    blocks = {(path.name, m.group(2)): m.group(3) for path in pr.marked_files(ROOT)
              for m in pr.README_TABLE.finditer(path.read_text())}
    names = sorted({name for _, name in blocks})
    assert {"headline/rb-paper/paper", "headline/rb-hetero/hetero", "findings/rb-hetero/hetero",
            "claims/rb-paper+rb-hetero+rb-nonstationary", "paper/aggregate", "claims"} <= set(names)
    computed = pr.readme_tables(pr.Args(records=RECORDS), names)
    for (page, name), table in blocks.items():
        assert table == computed[name], f"{page}: table {name!r} differs from the records: run " \
                                        "`python plot_results.py --readme`"


def test_learning_check_rows_are_what_the_records_give():
    text = published_text()
    for experiment in ("learning-check", "learning-check-num-envs1", "learning-check-small-flags",
                       "learning-check-small-paper-defaults", "learning-check-batch512",
                       "learning-check-rho-fixed", "learning-check-rho-fixed-unequal"):
        runs = pr.load_grid(RECORDS / experiment, [])
        rows = [row for rs in pr.learning_check_rows(runs, RECORDS, []).values() for row in rs]
        assert rows and all(row in text for row in rows), (
            f"the learning check's table of {experiment}")


def test_rb_ablation_rows_are_what_the_records_give():
    text = published_text()
    runs = [r for name in ("rb-ablation", "rb-ablation-6k")
            for r in pr.load_grid(RECORDS / name, [])]
    rows = pr.ablation_rows(runs)[2:]
    assert len(rows) > 20 and all(row in text for row in rows)


def test_the_reward_grid_uses_the_settings_the_sweep_picked():
    """ppo-comp-rewards trains with the sweep point of the best mean validation utility."""
    import numpy as np

    import experiments

    runs = [r for r in pr.load_grid(RECORDS / "ppo-comp-sweep", []) if not r.is_heuristic]
    by_point = pr.group(runs)
    complete = {m: rs for m, rs in by_point.items()
                if len(rs) == len(experiments.EXPERIMENTS["ppo-comp-sweep"].seeds)}
    assert len(complete) == len(experiments.PPO_SWEEP), "the sweep is not complete"
    best = max(complete, key=lambda m: np.mean(
        [r.summary["final_eval"]["metrics"]["utility"] for r in complete[m]]))
    picked = next(m for m in experiments.PPO_SWEEP if m.variant == best[0])
    assert picked.flags == experiments.ppo_reward("multi", "sum",
                                                  preset=experiments.COMP_PRESET).flags
    for method in experiments.EXPERIMENTS["ppo-comp-rewards"].methods:
        assert ("--preset", experiments.COMP_PRESET) == method.flags[4:6]
