"""Learning check on the RB-level action: the training scripts with their defaults against the heuristics.

Trains each of `--scripts` (default `sac_marl_baseline.py`) with its defaults on each scenario (`rb_slice`
actions) for each seed; a run whose folder already holds a finished `summary.json` is reused, and a compact
record of each run (evaluation histories of the deterministic and the sampled policy, final QoS,
wall time; no weights or event files) is kept under `--records`, so `--only-plot` redraws everything
without training. The heuristics are scored on exactly the runs' evaluation episodes (the scripts'
fixed EVAL_SEED, `--eval-episodes` copies). Prints one markdown table (a row per scenario and script) and
draws, per scenario, each script's mean evaluation return of the deterministic and the sampled policy
against env steps, with a min-max band over seeds and the heuristics as reference lines:

    python benchmarks/learning_check.py                  # trains what is missing (long: see README)
    python benchmarks/learning_check.py --only-plot      # table and figure from the committed records
"""
import importlib
import json
import shlex
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional
from unittest import mock

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import tyro  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from records import read_scalars  # noqa: E402
from run_experiments import evaluate_heuristic  # noqa: E402

HEURISTICS = ("static_equal", "urllc_first", "ue_count", "pf_no_slicing", "random")
ARGV_LOCK = threading.Lock()  # the scripts' parse_args reads sys.argv; runs are recorded from several threads
FINAL_METRICS = ("qos_embb", "qos_mmtc", "qos_urllc", "rb_overuse", "rb_utilisation")  # kept of the final evaluation


@dataclass
class Args:
    scenarios: list[str] = field(default_factory=lambda: ["small", "paper"])
    """O-RAN scenarios"""
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5])
    """training seeds (every seed is evaluated on the same episodes, as in the scripts)"""
    scripts: list[str] = field(default_factory=lambda: ["sac_marl_baseline.py"])
    """training scripts, run with their defaults (plus --scenario, --seed, --torch-threads 1, --run-dir, --flags)"""
    flags: str = ""
    """flags added to every run trained now, e.g. --flags="--init-bias 0.3" (with "=": the value starts with --): a
    candidate default checked before it becomes one, with its own --runs and --records; a record keeps them, and
    the table refuses a record whose flags differ"""
    total_timesteps: Optional[int] = None
    """--total-timesteps of the runs trained now (default: the script's, 20000); the records keep their own"""
    eval_episodes: int = 32
    """evaluation episodes (the scripts' default; the heuristics are scored on the same ones)"""
    workers: int = 2
    """training runs in parallel, one torch thread each, under nice"""
    runs: Path = ROOT / "runs" / "learning_check"
    """run folders (reused when finished)"""
    records: Path = ROOT / "docs" / "learning_check"
    """compact JSON record per run (committed)"""
    out: Path = ROOT / "docs" / "learning_check.png"
    """figure to write"""
    only_plot: bool = False
    """use the records only: no training"""
    record_only: bool = False
    """train nothing: write the records from the run folders as they are (an unfinished run: partial, from the
    evaluations in its event files; a finished one only if its saved arguments are the script's with --flags)"""


def record_path(args, script, scenario, seed):
    return args.records / f"{Path(script).stem}__{scenario}__s{seed}.json"


def check_run_args(script, argv, run_dir):
    """A finished run is recorded only if its saved arguments are what the script makes of `argv` today (a run
    copied from another folder, trained with other flags or before a default changed, is refused)."""
    with ARGV_LOCK, mock.patch.object(sys, "argv", [script, *argv]):
        expected = json.loads(json.dumps(asdict(importlib.import_module(Path(script).stem).parse_args())))
    saved = json.loads((run_dir / "summary.json").read_text())["args"]
    ignored = {"resume", "run_dir", "cuda", "torch_threads", "checkpoint_interval", "progress_interval"}
    if differ := sorted(k for k in expected if k not in ignored and saved.get(k) != expected[k]):
        sys.exit(f"{run_dir} was not trained as `{script} {shlex.join(argv)}`: other values of {differ}")


