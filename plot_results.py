"""Every published table and figure, from the committed run records (`records.py`) alone.

    python plot_results.py            # records/ -> docs/results (figures and results.md)
    python plot_results.py --readme   # also the marked tables of README.md and docs/*.md

`--records` holds one folder per experiment (`records/<experiment>/<run>.json`, written by
`run_experiments.py`). Each experiment makes its section of `results.md`: the method grids a table
per scenario (and their figures), the learning checks their table and `learning_check*.png`, the
RB-level ablation, the fixed splits, the heuristics (at the grid points that `heuristics-tuning`'s
records pick) and comp_env's heuristics their tables, PPO on comp_env its tables and curves. Every
figure whose input is absent is skipped with a one-line note; every record that is not a valid,
finished run (records.validate: types, finite numbers, a method experiments.py declares) is
named with the reason and left out, so a non-finite or absurd number never reaches a table (and a
statistic that is undefined shows "-"). `--readme` rewrites the tables between
`<!-- table: NAME -->` and `<!-- /table -->` wherever they are (readme_tables names them). Every
path and every marked table is checked before the first figure is written.

Statistics (rliable; ours where rliable leaves a choice):
- The unit of replication is a seed. A run's score is the mean of its evaluations over the last 20%
  of training (records.run_score: the evaluations at steps >= 0.8 T), each evaluation the mean team
  return over the same fixed evaluation episodes; "final" is the last evaluation, "best" the
  maximum over evaluations (biased upwards; a secondary column only), "AUC" the mean level of the
  evaluation curve (records.eval_auc).
- Normalised score (per scenario): 0 = the static equal split, 1 = the full-information reference
  (heuristic rows of the same grid, scored on the same evaluation episodes), so that scenarios can
  be aggregated.
- 95% confidence intervals: rliable's stratified percentile bootstrap (`--n-boot` resamples, runs
  resampled within each scenario); mean and IQM (interquartile mean, the mean of the middle 50% of
  runs); curve bands are the same interval per point of the step grid. The probability of
  improvement P(X > Y) (rliable) compares TA-SAM with every other method, with its interval.
- Relative gain of method M over baseline B: (mean_M - mean_B) / |mean_B| of the score, in percent
  (a positive gain always means M is better), and (Q_M - Q_B) / Q_B for the mean QoS satisfaction Q
  (the mean over slices of Q_l, in [0, 1]); its interval resamples the seeds of M and of B
  independently.
- Tests: Welch's t-test of equal means (two-sided p-value) for every comparison the claims table
  makes; its reading follows the test at 5%. Power: the smallest difference of means that this
  test detects with 80% power with these seeds, (t_0.975 + t_0.8) * sqrt(s_M^2 / n_M + s_B^2 / n_B)
  with sample sds and t quantiles at Welch's degrees of freedom.
- Curves are put on a common step grid before averaging over seeds: dense series (more than twice
  `--curve-points` values) as the mean of each of `--curve-points` equal bins, sparse ones
  (evaluations) interpolated at the logged steps; the grid covers the steps every run covers.
"""

from __future__ import annotations

import math
import os
import re
import textwrap
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402
import tyro  # noqa: E402
from rliable import library as rly  # noqa: E402
from rliable import metrics as rly_metrics  # noqa: E402
from scipy import stats  # noqa: E402

import comp_env  # noqa: E402
import oran_env  # noqa: E402
import records as rec  # noqa: E402
import run_utils  # noqa: E402
from experiments import (LABELS, RHO_FLAGS, SPLITS, TRAINING_REWARD_ROWS, TUNING_GRID,  # noqa: E402
                         known_method, load_factor, load_token)

SCENARIOS = ("paper", "hetero", "small", "light", "heavy", "nonstationary",
             *(f"du{n}" for n in range(2, 11)),
             "comp-small", "comp-medium", "comp-large")  # the order of scenario sections

# ------------------------------------------------------------------------------------------------
# TensorBoard tags and summary keys read here (align with the training scripts)
# ------------------------------------------------------------------------------------------------
TAG_TRAIN_RETURN = "charts/episodic_return"
TAG_EVAL_RETURN = "eval/episodic_return"
TAG_RHO_ACTOR = "charts/rho_actor"
TAG_RHO_CRITIC = "charts/rho_critic"
TAG_CRITIC_EIG = "sharpness/critic_top_eig"
TAG_TD_VAR = "td_var/agent_{m}"
TAG_SAM_ACTIVE = "sam_active/agent_{m}"
# final_eval.metrics keys
QOS_METRICS = {"qos_embb": "eMBB", "qos_mmtc": "mMTC", "qos_urllc": "URLLC"}
# more final_eval.metrics columns, when present
EXTRA_METRICS = {"utility": "utility per UE (comp)"}


def shift_step(run_args: dict) -> int | None:
    """Training step of the traffic shift: the scripts count oran_env's shift_after_steps in the
    run's env steps over all num_envs copies (global_step)."""
    shift = (run_args.get("env") or {}).get("shift_after_steps")
    return int(shift) if shift else None


BASELINES = (("nosam", "none"), ("l2", "none"))  # return and QoS gains are reported over these
ABLATION_REFERENCE = ("ta-sam", "dynamic")  # return gain of every method vs full TA-SAM (ablations)
HEURISTIC_PREFIX = "heuristic-"
COLORS = {"nosam": "tab:gray", "l2": "tab:brown", "actor-sam": "tab:blue",
          "critic-sam": "tab:green", "both-sam": "tab:purple", "ta-sam": "tab:red"}
HEURISTIC_COLORS = ("#9ecae1", "#fdae6b", "#a1d99b", "#bcbddc", "#bdbdbd", "#fdd0a2", "#c6dbef")
heuristic_colors: dict[str, str] = {}  # pale colours for the reference rows, assigned on first use


def color(variant: str):
    """A fixed colour per learned variant, and per heuristic within one report."""
    if variant.startswith(HEURISTIC_PREFIX):
        return heuristic_colors.setdefault(
            variant, HEURISTIC_COLORS[len(heuristic_colors) % len(HEURISTIC_COLORS)])
    return COLORS.get(variant)


# Normalisation per environment (heuristic rows of the same grid): score 0 and score 1
NORMALISERS = {"oran": ("heuristic-static_equal", "heuristic-full_info")}
# the method compared with every other one (probability of improvement)
TA_SAM = ("ta-sam", "dynamic")


@dataclass
class Args:
    records: Path = Path("records")
    """records root: one folder of run records per experiment (records/<experiment>/<run>.json)"""
    out: Path = Path("docs/results")
    """output folder for the PNGs and results.md"""
    main_rho: str = "dynamic"
    """rho setting of the SAM variants in the per-method figures (QoS, CDF, sharpness, TD
    variance)"""
    n_boot: int = 2_000
    """bootstrap resamples for the confidence intervals (rliable's stratified bootstrap)"""
    curve_points: int = 50
    """bins of the step grid of dense curves (training returns of long runs)"""
    shift_step: int | None = None
    """non-stationary grid: training step of the traffic shift (default: read from the runs'
    args)"""
    seed: int = 0
    """seed of the bootstrap (one stream per grid and scenario, derived from this seed)"""
    readme: bool = False
    """also rewrite the tables between `<!-- table: NAME -->` and `<!-- /table -->` in README.md and
    docs/*.md under --root (NAME: <experiment>/<scenario>, <experiment>/aggregate, claims, ...)"""
    root: Path = Path(".")
    """the repository whose README.md and docs/*.md --readme rewrites"""

    def __post_init__(self):
        run_utils.check_ranges(self, RANGES)
        if self.main_rho not in RHO_FLAGS and not re.fullmatch(r"fixed[0-9.e+-]+", self.main_rho):
            raise ValueError(f"--main-rho must be one of {', '.join(RHO_FLAGS)} or fixed<rho>, "
                             f"got {self.main_rho!r}")


RANGES = {"n_boot": "[100, 1000000]", "curve_points": "[2, 100000]", "seed": "[0, 4294967295]",
          "shift_step": "[0, 1000000000000]"}


@dataclass
class Run:
    grid: str
    variant: str
    rho: str
    scenario: str
    seed: int
    path: Path
    summary: dict
    # tag -> steps, values
    scalars: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def method(self) -> tuple[str, str]:
        return self.variant, self.rho

    @property
    def is_heuristic(self) -> bool:
        return self.variant.startswith(HEURISTIC_PREFIX)

    @property
    def final_return(self) -> float:
        return float(self.summary["final_eval"]["episodic_return"])

    @property
    def score(self) -> float:
        return rec.run_score(self.summary)  # from the evaluations (the record's score is rounded)

    @property
    def best_return(self) -> float:
        best = self.summary.get("best_eval_return")
        return self.final_return if best is None else float(best)

    @property
    def env_id(self) -> str:
        return "comp" if self.scenario.startswith("comp-") else "oran"


def method_label(method: tuple[str, str]) -> str:
    variant, rho = method
    if variant.startswith(HEURISTIC_PREFIX):
        return "heuristic: " + variant[len(HEURISTIC_PREFIX):]
    label = LABELS.get(variant, variant)
    return label if rho == "none" else f"{label} ({rho})"


def method_order(method: tuple[str, str]) -> tuple:
    variant, rho = method
    variants = list(LABELS)
    rhos = ["none", *RHO_FLAGS]
    return (variant.startswith(HEURISTIC_PREFIX),
            variants.index(variant) if variant in variants else 99,
            rhos.index(rho) if rho in rhos else 99, rho, variant)


# ------------------------------------------------------------------------------------------------
# Statistics
# ------------------------------------------------------------------------------------------------
def seed_from(rng: np.random.Generator) -> None:
    """rliable draws its bootstrap indices from NumPy's global generator: seed it from the section's
    own stream, so every interval is reproducible and independent of the other sections."""
    np.random.seed(int(rng.integers(2**32)))


def bootstrap_ci(x, n_boot: int, rng: np.random.Generator, level: float = 0.95, func=None):
    """rliable percentile-bootstrap CI of func (default: the mean) over axis 0 of x, each column
    resampled on its own (scalars for 1-D x, arrays of x.shape[1:] otherwise)."""
    x = np.asarray(x, dtype=float)
    scores = x.reshape(len(x), -1)
    func = func or (lambda s: s.mean(axis=0))
    seed_from(rng)
    _, ci = rly.get_interval_estimates({"x": scores}, func, reps=n_boot,
                                       confidence_interval_size=level)
    lo, hi = ci["x"]
    return ((float(lo[0]), float(hi[0])) if x.ndim == 1
            else (lo.reshape(x.shape[1:]), hi.reshape(x.shape[1:])))


def two_sample_ci(x, y, statistic, n_boot: int, rng: np.random.Generator):
    """statistic(x, y) of two samples of seeds with rliable's 95% CI (x's and y's seeds resampled
    independently)."""
    x, y = np.asarray(x, float).reshape(-1, 1), np.asarray(y, float).reshape(-1, 1)
    seed_from(rng)
    point, ci = rly.get_interval_estimates({"s": (x, y)}, statistic, reps=n_boot)
    lo, hi = np.ravel(ci["s"])
    return float(point["s"]), float(lo), float(hi)


def relative_gain(method_values, base_values, n_boot: int, rng: np.random.Generator):
    """(mean_M - mean_B) / |mean_B| with its 95% CI; (nan, nan, nan) when mean_B is 0."""
    if abs(np.mean(base_values)) < 1e-12:
        return math.nan, math.nan, math.nan
    return two_sample_ci(method_values, base_values,
                         lambda x, y: (x.mean() - y.mean()) / abs(y.mean())
                         if abs(y.mean()) > 1e-12 else math.nan, n_boot, rng)


def poi_statistic(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y) of (runs, tasks) score arrays, averaged over tasks: rliable's
    metrics.probability_of_improvement (the Mann-Whitney U statistic over runs), vectorised."""
    wins = (x[:, None, :] > y[None, :, :]) + 0.5 * (x[:, None, :] == y[None, :, :])
    return float(wins.mean(axis=(0, 1)).mean())


def probability_of_improvement(x, y, n_boot: int, rng: np.random.Generator):
    """P(X > Y) of two (runs, tasks) score arrays with rliable's 95% CI (runs of X and Y resampled
    independently within each task)."""
    x, y = np.asarray(x, float).reshape(len(x), -1), np.asarray(y, float).reshape(len(y), -1)
    seed_from(rng)
    point, ci = rly.get_interval_estimates({"p": (x, y)}, poi_statistic, reps=n_boot)
    lo, hi = np.ravel(ci["p"])
    return float(point["p"]), float(lo), float(hi)


def welch(x, y) -> tuple[float, float]:
    """(standard error of the difference of means, Welch-Satterthwaite degrees of freedom)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    se = math.sqrt(vx + vy)
    df = (vx + vy) ** 2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1)) if se > 0 else math.inf
    return se, df


def welch_p(x, y) -> float:
    """Two-sided p-value of Welch's t-test of equal means (nan with one run on a side)."""
    if len(x) < 2 or len(y) < 2:
        return math.nan
    se, df = welch(x, y)
    if se == 0:
        return 0.0 if np.mean(x) != np.mean(y) else 1.0
    return float(2 * stats.t.sf(abs(np.mean(x) - np.mean(y)) / se, df))


def detectable_difference(x, y) -> float:
    """Smallest difference of means a two-sided 5% Welch test detects with 80% power:
    (t_0.975 + t_0.8) x the standard error, t quantiles at Welch's degrees of freedom."""
    if len(x) < 2 or len(y) < 2:
        return math.nan
    se, df = welch(x, y)
    return float((stats.t.ppf(0.975, df) + stats.t.ppf(0.8, df)) * se)


