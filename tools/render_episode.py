"""Write one episode of the O-RAN simulator under a chosen policy as an animated GIF or a strip
of PNG frames (oran_env.ORANEnv.render, matplotlib only).

The policy is a heuristic of oran_env.HEURISTICS, `full_info` (oran_env.full_information_reference)
or the path of a model.pt saved by a training script (`--save-model`): its actor acts
deterministically (tanh of the mean), and the environment is the run's own (scenario and every
environment option from the summary.json next to model.pt; `--scenario` and `--seed` apply when
there is none).

    python tools/render_episode.py --policy urllc_first --scenario hetero --out hetero.gif
    python tools/render_episode.py --policy runs/<run>/model.pt --out frames/   # PNG strip
        [--steps 100] [--every 2] [--fps 5] [--seed 0] [--frame 20 --out frame.png]
"""

import os

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import dataclasses  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import tyro  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import oran_env  # noqa: E402
import run_utils  # noqa: E402

POLICIES = (*oran_env.HEURISTICS, "full_info")  # besides the path of a model.pt
RANGES = {"seed": "[0, 4294967295]", "steps": "[1, 1000000]", "every": "[1, 1000000]",
          "fps": "(0, 1000]", "frame": "[1, 1000000]"}


@dataclasses.dataclass
class Args:
    out: str
    """a .gif file, a .png file (with --frame) or a folder"""
    policy: str = "urllc_first"
    """a heuristic of oran_env.HEURISTICS, full_info, or a model.pt path"""
    scenario: str = "paper"
    """scenario (when the policy is not a saved run)"""
    seed: int = 0
    """seed of the episode"""
    steps: int | None = None
    """steps to play (default: one episode)"""
    every: int = 1
    """keep every n-th frame"""
    fps: float = 5.0
    """frames per second of the GIF"""
    frame: int | None = None
    """write only the frame after this step (PNG)"""

    def __post_init__(self):
        run_utils.check_ranges(self, RANGES)


def model_policy(path, env, flag="--policy"):
    """The deterministic actor of a saved model.pt (weights_only load) as policy(env); a file that
    is not a model of this environment's shape is named (`flag`) and stops the tool (exit 2)."""
    import torch

    from sac_marl_baseline import Actor  # the actor is byte-identical in the three scripts

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        actor = Actor(env.n_agents, env.obs_dim, env.act_dim, tuple(state["hidden_sizes"]))
        actor.load_state_dict(state["actor"])
    except Exception as e:  # any unreadable or foreign file: say which and stop
        run_utils.fail(f"{flag} {path}: not a model.pt of a training script for this "
                       f"environment ({' '.join(str(e).split())[:200]})")

    def policy(env):
        with torch.no_grad():
            obs = torch.as_tensor(env.last_obs).transpose(0, 1)  # (N, E, obs_dim)
            _, _, action = actor.get_action(obs)
        return action.transpose(0, 1).numpy().astype(np.float32)

    return policy


def make_run_env(policy, scenario, seed, flag="--policy"):
    """The environment of the policy: the saved run's scenario and options (from the summary.json
    next to a model.pt), or `scenario`; an unreadable or foreign summary is named (exit 2)."""
    overrides = {}
    summary = os.path.join(os.path.dirname(os.path.abspath(policy)), "summary.json")
    if policy.endswith(".pt") and os.path.exists(summary):
        try:
            with open(summary) as f:
                run_args = json.load(f)["args"]
            if run_args.get("env_id", "oran") != "oran":
                raise ValueError(f"a model of env_id {run_args['env_id']!r}, not 'oran'")
            scenario, overrides = run_args["scenario"], run_args.get("env") or {}
            overrides = {k: tuple(map(tuple, v)) if k == "du_slice_mix" else tuple(v)
                         if isinstance(v, list) else v for k, v in overrides.items()}
            return oran_env.make_env(scenario, num_envs=1, seed=seed, render_mode="rgb_array",
                                     **overrides)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            run_utils.fail(f"{flag} {policy}: cannot rebuild its environment from {summary} "
                           f"({str(e)[:200]})")
    return oran_env.make_env(scenario, num_envs=1, seed=seed, render_mode="rgb_array")


def main(args: Args):
    if args.policy not in POLICIES:
        if not args.policy.endswith(".pt"):
            run_utils.fail(f"--policy must be one of {', '.join(POLICIES)} or a model.pt path, "
                           f"got {args.policy!r}")
        run_utils.check_input_file("--policy", args.policy)
    run_utils.check_choice("--scenario", args.scenario, list(oran_env.SCENARIOS))
    run_utils.check_output_path("--out", args.out, is_dir=args.frame is None
                                and not args.out.endswith(".gif"))
    env = make_run_env(args.policy, args.scenario, args.seed)
    if args.policy in oran_env.HEURISTICS:
        policy = oran_env.HEURISTICS[args.policy]
    elif args.policy == "full_info":
        policy = oran_env.full_information_reference
    else:
        policy = model_policy(args.policy, env)
    steps = args.frame if args.frame is not None else args.steps or env.episode_length
    frames = []
    for t in range(1, steps + 1):
        env.step(policy(env))
        if args.frame is None and t % args.every == 0:
            frames.append(env.render())
    from PIL import Image  # matplotlib's own image dependency

    if args.frame is not None:
        Image.fromarray(env.render()).save(args.out)
    elif args.out.endswith(".gif"):
        images = [Image.fromarray(f) for f in frames]
        images[0].save(args.out, save_all=True, append_images=images[1:], duration=1000 / args.fps,
                       loop=0)
    else:
        os.makedirs(args.out, exist_ok=True)
        for i, f in enumerate(frames):
            Image.fromarray(f).save(os.path.join(args.out, f"frame_{(i + 1) * args.every:04d}.png"))
    print(f"wrote {args.out} ({1 if args.frame is not None else len(frames)} frame(s))")


if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__.split("\n")[0]))
