"""Step rate of comp_env (DeepCoMP cell selection) per scenario, side by side with mobile-env.

Prints one JSON object. For each scenario: comp_env's steps/s with one environment (E = 1) and its
environment-steps/s with a batch of E = --num-envs copies; and, when the `mobile_env` package is
importable, mobile-env's steps/s on a scenario of the same size (same map, same BS positions, same
number of UEs, Okumura-Hata, resource-fair, multi-agent handler, 100-step episodes), measured in
the same run, with the ratios. Both environments get uniformly random actions and are reset at the
end of each episode (comp_env resets itself). Needs only numpy (and mobile-env for the comparison),
so it runs from a separate virtual environment that holds mobile-env:

    python3 -m venv /tmp/mobenv && /tmp/mobenv/bin/pip install mobile-env numpy
    PYTHONPATH=. /tmp/mobenv/bin/python benchmarks/bench_comp_env.py
"""

import argparse
import importlib.metadata
import json
import math
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import comp_env  # noqa: E402
from oran_env import in_interval  # noqa: E402


def number_in(kind, interval):
    """An argparse type: a finite `kind` number in `interval` ("[low, high]", "(" ")" open ends,
    as the training scripts' RANGES; checked here with oran_env's helper, as this benchmark runs
    in a virtual environment without torch, so without run_utils)."""
    def number(text):
        value = kind(text)
        if not (math.isfinite(value) and in_interval(value, interval)):
            raise argparse.ArgumentTypeError(f"expected a finite number in {interval}, got {text}")
        return value

    return number


def timed_rate(step, seconds):
    """Calls per second of step() over at least `seconds` (after a short warm-up)."""
    for _ in range(20):
        step()
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(50):
            step()
        calls += 50
    return calls / elapsed


def comp_env_rate(scenario, num_envs, seconds, seed):
    env = comp_env.make_env(scenario, num_envs=num_envs, seed=seed)
    rng = np.random.default_rng(seed)
    shape = (num_envs, env.n_agents, env.act_dim)
    return timed_rate(lambda: env.step(rng.uniform(-1.0, 1.0, shape)), seconds)


def mobile_env_rate(scenario, seconds, seed):
    """mobile-env steps/s on the comp_env scenario's map, BS positions and UE count."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    from mobile_env.core.base import MComCore
    from mobile_env.core.entities import BaseStation, UserEquipment
    from mobile_env.handlers.multi_agent import MComMAHandler

    cfg = comp_env.make_config(scenario)
    config = MComCore.default_config()
    config.update({"width": cfg.map_width, "height": cfg.map_height,
                   "EP_MAX_TIME": cfg.episode_length, "seed": seed, "handler": MComMAHandler})
    config["movement_params"].update({"width": cfg.map_width, "height": cfg.map_height})
    config["arrival_params"].update({"ep_time": cfg.episode_length})
    stations = [BaseStation(i, pos, **config["bs"]) for i, pos in enumerate(cfg.bs_positions)]
    users = [UserEquipment(i, **config["ue"]) for i in range(cfg.num_ues)]
    env = MComCore(stations, users, config)
    env.reset()
    rng = np.random.default_rng(seed)

    def step():
        actions = {ue_id: int(a)
                   for ue_id, a in zip(env.users, rng.integers(0, cfg.num_bs + 1, cfg.num_ues))}
        _, _, terminated, truncated, _ = env.step(actions)
        if terminated or truncated:
            env.reset()

    return timed_rate(step, seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", nargs="+", default=["small", "medium", "large"],
                        choices=sorted(comp_env.SCENARIOS))
    parser.add_argument("--num-envs", type=number_in(int, "[1, 4096]"), default=256,
                        help="batch size E of the batched measurement")
    parser.add_argument("--seconds", type=number_in(float, "(0, 3600]"), default=3.0,
                        help="measuring time per figure")
    parser.add_argument("--seed", type=number_in(int, "[0, 4294967295]"), default=0)
    args = parser.parse_args()

    try:
        import mobile_env  # noqa: F401
        mobile_version = importlib.metadata.version("mobile-env")
    except ImportError:
        mobile_version = None

    results = {}
    for scenario in args.scenarios:
        cfg = comp_env.make_config(scenario)
        single = comp_env_rate(scenario, 1, args.seconds, args.seed)
        batched = comp_env_rate(scenario, args.num_envs, args.seconds, args.seed) * args.num_envs
        row = {"num_bs": cfg.num_bs, "num_ues": cfg.num_ues,
               "comp_env_steps_per_s_E1": round(single, 1),
               f"comp_env_env_steps_per_s_E{args.num_envs}": round(batched, 1)}
        if mobile_version is not None:
            mobile = mobile_env_rate(scenario, args.seconds, args.seed)
            row.update({"mobile_env_steps_per_s": round(mobile, 1),
                        "ratio_E1": round(single / mobile, 2),
                        f"ratio_E{args.num_envs}": round(batched / mobile, 1)})
        results[scenario] = row

    print(json.dumps({
        "benchmark": "comp_env step rate",
        "python": platform.python_version(), "numpy": np.__version__, "mobile_env": mobile_version,
        "machine": platform.machine(), "cpu_count": os.cpu_count(),
        "num_envs": args.num_envs, "seconds_per_figure": args.seconds,
        "scenarios": results,
    }, indent=2))


if __name__ == "__main__":
    main()