def comparison(x, y, args, *key: str):
    """Method scores x against reference scores y: (relative gain with its CI, P(X > Y) with its
    CI, Welch p, detectable gain as a fraction of mean y). Its bootstrap stream is derived from
    `key` (grid, scenario, method, reference), so every table gives one comparison the same CIs."""
    rng = section_rng(args.seed, "comparison", *key)
    gain = relative_gain(x, y, args.n_boot, rng)
    return (gain, probability_of_improvement(x, y, args.n_boot, rng), welch_p(x, y),
            detectable_difference(x, y) / abs(np.mean(y)))


# ------------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------------
def load_grid(grid_dir: Path, notes: list[str]) -> list[Run]:
    """The finished runs of one experiment's folder of records, each validated (records.validate,
    with the methods experiments.py declares); every record left out adds a line to notes that
    names it and says why."""
    runs = []
    for path in sorted(grid_dir.glob("*.json")):
        parsed = rec.parse_run_id(path.stem)
        if parsed is None:
            notes.append(f"skipped {path}: not a record name "
                         "(<variant>__<rho>__<scenario>__s<seed>.json)")
            continue
        record, problems = rec.check_file(path, known_method)
        if record is None:
            notes.append(f"skipped {path}: {'; '.join(problems)}")
            continue
        if not record["finished"]:
            notes.append(f"skipped {path}: not a finished run (no evaluations)")
            continue
        run = Run(grid_dir.name, summary=record, path=path, **parsed)
        run.scalars = {tag: (np.asarray(st, dtype=float), np.asarray(v, dtype=float))
                       for tag, (st, v) in (record.get("curves") or {}).items()}
        steps, values = rec.eval_curve(record)
        if len(steps):
            run.scalars[TAG_EVAL_RETURN] = (steps, values)
        runs.append(run)
    return runs


def group(runs: list[Run]) -> dict[tuple[str, str], list[Run]]:
    out: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        out.setdefault(run.method, []).append(run)
    return dict(sorted(out.items(), key=lambda kv: method_order(kv[0])))


def mean_qos(run: Run) -> float | None:
    metrics = run.summary["final_eval"].get("metrics") or {}
    values = [metrics[k] for k in QOS_METRICS if isinstance(metrics.get(k), (int, float))]
    return float(np.mean(values)) if len(values) == len(QOS_METRICS) else None


# ------------------------------------------------------------------------------------------------
# Curves and figures
# ------------------------------------------------------------------------------------------------
def binned_curves(runs: list[Run], tag: str, points: int):
    """(steps (B,), per-run values (R, B)) on a step grid common to the runs, or None.

    The grid spans the steps every run covers. Dense series (more than 2 x `points` values there,
    e.g. many training episodes) are averaged in `points` equal bins; sparse ones (evaluations)
    are interpolated at the steps of the sparsest run."""
    series = [r.scalars[tag] for r in runs if tag in r.scalars and len(r.scalars[tag][0]) > 0]
    if not series:
        return None
    start, end = max(s[0][0] for s in series), min(s[0][-1] for s in series)
    inside = [(steps >= start) & (steps <= end) for steps, _ in series]
    n_min = min(int(m.sum()) for m in inside)
    if n_min <= 2 * points:
        sparsest = min(range(len(series)), key=lambda i: inside[i].sum())
        x = series[sparsest][0][inside[sparsest]].astype(float)
        if len(x) == 0:  # no run has a value where all runs overlap
            x = np.array([float(end)])
        return x, np.array([np.interp(x, steps, values) for steps, values in series])
    edges = np.linspace(start, end, points + 1)
    rows = []
    for (steps, values), m in zip(series, inside):
        bins = np.clip(np.searchsorted(edges, steps[m], side="right") - 1, 0, points - 1)
        rows.append(np.bincount(bins, weights=values[m], minlength=points)
                    / np.maximum(np.bincount(bins, minlength=points), 1))
    return (edges[:-1] + edges[1:]) / 2, np.array(rows)


def plot_band(ax, runs: list[Run], tag: str, label: str, color, args: Args, rng) -> bool:
    curves = binned_curves(runs, tag, args.curve_points)
    if curves is None:
        return False
    x, y = curves
    mean = y.mean(axis=0)
    line = ax.plot(x, mean, label=f"{label} (n={len(y)})", color=color, lw=1.5)[0]
    if len(y) > 1:
        lo, hi = bootstrap_ci(y, min(args.n_boot, 2000), rng)
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, lw=0)
    return True


def save(fig, path: Path, figures: list[Path]) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    figures.append(path)


def save_or_skip(fig, drawn: bool, name: str, missing: str, out: Path, figures, notes) -> None:
    """Save the figure as out/name.png, or, when nothing was drawn, close it and note the missing
    input."""
    if drawn:
        save(fig, out / f"{name}.png", figures)
    else:
        plt.close(fig)
        notes.append(f"{name}: skipped ({missing})")


def zoom_late(axes, reference: float | None, fraction: float = 0.5) -> None:
    """Limit axes (one row, shared y) to the last `fraction` of their curves' steps and fit the y
    range to the mean curves there (and the reference line): next to the warm-up's low returns the
    methods' differences at the end of training are invisible."""
    curves = [(np.asarray(l.get_xdata(), float), np.asarray(l.get_ydata(), float))
              for ax in axes for l in ax.get_lines() if "(n=" in l.get_label()]
    if not curves:
        return
    x_max = max(x.max() for x, _ in curves)
    x_min = x_max - fraction * (x_max - min(x.min() for x, _ in curves))
    ys = np.concatenate([y[x >= x_min] for x, y in curves] + [np.array([reference] if reference
                                                                         is not None else [])])
    lo, hi = float(ys.min()), float(ys.max())
    pad = 0.25 * (hi - lo) if hi > lo else 1.0
    for ax in axes:
        ax.set_xlim(x_min, x_max)
        ax.set_ylim(lo - pad, hi + pad)
        ax.xaxis.set_major_locator(MaxNLocator(5))  # the default ticks of neighbours collide


def fig_reward_curves(name: str, by_method, tag: str, ylabel: str, args, rng, out: Path,
                      figures, notes) -> None:
    """One panel per rho setting of RHO_FLAGS; methods without rho appear in every panel. Curves of
    evaluation returns get the best heuristic's mean final return as a dashed reference line and a
    second row zoomed on the second half of training."""
    rhos = [r for r in RHO_FLAGS if any(m[1] == r for m in by_method)]
    if not rhos and any(m[1].startswith("fixed") for m in by_method):
        notes.append(f"{name}: curves skipped (fixed-rho sweep; see the rho-sweep figure)")
        return
    panels = rhos or ["all"]
    heuristics = {m: np.mean([r.score for r in runs]) for m, runs in by_method.items()
                  if m[0].startswith(HEURISTIC_PREFIX)}
    reference = (max(heuristics.items(), key=lambda kv: kv[1])
                 if heuristics and tag == TAG_EVAL_RETURN else None)
    rows = 2 if tag == TAG_EVAL_RETURN else 1
    fig, axes = plt.subplots(rows, len(panels), figsize=(5.2 * len(panels), 3.8 * rows),
                             squeeze=False, sharey="row")
    drawn = False
    for row in range(rows):
        for ax, rho in zip(axes[row], panels):
            for method, runs in by_method.items():
                if (method[0].startswith(HEURISTIC_PREFIX)
                        or method[1] not in (rho, "none") and rho != "all"):
                    continue
                drawn |= plot_band(ax, runs, tag, method_label((method[0], "none")) if rho != "all"
                                   else method_label(method), color(method[0]), args, rng)
            if reference is not None:
                ax.axhline(reference[1], color="black", ls="--", lw=1,
                           label="best heuristic "
                                 f"({method_label(reference[0])[len('heuristic: '):]})")
            title = f"rho: {rho}" if rho != "all" else name
            ax.set_title(title if row == 0 else f"{title}, second half (zoomed)")
            ax.set_xlabel("environment steps")
            ax.grid(alpha=0.3)
            if row == 0 and ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
        axes[row][0].set_ylabel(ylabel)
    if rows == 2:
        zoom_late(axes[1], reference[1] if reference else None)
    save_or_skip(fig, drawn, name, f"no run logs {tag}", out, figures, notes)


def fig_boxplot(name: str, by_method, out: Path, figures, notes) -> None:
    methods = list(by_method)
    if not methods:
        notes.append(f"{name}: skipped (no finished runs)")
        return
    fig, ax = plt.subplots(figsize=(max(5.0, 0.7 * len(methods) + 2), 4.2))
    data = [[r.score for r in by_method[m]] for m in methods]
    box = ax.boxplot(data, patch_artist=True, showmeans=True)
    for patch, m in zip(box["boxes"], methods):
        patch.set_facecolor(color(m[0]))
        patch.set_alpha(0.5)
    ax.set_xticks(range(1, len(methods) + 1), [method_label(m) for m in methods], rotation=40,
                  ha="right", fontsize=8)
    ax.set_ylabel("score (mean evaluation return, last 20% of training)")
    ax.grid(alpha=0.3, axis="y")
    save(fig, out / f"{name}.png", figures)


def main_methods(by_method, main_rho: str):
    """One method per variant for the per-method figures: the main rho setting, or no rho (all
    methods when no run uses the main rho setting, as in the rho sweep)."""
    if not any(m[1] == main_rho for m in by_method):
        return dict(by_method)
    return {m: runs for m, runs in by_method.items() if m[1] in ("none", main_rho)}


def headline_references(by_method) -> list[tuple[str, str]]:
    """The reference rows shown beside the learned methods (those present): the static split, PF
    without slicing, the full-information reference and the best constant split."""
    splits = [m for m in by_method if m[0].startswith(HEURISTIC_PREFIX + "split-")]
    best_split = max(splits, key=lambda m: by_method[m][0].score, default=None)
    names = [(HEURISTIC_PREFIX + h, "none") for h in HEADLINE_REFERENCES] + [best_split]
    return [m for m in names if m in by_method]


def final_metrics(runs: list[Run], key: str) -> list[float]:
    """A final-evaluation metric of each run that reports it (older records may not)."""
    values = [(r.summary["final_eval"].get("metrics") or {}).get(key) for r in runs]
    return [float(v) for v in values if isinstance(v, (int, float))]


def fig_qos(name: str, by_method, args, out: Path, figures, notes) -> None:
    """Final-evaluation QoS per slice: a box over the seeds of each learned method (the main rho
    setting and the other named settings of RHO_FLAGS, the paper's fixed radii), a line for each
    reference row on the same episodes."""
    shown = main_methods(by_method, args.main_rho)
    learned = {m: runs for m, runs in by_method.items()
               if (m in shown or m[1] in RHO_FLAGS) and not m[0].startswith(HEURISTIC_PREFIX)
               and all(final_metrics(runs, k) for k in QOS_METRICS)}
    if not learned:
        notes.append(f"{name}: skipped (no final_eval.metrics {list(QOS_METRICS)})")
        return
    fig, axes = plt.subplots(1, len(QOS_METRICS), figsize=(4 + 1.2 * len(learned) * 1.5, 4))
    for ax, (key, slice_name) in zip(axes, QOS_METRICS.items()):
        box = ax.boxplot([final_metrics(runs, key) for runs in learned.values()],
                         patch_artist=True, showmeans=True)
        for patch, m in zip(box["boxes"], learned):
            patch.set_facecolor(color(m[0]))
            patch.set_alpha(0.5)
        for i, m in enumerate(headline_references(by_method)):
            if values := final_metrics(by_method[m], key):
                ax.axhline(np.mean(values), color="black", lw=1, ls=("--", ":", "-.", "-")[i % 4],
                           label=method_label(m))
        ax.set_xticks(range(1, len(learned) + 1), [method_label(m) for m in learned],
                      rotation=40, ha="right", fontsize=8)
        ax.set_title(slice_name)
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_ylabel("Q_l, final evaluation (one point per seed)")
    if headline_references(by_method):
        axes[-1].legend(fontsize=7)
    save(fig, out / f"{name}.png", figures)


def fig_cdf(name: str, by_method, args, out: Path, figures, notes) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    drawn = False
    for m, runs in main_methods(by_method, args.main_rho).items():
        values = np.concatenate([
            np.asarray(r.summary["final_eval"].get(rec.UE_PERCENTILES_KEY) or [], dtype=float)
            for r in runs])
        if len(values) == 0:
            continue
        values = np.sort(values)
        ax.step(values, np.arange(1, len(values) + 1) / len(values), where="post",
                label=method_label(m), color=color(m[0]),
                ls="--" if m[0].startswith(HEURISTIC_PREFIX) else "-")
        drawn = True
    ax.set_xlabel("per-UE throughput (Mbit/s), final evaluation, percentiles of all seeds pooled")
    ax.set_ylabel("CDF")
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(fontsize=7)
    save_or_skip(fig, drawn, name, f"no final_eval.{rec.UE_PERCENTILES_KEY}", out, figures, notes)


def fig_sharpness(name: str, by_method, args, rng, out: Path, figures, notes) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    drawn = False
    for m, runs in main_methods(by_method, args.main_rho).items():
        drawn |= plot_band(ax, runs, TAG_CRITIC_EIG, method_label(m), color(m[0]), args, rng)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("critic loss: largest Hessian eigenvalue")
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(fontsize=7)
    save_or_skip(fig, drawn, name, f"no run logs {TAG_CRITIC_EIG}", out, figures, notes)


def agent_tags(runs: list[Run], pattern: str) -> list[str]:
    tags = []
    while pattern.format(m=len(tags)) in runs[0].scalars:
        tags.append(pattern.format(m=len(tags)))
    return tags


