"""Training speed of the three scripts on the O-RAN `paper` scenario (6 DUs, 300-dim actions),
printed as JSON.

Each measurement runs the real script in a subprocess: `--learning-starts` env steps of random
actions fill the replay buffer, then one update per env step; the rate is timed between two
episode-end lines of the script's output (after a warm-up of --skip-updates updates), so it is
training env steps per second with one update each, without start-up, evaluation or checkpoint
costs. Figures reported:

- steps/s of every variant (baseline, L2, Critic-SAM, Actor-SAM, Both-SAM, TA-SAM) at the paper's
  300-400-400 and at the CPU preset 128-128 networks, batch 256;
- ensemble overhead: the 6-agent update (6 actors as one ensemble, batch 256 per agent) against one
  single-agent update on the same 1536 transitions (--num-dus 1 --batch-size 1536), target <= 1.15x;
- SAM overhead: Both-SAM / baseline step time, target <= 2.1x;
- TA-SAM: its step time against Critic-SAM + f (Both-SAM - Critic-SAM), f the measured fraction of
  actors selected (charts/sam_active_fraction), i.e. the second actor pass costs in proportion to
  the actors it runs on.
- torch threads: the baseline at the CPU preset with --torch-threads 1 and 2;
- the centralised (MASAC) critic: the baseline with --critic-joint-actions over the baseline.

Usage: python benchmarks/bench_train.py [--updates 200] [--sizes cpu paper] [--variants ...]
       [--out bench_train.json]
(a ratio is reported when the variants it needs were measured)
"""
import dataclasses
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tyro

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import run_utils  # noqa: E402

VARIANTS = {
    "baseline": ("sac_marl_baseline.py",),
    "l2": ("sac_marl_l2.py",),
    "critic_sam": ("tasam_marl_sac.py", "--no-sam-actor"),
    "actor_sam": ("tasam_marl_sac.py", "--no-sam-critic"),
    "both_sam": ("tasam_marl_sac.py", "--no-selective"),
    "tasam": ("tasam_marl_sac.py",),
    "joint_critic": ("sac_marl_baseline.py", "--critic-joint-actions"),
}
EPISODE = 100  # oran_env's episode_length: the scripts print one line per episode end
SIZES = ("cpu", "paper")
RANGES = {"updates": "[100, 1e6]", "skip_updates": "[0, 1e6]", "threads": "[1, 1024]"}


@dataclasses.dataclass
class Args:
    updates: int = 200
    """timed updates per measurement (a multiple of 100)"""
    skip_updates: int = 100
    """untimed updates before timing (a multiple of 100)"""
    sizes: tuple[str, ...] = SIZES
    """network presets to measure (cpu, paper)"""
    threads: int = 1
    """torch threads of the variant measurements"""
    variants: tuple[str, ...] = tuple(VARIANTS)
    """variants to measure (keys of VARIANTS)"""
    out: str | None = None
    """also write the JSON here"""

    def __post_init__(self):
        run_utils.check_ranges(self, RANGES)
        if self.updates % EPISODE or self.skip_updates % EPISODE:
            raise ValueError(f"--updates and --skip-updates must be multiples of {EPISODE} (an "
                             f"episode), got {self.updates} and {self.skip_updates}")


