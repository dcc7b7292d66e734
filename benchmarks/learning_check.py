"""Learning check: the multi-agent SAC baseline on the O-RAN `small` scenario against the heuristics.

Trains `sac_marl_baseline.py --scenario small` (20k env steps, seed 1) three ways: the defaults
(`rb_slice` actions, the paper's lr 1e-4), `--policy-lr 3e-4 --q-lr 3e-4`, and
`--action-mode slice_share`; a run whose folder already holds a finished `summary.json` is reused.
Then scores the heuristics on exactly the scripts' evaluation episodes, prints a markdown table and
draws the deterministic evaluation return against env steps to `--out`.

    python benchmarks/learning_check.py            # about 20-30 min of training on a 2-core CPU
"""
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import tyro  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from run_experiments import evaluate_heuristic  # noqa: E402

CONFIGS = {
    "defaults (rb_slice, lr 1e-4)": [],
    "--policy-lr 3e-4 --q-lr 3e-4": ["--policy-lr", "3e-4", "--q-lr", "3e-4"],
    "--action-mode slice_share": ["--action-mode", "slice_share"],
}


@dataclass
class Args:
    runs: Path = ROOT / "runs" / "learning_check"
    """folder of the three training runs (reused when finished)"""
    out: Path = ROOT / "docs" / "learning_check_small.png"
    """figure to write"""
    seed: int = 1
    """seed of the training runs (the evaluation episodes use seed + 10000, as the scripts do)"""
    eval_episodes: int = 5
    """evaluation episodes (the scripts' default)"""


def main(args: Args) -> None:
    histories = {}
    for i, (label, flags) in enumerate(CONFIGS.items()):
        run_dir = args.runs / f"config{i}"
        summary = run_dir / "summary.json"
        if not summary.exists():
            subprocess.run([sys.executable, str(ROOT / "sac_marl_baseline.py"), "--scenario", "small",
                            "--seed", str(args.seed), "--eval-episodes", str(args.eval_episodes),
                            "--run-dir", str(run_dir), "--resume", *flags], check=True, cwd=ROOT)
        histories[label] = json.loads(summary.read_text())["eval_history"]
    heuristics = {name: evaluate_heuristic("small", name, args.seed, args.eval_episodes)["episodic_return"]
                  for name in ("random", "static_equal", "urllc_first", "pf_no_slicing")}

    print("| run | final evaluation return | best |\n| --- | --- | --- |")
    for label, history in histories.items():
        returns = [r for _, r in history]
        print(f"| {label} | {returns[-1]:.1f} | {max(returns):.1f} |")
    for name, value in heuristics.items():
        print(f"| heuristic {name} (rb_slice) | {value:.1f} | |")

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, history in histories.items():
        ax.plot(*zip(*history), marker="o", label=label)
    for (name, value), style in zip(heuristics.items(), (":", "--", "-.", "-")):
        ax.axhline(value, color="grey", ls=style, lw=1, label=f"heuristic: {name}")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("deterministic evaluation return")
    ax.set_title(f"sac_marl_baseline.py on `small`, seed {args.seed}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110, bbox_inches="tight")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main(tyro.cli(Args))
