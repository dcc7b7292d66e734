"""The project's style: lines <= 100 characters, so the scripts read and diff well."""
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINE = 100


def test_no_python_line_is_longer_than_100_characters():
    files = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    long = [f"{name}:{number}" for name in files
            for number, line in enumerate((ROOT / name).read_text().splitlines(), 1)
            if len(line) > MAX_LINE]
    assert not long, f"lines longer than {MAX_LINE} characters: {', '.join(long)}"
