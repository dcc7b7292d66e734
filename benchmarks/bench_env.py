"""Speed of the O-RAN simulator (oran_env.py) on one core, side by side with an earlier commit;
prints JSON.

For `paper` and `small`, E = 1 and E = 32: environment steps per second (E x vectorised steps/s)
of this tree's step and, with `--baseline REV`, of the step of oran_env.py at git revision REV
(imported from `git show REV:oran_env.py` as a second module), timed in the same run. For
reference the time to draw the step's fading samples alone is printed too (the serving-link power
of every UE on every RB, (E*U, K), and the interfering links of each used RB, (E, N, K, N-1); see
oran_env's module docstring) and that of the full (E, U, N, K) tensor. All timings are CPU
time of this one-thread process, run in alternating blocks, and the median block is kept, so that
load from other processes hits them alike. The actions are fixed (the static equal split), so the
time is the environment's alone.

With a baseline it also prints the scheduler's idle-RB line of both versions: under `urllc_first`
on `paper`, the fraction of DU-steps with an eMBB RB left idle while an eMBB UE of that DU ends
the step unsatisfied (the scheduler is work-conserving inside a slice:
docs/model.md#the-mdp-of-each-du).

    python benchmarks/bench_env.py [--baseline 5fc924f] [--blocks 7] [--seconds 0.4]
        [--idle-episodes 16]
"""

import os

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[var] = "1"

import dataclasses  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import tyro  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import oran_env  # noqa: E402
import run_utils  # noqa: E402

RANGES = {"blocks": "[1, 1000]", "seconds": "(0, 3600]", "idle_episodes": "[1, 4096]"}


@dataclasses.dataclass
class Args:
    baseline: str | None = None
    """git revision to time side by side"""
    blocks: int = 7
    """alternating timing blocks (median kept)"""
    seconds: float = 0.4
    """CPU seconds of one timing block"""
    idle_episodes: int = 16
    """episodes of the idle-RB line"""
    scenarios: tuple[str, ...] = ("paper", "small")
    """oran_env scenarios to time"""

    def __post_init__(self):
        run_utils.check_ranges(self, RANGES)
        if not self.scenarios:
            raise ValueError("--scenarios: name at least one scenario")


def module_at(rev):
    """oran_env.py as it was at git revision rev, imported as the module `oran_env_<rev>`."""
    src = subprocess.run(["git", "show", f"{rev}:oran_env.py"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    path = os.path.join(tempfile.mkdtemp(), f"oran_env_{rev}.py")
    with open(path, "w") as f:
        f.write(src)
    spec = importlib.util.spec_from_file_location(f"oran_env_{rev}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def timed_block(fn, seconds):
    """Mean CPU seconds of this process per call of fn over a block of about `seconds` of CPU time
    (CPU time, not wall-clock time: time spent waiting for a core on a loaded machine does not
    count, and the benchmark runs on one thread)."""
    n, t0 = 0, time.process_time()
    while True:
        fn()
        n += 1
        dt = time.process_time() - t0
        if dt >= seconds:
            return dt / n


def stepper(module, scenario, num_envs):
    env = module.make_env(scenario, num_envs=num_envs, seed=0)
    actions = module.static_equal_split(env)
    return lambda: env.step(actions)


def bench(scenario, num_envs, blocks, seconds, baseline=None):
    c = oran_env.make_config(scenario)
    E, N, U, K = num_envs, c.num_dus, c.num_ues, c.num_rbs
    rng = np.random.default_rng(1)

    def draw():
        rng.standard_exponential((E * U, K), dtype=np.float32)
        rng.standard_exponential((E, N, K, N - 1), dtype=np.float32)

    def draw_full():
        rng.standard_exponential((E, U, N, K), dtype=np.float32)

    fns = {"step": stepper(oran_env, scenario, E), "draw": draw, "draw_full": draw_full}
    if baseline is not None:
        fns["baseline_step"] = stepper(baseline, scenario, E)
    for fn in fns.values():  # warm-up
        timed_block(fn, seconds / 4)
    times = {name: [] for name in fns}
    for _ in range(blocks):
        for name, fn in fns.items():
            times[name].append(timed_block(fn, seconds))
    t = {name: float(np.median(x)) for name, x in times.items()}
    out = {
        "scenario": scenario, "num_envs": E, "num_dus": N, "num_ues": U, "num_rbs": K,
        "step_ms": 1e3 * t["step"], "env_steps_per_s": E / t["step"],
        "fading_samples_per_step": E * (U * K + N * K * (N - 1)),
        "fading_draw_ms": 1e3 * t["draw"], "full_tensor_draw_ms": 1e3 * t["draw_full"],
        "ratio_step_to_full_tensor_draw": t["step"] / t["draw_full"],
    }
    if baseline is not None:
        # the ratio within each block pair (adjacent in time, so under the same load): median and
        # quartiles over the blocks
        ratios = np.array(times["step"]) / np.array(times["baseline_step"])
        out["baseline_step_ms"] = 1e3 * t["baseline_step"]
        out["ratio_step_to_baseline"] = float(np.median(ratios))
        out["ratio_quartiles"] = [float(np.percentile(ratios, 25)),
                                  float(np.percentile(ratios, 75))]
    return out


def idle_embb_fraction(module, episodes, seed=1000):
    """Fraction of DU-steps, under urllc_first on paper, with an eMBB RB left idle while an eMBB
    UE served by that DU ends the step below its KPI (served < min(demand, target x dt))."""
    env = module.make_env("paper", num_envs=episodes, seed=seed)
    E, N, U, K, L = env._shape
    c = env.config
    hits = 0
    for _ in range(env.episode_length):
        demand, serving, embb = env.backlog + env.arrivals, env.serving.copy(), env.slice_of == 0
        _, _, _, _, info = env.step(module.urllc_first(env))
        short = embb & (info["ue_served_bits"]
                        < np.minimum(demand, c.embb_target_mbps * 1e6 * env.dt) * (1 - 1e-9))
        du_short = np.zeros((E, N), dtype=bool)
        du_short[np.nonzero(short)[0], serving[short]] = True
        idle = ((info["rb_slice"] == 0) & (info["rb_ue"] < 0)).any(-1)
        hits += int((idle & du_short).sum())
    return hits / (env.episode_length * E * N)


def main(args: Args):
    for scenario in args.scenarios:
        run_utils.check_choice("--scenarios", scenario, list(oran_env.SCENARIOS))
    if args.baseline is not None and subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", f"{args.baseline}^{{commit}}"], cwd=ROOT,
            capture_output=True).returncode:
        run_utils.fail(f"--baseline {args.baseline}: not a git revision of {ROOT}")
    baseline = module_at(args.baseline) if args.baseline else None
    report = {"numpy": np.__version__, "python": platform.python_version(),
              "machine": platform.machine(), "threads": 1, "baseline": args.baseline}
    if baseline is not None:
        report["idle_embb_rb_while_embb_ue_short"] = {
            "episodes": args.idle_episodes,
            "this_tree": idle_embb_fraction(oran_env, args.idle_episodes),
            "baseline": idle_embb_fraction(baseline, args.idle_episodes)}
    report["results"] = [bench(s, e, args.blocks, args.seconds, baseline)
                         for s in args.scenarios for e in (1, 32)]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__.split("\n")[0]))