def fig_td_var(name: str, by_method, args, rng, out: Path, figures, notes) -> None:
    """Per method with per-agent tags: TD-error variance, SAM activation, rho over training."""
    methods = [m for m, runs in main_methods(by_method, args.main_rho).items()
               if agent_tags(runs, TAG_TD_VAR)]
    if not methods:
        notes.append(f"{name}: skipped (no run logs {TAG_TD_VAR.format(m=0)})")
        return
    fig, axes = plt.subplots(3, len(methods), figsize=(5 * len(methods), 9), squeeze=False,
                             sharex="col")
    for col, m in enumerate(methods):
        runs = by_method[m]
        for row, (pattern, ylabel) in enumerate(((TAG_TD_VAR, "TD-error variance"),
                                                 (TAG_SAM_ACTIVE, "SAM active (fraction)"))):
            ax = axes[row][col]
            for agent, tag in enumerate(agent_tags(runs, pattern)):
                plot_band(ax, runs, tag, f"agent {agent}", None, args, rng)
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=6, ncol=2)
        axes[0][col].set_title(method_label(m))
        ax = axes[2][col]
        for tag, label in ((TAG_RHO_ACTOR, "rho actor"), (TAG_RHO_CRITIC, "rho critic")):
            plot_band(ax, runs, tag, label, None, args, rng)
        ax.set_ylabel("rho")
        ax.set_xlabel("environment steps")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    save(fig, out / f"{name}.png", figures)


def fig_rho_sweep(name: str, by_method, args, rng, out: Path, figures, notes, lines) -> None:
    """Best evaluation return and score vs a fixed rho, per SAM variant (the paper plots the
    best)."""
    points: dict[str, list[tuple[float, list[Run]]]] = {}
    for (variant, rho), runs in by_method.items():
        match = re.fullmatch(r"fixed(\d+(?:\.\d*)?(?:e-?\d+)?)", rho)
        if match:
            points.setdefault(variant, []).append((float(match.group(1)), runs))
    if not points:
        notes.append(f"{name}: skipped (no fixed-rho runs)")
        return
    rhos_all = sorted({p[0] for v in points.values() for p in v})
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    lines += ["", "Best evaluation return and score vs fixed rho (mean [95% CI] over seeds):", "",
              "| method | return | " + " | ".join(f"rho={r:g}" for r in rhos_all) + " |",
              "| --- " * (len(rhos_all) + 2) + "|"]
    for ax, (what, value) in zip(axes, (
            ("best", lambda r: r.best_return), ("score", lambda r: r.score))):
        for variant, pts in sorted(points.items(), key=lambda kv: method_order((kv[0], "none"))):
            pts.sort(key=lambda p: p[0])
            x = np.array([p[0] for p in pts])
            values = [[value(r) for r in runs] for _, runs in pts]
            mean = np.array([np.mean(v) for v in values])
            cis = [bootstrap_ci(v, args.n_boot, rng) for v in values]
            ax.errorbar(x, mean, yerr=[mean - np.array([c[0] for c in cis]),
                                       np.array([c[1] for c in cis]) - mean],
                        marker="o", capsize=3, label=LABELS.get(variant, variant),
                        color=color(variant))
            cells = {p[0]: f"{m:.3f} [{c[0]:.3f}, {c[1]:.3f}]" for p, m, c in zip(pts, mean, cis)}
            lines.append(f"| {LABELS.get(variant, variant)} | {what} | "
                         + " | ".join(cells.get(r, "-") for r in rhos_all) + " |")
        ax.set_xlabel("fixed rho (actor = critic)")
        ax.set_ylabel("best evaluation return" if what == "best" else "score")
        ax.grid(alpha=0.3)
        ax.legend()
    save(fig, out / f"{name}.png", figures)


# ------------------------------------------------------------------------------------------------
# Tables
# ------------------------------------------------------------------------------------------------
def fmt_gain(g) -> str:
    gain, lo, hi = g
    return "-" if math.isnan(gain) else f"{100 * gain:+.1f}% [{100 * lo:+.1f}, {100 * hi:+.1f}]"


def normaliser(by_method) -> tuple[float, float] | None:
    """(score of 0, score of 1) for the scenario of these runs: the static split's and the
    full-information reference's mean scores (NORMALISERS), or None when either row is absent."""
    runs = next(iter(by_method.values()), [])
    names = NORMALISERS.get(runs[0].env_id) if runs else None
    rows = [by_method.get((name, "none")) for name in names or ()]
    if not names or not all(rows):
        return None
    zero, one = (float(np.mean([r.score for r in rs])) for rs in rows)
    return (zero, one) if one > zero else None


def normalised(values, norm: tuple[float, float]) -> np.ndarray:
    return (np.asarray(values, float) - norm[0]) / (norm[1] - norm[0])


def fmt_ci(point: float, lo: float, hi: float, digits: int = 3) -> str:
    return f"{point:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def method_table(by_method, args: Args, rng) -> list[str]:
    """Markdown rows per method: score (mean, IQM, normalised, with rliable CIs), gains over the
    baselines, TA-SAM's probability of improvement, AUC, final and best evaluation, QoS."""
    has_qos = any(mean_qos(r) is not None for runs in by_method.values() for r in runs)
    base = {b: by_method[b] for b in BASELINES if b in by_method}
    norm = normaliser(by_method)
    ta = by_method.get(TA_SAM) if len(by_method) > 1 else None
    head = ["method", "n", "score: mean [95% CI]", "IQM [95% CI]"]
    head += ["normalised score [95% CI]"] if norm else []
    head += [f"gain vs {method_label(b)}" for b in base]
    head += [f"P({method_label(TA_SAM)} > M) [95% CI]", "detectable diff. vs TA-SAM"] if ta else []
    head += ["AUC", "final", "best"]
    head += (["mean QoS"] + [f"Q {v}" for v in QOS_METRICS.values()]) if has_qos else []
    extra = [k for k in EXTRA_METRICS if any(
        isinstance((r.summary["final_eval"].get("metrics") or {}).get(k), (int, float))
        for runs in by_method.values() for r in runs)]
    head += [EXTRA_METRICS[k] for k in extra]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for m, runs in by_method.items():
        score = np.array([r.score for r in runs])
        row = [method_label(m), str(len(score)),
               fmt_ci(score.mean(), *bootstrap_ci(score, args.n_boot, rng), 2),
               fmt_ci(rly_metrics.aggregate_iqm(score.reshape(-1, 1)), *bootstrap_ci(
                   score, args.n_boot, rng,
                   func=lambda s: np.array([rly_metrics.aggregate_iqm(s)])), 2)]
        if norm:
            ns = normalised(score, norm)
            row.append(fmt_ci(ns.mean(), *bootstrap_ci(ns, args.n_boot, rng)))
        row += ["" if m == b
                else fmt_gain(relative_gain(score, [r.score for r in bruns], args.n_boot, rng))
                for b, bruns in base.items()]
        if ta:
            other = [r.score for r in runs]
            detectable = detectable_difference([r.score for r in ta], other)
            row += ["", ""] if m == TA_SAM else [
                fmt_ci(*probability_of_improvement([r.score for r in ta], other, args.n_boot, rng),
                       2),
                "-" if math.isnan(detectable) else f"{detectable:.2f}"]
        row += [f"{np.mean([rec.eval_auc(r.summary) for r in runs]):.2f}",
                f"{np.mean([r.final_return for r in runs]):.2f}",
                f"{np.mean([r.best_return for r in runs]):.2f}"]
        if has_qos:
            q = [x for x in (mean_qos(r) for r in runs) if x is not None]
            row.append(f"{np.mean(q):.3f}" if q else "-")
        for k in (list(QOS_METRICS) if has_qos else []) + extra:
            v = [(r.summary["final_eval"].get("metrics") or {}).get(k) for r in runs]
            v = [x for x in v if isinstance(x, (int, float))]
            row.append(f"{np.mean(v):.3f}" if v else "-")
        lines.append("| " + " | ".join(row) + " |")
    return lines


GAIN_DEFINITION = (
    "Score: the mean of a run's deterministic evaluations over the last 20% of training (steps >= "
    "0.8 T; each evaluation is the mean team return over the same fixed evaluation episodes); mean "
    "and IQM over seeds with rliable's stratified-bootstrap 95% CIs. Normalised score: 0 = static "
    "equal split, 1 = full-information reference, on the same episodes. Gain of M over B = "
    "(mean_M - mean_B) / |mean_B| of the score, CI from resampling M's and B's seeds "
    "independently. P(TA-SAM > M): rliable's probability of improvement. Detectable diff.: the "
    "smallest difference of mean scores a two-sided 5% test would detect with 80% power at these "
    "seed counts. AUC: mean level of the evaluation curve. Final / best: last / highest "
    "evaluation (best is biased upwards). Mean QoS: mean over slices of the final evaluation's "
    "Q_l.")
GAIN_NOTE = ("Gain vs B = (mean_M - mean_B) / |mean_B| of the score [95% CI]. The rows of "
             "heuristics are deterministic policies scored on the same episodes.")


