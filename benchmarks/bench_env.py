"""Speed of the O-RAN simulator (oran_env.py) on one core; prints JSON.

For `paper` and `small`, E = 1 and E = 32: environment steps per second (E x vectorised steps/s)
and, measured in the same run with the same Generator, the time to draw the step's fading samples
alone. The step draws exactly the samples it needs (see oran_env's module docstring): the
serving-link power of every UE on every RB, (E*U, K), and, for the UE that got each RB, its links
to the N-1 other DUs, (E, N, K, N-1). That draw is the floor this design cannot beat; `ratio` is
step time / floor. For reference the time to draw the full (E, U, N, K) tensor is printed too.
Steps and draws are timed in alternating blocks and the median block is kept, so that load from
other processes hits both alike. The actions are fixed (the static equal split), so the time is
the environment's alone.

    python benchmarks/bench_env.py [--blocks 7] [--seconds 0.4]
"""

import os

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import oran_env  # noqa: E402


def timed_block(fn, seconds):
    """Mean seconds per call of fn over a block of about `seconds`."""
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= seconds:
            return dt / n


def bench(scenario, num_envs, blocks, seconds):
    env = oran_env.make_env(scenario, num_envs=num_envs, seed=0)
    c = env.config
    E, N, U, K = num_envs, c.num_dus, c.num_ues, c.num_rbs
    actions = oran_env.static_equal_split(env)
    rng = np.random.default_rng(1)

    def step():
        env.step(actions)

    def draw():
        rng.standard_exponential((E * U, K), dtype=np.float32)
        rng.standard_exponential((E, N, K, N - 1), dtype=np.float32)

    def draw_full():
        rng.standard_exponential((E, U, N, K), dtype=np.float32)

    for fn in (step, draw, draw_full):  # warm-up
        timed_block(fn, seconds / 4)
    t_step, t_draw, t_full = [], [], []
    for _ in range(blocks):
        t_step.append(timed_block(step, seconds))
        t_draw.append(timed_block(draw, seconds))
        t_full.append(timed_block(draw_full, seconds))
    step_s, draw_s, full_s = (float(np.median(x)) for x in (t_step, t_draw, t_full))
    return {
        "scenario": scenario, "num_envs": E, "num_dus": N, "num_ues": U, "num_rbs": K,
        "fading_block_rbs": c.fading_block_rbs, "action_mode": c.action_mode,
        "step_ms": 1e3 * step_s, "env_steps_per_s": E / step_s,
        "fading_samples_per_step": E * (U * K + N * K * (N - 1)),
        "fading_draw_ms": 1e3 * draw_s, "ratio_step_to_fading_draw": step_s / draw_s,
        "full_tensor_draw_ms": 1e3 * full_s, "ratio_step_to_full_tensor_draw": step_s / full_s,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--blocks", type=int, default=7, help="alternating timing blocks (median kept)")
    p.add_argument("--seconds", type=float, default=0.4, help="length of one timing block")
    args = p.parse_args()
    results = [bench(s, e, args.blocks, args.seconds) for s in ("paper", "small") for e in (1, 32)]
    print(json.dumps({"numpy": np.__version__, "python": platform.python_version(),
                      "machine": platform.machine(), "threads": 1, "results": results}, indent=2))


if __name__ == "__main__":
    main()
