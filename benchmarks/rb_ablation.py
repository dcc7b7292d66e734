"""Ablation of multi-agent SAC on the RB-level action (`--action-mode rb_slice`: K x 3 real scores per DU,
thresholded at 0 by the env; an RB goes to the claiming slice with the largest score, claims above K are
penalised over-use).

Each configuration is `sac_marl_baseline.py` with the flags in CONFIGS (short runs: --total-timesteps,
evaluation every --eval-interval env steps). A run is reused when its record exists; otherwise it is trained
(under nice, one torch thread, --workers at a time) and a compact JSON record is kept under --records: the
evaluation histories of the deterministic and the sampled policy (return and QoS), training diagnostics of the
policy every 1000 updates where present, and the final actor's return under each way of turning it into one
RB-level action (`decode_variants`, scored post hoc from the run's checkpoint). No weights or event files, so
the table regenerates without retraining:

    python benchmarks/rb_ablation.py --only-table      # the README table, from the committed records
    python benchmarks/rb_ablation.py --scenario small --configs cleanrl alpha1e-3+bias1 --seeds 1 2 3

The records in docs/rb_ablation/ are of the current code. Those in docs/rb_ablation/5fc924f/ (read them with
`--records docs/rb_ablation/5fc924f --only-table`) ran on the simulator before the work-conserving scheduler
(oran_env of 5fc924f), 6k env steps, with the experimental version of the script at commit e552927 (branch
issue-14-ablation), whose flags each record lists; there, evaluation episodes were seeded seed + 10000 (5 on
`small`, 32 on `paper`). A configuration marked * used a flag of that version (te0.5: target entropy
-0.5 act_dim; now `--target-entropy -0.5`, config te-0.5).
"""
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import tyro

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from learning_check import last_fifth, stable  # noqa: E402

# The defaults the ablation started from, spelled out first in every configuration (a later flag wins), so that the
# records outlive a change of the defaults: SAC's entropy target, one env copy (one update per env step, the
# RB-level default before --num-envs 2), gamma 0.99 and constant learning rates (not `small`'s RB_LEVEL_DEFAULTS)
BASE = ["--target-entropy", "-1", "--num-envs", "1", "--gamma", "0.99", "--lr-decay-to", "1"]
CONFIGS = {  # name -> flags of the current scripts (CleanRL's init: temperature 1, random action-head bias)
    "cleanrl": [*BASE, "--alpha-init", "1", "--init-bias", "0"],
    "bias1": [*BASE, "--alpha-init", "1", "--init-bias", "1"],
    "alpha1e-2": [*BASE, "--alpha-init", "1e-2", "--init-bias", "0"],
    "alpha1e-2+bias1": [*BASE, "--alpha-init", "1e-2", "--init-bias", "1"],
    "alpha1e-3+bias1": [*BASE, "--alpha-init", "1e-3", "--init-bias", "1"],  # the RB-level defaults before --num-envs 2
    "alpha1e-2+bias1+lr3e-4": [*BASE, "--alpha-init", "1e-2", "--init-bias", "1", "--policy-lr", "3e-4",
                               "--q-lr", "3e-4"],
    # one change each from alpha1e-3+bias1
    "gamma0.9": [*BASE, "--gamma", "0.9"],
    "lr3e-4": [*BASE, "--policy-lr", "3e-4", "--q-lr", "3e-4"],
    "qlr1e-3": [*BASE, "--q-lr", "1e-3"],
    "batch1024": [*BASE, "--batch-size", "1024"],
    "tau0.02": [*BASE, "--tau", "0.02"],
    "bias0": [*BASE, "--init-bias", "0"],  # CleanRL's random action-head bias
    "te-0.5": [*BASE, "--target-entropy", "-0.5"],  # a higher entropy target: -0.5 act_dim
    "utd2": [*BASE, "--updates-per-step", "2"],
    "utd0.5": [*BASE, "--num-envs", "2"],  # the defaults on `paper`: 1 update per 2 env steps
    "utd0.25": [*BASE, "--num-envs", "4"],  # one update per 4 env steps
    # one change each from the defaults with two env copies (utd0.5)
    "utd0.5+batch512": [*BASE, "--num-envs", "2", "--batch-size", "512"],
    "utd0.5+bias0.3": [*BASE, "--num-envs", "2", "--init-bias", "0.3"],  # scores nearer 0
    "gamma0.9+te-0.5": [*BASE, "--gamma", "0.9", "--target-entropy", "-0.5"],  # two leads on `small`
    "anneal": [*BASE, "--lr-decay-to", "0"],  # actor and critic learning rates decay linearly to 0
    # `small`'s RB-level defaults since 240b555 (RB_LEVEL_DEFAULTS in the scripts)
    "gamma0.9+te-0.5+anneal": [*BASE, "--gamma", "0.9", "--target-entropy", "-0.5", "--lr-decay-to", "0"],
}


