"""The README's result tables are what plot_results.py computes from the committed run records."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import plot_results as pr  # noqa: E402


def test_readme_tables_equal_what_the_records_give():
    text = (ROOT / "README.md").read_text()
    blocks = {m.group(2): m.group(3) for m in pr.README_TABLE.finditer(text)}
    assert {"paper/paper", "paper/hetero", "paper/aggregate", "claims"} <= set(blocks)
    computed = pr.readme_tables(pr.Args(records=ROOT / "records"), list(blocks))
    for name, table in blocks.items():
        assert table == computed[name], f"README table {name!r} differs from the records: run " \
                                        "`python plot_results.py --readme README.md`"
