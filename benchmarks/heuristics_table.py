"""Heuristic baselines of oran_env (SPEC A.7) and the headroom above them, per scenario: mean
per-slice QoS and mean episode return, each with a 95% bootstrap confidence interval over
independent episodes.

One episode = `episode_length` steps from a fresh drop; its QoS is the mean over steps and DUs of
Q_l, its return the mean over DUs of each DU's summed reward (the team return the training
scripts log as charts/episodic_return). The episodes of a cell run as one batch of independent
copies.

Tuning: before its table rows, every parameterised heuristic (TUNING: the urllc_first margin,
the ue_count RBs per UE) is tuned per scenario by a grid search for the largest mean return on
`--tune-episodes` episodes of seed `--tune-seed`; the table's episodes come from seed `--seed`
(independent streams, so the tuning and table episodes are disjoint).

Headroom table per scenario: the episode maximum of the reward (episode_length x
sum_l sigmoid(alpha_l): every Q_l = 1, no over-use; a true upper bound), the full-information
reference (oran_env.full_information_reference: a per-step search that sees the step; not an upper
bound, see its docstring), the best heuristic, the best heuristic that reads only the observation
(oran_env.OBSERVATION_ONLY) and the static equal split. With `--per-du` scenarios, a table of each
DU's QoS and return under every heuristic follows.

    python benchmarks/heuristics_table.py [--episodes 12] [--tune-episodes 6]
        [--scenarios paper hetero light heavy] [--per-du hetero] [--action-mode rb_slice]
        [--seed 0] [--tune-seed 1000] [--no-full-info] [--json out.json]
"""

import os

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import argparse  # noqa: E402
import functools  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import oran_env  # noqa: E402

TUNING = {
    "urllc_first": {"margin": (1.0, 1.25, 1.5, 2.0, 3.0)},
    "ue_count": {"rbs_per_urllc": (1.0, 1.5, 2.0), "rbs_per_mmtc": (0.2, 0.3, 0.5)},
}


def bootstrap_ci(x, rng, n_boot=2000):
    """95% percentile bootstrap interval of the mean of x."""
    means = rng.choice(x, size=(n_boot, len(x)), replace=True).mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def run_cell(scenario, policy, episodes, seed, action_mode):
    env = oran_env.make_env(scenario, num_envs=episodes, seed=seed, action_mode=action_mode)
    qos, qos_du = np.zeros((episodes, 3)), np.zeros((env.n_agents, 3))
    for _ in range(env.episode_length):
        _, _, _, trunc, info = env.step(policy(env))
        qos += info["qos"].mean(1)
        qos_du += info["qos"].mean(0)
    assert trunc.all()
    ret = info["episode"]["return"]  # (episodes, N)
    return {"qos": qos / env.episode_length, "return": ret.mean(-1),
            "qos_du": qos_du / env.episode_length, "return_du": ret.mean(0)}


def tune(scenario, name, episodes, seed, action_mode):
    """The grid point of TUNING[name] with the largest mean return on the tuning episodes."""
    space = TUNING[name]
    best = None
    for values in itertools.product(*space.values()):
        params = dict(zip(space, values))
        policy = functools.partial(oran_env.HEURISTICS[name], **params)
        ret = run_cell(scenario, policy, episodes, seed, action_mode)["return"].mean()
        if best is None or ret > best[0]:
            best = (ret, params)
    return best[1]


