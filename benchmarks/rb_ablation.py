"""Ablation of multi-agent SAC on the RB-level action (`--action-mode rb_slice`, K x 3 scores).

Runs `sac_marl_baseline.py` for each configuration and seed (runs already finished under --runs are
reused), stores one compact JSON record per run in --records (evaluation histories of the
deterministic and the sampled policy, a few training diagnostics; no weights or event files), and
prints one markdown table from the records, so the table regenerates without retraining:

    python benchmarks/rb_ablation.py --only-table       # the table from the committed records
    python benchmarks/rb_ablation.py --scenario small --configs default alpha0.01 --seeds 1 2 3
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

CONFIGS = {
    "default": [],
    "alpha0.1": ["--alpha-init", "0.1"],
    "alpha0.01": ["--alpha-init", "0.01"],
    "alpha0.001": ["--alpha-init", "0.001"],
    "bias1": ["--init-bias", "1"],
    "alpha0.01+bias1": ["--alpha-init", "0.01", "--init-bias", "1"],
    "alpha0.01+lr3e-4": ["--alpha-init", "0.01", "--policy-lr", "3e-4", "--q-lr", "3e-4"],
    "lr3e-4": ["--policy-lr", "3e-4", "--q-lr", "3e-4"],
    "alpha0.01+te0.5": ["--alpha-init", "0.01", "--target-entropy-scale", "0.5"],
    "alpha0.01+te2": ["--alpha-init", "0.01", "--target-entropy-scale", "2"],
    "alpha0.001+bias1": ["--alpha-init", "0.001", "--init-bias", "1"],
    "alpha0.01+bias1+te0.5": ["--alpha-init", "0.01", "--init-bias", "1", "--target-entropy-scale", "0.5"],
    "alpha0.01+bias1+lr3e-4": ["--alpha-init", "0.01", "--init-bias", "1", "--policy-lr", "3e-4", "--q-lr", "3e-4"],
    "alpha0.01+bias1+utd2": ["--alpha-init", "0.01", "--init-bias", "1", "--updates-per-step", "2"],
    "alpha0.01+batch512": ["--alpha-init", "0.01", "--batch-size", "512"],
    "alpha0.01+utd2": ["--alpha-init", "0.01", "--updates-per-step", "2"],
}


@dataclass
class Args:
    scenario: str = "small"
    """O-RAN scenario of the runs"""
    configs: list[str] = field(default_factory=lambda: ["default"])
    """configurations (keys of CONFIGS) to run"""
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3])
    """training seeds"""
    total_timesteps: int = 6000
    """env steps per run"""
    eval_interval: int = 500
    """env steps between evaluations"""
    eval_episodes: int = 5
    """evaluation episodes of each evaluation"""
    workers: int = 2
    """runs in parallel (each with one torch thread, under nice)"""
    runs: Path = ROOT / "runs" / "rb_ablation"
    """run folders"""
    records: Path = ROOT / "docs" / "rb_ablation"
    """compact JSON records, one per run (committed)"""
    only_table: bool = False
    """print the table from the records without running anything"""


def run_one(args, name, seed):
    run_dir = args.runs / args.scenario / f"{name}__{args.total_timesteps}" / f"s{seed}"
    if not (run_dir / "summary.json").exists():
        cmd = ["nice", "-n", "10", sys.executable, str(ROOT / "sac_marl_baseline.py"), "--scenario", args.scenario,
               "--seed", str(seed), "--torch-threads", "1", "--checkpoint-interval", "0",
               "--total-timesteps", str(args.total_timesteps), "--eval-interval", str(args.eval_interval),
               "--eval-episodes", str(args.eval_episodes),
               "--run-dir", str(run_dir), *CONFIGS[name]]
        subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    summary = json.loads((run_dir / "summary.json").read_text())
    keep = [d for i, d in enumerate(summary["diag_history"]) if i % 10 == 9]
    record = {"config": name, "flags": CONFIGS[name], "scenario": args.scenario, "seed": seed,
              "total_timesteps": args.total_timesteps,
              "eval_episodes": args.eval_episodes, "wall_time_s": round(summary["wall_time_s"], 1),
              "eval_history": summary["eval_history"], "eval_sampled_history": summary["eval_sampled_history"],
              "diag_history": keep, "posthoc": posthoc(run_dir, args.eval_episodes)}
    args.records.mkdir(parents=True, exist_ok=True)
    out = args.records / f"{args.scenario}__{name}__{args.total_timesteps}__s{seed}.json"
    out.write_text(json.dumps(record, separators=(",", ":")))


def decode_variants(mean, log_std, generator):
    """Ways of turning the policy into one RB-level action (real scores, thresholded at 0 by the env):
    deterministic tanh(mean); sampled tanh(mean + std * noise); z-score tanh(mean / std) (the same claims as
    the deterministic action, but a contested RB goes to the slice most likely to claim it); expected count
    (each slice claims as many RBs as the sampled policy does on average, sum_k P(score_kl > 0), namely
    its most likely ones)."""
    std = log_std.exp()
    p = torch.special.ndtr(mean / std)  # P(sampled score > 0) per (RB, slice)
    K = mean.shape[-1] // 3
    pk = p.unflatten(-1, (K, 3))
    count = pk.sum(-2, keepdim=True).round()  # (..., 1, L)
    rank = pk.argsort(-2, descending=True).argsort(-2)
    expected = torch.where(rank < count, pk, -torch.ones_like(pk)).flatten(-2)
    return {"deterministic": torch.tanh(mean),
            "sampled": torch.tanh(mean + std * torch.randn(mean.shape, generator=generator)),
            "z-score": torch.tanh(mean / std), "expected count": expected}


def posthoc(run_dir, episodes):
    """Evaluation returns of each decoding of the final actor of one run (from its checkpoint.pt), on the
    run's evaluation episodes (seed + 10000)."""
    import oran_env
    import sac_marl_baseline as sac
    ckpt = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
    a = ckpt["args"]
    env = oran_env.make_env(a["scenario"], num_envs=episodes, seed=a["seed"] + 10_000)
    actor = sac.Actor(env.n_agents, env.obs_dim, env.act_dim, tuple(a["hidden_sizes"] or sac.NET_SIZES["cpu"]))
    actor.load_state_dict(ckpt["actor"])
    out = {}
    for name in ("deterministic", "sampled", "z-score", "expected count"):
        obs, _ = env.reset(seed=a["seed"] + 10_000)
        gen = torch.Generator().manual_seed(a["seed"] + 20_000)
        for _ in range(env.episode_length):
            with torch.no_grad():
                mean, log_std = actor(torch.as_tensor(obs).transpose(0, 1))
                action = decode_variants(mean, log_std, gen)[name]
            obs, _, _, _, info = env.step(action.transpose(0, 1).numpy())
        out[name] = float(info["episode"]["return"].mean())
    return out


