"""Fixed RB splits on the learning check's evaluation episodes: what one constant RB-level action scores.

Every DU plays the same split at every step: eMBB, mMTC and URLLC get contiguous blocks of round(share x K) RBs
and the rest stay idle (no slice claims them), PF inside each slice, so the action ignores the observation.
Scored as the learning check scores the heuristics (`run_experiments.evaluate_heuristic`: the scripts'
EVAL_SEED, `--eval-episodes` copies), against PF without slicing on the same episodes. `--splits` are the rows
to show; a grid over the mMTC and URLLC shares (eMBB gets every other RB) finds the best constant split. Prints
one markdown table:

    python benchmarks/fixed_splits.py                  # small and paper: about 5 min here
    python benchmarks/fixed_splits.py --scenarios paper --splits 0.55/0.12/0.21 0.67/0.12/0.21 --grid
"""
import itertools
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tyro

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import oran_env  # noqa: E402
from run_experiments import evaluate_heuristic  # noqa: E402


@dataclass
class Args:
    scenarios: list[str] = field(default_factory=lambda: ["small", "paper"])
    """O-RAN scenarios"""
    splits: list[str] = field(default_factory=lambda: ["0.55/0.12/0.21", "0.67/0.12/0.21"])
    """RB shares eMBB/mMTC/URLLC of the rows to show (summing to at most 1; the rest idle)"""
    grid: tuple[tuple[float, ...], tuple[float, ...]] = ((0.04, 0.08, 0.12), (0.08, 0.12, 0.16, 0.2, 0.24))
    """mMTC shares, then URLLC shares, of the search for the best constant split (eMBB: the rest)"""
    eval_episodes: int = 32
    """evaluation episodes (the scripts' default; the heuristics are scored on the same ones)"""


def parse_split(text):
    shares = np.array([float(x) for x in text.split("/")])
    if len(shares) != 3 or not np.all(np.isfinite(shares)) or shares.min() < 0 or shares.sum() > 1 + 1e-9:
        raise SystemExit(f"error: --splits {text!r}: three shares eMBB/mMTC/URLLC in [0, 1] summing to at most 1")
    return shares


def fixed_split(counts):
    """The policy that plays the RB counts (L,) at every DU and step."""
    def policy(env):
        rb_slice = oran_env.counts_to_rb_slice(np.asarray(counts), env.config.num_rbs)
        return oran_env.encode_allocation(env, np.broadcast_to(rb_slice, (env.num_envs, env.n_agents, len(rb_slice))))
    return policy


def main(args: Args) -> None:
    splits = [parse_split(s) for s in args.splits]
    print("| scenario | split | RBs eMBB/mMTC/URLLC, idle | return | / PF without slicing | Q eMBB/mMTC/URLLC | RB use |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for scenario in args.scenarios:
        num_rbs = oran_env.make_config(scenario).num_rbs
        pf, static = (evaluate_heuristic(scenario, name, 0, args.eval_episodes)["episodic_return"]
                      for name in ("pf_no_slicing", "static_equal"))

        def score(shares):
            counts = np.rint(np.asarray(shares) * num_rbs).astype(int)
            final = evaluate_heuristic(scenario, fixed_split(counts), 0, args.eval_episodes)
            return counts, final["episodic_return"], final["metrics"]

        def row(label, result):
            counts, ret, m = result
            q = "/".join(f"{m[f'qos_{s}']:.2f}" for s in ("embb", "mmtc", "urllc"))
            print(f"| {scenario} | {label} | {'/'.join(map(str, counts))}, {num_rbs - counts.sum()} | {ret:.1f} | "
                  f"{ret / pf:.3f} | {q} | {m['rb_utilisation']:.2f} |")

        for shares in splits:
            row("/".join(f"{s:g}" for s in shares), score(shares))
        grid = [np.array([1 - m - u, m, u]) for m, u in itertools.product(*args.grid) if m + u <= 1]
        if grid:
            results = [score(shares) for shares in grid]
            best = int(np.argmax([r[1] for r in results]))
            row(f"best of {len(grid)} (grid): " + "/".join(f"{s:.2f}" for s in grid[best]), results[best])
        print(f"| {scenario} | static_equal (reference) | | {static:.1f} | {static / pf:.3f} | | |")
        print(f"| {scenario} | pf_no_slicing (reference) | | {pf:.1f} | 1.000 | | |")


if __name__ == "__main__":
    main(tyro.cli(Args))
