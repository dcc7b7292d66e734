"""Fixed RB splits on the learning check's evaluation episodes: what one constant RB-level action scores.

Every DU plays the same split at every step: eMBB, mMTC and URLLC get contiguous blocks of round(share x K) RBs
and the rest stay idle (no slice claims them), PF inside each slice, so the action ignores the observation.
Scored as the learning check scores the heuristics (`run_experiments.evaluate_heuristic`: the scripts'
EVAL_SEED, `--eval-episodes` copies), against PF without slicing on the same episodes. `--splits` are the rows
to show; a grid over the mMTC and URLLC shares (eMBB gets every other RB) finds the best constant split, and one
over the UE-count rule's parameters the best allocation that follows the UE counts the agents observe. Both
searches score on the evaluation episodes themselves: what these allocations can reach, not tuned heuristics.
Prints one markdown table:

    python benchmarks/fixed_splits.py                  # small and paper: about 1 min here
    python benchmarks/fixed_splits.py --scenarios paper --splits 0.6/0.1/0.2 --rbs-per-urllc 1 --rbs-per-mmtc 0.3
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
    mmtc_shares: tuple[float, ...] = (0.04, 0.08, 0.12)
    """mMTC shares of the search for the best constant split (a grid with --urllc-shares; eMBB: the rest)"""
    urllc_shares: tuple[float, ...] = (0.08, 0.12, 0.16, 0.2, 0.24)
    """URLLC shares of the search for the best constant split"""
    rbs_per_urllc: tuple[float, ...] = (0.5, 1, 1.5, 2)
    """RBs per URLLC UE of the search for the best UE-count rule (`oran_env.ue_count_split`, observation-only; a
    grid with --rbs-per-mmtc)"""
    rbs_per_mmtc: tuple[float, ...] = (0.1, 0.2, 0.3, 0.5)
    """RBs per mMTC UE of the search for the best UE-count rule"""
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


def best_of(scenario, policies, episodes):
    """(index, final_eval) of the policy with the highest mean return."""
    finals = [evaluate_heuristic(scenario, policy, 0, episodes) for policy in policies]
    best = int(np.argmax([f["episodic_return"] for f in finals]))
    return best, finals[best]


def main(args: Args) -> None:
    splits = [parse_split(s) for s in args.splits]
    print("| scenario | allocation | RBs eMBB/mMTC/URLLC, idle | return | / PF without slicing | Q eMBB/mMTC/URLLC | "
          "RB use |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for scenario in args.scenarios:
        num_rbs = oran_env.make_config(scenario).num_rbs
        pf = evaluate_heuristic(scenario, "pf_no_slicing", 0, args.eval_episodes)

        def counts_of(shares):
            counts = np.rint(np.asarray(shares) * num_rbs).astype(int)
            if counts.sum() > num_rbs:  # rounding up past K would shorten the last block without a word
                raise SystemExit(f"error: shares {shares} round to {counts.sum()} of the {num_rbs} RBs of {scenario}")
            return counts

        def row(label, final, counts=None):
            ret, m = final["episodic_return"], final["metrics"]
            q = "/".join(f"{m[f'qos_{s}']:.2f}" for s in ("embb", "mmtc", "urllc"))
            rbs = "" if counts is None else f"{'/'.join(map(str, counts))}, {num_rbs - counts.sum()}"
            print(f"| {scenario} | {label} | {rbs} | {ret:.1f} | {ret / pf['episodic_return']:.3f} | {q} | "
                  f"{m['rb_utilisation']:.2f} |")

        for shares in splits:
            counts = counts_of(shares)
            row("/".join(f"{s:g}" for s in shares), evaluate_heuristic(scenario, fixed_split(counts), 0,
                                                                        args.eval_episodes), counts)
        grid = [np.array([1 - m - u, m, u]) for m, u in itertools.product(args.mmtc_shares, args.urllc_shares)
                if m + u <= 1]
        if grid:
            best, final = best_of(scenario, [fixed_split(counts_of(g)) for g in grid], args.eval_episodes)
            row(f"best constant split of {len(grid)}: " + "/".join(f"{s:.2f}" for s in grid[best]), final,
                counts_of(grid[best]))
        rules = list(itertools.product(args.rbs_per_urllc, args.rbs_per_mmtc))
        if rules:
            best, final = best_of(scenario, [lambda env, u=u, m=m: oran_env.ue_count_split(env, u, m)
                                             for u, m in rules], args.eval_episodes)
            row(f"best UE-count rule of {len(rules)}: {rules[best][0]:g}/{rules[best][1]:g} RBs per URLLC/mMTC UE",
                final)
        row("static_equal (reference)", evaluate_heuristic(scenario, "static_equal", 0, args.eval_episodes))
        row("pf_no_slicing (reference)", pf)


if __name__ == "__main__":
    main(tyro.cli(Args))