def shift_metrics(steps, values, shift: int, total: int):
    """(pre-shift level, drop at the shift, recovery steps or nan) of a training-return series.

    Window w = max(5% of the run, 5 x the median logging interval, i.e. about 5 episodes). pre =
    mean over [shift - w, shift), drop = pre - mean over [shift, shift + w). The post-shift traffic
    may be harder for good, so recovery aims at the lower of pre and the final level (the mean
    over the last window): recovery = first t >= shift whose window [t, t + w) reaches that
    target minus 10% of the drop, minus shift; nan when it never does. None without data around
    the shift."""
    if len(steps) < 2:
        return None
    window = max(total // 20, 5 * float(np.median(np.diff(steps))), 1.0)
    before = values[(steps >= shift - window) & (steps < shift)]
    after = values[(steps >= shift) & (steps < shift + window)]
    if not len(before) or not len(after):
        return None
    pre, drop = float(before.mean()), float(before.mean() - after.mean())
    final = float(values[steps > steps[-1] - window].mean())
    target = min(pre, final) - 0.1 * max(drop, 0.0)
    for t in steps[steps >= shift]:
        if values[(steps >= t) & (steps < t + window)].mean() >= target:
            return pre, drop, float(t - shift)
    return pre, drop, math.nan


def nonstationary_section(name, by_method, args, rng, out, figures, notes, lines) -> None:
    """Reward drop at the shift, recovery time and forgetting (final vs peak evaluation return)."""
    shift = args.shift_step
    if shift is None:
        shifts = {shift_step(r.summary.get("args") or {})
                  for runs in by_method.values() for r in runs if not r.is_heuristic} - {None}
        if len(shifts) > 1:
            notes.append(f"{name}: the runs shift at different steps {sorted(shifts)}; "
                         "using the first")
        shift = min(shifts) if shifts else None
    if shift is None:
        notes.append(f"{name}: shift metrics skipped (no --shift-step and no env.shift_after_steps "
                     "in the runs' args)")
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    lines += ["", f"Non-stationary traffic, shift at step {shift}. From the training return: pre = "
              "mean over the window before the shift, drop = pre - mean over the window after it, "
              "recovery = steps until the windowed return is back within 10% of the drop of the "
              "lower of pre and the final level (window: 5% of the run, at least 5 episodes). "
              "Forgetting = peak - final evaluation return. Every evaluation replays the same "
              "pre-shift episodes (oran_env.evaluate), so forgetting measures what training on "
              "the new traffic costs on the old one. Mean [95% CI] over seeds.", "",
              "| method | n | pre-shift return | drop at shift | recovery steps (recovered/n) "
              "| peak eval | final eval | forgetting |", "|" + " --- |" * 8]
    for m, runs in by_method.items():
        if m[0].startswith(HEURISTIC_PREFIX):
            continue
        plot_band(ax, runs, TAG_TRAIN_RETURN, method_label(m), color(m[0]), args, rng)
        pre, drop, recovery, peak, final = [], [], [], [], []
        for r in runs:
            steps, values = r.scalars.get(TAG_TRAIN_RETURN, (np.array([]), np.array([])))
            metrics = shift_metrics(steps, values, shift, int(r.summary.get("global_step") or 0))
            if metrics is not None:
                pre.append(metrics[0])
                drop.append(metrics[1])
                recovery.append(metrics[2])
            hist = r.summary.get("eval_history") or []
            peak_v = max([v for _, v in hist] + [r.final_return])
            peak.append(peak_v)
            final.append(r.final_return)

        def cell(v):
            v = [x for x in v if not math.isnan(x)]
            if not v:
                return "-"
            lo, hi = bootstrap_ci(v, args.n_boot, rng)
            return f"{np.mean(v):.3f} [{lo:.3f}, {hi:.3f}]"

        rec_ok = [x for x in recovery if not math.isnan(x)]
        rec_cell = (f"{np.mean(rec_ok):.0f} ({len(rec_ok)}/{len(recovery)})" if rec_ok
                    else f"- (0/{len(recovery)})")
        lines.append(f"| {method_label(m)} | {len(runs)} | {cell(pre)} | {cell(drop)} | "
                     f"{rec_cell} | {cell(peak)} | {cell(final)} | "
                     f"{cell(list(np.array(peak) - np.array(final)))} |")
    ax.axvline(shift, color="black", ls=":", label="traffic shift")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("training episodic return")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save(fig, out / f"{name}.png", figures)


def sweep_section(name, runs: list[Run], args, rng, out, figures, notes, lines) -> None:
    """Final return vs number of DUs (scenario tokens du<N>) per method, best heuristic as
    reference."""
    table: dict[tuple[str, str], dict[int, list[float]]] = {}
    heuristics: dict[int, dict[str, list[float]]] = {}  # DU count -> heuristic -> returns
    for r in runs:
        match = re.fullmatch(r"du(\d+)", r.scenario)
        if not match:
            continue
        n = int(match.group(1))
        target = heuristics.setdefault(n, {}) if r.is_heuristic else table.setdefault(r.method, {})
        target.setdefault(r.variant if r.is_heuristic else n, []).append(r.score)
    for n, per in heuristics.items():  # the heuristic with the largest mean return at n DUs
        table.setdefault((HEURISTIC_PREFIX + "best", "none"), {})[n] = max(
            per.values(), key=np.mean)
    if not table:
        notes.append(f"{name}: skipped (no du<N> scenarios)")
        return
    counts = sorted({n for v in table.values() for n in v})
    fig, ax = plt.subplots(figsize=(6, 4))
    lines += ["", "Score vs number of DUs (mean [95% CI]; heuristic: best = the "
              "heuristic with the largest mean at that DU count):", "",
              "| method | " + " | ".join(f"{n} DUs" for n in counts) + " |",
              "|" + " --- |" * (len(counts) + 1)]
    for m, per in sorted(table.items(), key=lambda kv: method_order(kv[0])):
        xs = [n for n in counts if per.get(n)]
        mean = np.array([np.mean(per[n]) for n in xs])
        cis = [bootstrap_ci(per[n], args.n_boot, rng) for n in xs]
        ax.errorbar(xs, mean, yerr=[mean - np.array([c[0] for c in cis]),
                                    np.array([c[1] for c in cis]) - mean], marker="o", capsize=3,
                    label=method_label(m), color=color(m[0]),
                    ls="--" if m[0].startswith(HEURISTIC_PREFIX) else "-")
        cells = {n: f"{np.mean(per[n]):.3f} [{c[0]:.3f}, {c[1]:.3f}]" for n, c in zip(xs, cis)}
        lines.append(f"| {method_label(m)} | "
                     + " | ".join(cells.get(n, "-") for n in counts) + " |")
    ax.set_xlabel("number of DUs (200 UEs)")
    ax.set_ylabel("score")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save(fig, out / f"{name}.png", figures)


def generalisation_section(name, runs: list[Run], source: list[Run], args, rng, out, figures,
                           notes, lines) -> None:
    """Score on the training scenarios (the source grid's runs) and on the unseen ones: a column per
    scenario a model was trained on, and per (evaluated on, trained on) pair."""
    cols: dict[str, dict[tuple[str, str], list[float]]] = {}
    trained_on: dict[str, set] = {}
    for r in source:
        cols.setdefault(f"{r.scenario} (trained there)", {}).setdefault(r.method, []).append(
            r.score)
    for r in runs:
        cols.setdefault(r.scenario, {}).setdefault(r.method, []).append(r.score)
        if not r.is_heuristic:
            trained_on.setdefault(r.scenario, set()).add(
                (r.summary.get("args") or {}).get("source_args", {}).get("scenario"))
    if not runs:
        notes.append(f"{name}: skipped (no generalisation runs)")
        return
    scen = sorted(cols, key=lambda s: (" " not in s, list(SCENARIOS).index(s.split()[0])
                                       if s.split()[0] in SCENARIOS else 99, s))
    methods = sorted({m for c in cols.values() for m in c}, key=method_order)
    lines += [
        "", "Generalisation: models evaluated without retraining on scenarios they were not "
        "trained on (trained on: "
        f"{'; '.join(f'{k}: {sorted(map(str, v))[0]}' for k, v in sorted(trained_on.items()))}"
        "; 'trained there': the source grid's own runs; score, mean [95% CI]):", "",
        "| method | " + " | ".join(scen) + " |", "|" + " --- |" * (len(scen) + 1)]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.5 * len(methods) * len(scen)), 4))
    width = 0.8 / len(methods)
    for i, m in enumerate(methods):
        cells, mean, err = [], [], [[], []]
        for s in scen:
            v = cols[s].get(m)
            if not v:
                cells.append("-")
                mean.append(np.nan)
                err[0].append(0)
                err[1].append(0)
                continue
            lo, hi = bootstrap_ci(v, args.n_boot, rng)
            cells.append(f"{np.mean(v):.3f} [{lo:.3f}, {hi:.3f}]")
            mean.append(np.mean(v))
            err[0].append(np.mean(v) - lo)
            err[1].append(hi - np.mean(v))
        lines.append(f"| {method_label(m)} | " + " | ".join(cells) + " |")
        ax.bar(np.arange(len(scen)) + (i - (len(methods) - 1) / 2) * width, mean, width, yerr=err,
               capsize=2, label=method_label(m), color=color(m[0]), edgecolor="black", lw=0.3)
    ax.set_xticks(np.arange(len(scen)), scen, rotation=20, ha="right")
    ax.set_ylabel("score")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=6, ncol=2)
    save(fig, out / f"{name}.png", figures)


# ------------------------------------------------------------------------------------------------
def section_rng(seed: int, *section: str) -> np.random.Generator:
    """One bootstrap stream per grid/scenario section, so adding another grid's runs to the results
    folder leaves every other section's confidence intervals unchanged."""
    return np.random.default_rng([seed, zlib.crc32("/".join(section).encode())])


def aggregate_table(runs: list[Run], args, rng) -> tuple[list[str], dict]:
    """Normalised scores aggregated over the scenarios of a grid that have both normalising rows:
    markdown rows of mean and IQM with stratified-bootstrap CIs and TA-SAM's probability of
    improvement, and the (runs, scenarios) score array per method (empty when nothing
    normalises)."""
    per_scenario = {}
    for scenario in sorted({r.scenario for r in runs}):
        by_method = group([r for r in runs if r.scenario == scenario])
        norm = normaliser(by_method)
        if norm:
            per_scenario[scenario] = {m: {r.seed: float(normalised(r.score, norm)) for r in rs}
                                      for m, rs in by_method.items()
                                      if not m[0].startswith(HEURISTIC_PREFIX)}
    methods = sorted({m for v in per_scenario.values() for m in v}, key=method_order)
    scores = {}
    for m in methods:  # runs x scenarios, over the seeds every scenario has for this method
        seeds = sorted(set.intersection(*(set(v.get(m, {})) for v in per_scenario.values())))
        if seeds:
            scores[m] = np.array([[v[m][s] for v in per_scenario.values()] for s in seeds])
    if not scores:
        return [], {}
    seed_from(rng)
    point, ci = rly.get_interval_estimates(
        {method_label(m): x for m, x in scores.items()},
        lambda x: np.array([rly_metrics.aggregate_mean(x), rly_metrics.aggregate_iqm(x)]),
        reps=args.n_boot)
    ta = scores.get(TA_SAM)
    lines = [f"Normalised score aggregated over {', '.join(f'`{s}`' for s in per_scenario)} "
             "(0 = static split, 1 = full-information reference; rliable, stratified bootstrap "
             "95% CIs):", "",
             "| method | runs x scenarios | mean | IQM | P(TA-SAM > M) |", "|" + " --- |" * 5]
    for m, x in scores.items():
        label = method_label(m)
        poi = ("" if ta is None or m == TA_SAM
               else fmt_ci(*probability_of_improvement(ta, x, args.n_boot, rng), 2))
        lines.append(f"| {label} | {x.shape[0]} x {x.shape[1]} | "
                     f"{fmt_ci(point[label][0], *ci[label][:, 0])} | "
                     f"{fmt_ci(point[label][1], *ci[label][:, 1])} | {poi} |")
    return lines, scores


def aggregate_section(name, runs: list[Run], args, rng, out, figures, notes, lines) -> None:
    """The aggregate table and the performance profiles (fraction of runs above each normalised
    score)."""
    rows, scores = aggregate_table(runs, args, rng)
    if not scores:
        notes.append(f"{name}: skipped (no scenario with both normalising heuristic rows)")
        return
    lines += [""] + rows
    thresholds = np.linspace(min(x.min() for x in scores.values()) - 0.05,
                             max(x.max() for x in scores.values()) + 0.05, 101)
    fig, ax = plt.subplots(figsize=(6, 4))
    for m, x in scores.items():
        ax.plot(thresholds, [(x > t).mean() for t in thresholds], label=method_label(m),
                color=color(m[0]))
    ax.set_xlabel("normalised score tau")
    ax.set_ylabel("fraction of runs with score > tau")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save(fig, out / f"{name}.png", figures)


PAPER_CLAIMS = (  # (claim, method, reference method, the smallest gain the claim states);
    # docs/results.md#the-papers-claims
    ("TA-SAM vs SAC without SAM: up to +22%", TA_SAM, ("nosam", "none"), 0.22),
    ("TA-SAM vs SAC + L2: +7%", TA_SAM, ("l2", "none"), 0.07),
    ("the TD-variance selection (TA-SAM vs Both-SAM): +2.35 to +3.5%", TA_SAM,
     ("both-sam", "dynamic"), 0.0235),
    ("dynamic rho vs fixed equal rho (0.01 / 0.01): +5 to +10%", TA_SAM, ("ta-sam", "equal"), 0.05),
    ("dynamic rho vs fixed unequal rho (0.05 / 0.01): +5 to +10%", TA_SAM, ("ta-sam", "unequal"),
     0.05),
)


def claim_reading(x, y, claimed: float, detectable: float) -> str:
    """Whether the scores x of a method against y reproduce a claimed relative gain of at least
    `claimed`, read from two Welch tests: of equal means (a difference at all), and of a difference
    of means of claimed x |mean y| (the claimed size; |mean y| taken as known, as the gain column
    and the detectable gain take it)."""
    p = welch_p(x, y)
    if math.isnan(p):
        return "too few seeds to tell (one run on a side)"
    scale = abs(np.mean(y))
    gain = (np.mean(x) - np.mean(y)) / scale
    p_claim = welch_p(x, np.asarray(y, float) + claimed * scale)
    below_claim = gain < claimed and p_claim < 0.05
    p_text = "< 0.001" if p_claim < 0.001 else f"= {p_claim:.3f}"
    claim = f"the paper's +{100 * claimed:g}% (Welch p {p_text})"
    if p < 0.05 and gain < 0:
        return "contradicted: worse (Welch p < 0.05)"
    if p < 0.05:
        if below_claim:
            return f"better (Welch p < 0.05), but smaller than {claim}"
        return f"reproduced: better (Welch p < 0.05), consistent with {claim}"
    if below_claim:
        return f"not reproduced: no difference detected, and smaller than {claim}"
    return f"the seeds cannot tell: they detect about +-{detectable:.1f}% or more"


def forgetting(run: Run) -> float:
    """Peak minus final evaluation return (nonstationary grid)."""
    return max([v for _, v, *_ in run.summary.get("eval_history") or []]
               + [run.final_return]) - run.final_return


def claims_table(grids: dict[str, list[Run]], args: Args,
                 names: tuple[str, ...] = ("paper", "nonstationary")) -> list[str]:
    """The paper's claims next to our measurement on the same question: relative gain of the score
    with its 95% CI, the probability of improvement, and the smallest gain these seeds could
    detect. One row per claim and scenario of the grids `names` where both methods ran; a claim
    that ran nowhere gets one "not run" row. Forgetting compares the runs of those grids on
    `nonstationary`, the DU count claim the du_sweep grid."""
    rng = section_rng(args.seed, "claims")
    lines = ["| paper's claim | scenario | n | our gain [95% CI] | P(improvement) [95% CI] | "
             "Welch p | detectable gain | reading |", "|" + " --- |" * 8]

    cells = [(grid, scenario, group([r for r in grids.get(grid, []) if r.scenario == scenario]))
             for grid in names for scenario in sorted({r.scenario for r in grids.get(grid, [])},
                                                      key=scenario_order)]
    for claim, method, ref, claimed in PAPER_CLAIMS:
        ran = [(grid, scenario, by_method) for grid, scenario, by_method in cells
               if method in by_method and ref in by_method]
        if not ran:
            lines.append(f"| {claim} | - | - | not run | | | | |")
        for grid, scenario, by_method in ran:
            x, y = [r.score for r in by_method[method]], [r.score for r in by_method[ref]]
            gain, poi, p, detectable = comparison(x, y, args, grid, scenario, *method, *ref)
            detectable *= 100
            lines.append(f"| {claim} | {scenario} | {len(x)} vs {len(y)} | {fmt_gain(gain)} | "
                         f"{fmt_ci(*poi, 2)} | "
                         f"{'-' if math.isnan(p) else f'{p:.3f}'} | "
                         f"{'-' if math.isnan(detectable) else f'+-{detectable:.1f}%'} | "
                         f"{claim_reading(x, y, claimed, detectable)} |")
    sweep = [r for r in grids.get("du_sweep", []) if r.method == TA_SAM]
    if sweep:
        means = {}
        for r in sweep:
            means.setdefault(int(r.scenario[2:]), []).append(r.score)
        best = max(means, key=lambda n: np.mean(means[n]))
        lines.append(f"| TA-SAM is best at 6 DUs (2..10) | du_sweep | {len(sweep)} | "
                     f"best mean score at {best} DUs | | | | scores are not comparable across DU "
                     "counts (reward per DU) |")
    else:
        lines.append("| TA-SAM is best at 6 DUs (2..10) | du_sweep | - | not run | | | | |")
    ns = group([r for g in names for r in grids.get(g, []) if r.scenario == "nonstationary"])
    if TA_SAM in ns and ("nosam", "none") in ns:
        x, y = [forgetting(r) for r in ns[TA_SAM]], [forgetting(r) for r in ns[("nosam", "none")]]
        diff = fmt_ci(*two_sample_ci(y, x, lambda a, b: a.mean() - b.mean(), args.n_boot, rng))
        p = welch_p(y, x)
        if math.isnan(p):
            verdict = "too few seeds to tell (one run on a side)"
        elif p < 0.05:
            verdict = f"{'less' if np.mean(x) < np.mean(y) else 'more'} forgetting (Welch p < 0.05)"
        else:
            verdict = "no difference detected"
        lines.append(f"| less forgetting under non-stationary traffic | nonstationary | "
                     f"{len(x)} vs {len(y)} | forgetting of No-SAM minus TA-SAM's: {diff} | | "
                     f"{'-' if math.isnan(p) else f'{p:.3f}'} | | {verdict}; forgetting = peak - "
                     "final evaluation return |")
    else:
        lines.append("| less forgetting under non-stationary traffic | nonstationary | - | "
                     "not run | | | | |")
    return lines


