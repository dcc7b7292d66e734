"""Learning check on the RB-level action: the training scripts with their defaults against the heuristics.

Trains `sac_marl_baseline.py` (or `--script`) with its defaults on each scenario (`rb_slice` actions)
for each seed; a run whose folder already holds a finished `summary.json` is reused, and a compact
record of each run (evaluation histories of the deterministic and the sampled policy, final QoS,
wall time; no weights or event files) is kept under `--records`, so `--only-plot` redraws everything
without training. The heuristics are scored on exactly the runs' evaluation episodes (seed + 10000,
`--eval-episodes` copies; averaged over the seeds). Prints one markdown table and draws the mean
evaluation return against env steps with a min-max band over seeds, heuristics as reference lines:

    python benchmarks/learning_check.py                  # trains what is missing (long: see README)
    python benchmarks/learning_check.py --only-plot      # table and figure from the committed records
"""
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import tyro  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from run_experiments import evaluate_heuristic  # noqa: E402

HEURISTICS = ("static_equal", "urllc_first", "pf_no_slicing", "random")


@dataclass
class Args:
    scenarios: list[str] = field(default_factory=lambda: ["small", "paper"])
    """O-RAN scenarios"""
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5])
    """training seeds (the evaluation episodes of seed s use seed s + 10000, as the scripts do)"""
    script: str = "sac_marl_baseline.py"
    """training script, run with its defaults (plus --scenario, --seed, --torch-threads 1, --run-dir)"""
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


def record_path(args, scenario, seed):
    return args.records / f"{Path(args.script).stem}__{scenario}__s{seed}.json"


def train(args, scenario, seed):
    run_dir = args.runs / Path(args.script).stem / scenario / f"s{seed}"
    if not (run_dir / "summary.json").exists():
        subprocess.run(["nice", "-n", "10", sys.executable, str(ROOT / args.script), "--scenario", scenario,
                        "--seed", str(seed), "--torch-threads", "1", "--eval-episodes", str(args.eval_episodes),
                        "--run-dir", str(run_dir), "--resume"], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    s = json.loads((run_dir / "summary.json").read_text())
    record = {"script": args.script, "scenario": scenario, "seed": seed, "eval_episodes": args.eval_episodes,
              "wall_time_s": round(s["wall_time_s"], 1), "eval_history": s["eval_history"],
              "eval_sampled_history": s["eval_sampled_history"],
              "final_qos": {k: round(s["final_eval"]["metrics"][k], 4) for k in
                            ("qos_embb", "qos_mmtc", "qos_urllc", "rb_overuse")}}
    args.records.mkdir(parents=True, exist_ok=True)
    record_path(args, scenario, seed).write_text(json.dumps(record, separators=(",", ":")))


def stable(history):
    """Every evaluation in the last 20% of training within 10% of their mean."""
    total = history[-1][0]
    last = np.array([r for s, r in history if s > 0.8 * total])
    return bool(np.all(np.abs(last - last.mean()) <= 0.1 * abs(last.mean())))


def main(args: Args) -> None:
    if not args.only_plot:
        jobs = [(sc, seed) for sc in args.scenarios for seed in args.seeds]
        with ThreadPoolExecutor(args.workers) as pool:
            list(pool.map(lambda job: train(args, *job), jobs))
    fig, axes = plt.subplots(1, len(args.scenarios), figsize=(6 * len(args.scenarios), 4), squeeze=False)
    print("| scenario | seeds | final det. (mean ± sd) | final sampled | stable last 20% | Q eMBB/mMTC/URLLC "
          "| static split | best heuristic | wall (s) |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for ax, scenario in zip(axes[0], args.scenarios):
        recs = [json.loads(p.read_text()) for seed in args.seeds if (p := record_path(args, scenario, seed)).exists()]
        if not recs:
            continue
        heur = {name: np.mean([evaluate_heuristic(scenario, name, r["seed"], r["eval_episodes"])["episodic_return"]
                               for r in recs]) for name in HEURISTICS}
        for key, style, label in (("eval_history", "-", "deterministic"), ("eval_sampled_history", "--", "sampled")):
            steps = [s for s, _ in recs[0][key]]
            returns = np.array([[r for _, r in rec[key]][: len(steps)] for rec in recs])
            ax.plot(steps, returns.mean(0), style, marker="o", ms=3, label=f"{label} policy (mean)")
            ax.fill_between(steps, returns.min(0), returns.max(0), alpha=0.2)
        for (name, value), style in zip(heur.items(), (":", "--", "-.", (0, (1, 4)))):
            ax.axhline(value, color="grey", ls=style, lw=1, label=f"heuristic: {name}")
        ax.set(xlabel="environment steps", ylabel="evaluation return",
               title=f"{args.script} on `{scenario}`, {len(recs)} seeds (band: min-max)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
        det = np.array([r["eval_history"][-1][1] for r in recs])
        smp = np.array([r["eval_sampled_history"][-1][1] for r in recs])
        q = "/".join(f"{np.mean([r['final_qos'][k] for r in recs]):.2f}" for k in ("qos_embb", "qos_mmtc", "qos_urllc"))
        best = max((v, k) for k, v in heur.items())
        print(f"| {scenario} | {len(recs)} | {det.mean():.1f} ± {det.std():.1f} | {smp.mean():.1f} ± {smp.std():.1f} "
              f"| {sum(stable(r['eval_history']) for r in recs)}/{len(recs)} | {q} | {heur['static_equal']:.1f} "
              f"| {best[1]} {best[0]:.1f} | {np.mean([r['wall_time_s'] for r in recs]):.0f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110, bbox_inches="tight")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main(tyro.cli(Args))