def steps_per_second(script_flags, updates, skip_updates, threads, extra=()):
    """Run a script until `skip_updates + updates` updates are done; time the last `updates` env
    steps."""
    learning_starts = EPISODE
    with tempfile.TemporaryDirectory() as run_dir:
        cmd = [sys.executable, "-u", str(ROOT / script_flags[0]), *script_flags[1:],
               "--scenario", "paper", "--learning-starts", str(learning_starts),
               "--total-timesteps", str(learning_starts + skip_updates + updates),
               "--eval-interval", "0", "--eval-episodes", "1", "--checkpoint-interval", "0",
               "--torch-threads", str(threads),
               "--log-interval", "10", "--num-envs", "1", "--run-dir", run_dir, *extra]
        if script_flags[0] == "tasam_marl_sac.py":
            cmd += ["--sharpness-interval", "0"]  # a measurement, not part of the update
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        start_step, stamps = learning_starts + skip_updates, {}
        for line in proc.stdout:
            m = re.match(r"global_step=(\d+), episodic_return", line)
            if m:
                stamps[int(m.group(1))] = time.perf_counter()
        proc.wait()
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr.read()}")
        end_step = max(stamps)
        rate = (end_step - start_step) / (stamps[end_step] - stamps[start_step])
        sam_fraction = None
        if script_flags[0] == "tasam_marl_sac.py":
            from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
            events = EventAccumulator(run_dir)
            events.Reload()
            values = [e.value for e in events.Scalars("charts/sam_active_fraction")
                      if e.step > start_step]
            sam_fraction = sum(values) / len(values) if values else None
        return rate, sam_fraction


def main(opts: Args):
    for size in opts.sizes:
        run_utils.check_choice("--sizes", size, SIZES)
    for variant in opts.variants:
        run_utils.check_choice("--variants", variant, list(VARIANTS))
    if opts.out is not None:
        run_utils.check_output_path("--out", opts.out, is_dir=False)

    result = {"machine": {"cpus": os.cpu_count(), "note": "timings on a shared machine are noisy"},
              "updates_timed": opts.updates, "torch_threads": opts.threads, "steps_per_s": {},
              "ratios": {}}
    measure = lambda flags, threads=opts.threads, extra=(): steps_per_second(
        flags, opts.updates, opts.skip_updates, threads, extra)
    for size in opts.sizes:
        net = ("--net-size", size)
        rates, fraction = {}, None
        for name in opts.variants:
            rates[name], f = measure((*VARIANTS[name], *net))
            fraction = f if name == "tasam" else fraction
            print(f"{size:5s} {name:12s} {rates[name]:7.2f} steps/s", flush=True)
        if "baseline" in rates:
            single, _ = measure(("sac_marl_baseline.py", *net),
                                extra=("--num-dus", "1", "--batch-size", "1536"))
            print(f"{size:5s} {'single-net':12s} {single:7.2f} steps/s (1 agent, batch 1536)",
                  flush=True)
            rates["single_network_same_transitions"] = single
        t = {k: 1 / v for k, v in rates.items()}
        ratios = {  # name: (the measurements it needs, its value)
            "ensemble_6_agents_over_single_network": (
                ("baseline", "single_network_same_transitions"),
                lambda: t["baseline"] / t["single_network_same_transitions"]),
            "both_sam_over_baseline": (("both_sam", "baseline"),
                                       lambda: t["both_sam"] / t["baseline"]),
            "tasam_selected_actor_fraction": (("tasam",), lambda: fraction),
            "tasam_over_baseline": (("tasam", "baseline"), lambda: t["tasam"] / t["baseline"]),
            "tasam_over_prediction_critic_sam_plus_fraction_of_actor_pass": (
                ("tasam", "critic_sam", "both_sam"),
                lambda: t["tasam"] / (t["critic_sam"]
                                      + fraction * (t["both_sam"] - t["critic_sam"]))),
            "joint_critic_over_baseline": (("joint_critic", "baseline"),
                                           lambda: t["joint_critic"] / t["baseline"]),
        }
        result["steps_per_s"][size] = rates
        result["ratios"][size] = {name: value() for name, (needs, value) in ratios.items()
                                  if set(needs) <= t.keys()}
    if "cpu" in opts.sizes and "baseline" in opts.variants:
        two, _ = measure((*VARIANTS["baseline"], "--net-size", "cpu"), threads=2)
        one = result["steps_per_s"]["cpu"]["baseline"] if opts.threads == 1 else measure(
            (*VARIANTS["baseline"], "--net-size", "cpu"), threads=1)[0]
        result["torch_threads_baseline_cpu_steps_per_s"] = {"1": one, "2": two}
    print(json.dumps(result, indent=1))
    if opts.out:
        Path(opts.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__))