# ------------------------------------------------------------------------------------------------
# The learning check, the RB-level ablation and the fixed splits: RB-level runs against the
# heuristics scored on the same episodes
# ------------------------------------------------------------------------------------------------
LC_HEURISTICS = ("static_equal", "urllc_first", "ue_count", "pf_no_slicing", "random")
LC_METRICS = ("qos_embb", "qos_mmtc", "qos_urllc")
SCRIPT_OF = {"nosam": "sac_marl_baseline", "ta-sam": "tasam_marl_sac", "l2": "sac_marl_l2"}
LC_HEAD = ("| scenario | script | steps | seeds | final det. (mean ± sd) | final sampled "
           "| last 20% (mean ± sd) | stable last 20% | Q eMBB/mMTC/URLLC, RB use | static split "
           "| best heuristic | last 20% / best | wall (s) |")


def kind_of_experiment(name: str) -> str:
    """Which section an experiment's records make (the method grids: 'grid')."""
    for prefix, kind in (("learning-check", "learning_check"), ("rb-ablation", "ablation"),
                         ("ppo-comp", "ppo"), ("comp-heuristics", "comp_heuristics"),
                         ("fixed-splits", "splits"), ("heuristics-tuning", "tuning"),
                         ("heuristics", "heuristics")):
        if name.startswith(prefix):
            return kind
    return "grid"


def last_fifth(history) -> np.ndarray:
    """The evaluations in the last 20% of training (steps >= 0.8 x the last evaluation's step)."""
    return np.array([r for s, r, *_ in history if s >= 0.8 * history[-1][0]])


def stable(history) -> bool:
    """Every evaluation in the last 20% of training within 10% of their mean."""
    last = last_fifth(history)
    return bool(np.all(np.abs(last - last.mean()) <= 0.1 * abs(last.mean())))


def reference_scores(records_dir: Path, experiment: str, scenario: str, names,
                     notes) -> dict[str, float]:
    """Scores of reference rows on a scenario: the experiment's own rows, else the learning check's
    (the same evaluation episodes)."""
    for source in (experiment, "learning-check"):
        folder = records_dir / source
        runs = load_grid(folder, notes) if folder.is_dir() else []
        rows = {r.variant[len(HEURISTIC_PREFIX):]: r.score for r in runs
                if r.is_heuristic and r.scenario == scenario}
        if all(n in rows for n in names):
            return {n: rows[n] for n in names}
    raise ValueError(f"{experiment}: no heuristic rows {list(names)} on {scenario} under "
                     f"{records_dir} (python run_experiments.py learning-check --no-training)")


def learning_check_rows(runs: list[Run], records_dir: Path, notes) -> dict[str, list[str]]:
    """Markdown rows per scenario: each script's final and last-20% returns (mean ± population sd
    over seeds, as published), stability, QoS, the heuristics' scores, wall time per run."""
    out = {}
    for scenario in sorted({r.scenario for r in runs if not r.is_heuristic}, key=scenario_order):
        heur = reference_scores(records_dir, runs[0].grid, scenario, LC_HEURISTICS, notes)
        best = max((v, k) for k, v in heur.items())
        rows = []
        for variant in ("nosam", "l2", "ta-sam", "both-sam"):
            recs = sorted((r for r in runs if r.variant == variant and r.scenario == scenario),
                          key=lambda r: r.seed)
            if not recs:
                continue
            hist = [r.summary["eval_history"] for r in recs]
            det = np.array([h[-1][1] for h in hist])
            smp = np.array([r.summary["eval_sampled_history"][-1][1] for r in recs])
            late = np.array([last_fifth(h).mean() for h in hist])
            metrics = [r.summary["final_eval"]["metrics"] for r in recs]
            q = "/".join(f"{np.mean([m[k] for m in metrics]):.2f}" for k in LC_METRICS)
            q += f", {np.mean([m['rb_utilisation'] for m in metrics]):.2f}"
            wall = " ".join(str(round(r.summary["wall_time_s"])) for r in recs)
            cells = [scenario, SCRIPT_OF.get(variant, variant), str(recs[0].summary["global_step"]),
                     str(len(recs)), f"{det.mean():.1f}±{det.std():.1f}",
                     f"{smp.mean():.1f}±{smp.std():.1f}", f"{late.mean():.1f}±{late.std():.1f}",
                     f"{sum(stable(h) for h in hist)}/{len(recs)}", q,
                     f"{heur['static_equal']:.1f}",
                     f"{best[1]} {best[0]:.1f}", f"{late.mean() / best[0]:.2f}", wall]
            rows.append("| " + " | ".join(cells) + " |")
        out[scenario] = rows
    return out


