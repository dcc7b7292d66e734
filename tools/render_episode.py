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

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)
import oran_env  # noqa: E402


def model_policy(path, env):
    """The deterministic actor of a saved model.pt (weights_only load) as policy(env)."""
    import torch

    from sac_marl_baseline import Actor  # the actor is byte-identical in the three scripts

    state = torch.load(path, map_location="cpu", weights_only=True)
    actor = Actor(env.n_agents, env.obs_dim, env.act_dim, tuple(state["hidden_sizes"]))
    actor.load_state_dict(state["actor"])

    def policy(env):
        with torch.no_grad():
            obs = torch.as_tensor(env.last_obs).transpose(0, 1)  # (N, E, obs_dim)
            _, _, action = actor.get_action(obs)
        return action.transpose(0, 1).numpy().astype(np.float32)

    return policy


def make_run_env(args):
    """The environment of the policy: the saved run's scenario and options, or --scenario."""
    scenario, overrides = args.scenario, {}
    summary = os.path.join(os.path.dirname(os.path.abspath(args.policy)), "summary.json")
    if args.policy.endswith(".pt") and os.path.exists(summary):
        with open(summary) as f:
            run_args = json.load(f)["args"]
        if run_args.get("env_id", "oran") != "oran":
            raise ValueError(f"{args.policy}: a model of env_id {run_args['env_id']!r}, not 'oran'")
        scenario, overrides = run_args["scenario"], run_args.get("env") or {}
        overrides = {k: tuple(map(tuple, v)) if k == "du_slice_mix" else tuple(v) if isinstance(v, list)
                     else v for k, v in overrides.items()}
    return oran_env.make_env(scenario, num_envs=1, seed=args.seed, render_mode="rgb_array", **overrides)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--policy", default="urllc_first",
                   help=f"one of {sorted(oran_env.HEURISTICS)}, full_info, or a model.pt path")
    p.add_argument("--scenario", default="paper", help="scenario (when the policy is not a saved run)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None, help="steps to play (default: one episode)")
    p.add_argument("--every", type=int, default=1, help="keep every n-th frame")
    p.add_argument("--fps", type=float, default=5.0, help="frames per second of the GIF")
    p.add_argument("--frame", type=int, default=None, help="write only the frame after this step (PNG)")
    p.add_argument("--out", required=True, help="a .gif file, a .png file (with --frame) or a folder")
    args = p.parse_args()
    env = make_run_env(args)
    if args.policy in oran_env.HEURISTICS:
        policy = oran_env.HEURISTICS[args.policy]
    elif args.policy == "full_info":
        policy = oran_env.full_information_reference
    elif args.policy.endswith(".pt") and os.path.isfile(args.policy):
        policy = model_policy(args.policy, env)
    else:
        p.error(f"--policy: expected a heuristic of {sorted(oran_env.HEURISTICS)}, full_info or an "
                f"existing model.pt, got {args.policy!r}")
    steps = args.frame if args.frame is not None else args.steps or env.episode_length
    if steps < 1 or args.every < 1:
        p.error("--steps/--frame and --every must be >= 1")
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
        images[0].save(args.out, save_all=True, append_images=images[1:], duration=1000 / args.fps, loop=0)
    else:
        os.makedirs(args.out, exist_ok=True)
        for i, f in enumerate(frames):
            Image.fromarray(f).save(os.path.join(args.out, f"frame_{(i + 1) * args.every:04d}.png"))
    print(f"wrote {args.out} ({1 if args.frame is not None else len(frames)} frame(s))")


if __name__ == "__main__":
    main()