@dataclass
class Args:
    scenario: str = "small"
    """O-RAN scenario of the runs"""
    configs: list[str] = field(default_factory=lambda: ["cleanrl", "alpha1e-3+bias1"])
    """configurations (keys of CONFIGS) to run"""
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3])
    """training seeds"""
    total_timesteps: int = 20000
    """env steps per run (the scripts' default budget)"""
    eval_interval: int = 2000
    """env steps between evaluations (the scripts' default)"""
    eval_episodes: int = 32
    """evaluation episodes of each evaluation (the scripts' default)"""
    workers: int = 2
    """runs in parallel (each with one torch thread, under nice)"""
    runs: Path = ROOT / "runs" / "rb_ablation"
    """run folders"""
    records: Path = ROOT / "docs" / "rb_ablation"
    """compact JSON records, one per run (committed; docs/rb_ablation/5fc924f: the simulator before v2)"""
    only_table: bool = False
    """print the table from the records without running anything"""


def decode_variants(mean, log_std, generator):
    """Ways of turning the policy into one RB-level action (real scores the env thresholds at 0): deterministic
    tanh(mean) (the scripts' `eval/`); sampled tanh(mean + std * noise) (`eval_sampled/`); z-score
    tanh(mean / std) (the deterministic claims, but a contested RB goes to the slice most likely to claim it);
    expected count (each slice claims as many RBs as the sampled policy does on average, round(sum_k
    P(score_kl > 0)), namely its most likely ones, scored by that probability)."""
    std = log_std.exp()
    pk = torch.special.ndtr(mean / std).unflatten(-1, (-1, 3))  # P(sampled score > 0) per (RB, slice)
    count = pk.sum(-2, keepdim=True).round()
    rank = pk.argsort(-2, descending=True).argsort(-2)
    expected = torch.where(rank < count, pk, -torch.ones_like(pk)).flatten(-2)
    return {"deterministic": torch.tanh(mean),
            "sampled": torch.tanh(mean + std * torch.randn(mean.shape, generator=generator)),
            "z-score": torch.tanh(mean / std), "expected count": expected}


def posthoc(run_dir, episodes):
    """Evaluation return of each decoding of a run's final actor (its checkpoint.pt), on the scripts'
    evaluation episodes."""
    import oran_env
    import sac_marl_baseline as sac
    ckpt = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
    env = oran_env.make_env(ckpt["args"]["scenario"], num_envs=episodes, seed=sac.EVAL_SEED)
    actor = sac.Actor(env.n_agents, env.obs_dim, env.act_dim, tuple(ckpt["hidden"]))
    actor.load_state_dict(ckpt["actor"])
    out = {}
    for name in ("deterministic", "sampled", "z-score", "expected count"):
        obs, _ = env.reset(seed=sac.EVAL_SEED)
        generator = torch.Generator().manual_seed(sac.EVAL_SEED)
        for _ in range(env.episode_length):
            with torch.no_grad():
                action = decode_variants(*actor(torch.as_tensor(obs).transpose(0, 1)), generator)[name]
            obs, _, _, _, info = env.step(action.transpose(0, 1).numpy())
        out[name] = float(info["episode"]["return"].mean())
    return out


