"""Mean utility per UE-step of DeepCoMP's heuristics on comp_env's scenarios, as a Markdown table.

Each cell: mean over episodes of the episode's mean utility per UE and step (utility in [-20, 20],
taken at reward time), +- the half-width of a 95% confidence interval over episodes (normal
approximation, 1.96 standard errors). `random` (uniform scores) is there for reference.

    python benchmarks/comp_heuristics_table.py                 # 100 episodes per cell
    python benchmarks/comp_heuristics_table.py --sharing mixed
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import comp_env  # noqa: E402


def episode_utilities(scenario, policy, episodes, seed, **overrides):
    """Mean utility per UE-step of each of `episodes` episodes (run as one batch), shape (episodes,)."""
    env = comp_env.make_env(scenario, num_envs=episodes, seed=seed, **overrides)
    total = np.zeros(episodes)
    for _ in range(env.episode_length):
        _, _, _, _, info = env.step(policy(env))
        total += info["ue_utility"].mean(axis=1)
    return total / env.episode_length


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100, help="episodes per table cell (>= 30)")
    parser.add_argument("--seed", type=int, default=0, help="the same seed (same episodes) for every policy")
    parser.add_argument("--sharing", default="resource-fair", choices=comp_env.SHARING_MODELS)
    parser.add_argument("--scenarios", nargs="+", default=["small", "medium", "large"])
    args = parser.parse_args()
    if args.episodes < 2:
        parser.error("--episodes must be >= 2 for a confidence interval")

    policies = comp_env.HEURISTICS
    start = time.perf_counter()
    print(f"Mean utility per UE-step (+- 95% CI over {args.episodes} episodes), sharing={args.sharing}, "
          f"seed={args.seed}\n")
    print("| scenario | BSs | UEs (slow+fast) | " + " | ".join(policies) + " |")
    print("| --- | --- | --- | " + " | ".join("---" for _ in policies) + " |")
    for scenario in args.scenarios:
        cfg = comp_env.make_config(scenario, sharing=args.sharing)
        cells = []
        for policy in policies.values():
            u = episode_utilities(scenario, policy, args.episodes, args.seed, sharing=args.sharing)
            half_width = 1.96 * u.std(ddof=1) / np.sqrt(len(u))
            cells.append(f"{u.mean():.2f} +- {half_width:.2f}")
        print(f"| {scenario} | {cfg.num_bs} | {cfg.num_ues} ({cfg.num_slow_ues}+{cfg.num_fast_ues}) | "
              + " | ".join(cells) + " |")
    print(f"\n({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