def train(args, script, scenario, seed):
    budget = ["--total-timesteps", str(args.total_timesteps)] if args.total_timesteps else []
    run_dir = args.runs / Path(script).stem / f"{scenario}{''.join(budget[1:])}" / f"s{seed}"
    argv = ["--scenario", scenario, "--seed", str(seed), "--torch-threads", "1", "--eval-episodes",
            str(args.eval_episodes), "--run-dir", str(run_dir), "--resume", *budget, *shlex.split(args.flags)]
    if not (run_dir / "summary.json").exists() and not args.record_only:
        subprocess.run(["nice", "-n", "10", sys.executable, str(ROOT / script), *argv], check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
    if not run_dir.is_dir():  # --record-only for a run never started: nothing to record
        return print(f"no run folder {run_dir}: no record")
    if (run_dir / "summary.json").exists():
        check_run_args(script, argv, run_dir)
    record = {"script": script, "scenario": scenario, "seed": seed, "eval_episodes": args.eval_episodes,
              "flags": shlex.split(args.flags), **summary_or_events(run_dir)}
    args.records.mkdir(parents=True, exist_ok=True)
    record_path(args, script, scenario, seed).write_text(json.dumps(record, separators=(",", ":")))


def read_record(args, path):
    """A record, if it was trained with --flags (records written before the field existed: no flags)."""
    record = json.loads(path.read_text())
    if record.get("flags", []) != shlex.split(args.flags):
        sys.exit(f"{path} was trained with the flags {record.get('flags', [])}, not --flags {args.flags!r}: "
                 f"pass its flags, or other --records")
    return record


def summary_or_events(run_dir):
    """What a record keeps of a finished run (summary.json) or, marked partial, of one stopped before its end
    (the evaluations in its event files)."""
    if not (run_dir / "summary.json").exists():
        scalars = read_scalars(run_dir)
        history = {f"{tag}_history": [[int(s), float(v)] for s, v in zip(*scalars[f"{tag}/episodic_return"])]
                   for tag in ("eval", "eval_sampled")}
        last = {k: float(scalars[f"eval/{k}"][1][-1]) for k in FINAL_METRICS}
        return {"partial": True, "total_timesteps": history["eval_history"][-1][0], "wall_time_s": None,
                **history, "final_qos": last}
    s = json.loads((run_dir / "summary.json").read_text())
    return {"partial": False, "total_timesteps": s["global_step"], "wall_time_s": round(s["wall_time_s"], 1),
            "eval_history": s["eval_history"], "eval_sampled_history": s["eval_sampled_history"],
            "final_qos": {k: round(s["final_eval"]["metrics"][k], 4) for k in FINAL_METRICS}}


def last_fifth(history):
    """The evaluations in the last 20% of training (steps >= 0.8 T, as the records' run score)."""
    return np.array([r for s, r in history if s >= 0.8 * history[-1][0]])


def stable(history):
    """Every evaluation in the last 20% of training within 10% of their mean."""
    last = last_fifth(history)
    return bool(np.all(np.abs(last - last.mean()) <= 0.1 * abs(last.mean())))


def main(args: Args) -> None:
    if not args.only_plot:
        jobs = [(script, sc, seed) for script in args.scripts for sc in args.scenarios for seed in args.seeds]
        with ThreadPoolExecutor(args.workers) as pool:
            list(pool.map(lambda job: train(args, *job), jobs))
    fig, axes = plt.subplots(1, len(args.scenarios), figsize=(6.5 * len(args.scenarios), 4), squeeze=False)
    print("| scenario | script | steps | seeds | final det. (mean ± sd) | final sampled | last 20% (mean ± sd) "
          "| stable last 20% | Q eMBB/mMTC/URLLC, RB use | static split | best heuristic | last 20% / best "
          "| wall (s) |\n"
          + "| --- " * 13 + "|")
    for ax, scenario in zip(axes[0], args.scenarios):
        paths = {script: [record_path(args, script, scenario, seed) for seed in args.seeds] for script in args.scripts}
        by_script = {script: [read_record(args, p) for p in ps if p.exists()] for script, ps in paths.items()}
        by_script = {script: recs for script, recs in by_script.items() if recs}
        if not by_script:
            continue
        episodes = next(iter(by_script.values()))[0]["eval_episodes"]
        heur = {name: evaluate_heuristic(scenario, name, 0, episodes)["episodic_return"] for name in HEURISTICS}
        for (script, recs), color in zip(by_script.items(), ("C0", "C3", "C2")):
            for key, style, label in (("eval_history", "-", "deterministic"),
                                      ("eval_sampled_history", "--", "sampled")):
                steps = [s for s, _ in min((rec[key] for rec in recs), key=len)]  # the steps all runs reached
                returns = np.array([[r for _, r in rec[key]][: len(steps)] for rec in recs])
                ax.plot(steps, returns.mean(0), style, color=color, marker="o", ms=3,
                        label=f"{Path(script).stem}, {label} (mean of {len(recs)})")
                if key == "eval_history":
                    ax.fill_between(steps, returns.min(0), returns.max(0), color=color, alpha=0.15)
        for (name, value), style in zip(heur.items(), (":", "--", (0, (3, 1, 1, 1)), "-.", (0, (1, 4)))):
            ax.axhline(value, color="grey", ls=style, lw=1, label=f"heuristic: {name}")
        ax.set(xlabel="environment steps", ylabel="evaluation return",
               title=f"`{scenario}`, RB-level actions (band: min-max, deterministic)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
        best = max((v, k) for k, v in heur.items())
        for script, recs in by_script.items():
            det = np.array([r["eval_history"][-1][1] for r in recs])
            smp = np.array([r["eval_sampled_history"][-1][1] for r in recs])
            late = np.array([last_fifth(r["eval_history"]).mean() for r in recs])
            q = "/".join(f"{np.mean([r['final_qos'][k] for r in recs]):.2f}" for k in FINAL_METRICS[:3])
            q += f", {np.mean([r['final_qos']['rb_utilisation'] for r in recs]):.2f}"
            print(f"| {scenario} | {Path(script).stem} | {recs[0]['total_timesteps']} | {len(recs)} | "
                  f"{det.mean():.1f}±{det.std():.1f} | {smp.mean():.1f}±{smp.std():.1f} | "
                  f"{late.mean():.1f}±{late.std():.1f} "
                  f"| {sum(stable(r['eval_history']) for r in recs)}/{len(recs)} | {q} | {heur['static_equal']:.1f} "
                  f"| {best[1]} {best[0]:.1f} | {late.mean() / best[0]:.2f} "
                  f"| {' '.join('partial' if r['partial'] else str(round(r['wall_time_s'])) for r in recs)} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110, bbox_inches="tight")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main(tyro.cli(Args))