def learning_check_section(name: str, runs: list[Run], args, out: Path, figures, notes,
                           lines) -> None:
    """The learning check's table and its figure (docs/learning_check*.png): per scenario, each
    script's mean evaluation return of the deterministic and the sampled policy against env steps,
    a min-max band over seeds, the heuristics as reference lines."""
    rows = learning_check_rows(runs, args.records, notes)
    lines += [LC_HEAD, "| --- " * 13 + "|"] + [row for r in rows.values() for row in r]
    fig, axes = plt.subplots(1, len(rows), figsize=(6.5 * len(rows), 4), squeeze=False)
    for ax, scenario in zip(axes[0], rows):
        heur = reference_scores(args.records, name, scenario, LC_HEURISTICS, notes)
        for variant, colour in (("nosam", "C0"), ("ta-sam", "C3"), ("l2", "C2")):
            recs = [r for r in runs if r.variant == variant and r.scenario == scenario]
            if not recs:
                continue
            for key, style, label in (("eval_history", "-", "deterministic"),
                                      ("eval_sampled_history", "--", "sampled")):
                # the steps every run reached
                steps = [s for s, *_ in min((r.summary[key] for r in recs), key=len)]
                returns = np.array([[v for _, v, *_ in r.summary[key]][: len(steps)] for r in recs])
                ax.plot(steps, returns.mean(0), style, color=colour, marker="o", ms=3,
                        label=f"{SCRIPT_OF[variant]}, {label} (mean of {len(recs)})")
                if key == "eval_history":
                    ax.fill_between(steps, returns.min(0), returns.max(0), color=colour, alpha=0.15)
        for (hname, value), style in zip(heur.items(),
                                         (":", "--", (0, (3, 1, 1, 1)), "-.", (0, (1, 4)))):
            ax.axhline(value, color="grey", ls=style, lw=1, label=f"heuristic: {hname}")
        ax.set(xlabel="environment steps", ylabel="evaluation return",
               title=f"`{scenario}`, RB-level actions (band: min-max, deterministic)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    suffix = name[len("learning-check"):].replace("-", "_", 1)
    save(fig, out / f"learning_check{suffix}.png", figures)


ABLATION_ORDER = ["cleanrl", "bias1", "alpha1e-2", "alpha1e-2+bias1", "alpha1e-2+bias1+lr3e-4",
                  "alpha1e-2+bias1+te0.5*", "alpha1e-3+bias1", "gamma0.9", "lr3e-4", "qlr1e-3",
                  "batch1024", "tau0.02", "bias0", "te-0.5", "utd2", "utd0.5", "utd0.25",
                  "utd0.5+batch512", "utd0.5+bias0.3", "gamma0.9+te-0.5", "anneal",
                  "gamma0.9+te-0.5+anneal"]


def ablation_rows(runs: list[Run]) -> list[str]:
    """The RB-level ablation's table: final return of the deterministic and the sampled policy
    (mean ± population sd over seeds, as published), their gap, the run score, the expected-count
    decoding of the final actor, stability, the deterministic policy's final over-use and QoS."""
    groups: dict[tuple, list[Run]] = {}
    for r in runs:
        key = (r.scenario != "small", r.scenario, r.summary["global_step"], r.variant)
        groups.setdefault(key, []).append(r)
    lines = ["| scen. | steps | config | n | det. | sampled | gap | last 20% | exp. count | stable "
             "| over-use | Q e/m/u |", "| --- " * 12 + "|"]

    def order(group):
        name = group[0][3]
        return group[0][:3], ABLATION_ORDER.index(name) if name in ABLATION_ORDER else 99

    for (_, scen, steps, name), rs in sorted(groups.items(), key=order):
        rs = sorted(rs, key=lambda r: r.seed)
        det = np.array([r.summary["eval_history"][-1][1] for r in rs])
        smp = np.array([r.summary["eval_sampled_history"][-1][1] for r in rs])
        exp = np.array([r.summary["extra"]["posthoc"]["expected count"] for r in rs])
        late = np.array([last_fifth(r.summary["eval_history"]).mean() for r in rs])
        m = [r.summary["final_eval"]["metrics"] for r in rs]
        q = "/".join(f"{np.mean([x[k] for x in m]):.2f}" for k in LC_METRICS)
        def spread(x, several=len(rs) > 1):
            return f"{x.mean():.1f}±{x.std():.1f}" if several else f"{x.mean():.1f}"

        lines.append(f"| {scen} | {steps} | {name} | {len(rs)} | {spread(det)} | {spread(smp)} | "
                     f"{(det - smp).mean():.1f} | {spread(late)} | {exp.mean():.1f} | "
                     f"{sum(stable(r.summary['eval_history']) for r in rs)}/{len(rs)} | "
                     f"{np.mean([x['rb_overuse'] for x in m]):.3f} | {q} |")
    return lines


SHOWN_SPLITS = ("split-0.55-0.12-0.21", "split-0.67-0.12-0.21")  # rows shown besides the searches


def splits_rows(runs: list[Run]) -> list[str]:
    """What one constant RB split or one UE-count rule scores, against PF without slicing on the
    same episodes: the rows of `split-...` and `ue_count-...` with the best of each search."""
    lines = ["| scenario | allocation | return | / PF without slicing | Q eMBB/mMTC/URLLC | "
             "RB use |",
             "| --- | --- | --- | --- | --- | --- |"]
    for scenario in sorted({r.scenario for r in runs}, key=scenario_order):
        rows = {r.variant[len(HEURISTIC_PREFIX):]: r for r in runs if r.scenario == scenario}
        pf = rows["pf_no_slicing"].score

        def row(label, r):
            m = r.summary["final_eval"]["metrics"]
            q = "/".join(f"{m[k]:.2f}" for k in LC_METRICS)
            lines.append(f"| {scenario} | {label} | {r.score:.1f} | {r.score / pf:.3f} | {q} | "
                         f"{m['rb_utilisation']:.2f} |")

        for name in SHOWN_SPLITS:
            if name in rows:
                row(name[len("split-"):].replace("-", "/"), rows[name])
        splits = {k: r for k, r in rows.items() if k in SPLITS}
        rules = {k: r for k, r in rows.items() if k.startswith("ue_count-")}
        if splits:
            best = max(splits, key=lambda k: splits[k].score)
            shares = best[len("split-"):].replace("-", "/")
            row(f"best constant split of {len(splits)}: {shares}", splits[best])
        if rules:
            best = max(rules, key=lambda k: rules[k].score)
            u, m = best[len("ue_count-"):].split("-")
            row(f"best UE-count rule of {len(rules)}: {u}/{m} RBs per URLLC/mMTC UE", rules[best])
        for name in ("static_equal", "pf_no_slicing"):
            if name in rows:
                row(f"{name} (reference)", rows[name])
    return lines


def scenario_order(s: str) -> tuple[int, int, str]:
    """SCENARIOS' order, a load token (comp-<preset>-x<k>) after its preset by k, others last."""
    base, k = load_factor(s)
    return (SCENARIOS.index(base) if base in SCENARIOS else 99, k, s)


TUNED = ("urllc_first", "ue_count")  # shown at their grid point of TUNING_GRID tuned per scenario
PER_DU_SCENARIOS = ("hetero",)  # the heuristics table's per-DU tables
SLICE_QOS = ("qos_embb", "qos_mmtc", "qos_urllc")


def tuned_points(tuning: list[Run], scenario: str) -> dict[str, Run]:
    """Per tuned heuristic, its grid point with the largest return on the tuning episodes (the
    first in TUNING_GRID's order on a tie)."""
    rows = {r.variant[len(HEURISTIC_PREFIX):]: r for r in tuning if r.scenario == scenario}
    points = {}
    for kind in TUNED:
        grid = [rows[n] for n in TUNING_GRID if n.split("-")[0] == kind and n in rows]
        if grid:
            points[kind] = max(grid, key=lambda r: r.score)
    return points


def heuristic_label(name: str) -> str:
    """`urllc_first-1.25` -> `urllc_first (1.25)`, `ue_count-1-0.3` -> `ue_count (1, 0.3)`."""
    kind, *params = name.split("-")
    return f"{kind} ({', '.join(params)})" if params else name


def heuristics_tables(runs: list[Run], tuning: list[Run], args) -> dict[str, list[str]]:
    """The heuristics table (each heuristic, the tuned ones at their tuned grid point, and the
    full-information reference: mean QoS per slice and team return over the episodes with
    rliable's 95% bootstrap CI over episodes), the headroom table (key 'headroom') and, per
    PER_DU_SCENARIOS scenario, each DU's mean QoS and return (key: the scenario)."""
    rng = section_rng(args.seed, "heuristics")
    head = "| scenario | heuristic | Q eMBB | Q mMTC | Q URLLC | episode return |"
    tables = {"": [head, "|" + " --- |" * 6],
              "headroom": ["| scenario | episode maximum | full-information reference | best "
                           "heuristic | best observation-only heuristic | static split |",
                           "|" + " --- |" * 6]}
    for scenario in sorted({r.scenario for r in runs}, key=scenario_order):
        rows = {r.variant[len(HEURISTIC_PREFIX):]: r for r in runs if r.scenario == scenario}
        tuned = {kind: r.variant[len(HEURISTIC_PREFIX):]
                 for kind, r in tuned_points(tuning, scenario).items()}
        names = [tuned.get(kind, kind) for kind in oran_env.HEURISTICS] + ["full_info"]
        cells = {}
        for name in (n for n in names if n in rows):
            final = rows[name].summary["final_eval"]
            x = np.column_stack([*(final["per_episode"][k] for k in SLICE_QOS),
                                 final["episodic_returns"]])  # (episodes, 4)
            lo, hi = bootstrap_ci(x, args.n_boot, rng)
            cells[name] = [fmt_ci(m, a, b, 1 if i == 3 else 3)
                           for i, (m, a, b) in enumerate(zip(x.mean(0), lo, hi))]
            tables[""].append(f"| {scenario} | {heuristic_label(name)} | "
                              + " | ".join(cells[name]) + " |")
        heur = [n for n in cells if n != "full_info"]
        ret = {n: rows[n].summary["final_eval"]["episodic_return"] for n in heur}
        obs_only = [n for n in heur if n.split("-")[0] in oran_env.OBSERVATION_ONLY]
        picks = [max(heur, key=ret.get), max(obs_only, key=ret.get) if obs_only else None,
                 "static_equal" if "static_equal" in cells else None]
        config = oran_env.make_config(scenario)
        episode_max = config.episode_length * oran_env.sigmoid(np.array(config.reward_alpha)).sum()
        full_info = cells["full_info"][3] if "full_info" in cells else "-"
        tables["headroom"].append(
            f"| {scenario} | {episode_max:.1f} | {full_info} | "
            + " | ".join(f"{cells[n][3]} ({heuristic_label(n)})" if n else "-" for n in picks)
            + " |")
        if scenario in PER_DU_SCENARIOS:
            n_du = len(rows[heur[0]].summary["final_eval"]["per_agent"]["returns"])
            lines = ["| heuristic | " + " | ".join(f"du_{i}" for i in range(n_du)) + " |",
                     "| --- |" + " --- |" * n_du]
            for name in cells:
                agent = rows[name].summary["final_eval"]["per_agent"]
                lines.append(f"| {heuristic_label(name)} | " + " | ".join(
                    "{:.2f} / {:.2f} / {:.2f}, {:.0f}".format(*q, r)
                    for q, r in zip(agent["qos"], agent["returns"])) + " |")
            tables[scenario] = lines
    return tables


def tuning_rows(runs: list[Run]) -> list[str]:
    """Per scenario and tuned heuristic: the grid points scored, the one of the largest return on
    the tuning episodes and that return."""
    lines = ["| scenario | heuristic | grid points | tuned | tuning return |",
             "| --- | --- | --- | --- | --- |"]
    for scenario in sorted({r.scenario for r in runs}, key=scenario_order):
        for kind, r in tuned_points(runs, scenario).items():
            size = sum(t.scenario == scenario and t.variant.split("-")[1] == kind for t in runs)
            lines.append(f"| {scenario} | {kind} | {size} | "
                         f"{heuristic_label(r.variant[len(HEURISTIC_PREFIX):])} | {r.score:.1f} |")
    return lines


def comp_heuristics_rows(runs: list[Run], args) -> list[str]:
    """comp_env's heuristics per scenario: mean utility per UE-step over the episodes with rliable's
    95% bootstrap CI over episodes (each episode's mean over steps and UEs)."""
    rng = section_rng(args.seed, "comp-heuristics")
    names = list(comp_env.HEURISTICS)
    lines = ["| scenario | BSs | UEs (slow+fast) | " + " | ".join(names) + " |",
             "|" + " --- |" * (3 + len(names))]
    for scenario in sorted({r.scenario for r in runs}, key=scenario_order):
        rows = {r.variant[len(HEURISTIC_PREFIX):]: r for r in runs if r.scenario == scenario}
        some = next(iter(rows.values())).summary["args"]
        # a load token's UE counts are in its env_options
        config = comp_env.make_config(load_factor(scenario)[0][len("comp-"):],
                                      **some["env_options"])
        cells = []
        for name in names:
            if name not in rows:
                cells.append("-")
                continue
            utility = np.asarray(rows[name].summary["final_eval"]["per_episode"]["utility"])
            cells.append(fmt_ci(utility.mean(), *bootstrap_ci(utility, args.n_boot, rng), 2))
        lines.append(f"| {scenario[len('comp-'):]} | {config.num_bs} | {config.num_ues} "
                     f"({config.num_slow_ues}+{config.num_fast_ues}) | " + " | ".join(cells) + " |")
    return lines


PPO_HEURISTICS = {"best_cell": ("tab:gray", "--"), "dynamic_comp": ("black", "-."),
                  "dynamic_comp-0.6": ("tab:purple", "-."), "full_comp": ("tab:brown", ":"),
                  "full_info": ("tab:olive", "--")}  # the reference lines of the PPO curves


def ppo_label(method: tuple[str, str], runs: list[Run]) -> str:
    """A PPO row's label with its runs' optimiser preset (ppo_comp.py --preset)."""
    presets = sorted({r.summary["args"].get("preset", "cleanrl") for r in runs
                      if r.summary["script"] == "ppo_comp.py"})
    label = method_label(method)
    return f"{label} [{', '.join(presets)}]" if presets else label


def final_metric(run: Run, key: str) -> float:
    """A final-evaluation metric of a PPO or heuristic run on comp_env."""
    return run.summary["final_eval"]["metrics"][key]


def heuristic_runs(by_method) -> dict[str, Run]:
    """The reference rows of a scenario's runs by heuristic name."""
    return {m[0][len(HEURISTIC_PREFIX):]: rs[0] for m, rs in by_method.items()
            if m[0].startswith(HEURISTIC_PREFIX)}


def ppo_rows(runs: list[Run], args, rng) -> list[str]:
    """PPO (and a scored SAC model) against DeepCoMP's heuristics on the same episodes: utility per
    UE-step, episode return, BSs per UE, unconnected fraction, the difference of utility to
    best_cell and dynamic_comp; 95% CIs by rliable's bootstrap over seeds (learned policies) or over
    episodes (a heuristic's return; its policy is fixed)."""
    lines = ["| scenario | policy | seeds | env steps | utility per UE-step | episode return | "
             "BSs per UE | unconnected | utility - best_cell | utility - dynamic_comp | "
             "wall time per run (min) |",
             "|" + " --- |" * 11]
    for scenario in sorted({r.scenario for r in runs}, key=scenario_order):
        by_method = group([r for r in runs if r.scenario == scenario])
        heur = heuristic_runs(by_method)
        for (variant, _), rs in by_method.items():
            if variant.startswith(HEURISTIC_PREFIX):
                r = rs[0]
                ret = np.asarray(r.summary["final_eval"]["episodic_returns"])
                cells = [f"{final_metric(r, 'utility'):.2f}",
                         fmt_ci(ret.mean(), *bootstrap_ci(ret, args.n_boot, rng), 2)]
                seeds = steps = wall = "-"
                paired = ["-", "-"]
            else:
                util = np.array([final_metric(r, "utility") for r in rs])
                ret = np.array([r.summary["final_eval"]["episodic_return"] for r in rs])
                cells = [fmt_ci(x.mean(), *bootstrap_ci(x, args.n_boot, rng), 2) if len(x) > 1
                         else f"{x.mean():.2f}" for x in (util, ret)]
                seeds = str(len(rs))
                trained = [r.summary["global_step"] or r.summary["args"].get("trained_steps")
                           for r in rs]
                steps = f"{trained[0]:,}"
                walls = [r.summary["wall_time_s"] / 60 for r in rs if r.summary.get("wall_time_s")]
                wall = f"{np.mean(walls):.1f} ({min(walls):.1f}-{max(walls):.1f})" if walls else "-"
                paired = [fmt_ci(*(np.array([util.mean(), *bootstrap_ci(util, args.n_boot, rng)])
                                   - final_metric(heur[h], "utility")), 2)
                          if len(util) > 1 and h in heur
                          else f"{util.mean() - final_metric(heur[h], 'utility'):+.2f}"
                          if h in heur else "-"
                          for h in ("best_cell", "dynamic_comp")]
            label = ppo_label((variant, "none"), rs)
            bs = np.mean([final_metric(r, "connections_per_ue") for r in rs])
            unconnected = np.mean([final_metric(r, "unconnected_fraction") for r in rs])
            lines.append(f"| {scenario[len('comp-'):]} | {label} | {seeds} | {steps} | "
                         f"{' | '.join(cells)} | "
                         f"{bs:.2f} | {unconnected:.3f} | {paired[0]} | {paired[1]} | {wall} |")
    return lines


def paired_gap_ci(utility, reference, n_boot: int, rng: np.random.Generator, level: float = 0.95):
    """Mean of utility - reference with a percentile-bootstrap CI that resamples the seeds (rows of
    utility, (seeds, episodes)) and, paired, the episodes (reference: (episodes,), the same
    episodes): both the seed-to-seed spread and the finite test set count."""
    gap = np.asarray(utility, float).reshape(-1, len(reference)) - np.asarray(reference, float)
    seeds, episodes = gap.shape
    seed_counts = rng.multinomial(seeds, np.full(seeds, 1 / seeds), size=n_boot)  # (boot, seeds)
    episode_counts = rng.multinomial(episodes, np.full(episodes, 1 / episodes), size=n_boot)
    stats = np.einsum("bs,se,be->b", seed_counts, gap, episode_counts) / (seeds * episodes)
    lo, hi = np.quantile(stats, [(1 - level) / 2, (1 + level) / 2])
    return gap.mean(), lo, hi


def tuned_dynamic_comp(heuristics: dict[str, Run]) -> str:
    """The reference row to beat: dynamic CoMP at its epsilon tuned on validation episodes
    (`dynamic_comp-<eps>`), else at its default epsilon."""
    tuned = [name for name in heuristics if name.startswith("dynamic_comp-")]
    return tuned[0] if tuned else "dynamic_comp"


def ppo_verdict_rows(runs: list[Run], args, rng) -> list[str]:
    """Each policy against the tuned dynamic CoMP on the same test episodes: utility per UE-step
    (95% CI over seeds; a heuristic's over episodes), the seeds' sd, the difference to the tuned
    dynamic CoMP (paired_gap_ci: seeds and paired episodes resampled), how many seeds beat it, BSs
    per UE and unconnected UE-steps. The full-information row is the room left above it."""
    lines = ["| scenario | policy | seeds | utility per UE-step | sd over seeds | "
             "- tuned dynamic CoMP | seeds above it | BSs per UE | unconnected |",
             "|" + " --- |" * 9]
    per_episode = lambda r: np.asarray(  # noqa: E731
        r.summary["final_eval"]["per_episode"]["utility"])
    for scenario in sorted({r.scenario for r in runs}, key=scenario_order):
        by_method = group([r for r in runs if r.scenario == scenario])
        heur = heuristic_runs(by_method)
        target = tuned_dynamic_comp(heur)
        if target not in heur:
            raise ValueError(f"{scenario}: no {target} row to compare with (score the "
                             "experiment's reference rows)")
        reference = per_episode(heur[target])
        shown = [m for m in by_method if not m[0].startswith(HEURISTIC_PREFIX)] + [
            (HEURISTIC_PREFIX + h, "none") for h in dict.fromkeys(
                ("best_cell", "dynamic_comp", target, "full_info")) if h in heur]
        for method in shown:
            rs = by_method[method]
            util = np.array([per_episode(r) for r in rs])  # (seeds, episodes)
            means = util.mean(axis=1)
            if method[0].startswith(HEURISTIC_PREFIX):
                u = fmt_ci(util.mean(), *bootstrap_ci(util[0], args.n_boot, rng), 2)
                seeds = sd = above = "-"
            else:
                u = (fmt_ci(means.mean(), *bootstrap_ci(means, args.n_boot, rng), 2)
                     if len(rs) > 1 else f"{means.mean():.2f}")
                seeds, sd = str(len(rs)), f"{means.std(ddof=1):.2f}" if len(rs) > 1 else "-"
                above = f"{int(np.sum(means > reference.mean()))}/{len(rs)}"
            gap = ("-" if method[0] == HEURISTIC_PREFIX + target else
                   fmt_ci(*paired_gap_ci(util, reference, args.n_boot, rng), 2))
            bs = np.mean([final_metric(r, "connections_per_ue") for r in rs])
            unconnected = np.mean([final_metric(r, "unconnected_fraction") for r in rs])
            lines.append(f"| {scenario[len('comp-'):]} | {ppo_label(method, rs)} | {seeds} | {u} | "
                         f"{sd} | {gap} | {above} | {bs:.2f} | {unconnected:.3f} |")
    return lines


def ppo_training_reward_rows(runs: list[Run], args, rng) -> list[str]:
    """Each policy's team return under its own training reward (the runs' post-hoc evaluation of
    the final greedy policy; 95% CI over seeds) next to the heuristics' under the same reward on
    the same episodes: does PPO beat them on the objective it was trained on?"""
    names = TRAINING_REWARD_ROWS
    lines = ["| scenario | policy | training reward | seeds | policy's return | "
             + " | ".join(names) + " |", "|" + " --- |" * (5 + len(names))]
    for scenario in sorted({r.scenario for r in runs}, key=scenario_order):
        for method, rs in group([r for r in runs if r.scenario == scenario]).items():
            rs = [r for r in rs if "posthoc" in r.summary["extra"]]
            if not rs:
                continue
            posthoc = [r.summary["extra"]["posthoc"] for r in rs]
            own = np.array([p["returns"]["policy"] for p in posthoc])
            cell = (fmt_ci(own.mean(), *bootstrap_ci(own, args.n_boot, rng), 2) if len(own) > 1
                    else f"{own.mean():.2f}")
            heuristics = [f"{np.mean([p['returns'][n] for p in posthoc]):.2f}" for n in names]
            lines.append(f"| {scenario[len('comp-'):]} | {ppo_label(method, rs)} | "
                         f"{posthoc[0]['reward']} | {len(rs)} | {cell} | "
                         + " | ".join(heuristics) + " |")
    return lines


LOAD_HEURISTICS = "comp-heuristics-load"  # the heuristics on the PPO load sweep's episodes


def ppo_load_rows(runs: list[Run], heuristics: list[Run]) -> list[str]:
    """Each multi-agent PPO policy at k times the preset's UEs (the runs' load sweep), mean over
    its seeds, and after them the heuristics on the same episodes (`heuristics`: the records of
    LOAD_HEURISTICS, scenario comp-<preset>-x<k>)."""
    lines = ["| scenario | UEs | policy | BSs per UE | utility per UE-step | unconnected |",
             "| --- | --- | --- | --- | --- | --- |"]

    def row(scenario, n_ues, label, values):
        return (f"| {scenario[len('comp-'):]} | {n_ues} | {label} | "
                f"{np.mean([v['connections_per_ue'] for v in values]):.2f} | "
                f"{np.mean([v['utility'] for v in values]):.2f} | "
                f"{np.mean([v['unconnected_fraction'] for v in values]):.3f} |")

    for scenario in sorted({r.scenario for r in runs}, key=scenario_order):
        swept = group([r for r in runs
                       if r.scenario == scenario and r.summary["extra"].get("load_sweep")])
        factors = sorted({int(f) for rs in swept.values() for r in rs
                          for f in r.summary["extra"]["load_sweep"]})
        for factor in factors:
            n_ues = None
            for method, rs in swept.items():
                sweeps = [r.summary["extra"]["load_sweep"][str(factor)] for r in rs]
                n_ues = sweeps[0]["num_ues"]
                lines.append(row(scenario, n_ues, ppo_label(method, rs), sweeps))
            rows = {h.variant[len(HEURISTIC_PREFIX):]: h for h in heuristics
                    if h.scenario == load_token(scenario, factor)}
            for name in sorted(rows):
                lines.append(row(scenario, n_ues, method_label(rows[name].method),
                                 [rows[name].summary["final_eval"]["metrics"]]))
    return lines


def load_heuristics(records: Path, notes: list[str]) -> list[Run]:
    folder = records / LOAD_HEURISTICS
    return load_grid(folder, notes) if folder.is_dir() else []


def ppo_section(name: str, runs: list[Run], args, out: Path, figures, notes, lines) -> None:
    """The PPO tables and the figure of evaluation utility and return against env steps (mean over
    seeds with rliable's 95% band, the heuristics as horizontal lines)."""
    rng = section_rng(args.seed, name)
    lines += ppo_rows(runs, args, rng)
    if any(r.summary["extra"].get("load_sweep") for r in runs):
        lines += (["", "Load sweep (mean over seeds; the heuristics on the same episodes):", ""]
                  + ppo_load_rows(runs, load_heuristics(args.records, notes)))
    if any(r.variant.startswith(HEURISTIC_PREFIX + "dynamic_comp-") for r in runs):
        lines += ["", "Against the tuned dynamic CoMP on the same episodes:", ""]
        lines += ppo_verdict_rows(runs, args, section_rng(args.seed, name, "verdict"))
    if any("posthoc" in r.summary["extra"] for r in runs):
        lines += ["", "Team return under each policy's own training reward:", ""]
        lines += ppo_training_reward_rows(runs, args, section_rng(args.seed, name,
                                                                  "training-reward"))
    scenarios = sorted({r.scenario for r in runs}, key=scenario_order)
    learned = [r for r in runs if r.summary["eval_history"]]
    if not learned:
        return
    fig, axes = plt.subplots(2, len(scenarios), figsize=(5.5 * len(scenarios), 7), squeeze=False)
    for col, scenario in enumerate(scenarios):
        by_method = group([r for r in runs if r.scenario == scenario])
        for row, (key, ylabel) in enumerate((("utility", "utility per UE-step"),
                                             ("return", "episode return"))):
            ax = axes[row, col]
            ends = []  # the reference levels and each curve's last point
            for (variant, _), rs in by_method.items():
                if variant.startswith(HEURISTIC_PREFIX):
                    h = variant[len(HEURISTIC_PREFIX):]
                    if h in PPO_HEURISTICS:
                        final = rs[0].summary["final_eval"]
                        level = (final["metrics"]["utility"] if key == "utility"
                                 else final["episodic_return"])
                        ax.axhline(level, color=PPO_HEURISTICS[h][0],
                                   linestyle=PPO_HEURISTICS[h][1], label=h)
                        ends.append(level)
                    continue
                rs = [r for r in rs if r.summary["eval_history"]]
                if not rs:
                    continue
                steps = np.array([h[0] for h in rs[0].summary["eval_history"]])
                # (seeds, points)
                values = np.array([[h[2][key] for h in r.summary["eval_history"]] for r in rs])
                label = f"{ppo_label((variant, 'none'), rs)} ({len(rs)} seeds)"
                line = ax.plot(steps, values.mean(0), label=label)[0]
                ends.append(values.mean(0)[-1])
                if len(rs) > 1:
                    lo, hi = bootstrap_ci(values, args.n_boot, rng)
                    ax.fill_between(steps, lo, hi, color=line.get_color(), alpha=0.2)
            if key == "utility":  # the early, near -20 utilities would squash the rest
                ax.set_ylim(bottom=max(ax.get_ylim()[0], min(ends, default=0.0) - 1.0))
            ax.set(title=f"{scenario[len('comp-'):]}: {ylabel}", xlabel="env steps", ylabel=ylabel)
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    save(fig, out / f"{name.replace('-', '_')}_curves.png", figures)


HEADLINE_BASE = ("nosam", "none")
HEADLINE_REFERENCES = ("static_equal", "pf_no_slicing", "full_info")  # and the best constant split


def headline_rows(runs: list[Run], args: Args, grid: str, scenario: str) -> list[str]:
    """The README's headline: each learned method of a grid against No-SAM (score, IQM and
    normalised score with rliable's CIs, relative gain, P(M > No-SAM), Welch p, the smallest gain
    a two-sided 5% test detects with 80% power), then the static split, PF without slicing, the
    full-information reference and the best constant split on the same episodes; QoS per slice and
    the RBs left idle at DUs where a slice is below full QoS, from the final evaluation."""
    by_method = group(runs)
    norm = normaliser(by_method)
    rng = section_rng(args.seed, "headline", grid, scenario)
    base = [r.score for r in by_method.get(HEADLINE_BASE, [])]
    shown = [m for m in by_method if not m[0].startswith(HEURISTIC_PREFIX)]
    shown += headline_references(by_method)
    lines = ["| method | n | score [95% CI] | IQM [95% CI] | normalised [95% CI] | gain vs No-SAM "
             "[95% CI] | P(M > No-SAM) [95% CI] | Welch p | detectable gain | Q eMBB / mMTC / "
             "URLLC | RBs idle, all / at DUs short of QoS |",
             "| --- " * 11 + "|"]
    for m in shown:
        mruns = by_method[m]
        score = np.array([r.score for r in mruns])
        learned = not m[0].startswith(HEURISTIC_PREFIX)
        if learned and len(score) > 1:
            cells = [fmt_ci(score.mean(), *bootstrap_ci(score, args.n_boot, rng), 1),
                     fmt_ci(rly_metrics.aggregate_iqm(score.reshape(-1, 1)), *bootstrap_ci(
                         score, args.n_boot, rng,
                         func=lambda s: np.array([rly_metrics.aggregate_iqm(s)])), 1)]
            ns = normalised(score, norm) if norm else None
            cells.append(fmt_ci(ns.mean(), *bootstrap_ci(ns, args.n_boot, rng), 2) if norm
                         else "-")
        else:
            cells = [f"{score.mean():.1f}", "", f"{normalised(score, norm).mean():.2f}"
                     if norm else "-"]
        if learned and m != HEADLINE_BASE and len(base) > 1 and len(score) > 1:
            gain, poi, p, detectable = comparison(score, base, args, grid, scenario, *m,
                                                  *HEADLINE_BASE)
            cells += [fmt_gain(gain), fmt_ci(*poi, 2), f"{p:.3f}", f"+-{100 * detectable:.1f}%"]
        else:
            cells += ["", "", "", ""]
        qos, idle, unmet = ([f"{np.mean(v):.3f}" if v else "-" for v in (final_metrics(
            mruns, k) for k in keys)] for keys in (QOS_METRICS, ["rb_utilisation"],
                                                   ["rb_idle_unmet"]))
        idle = "-" if idle[0] == "-" else f"{1 - float(idle[0]):.2f}"
        n_unmet = len(final_metrics(mruns, "rb_idle_unmet"))  # older records lack it
        unmet = unmet[0] + (f" (n={n_unmet})" if 0 < n_unmet < len(mruns) else "")
        lines.append("| " + " | ".join([method_label(m), str(len(score)), *cells,
                                        " / ".join(qos), f"{idle} / {unmet}"]) + " |")
    return lines


def headline_findings(runs: list[Run], args: Args, grid: str, scenario: str) -> list[str]:
    """The README's findings under the headline table, every number from the records: TA-SAM vs
    No-SAM and vs the fixed rho settings (the same comparison() streams as the tables), and the
    learned methods against the reference rows (normalised score, eMBB QoS, idle RBs)."""
    by_method = group(runs)
    learned = [m for m in by_method if not m[0].startswith(HEURISTIC_PREFIX)]
    if TA_SAM not in by_method or HEADLINE_BASE not in by_method:
        return []
    scores = {m: [r.score for r in by_method[m]] for m in by_method}

    def compared(method, ref):
        gain, _, p, detectable = comparison(scores[method], scores[ref], args, grid, scenario,
                                            *method, *ref)
        return gain, p, 100 * detectable

    gain, p, detectable = compared(TA_SAM, HEADLINE_BASE)
    n, n_base = len(scores[TA_SAM]), len(scores[HEADLINE_BASE])
    seeds = f"{n} seeds each" if n == n_base else f"{n} vs {n_base} seeds"
    lines = [f"- **TA-SAM vs No-SAM, {seeds}: {fmt_gain(gain)}**, Welch p = {p:.2f}. These seeds "
             f"would detect a gain of about {detectable:.1f}%; the paper reports up to +22%."]
    fixed = [(rho, radii) for rho, radii in (("unequal", "0.05/0.01"), ("equal", "0.01/0.01"))
             if ("ta-sam", rho) in by_method]
    if fixed:
        parts, overlapping = [], []
        for rho, radii in fixed:
            gain, p, _ = compared(TA_SAM, ("ta-sam", rho))
            parts.append(f"{fmt_gain(gain)} over {rho} rho ({radii}, {n} vs "
                         f"{len(scores[('ta-sam', rho)])} seeds, p = {p:.3f})")
            if gain[1] <= 0.10 and gain[2] >= 0.05:
                overlapping.append(rho)
        reach = ("both intervals" if len(overlapping) == len(fixed) == 2 else
                 f"the {overlapping[0]} setting's interval" if overlapping else "neither interval")
        below = [rho for rho, _ in fixed
                 if np.mean(scores[("ta-sam", rho)]) < np.mean(scores[HEADLINE_BASE])]
        lines.append(f"- **Dynamic rho vs the paper's fixed settings**: {'; '.join(parts)}; the "
                     f"paper's 5-10% overlaps {reach}."
                     + (f" Fixed {' and '.join(below)} rho score below No-SAM." if below else ""))
    norm = normaliser(by_method)
    pf = (HEURISTIC_PREFIX + "pf_no_slicing", "none")
    split = next((m for m in headline_references(by_method)
                  if m[0].startswith(HEURISTIC_PREFIX + "split-")), None)
    if not norm or pf not in by_method:
        return [wrapped(line) for line in lines]
    mean = lambda m, key: np.mean(final_metrics(by_method[m], key))  # noqa: E731
    span = lambda values, fmt: f"{fmt(min(values))}-{fmt(max(values))}"  # noqa: E731
    level = [float(normalised(scores[m], norm).mean()) for m in learned]
    text = ("- **Every learned method stays below the heuristics**: "
            f"{span(level, '{:.2f}'.format)} "
            "of the way from the static split to the full-information reference, where PF without "
            f"slicing reaches {normalised(scores[pf], norm).mean():.2f}")
    if split:
        shares = "/".join(str(round(100 * float(x))) for x in split[0].split("-")[2:])
        text += (f" and one constant split of the 100 RBs ({shares} to eMBB/mMTC/URLLC) "
                 f"{normalised(scores[split], norm).mean():.2f}")
    embb = [mean(m, "qos_embb") for m in learned]
    idle = [1 - mean(m, "rb_utilisation") for m in learned]
    percent = lambda x: f"{100 * x:.0f}"  # noqa: E731
    text += (f". The gap is in eMBB (QoS {span(embb, '{:.2f}'.format)} against PF's "
             f"{mean(pf, 'qos_embb'):.2f}), and the learned policies leave "
             f"{span(idle, percent)}% of the RBs idle against PF's "
             f"{percent(1 - mean(pf, 'rb_utilisation'))}%.")
    unmet = [mean(m, "rb_idle_unmet") for m in learned
             if final_metrics(by_method[m], "rb_idle_unmet")]
    if unmet and final_metrics(by_method[pf], "rb_idle_unmet"):
        text += (" Most of those are RBs an unsatisfied slice could have used: in the runs that "
                 "measure it (those trained since the metric was added, n in the last column), "
                 f"{span(unmet, percent)}% of the RBs are idle at DUs where a slice is below full "
                 f"QoS, against {percent(mean(pf, 'rb_idle_unmet'))}% for PF.")
    return [wrapped(line) for line in lines + [text]]


def wrapped(item: str) -> str:
    """A markdown list item wrapped as the README's prose is."""
    return textwrap.fill(item, width=115, subsequent_indent="  ", break_on_hyphens=False)


README_TABLE = re.compile(r"(<!-- table: ([\w./+-]+) -->\n)(.*?)(<!-- /table -->)", re.S)


def readme_tables(args: Args, names) -> dict[str, str]:
    """The tables of the markers' names, computed exactly as results.md computes them (same
    bootstrap streams): '<experiment>/<scenario>' (a method grid's method table, or a learning
    check's rows), '<experiment>/aggregate', 'headline/<experiment>/<scenario>' (the README's
    headline table), 'findings/<experiment>/<scenario>' (the bullets under it), 'claims' (the
    `paper` and `nonstationary` grids) or 'claims/<experiment>[+<experiment>...]' (one table of
    several grids), 'rb-ablation' (the RB-level ablation's experiments),
    'fixed-splits', 'heuristics' (its headroom table: 'heuristics/headroom', its per-DU table:
    'heuristics/<scenario>'), 'comp-heuristics', and a PPO experiment's table, '<ppo>/load',
    '<ppo>/verdict' (against the tuned dynamic CoMP) or '<ppo>/training-reward'."""
    tables, notes = {}, []
    for name in names:
        experiment, _, part = name.partition("/")
        folder = args.records / experiment
        runs = (load_grid(folder, notes) if folder.is_dir()
                and experiment not in ("headline", "findings", "claims") else [])
        if experiment == "claims":  # claims or claims/<experiment>[+<experiment>...]
            names = tuple((part or "paper+nonstationary").split("+"))
            grids = {g: load_grid(args.records / g, notes) for g in names
                     if (args.records / g).is_dir()}
            rows = claims_table(grids, args, names) if any(grids.values()) else []
        elif experiment == "headline":  # headline/<experiment>/<scenario>
            grid, _, scenario = part.partition("/")
            runs = [r for r in load_grid(args.records / grid, notes) if r.scenario == scenario]
            rows = headline_rows(runs, args, grid, scenario)
        elif experiment == "findings":  # findings/<experiment>/<scenario>: the headline's bullets
            grid, _, scenario = part.partition("/")
            runs = [r for r in load_grid(args.records / grid, notes) if r.scenario == scenario]
            rows = headline_findings(runs, args, grid, scenario)
        elif experiment == "rb-ablation":
            rows = ablation_rows([r for g in sorted(args.records.glob("rb-ablation*"))
                                  if g.name != "rb-ablation-5fc924f" for r in load_grid(g, notes)])
        elif kind_of_experiment(experiment) == "splits":
            rows = splits_rows(runs)
        elif kind_of_experiment(experiment) == "heuristics":
            tuning = args.records / "heuristics-tuning"
            parts = heuristics_tables(runs, load_grid(tuning, notes) if tuning.is_dir() else [],
                                      args) if runs else {}
            rows = parts.get(part, [])
        elif kind_of_experiment(experiment) == "comp_heuristics":
            rows = comp_heuristics_rows(runs, args) if runs else []
        elif kind_of_experiment(experiment) == "ppo":
            if part == "load":
                rows = ppo_load_rows(runs, load_heuristics(args.records, notes))
            elif part == "training-reward":
                rows = ppo_training_reward_rows(runs, args, section_rng(args.seed, experiment,
                                                                        "training-reward"))
            elif part == "verdict":
                rows = ppo_verdict_rows(runs, args, section_rng(args.seed, experiment, "verdict"))
            else:
                rows = ppo_rows(runs, args, section_rng(args.seed, experiment))
        elif kind_of_experiment(experiment) == "learning_check":
            rows = learning_check_rows(runs, args.records, notes).get(part, []) if runs else []
            rows = [LC_HEAD, "| --- " * 13 + "|", *rows] if rows else []
        elif part == "aggregate":
            rows, _ = aggregate_table(runs, args, section_rng(args.seed, experiment))
        else:
            by_method = group([r for r in runs if r.scenario == part])
            rows = (method_table(by_method, args, section_rng(args.seed, experiment, part))
                    if by_method else [])
        if not rows:
            raise ValueError(f"table {name!r}: no records for it under {args.records}")
        tables[name] = "\n".join(finite_cells(rows)) + "\n"
    return tables


NON_FINITE = re.compile(r"(?<![\w.])[+-]?(nan|inf)\b")


def finite_cells(lines: list[str]) -> list[str]:
    """Markdown lines with every table cell that would show nan or inf shown as "-": the records
    hold finite numbers only (records.validate), but a statistic of too few runs is undefined."""
    return [line if not (line.startswith("|") and NON_FINITE.search(line)) else "|" + "|".join(
        " - " if NON_FINITE.search(cell) else cell for cell in line.split("|")[1:-1]) + "|"
        for line in lines]


def marked_files(root: Path) -> list[Path]:
    """README.md and the pages under docs/ of a repository."""
    return [p for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))] if p.is_file()]