def fmt_ci(x, rng, fmt):
    lo, hi = bootstrap_ci(x, rng)
    return f"{fmt.format(x.mean())} [{fmt.format(lo)}, {fmt.format(hi)}]", [lo, hi]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--episodes", type=int, default=12, help="table episodes per cell")
    p.add_argument("--tune-episodes", type=int, default=6, help="tuning episodes per grid point")
    p.add_argument("--scenarios", nargs="+", default=["paper", "hetero", "light", "heavy"])
    p.add_argument("--heuristics", nargs="+", default=list(oran_env.HEURISTICS))
    p.add_argument("--per-du", nargs="*", default=["hetero"], help="scenarios with a per-DU table")
    p.add_argument("--action-mode", default="rb_slice", choices=["rb_slice", "rb_slice_ue", "slice_share"])
    p.add_argument("--seed", type=int, default=0, help="seed of the table's episodes")
    p.add_argument("--tune-seed", type=int, default=1000, help="seed of the tuning episodes")
    p.add_argument("--no-full-info", action="store_true", help="skip the full-information reference")
    p.add_argument("--json", default=None, help="also write the numbers to this file")
    args = p.parse_args()
    if args.seed == args.tune_seed:
        p.error("--seed and --tune-seed must differ (tuning and table episodes must be disjoint)")
    rng = np.random.default_rng(12345)
    rows, headroom, per_du = [], [], []
    print(f"episodes per cell: {args.episodes} (seed {args.seed}); tuning: {args.tune_episodes} episodes "
          f"per grid point (seed {args.tune_seed}); action mode: {args.action_mode}; "
          "mean [95% bootstrap CI]; tuned parameters in brackets: "
          + "; ".join(f"{name} ({', '.join(space)})" for name, space in TUNING.items()) + "\n")
    print("| scenario | heuristic | Q eMBB | Q mMTC | Q URLLC | episode return |")
    print("| --- | --- | --- | --- | --- | --- |")
    for scenario in args.scenarios:
        cells = {}
        policies = {}
        for name in args.heuristics:
            params = tune(scenario, name, args.tune_episodes, args.tune_seed, args.action_mode) \
                if name in TUNING else {}
            label = f"{name} ({', '.join(f'{v:g}' for v in params.values())})" if params else name
            policies[label] = (name, functools.partial(oran_env.HEURISTICS[name], **params))
        if not args.no_full_info:
            policies["full_info"] = ("full_info", oran_env.full_information_reference)
        for label, (name, policy) in policies.items():
            cell = cells[label] = run_cell(scenario, policy, args.episodes, args.seed, args.action_mode)
            cell["name"] = name
            row = {"scenario": scenario, "heuristic": label}
            texts = []
            for key, x in zip(("qos_embb", "qos_mmtc", "qos_urllc", "return"),
                              (*cell["qos"].T, cell["return"])):
                text, ci = fmt_ci(x, rng, "{:.1f}" if key == "return" else "{:.3f}")
                row[key] = {"mean": float(x.mean()), "ci95": ci}
                texts.append(text)
            rows.append(row)
            print(f"| {scenario} | {label} | " + " | ".join(texts) + " |", flush=True)
        heur = {k: v for k, v in cells.items() if v["name"] != "full_info"}
        best = max(heur, key=lambda k: heur[k]["return"].mean())
        obs_only = [k for k in heur if heur[k]["name"] in oran_env.OBSERVATION_ONLY]
        best_obs = max(obs_only, key=lambda k: heur[k]["return"].mean()) if obs_only else None
        static = next((k for k in heur if heur[k]["name"] == "static_equal"), None)
        c = oran_env.make_config(scenario)
        episode_max = c.episode_length * oran_env.sigmoid(np.array(c.reward_alpha)).sum()
        headroom.append({"scenario": scenario, "episode_max": float(episode_max),
                         "full_info": cells.get("full_info"), "best": best, "best_obs": best_obs,
                         "static": static, "cells": cells})
        if scenario in args.per_du:
            per_du.append((scenario, cells))
    print("\nHeadroom: mean episode return [95% bootstrap CI]\n")
    print("| scenario | episode maximum | full-information reference | best heuristic "
          "| best observation-only heuristic | static split |")
    print("| --- | --- | --- | --- | --- | --- |")
    for h in headroom:
        parts = [f"{h['episode_max']:.1f}"]
        parts.append(fmt_ci(h["full_info"]["return"], rng, "{:.1f}")[0] if h["full_info"] else "-")
        for key in ("best", "best_obs", "static"):
            label = h[key]
            parts.append(f"{fmt_ci(h['cells'][label]['return'], rng, '{:.1f}')[0]} ({label})"
                         if label else "-")
        print(f"| {h['scenario']} | " + " | ".join(parts) + " |")
    for scenario, cells in per_du:
        n = len(next(iter(cells.values()))["return_du"])
        print(f"\nPer DU on {scenario}: Q eMBB / Q mMTC / Q URLLC, episode return (mean over "
              f"{args.episodes} episodes)\n")
        print("| heuristic | " + " | ".join(f"du_{i}" for i in range(n)) + " |")
        print("| --- |" + " --- |" * n)
        for label, cell in cells.items():
            print(f"| {label} | " + " | ".join(
                "{:.2f} / {:.2f} / {:.2f}, {:.0f}".format(*cell["qos_du"][i], cell["return_du"][i])
                for i in range(n)) + " |")
    if args.json:
        out = {"episodes": args.episodes, "tune_episodes": args.tune_episodes, "seed": args.seed,
               "tune_seed": args.tune_seed, "action_mode": args.action_mode, "rows": rows,
               "headroom": [{"scenario": h["scenario"], "episode_max": h["episode_max"],
                             **{k: h[k] for k in ("best", "best_obs", "static")}} for h in headroom],
               "per_du": {s: {label: {"qos": cell["qos_du"].tolist(), "return": cell["return_du"].tolist()}
                              for label, cell in cells.items()} for s, cells in per_du}}
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
