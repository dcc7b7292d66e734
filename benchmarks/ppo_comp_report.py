"""Table, learning curves and load sweep of the PPO grid on comp_env (README "Multi-agent PPO on comp_env").

Reads the run summaries in results_comp/ ({scenario}-{mode}-{seed}.json, written by
benchmarks/ppo_comp_grid.sh), evaluates DeepCoMP's heuristics on the same episodes (the runs' evaluation
seed and count; UE trajectories do not depend on the actions), and writes
- Markdown tables to stdout and results_comp/report.md,
- docs/ppo_comp_curves.png: evaluation utility and return against env steps, PPO mean over seeds with a
  95% band, the heuristics as horizontal lines,
- docs/ppo_comp_load.png: BSs per UE and utility against UEs per BS (the runs' load sweep).
Confidence intervals: PPO over seeds (Student t on the seeds' means), heuristics over episodes (their
policy is fixed; 1.96 standard errors); the paired differences to best_cell and dynamic_comp take each
episode's utility (PPO: mean over seeds) minus the heuristic's on the same episode, CI over episodes.
SAC summaries (results_comp/{scenario}-sac-{seed}.json, from `--sac-model`) join the table when present.

    python benchmarks/ppo_comp_report.py                                   # ~1 min, no training
    python benchmarks/ppo_comp_report.py --sac-model runs/sac/model.pt --sac-seed 1   # add a SAC actor
"""
import argparse
import json
import os
import re
import sys
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import comp_env  # noqa: E402
import ppo_comp  # noqa: E402

POLICIES = ("multi", "central", "sac", "best_cell", "dynamic_comp", "full_comp", "random")
LABELS = {"multi": "PPO multi-agent", "central": "PPO central", "sac": "SAC (sac_marl_baseline.py)",
          "best_cell": "best_cell", "dynamic_comp": "dynamic_comp", "full_comp": "full_comp", "random": "random"}
HEURISTIC_STYLE = {"best_cell": ("tab:gray", "--"), "dynamic_comp": ("black", "-."), "full_comp": ("tab:brown", ":")}


def t_interval(values):
    """Mean and 95% half-width of a Student t interval over independent values (seeds)."""
    values = np.asarray(values, float)
    if len(values) < 2:
        return float(values.mean()), float("nan")
    half_width = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return float(values.mean()), float(half_width)


def normal_interval(values):
    values = np.asarray(values, float)
    return float(values.mean()), float(1.96 * values.std(ddof=1) / np.sqrt(len(values)))


def heuristic_policy(name):
    scores = comp_env.HEURISTICS[name]
    return lambda obs, env: scores(env).argmax(axis=2)


def evaluate_heuristics(scenario, episodes, seed, load_factors):
    """{name: {"final": per-episode results, "load": {factor: means}}} on the runs' episodes."""
    out = {}
    for name in comp_env.HEURISTICS:
        env = comp_env.make_env(scenario, num_envs=episodes, seed=seed, reward="multi")
        out[name] = {"final": ppo_comp.evaluate(heuristic_policy(name), env, seed), "load": {}}
        for factor in load_factors:
            loaded = comp_env.make_env(scenario, num_envs=episodes, seed=seed, reward="multi",
                                       num_slow_ues=factor * env.config.num_slow_ues,
                                       num_fast_ues=factor * env.config.num_fast_ues)
            means = {k: float(np.mean(v)) for k, v in ppo_comp.evaluate(heuristic_policy(name), loaded, seed).items()}
            out[name]["load"][factor] = {"num_ues": loaded.n_agents, **means}
    return out


def evaluate_sac(model_path, scenario, episodes, seed):
    """Deterministic SAC actor (tanh of the mean scores, argmax as comp_env does) on the shared episodes."""
    import torch
    import sac_marl_baseline

    state = torch.load(model_path, map_location="cpu", weights_only=True)
    env = comp_env.make_env(scenario, num_envs=episodes, seed=seed, reward="multi")
    actor = sac_marl_baseline.Actor(env.n_agents, env.obs_dim, env.act_dim, state["hidden_sizes"])
    actor.load_state_dict(state["actor"])

    def policy(obs, env):
        with torch.no_grad():
            _, _, action = actor.get_action(torch.as_tensor(obs).transpose(0, 1))
        return action.transpose(0, 1).numpy().argmax(axis=2)
    return ppo_comp.evaluate(policy, env, seed)


