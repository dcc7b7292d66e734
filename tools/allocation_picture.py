"""What the agents learned, as a picture: each DU's RB shares per slice over one evaluation episode,
for a trained policy (a model.pt saved by a training script) next to a heuristic, on the same
episode (the first of the scripts' fixed evaluation episodes, seed EVAL_SEED).

    python tools/allocation_picture.py --model results/paper/ta-sam__dynamic__paper__s1/model.pt \
        --heuristic pf_no_slicing --out docs/results/allocations_paper.png

The environment is the run's own (scenario and options from the summary.json next to model.pt).
Shares are the fractions of the DU's K RBs that the step's allocation gives to each slice (RBs
given to no slice stay white); the per-slice QoS of the episode is in each panel's title.
"""

import os

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import dataclasses  # noqa: E402
import sys  # noqa: E402

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import tyro  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import oran_env  # noqa: E402
import run_utils  # noqa: E402
from render_episode import make_run_env, model_policy  # noqa: E402
from records import EVAL_SEED  # noqa: E402

SLICES = ("eMBB", "mMTC", "URLLC")
SLICE_COLORS = ("tab:blue", "tab:green", "tab:red")
HEURISTICS = (*oran_env.HEURISTICS, "full_info")


@dataclasses.dataclass
class Args:
    model: str
    """model.pt of a finished training run (--save-model)"""
    out: str
    """PNG file to write"""
    heuristic: str = "pf_no_slicing"
    """a heuristic of oran_env.HEURISTICS or full_info, drawn next to the model"""
    label: str | None = None
    """name of the trained policy in the figure"""


def episode_shares(env, policy):
    """Per step, DU and slice the fraction of RBs allocated (T, N, 3), and the episode's mean Q
    (N, 3)."""
    env.reset(seed=EVAL_SEED)
    shares, qos = [], []
    for _ in range(env.episode_length):
        _, _, _, _, info = env.step(policy(env))
        rb_slice = info["rb_slice"][0]  # (N, K), -1: no slice
        shares.append(np.stack([(rb_slice == s).mean(axis=1) for s in range(len(SLICES))], axis=1))
        qos.append(info["qos"][0])
    return np.array(shares), np.mean(qos, axis=0)


def main(args: Args):
    run_utils.check_input_file("--model", args.model)
    run_utils.check_choice("--heuristic", args.heuristic, HEURISTICS)
    run_utils.check_output_path("--out", args.out, is_dir=False)
    heuristic = oran_env.HEURISTICS.get(args.heuristic, oran_env.full_information_reference)
    env = make_run_env(args.model, "paper", EVAL_SEED, flag="--model")
    label = args.label or os.path.basename(os.path.dirname(os.path.abspath(args.model)))
    rows = [(label, model_policy(args.model, env, flag="--model")),
            (f"heuristic: {args.heuristic}", heuristic)]
    n = env.n_agents
    fig, axes = plt.subplots(len(rows), n, figsize=(2.3 * n, 2.4 * len(rows)), sharex=True,
                             sharey=True, squeeze=False)
    for row, (label, policy) in enumerate(rows):
        shares, qos = episode_shares(env, policy)
        steps = np.arange(1, len(shares) + 1)
        for du in range(n):
            ax = axes[row][du]
            ax.stackplot(steps, shares[:, du].T, colors=SLICE_COLORS, labels=SLICES, alpha=0.85)
            ax.set_ylim(0, 1)
            ax.set_title(f"DU {du}: Q " + "/".join(f"{q:.2f}" for q in qos[du]), fontsize=8)
            if du == 0:
                ax.set_ylabel(f"{label}\nRB share", fontsize=8)
            if row == len(rows) - 1:
                ax.set_xlabel("step", fontsize=8)
    axes[0][0].legend(fontsize=6, loc="lower left")
    fig.suptitle("RB share per slice and DU over one evaluation episode "
                 f"({env.config.action_mode} actions; "
                 "Q = eMBB/mMTC/URLLC satisfaction)", fontsize=9)
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main(tyro.cli(Args, description=__doc__.split("\n")[0]))
