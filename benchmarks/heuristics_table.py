"""Heuristic baselines of oran_env (SPEC A.7) on named scenarios: mean per-slice QoS and mean
episode return, each with a 95% bootstrap confidence interval over independent episodes.

One episode = `episode_length` steps from a fresh drop; its QoS is the mean over steps and DUs of
Q_l, its return the mean over DUs of each DU's summed reward (the team return the training
scripts log as charts/episodic_return). The episodes run as one batch of independent copies.

    python benchmarks/heuristics_table.py [--episodes 20] [--scenarios paper light heavy]
        [--action-mode rb_slice] [--seed 0] [--json out.json]
"""

import os

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import oran_env  # noqa: E402


def bootstrap_ci(x, rng, n_boot=2000):
    """95% percentile bootstrap interval of the mean of x."""
    means = rng.choice(x, size=(n_boot, len(x)), replace=True).mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def evaluate(scenario, policy, episodes, seed, action_mode):
    env = oran_env.make_env(scenario, num_envs=episodes, seed=seed, action_mode=action_mode)
    qos = np.zeros((episodes, 3))
    for _ in range(env.episode_length):
        _, _, _, trunc, info = env.step(policy(env))
        qos += np.stack([info["metrics"][f"qos_{s}"] for s in oran_env.SLICES], -1)
    assert trunc.all()
    return qos / env.episode_length, info["episode"]["return"].mean(-1)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--scenarios", nargs="+", default=["paper", "light", "heavy"])
    p.add_argument("--heuristics", nargs="+", default=list(oran_env.HEURISTICS))
    p.add_argument("--action-mode", default="rb_slice", choices=["rb_slice", "rb_slice_ue", "slice_share"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write the numbers to this file")
    args = p.parse_args()
    rng = np.random.default_rng(12345)
    rows = []
    print(f"episodes per cell: {args.episodes}, action mode: {args.action_mode}, seed: {args.seed}; "
          "mean [95% bootstrap CI]\n")
    print("| scenario | heuristic | Q eMBB | Q mMTC | Q URLLC | episode return |")
    print("| --- | --- | --- | --- | --- | --- |")
    for scenario in args.scenarios:
        for name in args.heuristics:
            qos, ret = evaluate(scenario, oran_env.HEURISTICS[name], args.episodes, args.seed,
                                args.action_mode)
            row = {"scenario": scenario, "heuristic": name}
            cells = []
            for key, x in zip(("qos_embb", "qos_mmtc", "qos_urllc", "return"),
                              (qos[:, 0], qos[:, 1], qos[:, 2], ret)):
                lo, hi = bootstrap_ci(x, rng)
                row[key] = {"mean": float(x.mean()), "ci95": [lo, hi]}
                fmt = "{:.1f}" if key == "return" else "{:.3f}"
                cells.append(f"{fmt.format(x.mean())} [{fmt.format(lo)}, {fmt.format(hi)}]")
            rows.append(row)
            print(f"| {scenario} | {name} | " + " | ".join(cells) + " |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"episodes": args.episodes, "action_mode": args.action_mode,
                       "seed": args.seed, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
