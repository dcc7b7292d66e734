"""Run records: the compact, committed form of a finished run, from which every figure and table
is regenerated without retraining (`plot_results.py` reads nothing else).

    records/<grid>/<run id>.json      run id = <variant>__<rho>__<scenario>__s<seed>

A record holds the run's `summary.json` (flags, evaluation histories with per-episode returns,
final metrics and per-slice QoS) with the per-UE throughputs replaced by their percentiles 0..100,
and the scalar curves that the figures draw (training return, rho, critic sharpness, per-actor
TD-error variance and SAM activation, alpha), averaged into at most `CURVE_POINTS` bins. No event
files, no weights: a record is a few kB to a few tens of kB.

Protocol (ours, after rliable's recommendations; SPEC Part D):
- score of a run = the mean of its deterministic evaluation returns at the steps
  s >= SCORE_WINDOW * T of a run of T environment steps (with evaluations every 500 steps of a
  5,000-step run: the evaluations at 4,000, 4,500 and 5,000); each evaluation is the mean team
  return over the same fixed evaluation episodes. A heuristic's score is its evaluation return.
- sample efficiency = the area under the evaluation curve (trapezoids over the logged
  evaluations), divided by the step range it covers: the curve's mean level, in return units.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

RECORD_VERSION = 1
SCORE_WINDOW = 0.8  # the score averages the evaluations of the last 20% of training
CURVE_POINTS = 100
CURVE_PREFIXES = ("charts/episodic_return", "charts/rho_", "sharpness/", "td_var/", "sam_active/",
                  "losses/alpha")
UE_THROUGHPUT_KEY = "ue_throughput_mbps"
UE_PERCENTILES_KEY = "ue_throughput_mbps_percentiles"
SIGNIFICANT = 6  # digits kept of every float


def compact(x):
    """JSON-ready copy with floats rounded to SIGNIFICANT digits and non-finite floats as None."""
    if isinstance(x, dict):
        return {k: compact(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [compact(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(f"{x:.{SIGNIFICANT}g}") if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def binned(steps: np.ndarray, values: np.ndarray, points: int = CURVE_POINTS) -> list[list[float]]:
    """[steps, values] averaged into at most `points` bins of equal numbers of entries."""
    if len(steps) <= points:
        return [steps.tolist(), values.tolist()]
    bins = np.array_split(np.arange(len(steps)), points)
    return [[float(steps[b].mean()) for b in bins], [float(values[b].mean()) for b in bins]]


def read_scalars(run_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """All scalar series of a run folder's event files: tag -> (steps, values), sorted by step.

    TensorBoard's EventAccumulator reads the files in order and, where a resumed run's writer
    starts with a purge step (SummaryWriter(purge_step=...), as the scripts do), drops what the
    interrupted run logged from that step on. Values logged at the same step are averaged."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    series = {}
    for tag in acc.Tags().get("scalars", []):
        events = acc.Scalars(tag)
        if not events:
            continue
        steps = np.array([e.step for e in events], dtype=np.int64)
        values = np.array([e.value for e in events], dtype=float)
        uniq, inverse = np.unique(steps, return_inverse=True)
        series[tag] = (uniq, np.bincount(inverse, weights=values) / np.bincount(inverse))
    return series


def make_record(run_dir: Path, grid: str) -> dict:
    """The record of a finished run folder (summary.json and, for training runs, its event files)."""
    from run_experiments import read_summary  # here: run_experiments imports this module

    summary = read_summary(Path(run_dir))
    if summary is None or summary.get("status") != "finished":
        raise ValueError(f"{run_dir}: no finished summary.json")
    final = dict(summary.get("final_eval") or {})
    tput = np.asarray(final.pop(UE_THROUGHPUT_KEY, None) or [], dtype=float)
    if len(tput):
        final[UE_PERCENTILES_KEY] = np.percentile(tput, np.arange(101)).tolist()
    summary["final_eval"] = final
    curves = {}
    if summary.get("global_step", 0) > 0:
        scalars = read_scalars(Path(run_dir))
        if not scalars:
            raise ValueError("no scalars in its event files (missing or empty)")
        curves = {tag: binned(*series) for tag, series in scalars.items() if tag.startswith(CURVE_PREFIXES)}
    return compact({"record_version": RECORD_VERSION, "grid": grid, "run_id": Path(run_dir).name,
                    "summary": summary, "curves": curves})


def record_path(records_dir: Path, grid: str, run_id: str) -> Path:
    return Path(records_dir) / grid / f"{run_id}.json"


def write_record(run_dir: Path, records_dir: Path, grid: str) -> Path:
    """Writes (atomically) and returns the record of a finished run folder."""
    path = record_path(records_dir, grid, Path(run_dir).name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(make_record(run_dir, grid), separators=(",", ":")) + "\n")
    os.replace(tmp, path)
    return path


def record_is_current(run_dir: Path, records_dir: Path, grid: str) -> bool:
    """Whether the run's record exists and is newer than its summary.json."""
    path = record_path(records_dir, grid, Path(run_dir).name)
    return path.exists() and path.stat().st_mtime >= (Path(run_dir) / "summary.json").stat().st_mtime


def read_record(path: Path) -> dict | None:
    """A record, or None when the file is not a readable record of this version."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(record, dict) and record.get("record_version") == RECORD_VERSION \
        and isinstance(record.get("summary"), dict)
    return record if ok else None


def eval_curve(summary: dict) -> tuple[np.ndarray, np.ndarray]:
    """(steps, deterministic evaluation returns) of a run, in step order."""
    hist = sorted((int(s), float(v)) for s, v, *_ in summary.get("eval_history") or [] if v is not None)
    return np.array([s for s, _ in hist], dtype=float), np.array([v for _, v in hist], dtype=float)


def run_score(summary: dict) -> float:
    """Mean of the evaluations at steps >= SCORE_WINDOW * global_step (module docstring); a heuristic
    (no training) scores its evaluation return."""
    total = summary.get("global_step") or 0
    steps, values = eval_curve(summary)
    late = values[steps >= SCORE_WINDOW * total] if total > 0 else values[:0]
    if len(late) == 0:
        return float(summary["final_eval"]["episodic_return"])
    return float(late.mean())


def eval_auc(summary: dict) -> float:
    """Area under the evaluation curve divided by its step range (the curve's mean level); a run with
    fewer than two evaluations gives its score."""
    steps, values = eval_curve(summary)
    if len(steps) < 2 or steps[-1] <= steps[0]:
        return run_score(summary)
    return float(np.sum(np.diff(steps) * (values[1:] + values[:-1]) / 2) / (steps[-1] - steps[0]))