def run_one(args, name, seed):
    out = args.records / f"{args.scenario}__{name}__{args.total_timesteps}__s{seed}.json"
    if out.exists():
        return
    run_dir = args.runs / args.scenario / f"{name}__{args.total_timesteps}" / f"s{seed}"
    if not (run_dir / "summary.json").exists():
        cmd = ["nice", "-n", "10", sys.executable, str(ROOT / "sac_marl_baseline.py"), "--scenario", args.scenario,
               "--seed", str(seed), "--torch-threads", "1", "--checkpoint-interval", "0", "--resume",
               "--total-timesteps", str(args.total_timesteps), "--eval-interval", str(args.eval_interval),
               "--eval-episodes", str(args.eval_episodes), "--run-dir", str(run_dir), *CONFIGS[name]]
        subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    s = json.loads((run_dir / "summary.json").read_text())
    record = {"config": name, "flags": CONFIGS[name], "scenario": args.scenario, "seed": seed,
              "total_timesteps": args.total_timesteps, "eval_episodes": args.eval_episodes,
              "wall_time_s": round(s["wall_time_s"], 1), "eval_history": s["eval_history"],
              "eval_sampled_history": s["eval_sampled_history"], "final_metrics": s["final_eval"]["metrics"],
              "posthoc": posthoc(run_dir, args.eval_episodes)}
    args.records.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, separators=(",", ":")))


def det_metrics(record):
    """Final QoS and over-use of the deterministic policy (the experimental records keep them in the last entry
    of eval_sampled_history as [step, return, sampled metrics, deterministic metrics])."""
    return record.get("final_metrics") or record["eval_sampled_history"][-1][3]


ORDER = ["cleanrl", "bias1", "alpha1e-2", "alpha1e-2+bias1", "alpha1e-2+bias1+lr3e-4",
         "alpha1e-2+bias1+te0.5*", "alpha1e-3+bias1", "gamma0.9", "lr3e-4", "qlr1e-3", "batch1024", "tau0.02",
         "bias0", "te-0.5", "utd2", "utd0.5", "utd0.25", "utd0.5+batch512", "utd0.5+bias0.3", "gamma0.9+te-0.5",
         "anneal", "gamma0.9+te-0.5+anneal"]


def table(records_dir):
    """The README table: final return of the deterministic and the sampled policy (mean ± sd over seeds), their
    gap, the deterministic policy's mean over the last 20% of training (the run score), the expected-count
    decoding of the final actor, stability, and the deterministic policy's final over-use and QoS."""
    groups = {}
    for path in sorted(records_dir.glob("*.json")):
        r = json.loads(path.read_text())
        groups.setdefault((r["scenario"] != "small", r["scenario"], r["total_timesteps"], r["config"]), []).append(r)
    print("| scen. | steps | config | n | det. | sampled | gap | last 20% | exp. count | stable | over-use | Q e/m/u |")
    print("| --- " * 12 + "|")
    for (_, scen, steps, name), rs in sorted(groups.items(), key=lambda g: (g[0][:3], ORDER.index(g[0][3]))):
        det = np.array([r["eval_history"][-1][1] for r in rs])
        smp = np.array([r["eval_sampled_history"][-1][1] for r in rs])
        exp = np.array([r["posthoc"]["expected count"] for r in rs])
        late = np.array([last_fifth(r["eval_history"]).mean() for r in rs])
        m = [det_metrics(r) for r in rs]
        q = "/".join(f"{np.mean([x[k] for x in m]):.2f}" for k in ("qos_embb", "qos_mmtc", "qos_urllc"))
        spread = (lambda x: f"{x.mean():.1f}±{x.std():.1f}") if len(rs) > 1 else (lambda x: f"{x.mean():.1f}")
        print(f"| {scen} | {steps} | {name} | {len(rs)} | {spread(det)} | {spread(smp)} | {(det - smp).mean():.1f} | "
              f"{spread(late)} | {exp.mean():.1f} | "
              f"{sum(stable(r['eval_history']) for r in rs)}/{len(rs)} | {np.mean([x['rb_overuse'] for x in m]):.3f} | "
              f"{q} |")


def main(args):
    if not args.only_table:
        unknown = sorted(set(args.configs) - set(CONFIGS))
        if unknown:
            sys.exit(f"error: --configs: unknown {unknown}; choose from {sorted(CONFIGS)}")
        jobs = [(name, seed) for seed in args.seeds for name in args.configs]
        with ThreadPoolExecutor(args.workers) as pool:
            list(pool.map(lambda job: run_one(args, *job), jobs))
    table(args.records)


if __name__ == "__main__":
    main(tyro.cli(Args))