def stable(history, total):
    """Every evaluation in the last 20% of training within 10% of their mean."""
    last = np.array([r for s, r in history if s > 0.8 * total])
    return bool(np.all(np.abs(last - last.mean()) <= 0.1 * abs(last.mean())))


def table(records_dir):
    groups = {}
    for path in sorted(records_dir.glob("*.json")):
        r = json.loads(path.read_text())
        groups.setdefault((r["scenario"], r["total_timesteps"], r["config"]), []).append(r)
    print("| scenario | steps | config | seeds | final det. | final sampled | det. - sampled | stable (det.) "
          "| det. over-use | det. Q eMBB/mMTC/URLLC | wall (s) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for (scen, steps, name), rs in sorted(groups.items()):
        det = np.array([r["eval_history"][-1][1] for r in rs])
        smp = np.array([r["eval_sampled_history"][-1][1] for r in rs])
        st = sum(stable(r["eval_history"], steps) for r in rs)
        m = [r["eval_sampled_history"][-1][3] for r in rs]
        over = np.mean([x.get("rb_overuse", np.nan) for x in m])
        q = "/".join(f"{np.mean([x[k] for x in m]):.2f}" for k in ("qos_embb", "qos_mmtc", "qos_urllc"))
        wall = np.mean([r["wall_time_s"] for r in rs])
        print(f"| {scen} | {steps} | {name} | {len(rs)} | {det.mean():.1f} ± {det.std():.1f} | "
              f"{smp.mean():.1f} ± {smp.std():.1f} | {(det - smp).mean():.1f} | {st}/{len(rs)} | {over:.3f} | {q} "
              f"| {wall:.0f} |")


def main(args):
    if not args.only_table:
        jobs = [(name, seed) for seed in args.seeds for name in args.configs]
        with ThreadPoolExecutor(args.workers) as pool:
            list(pool.map(lambda job: run_one(args, *job), jobs))
    table(args.records)


if __name__ == "__main__":
    main(tyro.cli(Args))