def rewritten(path: Path, args: Args) -> tuple[str, int]:
    """(text, how many tables) of a markdown file with the tables between `<!-- table: NAME -->`
    and `<!-- /table -->` computed from the records."""
    text = path.read_text()
    tables = readme_tables(args, [m.group(2) for m in README_TABLE.finditer(text)])
    return (README_TABLE.sub(lambda m: m.group(1) + tables[m.group(2)] + m.group(4), text),
            len(tables))


def update_readme(path: Path, args: Args) -> int:
    """Rewrites the marked tables of a markdown file; returns how many."""
    text, n = rewritten(path, args)
    path.write_text(text)
    return n


def check_paths(args: Args) -> list[Path]:
    """Every path, before any figure is written: the records root a folder, --out a folder this
    process can write, and with --readme --root a folder with README.md whose marked files can be
    written; returns those files."""
    if not args.records.is_dir():
        run_utils.fail(f"--records {args.records}: not a folder of records")
    run_utils.check_output_path("--out", str(args.out), is_dir=True)
    if not args.readme:
        return []
    if not (args.root / "README.md").is_file():
        run_utils.fail(f"--root {args.root}: no README.md there (--readme rewrites its tables)")
    files = marked_files(args.root)
    for path in files:
        if not os.access(path, os.R_OK | os.W_OK):
            run_utils.fail(f"--readme: cannot read and write {path}")
    return files