def load_runs(folder):
    runs = {}
    for path in sorted(folder.glob("*.json")):
        match = re.fullmatch(r"(small|medium|large)-(multi|central|sac)-(\d+)", path.stem)
        if match:
            runs.setdefault((match[1], match[2]), []).append(json.loads(path.read_text()))
    return runs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=str(ROOT / "results_comp"), help="folder of the run summaries")
    parser.add_argument("--docs", default=str(ROOT / "docs"), help="folder for the PNG figures")
    parser.add_argument("--sac-model", help="model.pt of a `sac_marl_baseline.py --env-id comp --save-model` run: "
                                            "evaluate it on the shared episodes and store its summary first")
    parser.add_argument("--sac-scenario", default="medium", choices=sorted(comp_env.SCENARIOS))
    parser.add_argument("--sac-seed", type=int, default=1, help="the SAC run's seed (names its summary file)")
    parser.add_argument("--sac-steps", type=int, default=0, help="the SAC run's env steps (recorded)")
    args = parser.parse_args()
    folder = Path(args.results)
    runs = load_runs(folder)
    if not runs:
        sys.exit(f"error: no run summaries ({{scenario}}-{{mode}}-{{seed}}.json) in {folder}")
    any_run = next(iter(runs.values()))[0]["args"]
    episodes, seed = any_run["eval_episodes"], any_run["eval_seed"]
    if args.sac_model:
        result = evaluate_sac(args.sac_model, args.sac_scenario, episodes, seed)
        path = folder / f"{args.sac_scenario}-sac-{args.sac_seed}.json"
        path.write_text(json.dumps({"script": "sac_marl_baseline.py", "global_step": args.sac_steps,
                                    "final_eval": result, "eval_history": [], "load_sweep": {}}))
        runs = load_runs(folder)

    lines = [f"Evaluation on {episodes} fixed episodes (seed {seed}) shared by every policy; PPO: mean over "
             "seeds +- 95% t-interval over seeds; heuristics: +- 95% interval over episodes. Return: the mean "
             "over UEs of each UE's episode return under the multi-agent (competing-set) reward. Paired "
             "differences: per-episode utility (PPO: mean over seeds) minus the heuristic's on the same "
             "episode, +- 95% interval over episodes.", ""]
    lines += ["| scenario | policy | seeds | env steps | utility per UE-step | episode return | BSs per UE | "
              "unconnected | utility - best_cell | utility - dynamic_comp | wall time per run (min) |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    heuristics, curves = {}, {}
    for scenario in ("small", "medium", "large"):
        if not any(s == scenario for s, _ in runs):
            continue
        factors = sorted({int(f) for (s, _), group in runs.items() if s == scenario for r in group
                          for f in r["load_sweep"]})
        heuristics[scenario] = evaluate_heuristics(scenario, episodes, seed, factors)
        for policy in POLICIES:
            if policy in heuristics[scenario]:
                final = heuristics[scenario][policy]["final"]
                cells = [normal_interval(final[k]) for k in ("utility", "return")]
                seeds, steps, wall, paired = "-", "-", "-", ["-", "-"]
                bs = np.mean(final["connections_per_ue"])
                unconnected = np.mean(final["unconnected_fraction"])
            elif (scenario, policy) in runs:
                group = runs[(scenario, policy)]
                cells = [t_interval([np.mean(r["final_eval"][k]) for r in group]) for k in ("utility", "return")]
                seeds, steps = str(len(group)), f"{group[0]['global_step']:,}"
                walls = [r["wall_time_s"] / 60 for r in group if "wall_time_s" in r]
                wall = f"{np.mean(walls):.1f} ({min(walls):.1f}-{max(walls):.1f})" if walls else "-"
                bs = np.mean([np.mean(r["final_eval"]["connections_per_ue"]) for r in group])
                unconnected = np.mean([np.mean(r["final_eval"]["unconnected_fraction"]) for r in group])
                curves[(scenario, policy)] = group
                per_episode = np.mean([r["final_eval"]["utility"] for r in group], axis=0)  # mean over seeds
                paired = ["{:+.2f} +- {:.2f}".format(*normal_interval(
                    per_episode - np.asarray(heuristics[scenario][name]["final"]["utility"])))
                    for name in ("best_cell", "dynamic_comp")]
            else:
                continue
            lines.append(f"| {scenario} | {LABELS[policy]} | {seeds} | {steps} | "
                         + " | ".join(f"{m:.2f} +- {h:.2f}" for m, h in cells)
                         + f" | {bs:.2f} | {unconnected:.3f} | {paired[0]} | {paired[1]} | {wall} |")

    lines += ["", "Load sweep: the final multi-agent PPO policy (trained at the preset's UE count) and the "
              "heuristics with k times the slow and fast UEs; mean over seeds / episodes.", "",
              "| scenario | UEs | policy | BSs per UE | utility per UE-step | unconnected |",
              "| --- | --- | --- | --- | --- | --- |"]
    for scenario, by_name in heuristics.items():
        group = runs.get((scenario, "multi"), [])
        for factor in sorted({int(f) for r in group for f in r["load_sweep"]}):
            rows = [(LABELS["multi"], [r["load_sweep"][str(factor)] for r in group])]
            rows += [(name, [by_name[name]["load"][factor]]) for name in HEURISTIC_STYLE]
            for label, sweeps in rows:
                lines.append(f"| {scenario} | {sweeps[0]['num_ues']} | {label} | "
                             f"{np.mean([s['connections_per_ue'] for s in sweeps]):.2f} | "
                             f"{np.mean([s['utility'] for s in sweeps]):.2f} | "
                             f"{np.mean([s['unconnected_fraction'] for s in sweeps]):.3f} |")
    text = "\n".join(lines)
    print(text)
    (folder / "report.md").write_text(text + "\n")
    draw(runs, curves, heuristics, Path(args.docs))


def draw(runs, curves, heuristics, docs):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = list(heuristics)
    fig, axes = plt.subplots(2, len(scenarios), figsize=(5.5 * len(scenarios), 7), squeeze=False)
    for col, scenario in enumerate(scenarios):
        for row, (key, ylabel) in enumerate((("utility", "utility per UE-step"), ("return", "episode return"))):
            ax = axes[row, col]
            for policy, colour in (("multi", "tab:blue"), ("central", "tab:orange")):
                group = curves.get((scenario, policy))
                if not group:
                    continue
                steps = np.array([h["step"] for h in group[0]["eval_history"]])
                values = np.array([[h[key] for h in r["eval_history"]] for r in group])  # (seeds, points)
                band = np.array([t_interval(values[:, j]) for j in range(values.shape[1])])
                ax.plot(steps, band[:, 0], color=colour, label=f"{LABELS[policy]} ({len(group)} seeds)")
                if len(group) > 1:
                    ax.fill_between(steps, band[:, 0] - band[:, 1], band[:, 0] + band[:, 1], color=colour, alpha=0.2)
            for name, (colour, style) in HEURISTIC_STYLE.items():
                level = np.mean(heuristics[scenario][name]["final"][key])
                ax.axhline(level, color=colour, linestyle=style, label=name)
            if key == "utility":
                ax.set_ylim(bottom=max(ax.get_ylim()[0], -6))
            ax.set_title(f"{scenario}: {ylabel}")
            ax.set_xlabel("env steps")
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(docs / "ppo_comp_curves.png", dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for scenario, marker in zip(scenarios, "os^"):
        group = runs.get((scenario, "multi"), [])
        factors = sorted({int(f) for r in group for f in r["load_sweep"]})
        if not factors:
            continue
        for ax, key in zip(axes, ("connections_per_ue", "utility")):
            ues = [group[0]["load_sweep"][str(f)]["num_ues"] / group[0]["num_bs"] for f in factors]  # UEs per BS
            ax.plot(ues, [np.mean([r["load_sweep"][str(f)][key] for r in group]) for f in factors], marker=marker,
                    color="tab:blue", label=f"PPO multi-agent, {scenario}")
            for name, (colour, style) in HEURISTIC_STYLE.items():
                ax.plot(ues, [heuristics[scenario][name]["load"][f][key] for f in factors], marker=marker,
                        color=colour, linestyle=style, label=f"{name}, {scenario}")
    axes[0].set_ylabel("mean BSs per UE")
    axes[1].set_ylabel("utility per UE-step")
    for ax in axes:
        ax.set_xlabel("UEs per BS (load)")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.tight_layout()
    fig.savefig(docs / "ppo_comp_load.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(f"\nwrote {docs / 'ppo_comp_curves.png'} and {docs / 'ppo_comp_load.png'}")


if __name__ == "__main__":
    main()
