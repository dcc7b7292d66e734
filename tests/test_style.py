"""The project's style: lines <= 100 characters, so the scripts read and diff well."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINE = 100
FOLDERS = (".", "tests", "benchmarks", "tools")  # every Python file of the project (no .git needed)


def test_no_python_line_is_longer_than_100_characters():
    files = sorted(p for folder in FOLDERS for p in (ROOT / folder).glob("*.py"))
    assert len(files) > 10
    long = [f"{path.relative_to(ROOT)}:{number}" for path in files
            for number, line in enumerate(path.read_text().splitlines(), 1)
            if len(line) > MAX_LINE]
    assert not long, f"lines longer than {MAX_LINE} characters: {', '.join(long)}"