def report(args: Args) -> tuple[list[Path], list[str]]:
    """Writes the figures and results.md from the records; returns (figures, notes)."""
    if args.n_boot < 100 or args.curve_points < 2:
        raise ValueError(f"--n-boot must be >= 100 and --curve-points >= 2, got {args.n_boot}, "
                         f"{args.curve_points}")
    check_paths(args)
    notes: list[str] = []
    args.out.mkdir(parents=True, exist_ok=True)
    figures: list[Path] = []
    lines = [f"# Results from the records in `{args.records}`", "", GAIN_DEFINITION, ""]
    grids = {g.name: load_grid(g, notes)
             for g in sorted(p for p in args.records.iterdir() if p.is_dir())}
    if not grids:
        notes.append(f"no grid folders of records under {args.records}")
    for grid, runs in grids.items():
        grid_rng = section_rng(args.seed, grid)  # the grid-wide sections (generalisation, DU sweep)
        lines += ["", f"## Experiment `{grid}`", ""]
        if not runs:
            lines.append("No usable runs.")
            continue
        kind = kind_of_experiment(grid)
        if kind == "learning_check":
            learning_check_section(grid, runs, args, args.out, figures, notes, lines)
            continue
        if kind == "ablation":
            lines += ablation_rows(runs)
            continue
        if kind == "splits":
            lines += splits_rows(runs)
            continue
        if kind == "ppo":
            ppo_section(grid, runs, args, args.out, figures, notes, lines)
            continue
        if kind == "heuristics":
            tables = heuristics_tables(runs, grids.get("heuristics-tuning", []), args)
            lines += tables.pop("") + ["", "Headroom (mean episode return [95% CI]):", ""]
            lines += tables.pop("headroom")
            for scenario, rows in tables.items():
                lines += ["", f"Per DU on `{scenario}` (Q eMBB / Q mMTC / Q URLLC, return):", ""]
                lines += rows
            continue
        if kind == "tuning":
            lines += tuning_rows(runs)
            continue
        if kind == "comp_heuristics":
            lines += comp_heuristics_rows(runs, args)
            continue
        if grid == "generalisation":
            source = [r for r in grids.get("paper", []) if not r.is_heuristic]
            generalisation_section(f"{grid}_returns", runs, source, args, grid_rng, args.out,
                                   figures, notes, lines)
            continue
        scenarios = sorted({r.scenario for r in runs},
                           key=lambda s: list(SCENARIOS).index(s) if s in SCENARIOS else 99)
        for scenario in scenarios:
            by_method = group([r for r in runs if r.scenario == scenario])
            tag = f"{grid}" if len(scenarios) == 1 else f"{grid}_{scenario}"
            rng = section_rng(args.seed, grid, scenario)
            lines += [f"### Scenario `{scenario}`", ""]
            lines += method_table(by_method, args, rng)
            lines += ["", GAIN_NOTE, ""]
            if grid == "du_sweep":
                continue  # the per-DU-count figures and table follow below
            fig_boxplot(f"{tag}_score_boxplot", by_method, args.out, figures, notes)
            fig_reward_curves(f"{tag}_reward_vs_steps", by_method, TAG_TRAIN_RETURN,
                              "training episodic return", args, rng, args.out, figures, notes)
            fig_reward_curves(f"{tag}_eval_return_vs_steps", by_method, TAG_EVAL_RETURN,
                              "evaluation return", args, rng, args.out, figures, notes)
            fig_qos(f"{tag}_qos_per_slice", by_method, args, args.out, figures, notes)
            fig_cdf(f"{tag}_ue_throughput_cdf", by_method, args, args.out, figures, notes)
            fig_sharpness(f"{tag}_critic_sharpness", by_method, args, rng, args.out, figures, notes)
            fig_td_var(f"{tag}_td_var_sam_active", by_method, args, rng, args.out, figures, notes)
            if any(m[1].startswith("fixed") for m in by_method):
                fig_rho_sweep(f"{tag}_best_return_vs_rho", by_method, args, rng, args.out, figures,
                              notes, lines)
            if scenario == "nonstationary":
                nonstationary_section(f"{tag}_shift", by_method, args, rng, args.out, figures,
                                      notes, lines)
        if grid == "du_sweep":
            sweep_section(f"{grid}_return_vs_dus", runs, args, grid_rng, args.out, figures, notes,
                          lines)
        else:
            aggregate_section(f"{grid}_performance_profile", runs, args, grid_rng, args.out,
                              figures, notes, lines)
        lines.append("")
    lines += ["## The paper's claims", ""]
    for names in (("paper", "nonstationary"), ("rb-paper", "rb-hetero", "rb-nonstationary")):
        ran = [g for g in names if grids.get(g)]
        if ran:
            lines += [f"On the {' and '.join(f'`{g}`' for g in ran)} grids:", ""]
            lines += claims_table(grids, args, names) + [""]
    lines += ["## Figures", ""] + [f"![{p.stem}]({p.name})" for p in figures]
    lines += ["", "## Notes (skipped input)", ""] + [f"- {n}" for n in notes]
    (args.out / "results.md").write_text("\n".join(finite_cells(lines)) + "\n")
    return figures, notes


def main(args: Args) -> None:
    # the marked tables are computed before any figure is written: a bad page or a table without
    # records stops the command with nothing written
    pages = {path: rewritten(path, args) for path in check_paths(args)}
    figures, notes = report(args)
    for note in dict.fromkeys(notes):
        print("note:", note)
    print(f"wrote {len(figures)} figures and {args.out / 'results.md'}")
    for path, (text, n) in pages.items():
        if n:
            path.write_text(text)
            print(f"rewrote {n} tables in {path}")


if __name__ == "__main__":
    import sys

    try:
        main(tyro.cli(Args))
    except ValueError as e:  # bad input: exit code 2, as for a bad flag
        print(f"plot_results.py: error: {e}", file=sys.stderr)
        sys.exit(2)
