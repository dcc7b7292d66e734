"""Shared test setup: the repository root on sys.path (the tests import the scripts and simulators
as modules) and the `slow` marker.

`python -m pytest -q -m "not slow" tests` is the inner loop (under a minute): every unit test of the
simulators, SAM, records and statistics. Tests marked slow start real training runs, real processes
and signals, or Ray; `python -m pytest -q tests` (the README's command, and CI) runs them all.
"""
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: training runs, real processes and signals, Ray "
                                       "(deselect with -m 'not slow')")


@pytest.fixture
def root() -> Path:
    """The repository root, the working directory the scripts expect."""
    return ROOT
