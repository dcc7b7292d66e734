# Multi-agent and central PPO for DeepCoMP's cell selection (comp_env.py), CleanRL style
# (after cleanrl ppo.py).
# docs: docs/comp.md (the environment, PPO on it and its results).
"""PPO with categorical actions (noop or toggle BS i) on `comp_env`, DeepCoMP's learned agents.

- `--mode multi` (DeepCoMP's multi-agent PPO): one policy and one value network shared by all UE
  agents; each UE acts on its own observation (3B+1) and learns from DeepCoMP's multi-agent reward,
  the sum of u/20 over its competing set (the UEs sharing a BS with it). Every UE of every env copy
  is one row of the batch, so a rollout of T steps on E copies with U UEs gives T * E * U samples.
- `--mode central` (DeepCoMP's central PPO): one agent sees all U observations concatenated
  (U(3B+1)) and picks every UE's action with U independent categorical heads (its log-probability
  and entropy are the sums over the heads); its reward is the sum of u/20 over all UEs.
- Both modes run one code path: an "agent row" holds the observation one network call sees and the
  H heads it fills (multi: U rows of 1 head per env copy; central: 1 row of U heads).
- CleanRL ppo.py's algorithm: GAE, clipped surrogate, entropy bonus, minibatch epochs, global
  gradient-norm clipping, optional linear learning-rate annealing; separate actor and critic MLPs
  (tanh, orthogonal initialisation). Our choices, all flags: the episodes end only by truncation at
  100 steps, so the value of the final observation is bootstrapped into the last reward (CleanRL's
  ppo.py treats a truncation as a termination); rewards are scaled by `--reward-scale` (default 1/U)
  before learning, and value clipping is off by default (`--clip-vloss` turns it on), because the
  returns span tens of units and a 0.2 value clip would make the critic crawl.
- `--reward-aggregate avg` (DeepCoMP's later default) trains on the mean instead of the sum: multi
  = the mean of u/20 over the UEs at the BSs in the UE's range, central = the mean over all UEs
  (comp_env.team_reward, docs/comp.md).
- `--preset rllib`: DeepCoMP's optimiser settings, RLlib's PPO defaults of its time (RLlib 0.8-1.0
  DEFAULT_CONFIG, DeepCoMP's env_setup.py), as explicit flags (PRESETS) with three terms CleanRL's
  ppo.py lacks, each a flag whose default leaves the CleanRL algorithm as it is: an adaptive KL
  penalty (`--kl-coef`, `--kl-target`), a value clip in return units (`--vf-clip`) and minibatches
  of a fixed number of agent rows (`--minibatch-rows`).
- `global_step` counts environment steps of one env copy summed over copies (as the SAC scripts).
- Evaluation: greedy actions (argmax of each head) on `--eval-episodes` env copies reset with
  `--eval-seed`. UE trajectories do not depend on the actions, so every run and every heuristic with
  the same seed sees the same episodes (the `comp-heuristics` experiment: seed 0, 100 episodes).
  The evaluation env always uses the multi-agent reward, so the reported return (the mean over UEs
  of each UE's episode return) is comparable across modes, heuristics and the SAC scripts.
- Output in the run folder: TensorBoard events with CleanRL's tags, `summary.json` (learning curve,
  final evaluation per episode, wall time), and with `--save-model` `{exp_name}.cleanrl_model`.
- The run folder (`run_utils.Run`): one writer (run.lock); `checkpoint.pt` at the end of an
  iteration every `--checkpoint-interval` env steps, on SIGINT/SIGTERM and before the final
  evaluation, with all the run's future depends on (networks, optimiser, the random generators,
  the KL coefficient, the learning curve, the training envs' state and observation), so `--resume`
  continues exactly as the run would have gone on.
"""
import dataclasses
import os
import random
import signal
import sys
import time
from dataclasses import dataclass
from typing import Literal, Optional

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
import tyro
from torch.distributions.categorical import Categorical

import comp_env
import run_utils


@dataclass
class Args:
    exp_name: str = os.path.basename(__file__)[: -len(".py")]
    """the name of this experiment"""
    seed: int = 1
    """seed of the experiment (networks, action sampling, training environments)"""
    torch_deterministic: bool = True
    """if toggled, `torch.backends.cudnn.deterministic=True`"""
    torch_threads: int = 1
    """number of CPU threads torch uses (the networks are small; 1 is as fast as 2 here)"""
    run_dir: Optional[str] = None
    """run folder (TensorBoard events, checkpoint.pt, summary.json, model); default
    runs/comp-{scenario}__{exp_name}-{mode}__{seed}__{unix time}"""
    resume: bool = False
    """continue the run in --run-dir from its checkpoint.pt (fresh without one; exits if
    finished)"""
    checkpoint_interval: int = 50_000
    """env steps between checkpoints (taken at the end of an iteration); 0 = only before the final
    evaluation"""
    save_model: bool = False
    """save the final agent to {run_dir}/{exp_name}.cleanrl_model"""

    # Environment and agents
    mode: Literal["multi", "central"] = "multi"
    """multi: one shared network for all UE agents, competing-set reward; central: one agent for all
    UEs, summed reward (DeepCoMP's multi-agent and central PPO)"""
    scenario: str = "medium"
    """comp_env preset: small, medium or large"""
    num_slow_ues: Optional[int] = None
    """override the preset's number of slow UEs"""
    num_fast_ues: Optional[int] = None
    """override the preset's number of fast UEs"""
    sharing: Optional[str] = None
    """override the preset's sharing model (resource-fair, rate-fair, proportional-fair, max-cap,
    mixed)"""

    reward_aggregate: Literal["sum", "avg"] = "sum"
    """the training reward: sum (multi: over the competing set; central: over all UEs; DeepCoMP
    v1.0) or avg (multi: mean over the UEs at the BSs in range; central: mean over all UEs;
    DeepCoMP's later default). The evaluation env keeps the multi-agent sum, so the reported return
    stays comparable across rewards, modes, heuristics and the SAC scripts"""

    # Algorithm specific arguments (CleanRL ppo.py's defaults unless marked)
    preset: Literal["cleanrl", "rllib"] = "cleanrl"
    """the defaults of the flags below: cleanrl (as listed here) or rllib (DeepCoMP's settings,
    RLlib's PPO defaults: --learning-rate 5e-5 --no-anneal-lr --num-envs 20 --num-steps 200
    (4,000 env steps, RLlib's train_batch_size) --gae-lambda 1.0 --update-epochs 30
    --minibatch-rows 128 --norm-adv-over batch --clip-coef 0.3 --clip-vloss --vf-clip 10.0
    --ent-coef 0.0 --vf-coef 2.0 (RLlib's vf_loss_coeff 1.0 without CleanRL's 0.5) --max-grad-norm
    None --kl-coef 0.2 --kl-target 0.01 --reward-scale 1.0 (RLlib's rewards are unscaled, so
    --vf-clip is in DeepCoMP's return units)); flags given as well override the preset's.
    `--preset rllib --help` shows the values"""
    total_timesteps: int = 500_000
    """total environment steps of the experiment (summed over env copies)"""
    learning_rate: float = 2.5e-4
    """the learning rate of the optimizer"""
    num_envs: int = 16
    """the number of parallel env copies [ours; CleanRL 4]"""
    num_steps: int = 128
    """the number of steps to run in each environment per policy rollout"""
    anneal_lr: bool = True
    """Toggle learning rate annealing for policy and value networks"""
    gamma: float = 0.99
    """the discount factor gamma"""
    gae_lambda: float = 0.95
    """the lambda for the general advantage estimation"""
    num_minibatches: int = 4
    """the number of mini-batches (unless --minibatch-rows)"""
    minibatch_rows: Optional[int] = None
    """mini-batch size in agent rows [RLlib's sgd_minibatch_size; rllib preset 128]; None: the rows
    of a batch / --num-minibatches (CleanRL)"""
    update_epochs: int = 4
    """the K epochs to update the policy"""
    norm_adv: bool = True
    """Toggles advantages normalization"""
    norm_adv_over: Literal["minibatch", "batch"] = "minibatch"
    """normalise the advantages in each minibatch (CleanRL) or once over the batch (RLlib's
    standardize_fields, std floored at 1e-4)"""
    clip_coef: float = 0.2
    """the surrogate clipping coefficient"""
    clip_vloss: bool = False
    """Toggles whether or not to use a clipped loss for the value function [ours: off; CleanRL
    on]"""
    vf_clip: Optional[float] = None
    """with --clip-vloss: how far the value may move from the rollout's, in (scaled) return units
    [RLlib's vf_clip_param; rllib preset 10]; None: --clip-coef (CleanRL)"""
    ent_coef: float = 0.01
    """coefficient of the entropy"""
    vf_coef: float = 0.5
    """coefficient of the value function"""
    max_grad_norm: Optional[float] = 0.5
    """the maximum norm for the gradient clipping (None: no clipping, RLlib's grad_clip)"""
    target_kl: Optional[float] = None
    """the target KL divergence threshold (stop the epochs of an update beyond it)"""
    kl_coef: float = 0.0
    """initial coefficient of the KL penalty mean KL(pi_old || pi) in the loss [RLlib's kl_coeff;
    rllib preset 0.2]; 0: no penalty (CleanRL)"""
    kl_target: float = 0.01
    """with --kl-coef > 0: after each update the coefficient is x1.5 when the mean KL of the last
    epoch exceeds 2 kl_target and x0.5 when it is below kl_target / 2 (RLlib's update_kl)"""
    reward_scale: Optional[float] = None
    """factor on the reward before learning [ours; default 1/U]; a positive constant leaves the
    optimal policy unchanged and keeps value targets near unit scale"""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """hidden layers of the actor and of the critic (tanh)"""

    # Evaluation
    eval_interval: int = 25_000
    """env steps between greedy evaluations (0 = only before training and at the end)"""
    eval_episodes: int = 100
    """evaluation episodes (run as parallel env copies)"""
    eval_seed: int = 0
    """seed of the evaluation episodes; the same for all runs, so all see the same episodes"""
    eval_load_factors: tuple[int, ...] = ()
    """multi mode: also evaluate the final policy with k times the preset's slow and fast UEs, for
    each k (the load sweep; the shared per-UE network does not depend on U)"""

    def __post_init__(self):
        run_utils.check_ranges(self, RANGES)
        if not self.hidden_sizes:
            raise ValueError("--hidden-sizes needs one or more layer sizes")
        if not self.exp_name or "/" in self.exp_name:  # it names a file in the run folder
            raise ValueError(f"--exp-name must be a name without '/', got {self.exp_name!r}")
        if self.scenario not in comp_env.SCENARIOS:
            raise ValueError(f"--scenario must be one of {', '.join(comp_env.SCENARIOS)}, got "
                             f"{self.scenario!r}")
        overrides = env_overrides(self)
        for name, value in overrides.items():  # comp_env checks its config: name the flag
            try:
                comp_env.make_config(self.scenario, **{name: value})
            except ValueError as e:
                raise ValueError(f"--{name.replace('_', '-')} {value}: {e}") from None
        try:
            n_ues = comp_env.make_config(self.scenario, **overrides).num_ues
        except ValueError as e:
            raise ValueError(f"--num-slow-ues, --num-fast-ues: {e}") from None
        if self.vf_clip is not None and not self.clip_vloss:
            raise ValueError("--vf-clip needs --clip-vloss (it sets the range of the value clip)")
        if self.eval_load_factors and self.mode == "central":
            raise ValueError("--eval-load-factors needs --mode multi (the central agent's input "
                             "size is fixed by U)")
        if self.num_envs * self.num_steps > self.total_timesteps:
            raise ValueError(f"--total-timesteps ({self.total_timesteps}) must be at least "
                             f"--num-envs * --num-steps = {self.num_envs * self.num_steps} (one "
                             "rollout)")
        if self.minibatch_rows is None and self.num_minibatches > self.num_envs * self.num_steps:
            raise ValueError(f"--num-minibatches ({self.num_minibatches}) must be at most "
                             f"--num-envs * --num-steps = {self.num_envs * self.num_steps}")
        rows, size = batch_rows(self, n_ues)
        if self.norm_adv and self.norm_adv_over == "minibatch" and 1 in (size, rows % size):
            raise ValueError(f"--num-minibatches, --minibatch-rows: a minibatch of one agent row "
                             f"({rows} rows in minibatches of {size}) has no spread of advantages "
                             "to normalise by (--norm-adv-over batch has)")
        if self.resume and self.run_dir is None:
            raise ValueError("--resume needs --run-dir (the folder of the run to continue)")
        if self.run_dir == "":
            raise ValueError("--run-dir must name a folder, got ''")


# The flags of each preset (the values `Args` lists for cleanrl); flags given as well override them.
PRESETS = {
    "cleanrl": (),
    "rllib": ("--learning-rate", "5e-5", "--no-anneal-lr", "--num-envs", "20", "--num-steps", "200",
              "--gae-lambda", "1.0", "--update-epochs", "30", "--minibatch-rows", "128",
              "--norm-adv-over", "batch", "--clip-coef", "0.3", "--clip-vloss", "--vf-clip", "10.0",
              "--ent-coef", "0.0", "--vf-coef", "2.0", "--max-grad-norm", "None",
              "--kl-coef", "0.2", "--kl-target", "0.01", "--reward-scale", "1.0"),
}
SEEDS = "[0, 4294967295]"  # numpy's legacy seeding takes 32 bits
# valid intervals of the numeric flags ("(", ")": open ends), with upper bounds where a value would
# exhaust memory or overflow the losses; any other number must be finite
RANGES = {
    **dict.fromkeys(("total_timesteps", "num_minibatches", "minibatch_rows", "update_epochs"),
                    "[1, inf)"),
    **dict.fromkeys(("num_envs", "num_steps", "eval_episodes", "hidden_sizes"), "[1, 100000]"),
    **dict.fromkeys(("num_slow_ues", "num_fast_ues"), "[0, 100000]"),
    **dict.fromkeys(("eval_interval", "checkpoint_interval"), "[0, inf)"),
    **dict.fromkeys(("clip_coef", "vf_clip", "max_grad_norm", "target_kl", "kl_target"),
                    "(0, inf)"),
    **dict.fromkeys(("ent_coef", "vf_coef", "kl_coef"), "[0, 1000]"),
    "learning_rate": "(0, 1]", "reward_scale": "(0, 1000]", "gamma": "[0, 1]",
    "gae_lambda": "[0, 1]", "torch_threads": "[1, 1024]", "eval_load_factors": "[1, 1000]",
    "seed": SEEDS, "eval_seed": SEEDS,
}


def agent_layout(mode: str, n_ues: int, obs_dim: int):
    """(agent rows per env copy, action heads per row, observation size of a row): `multi` has one
    row per UE with one head on its own observation, `central` one row with a head per UE on all
    UEs' observations."""
    n_rows, n_heads = (n_ues, 1) if mode == "multi" else (1, n_ues)
    return n_rows, n_heads, obs_dim * n_ues // n_rows


def batch_rows(args: Args, n_ues: int):
    """(agent rows of a rollout, agent rows per minibatch) with U = `n_ues` UEs."""
    rows = args.num_envs * args.num_steps * agent_layout(args.mode, n_ues, 1)[0]
    return rows, args.minibatch_rows or rows // args.num_minibatches


def env_overrides(args: Args, load_factor: int = 1):
    """CompConfig fields set by the flags; `load_factor` k multiplies the slow and fast UE
    counts."""
    fields = ("num_slow_ues", "num_fast_ues", "sharing")
    overrides = {k: getattr(args, k) for k in fields if getattr(args, k) is not None}
    if load_factor != 1:
        overrides.update(comp_env.ue_load(comp_env.make_config(args.scenario, **overrides),
                                          load_factor))
    return overrides


def split_preset(argv):
    """(preset name, argv without `--preset NAME` / `--preset=NAME`)."""
    name, rest, i = "cleanrl", [], 0
    while i < len(argv):
        if argv[i] == "--preset":
            name, i = (argv[i + 1] if i + 1 < len(argv) else ""), i + 2
            continue
        if argv[i].startswith("--preset="):
            name = argv[i][len("--preset="):]
        else:
            rest.append(argv[i])
        i += 1
    return name, rest


def parse_args(argv=None) -> Args:
    """The preset's flags become the defaults (so `--help` shows them), the flags given override
    them; a bad flag exits with status 2 and a message naming it (`Args.__post_init__`)."""
    preset, rest = split_preset(sys.argv[1:] if argv is None else argv)
    run_utils.check_choice("--preset", preset, tuple(PRESETS))
    defaults = dataclasses.replace(tyro.cli(Args, args=PRESETS[preset]), preset=preset)
    return tyro.cli(Args, default=defaults, args=rest)


def memory_gib(args: Args, config: comp_env.CompConfig):
    """A rough size of the run: the rollout storage, the env copies (training, evaluation at the
    largest load factor), both networks with gradients and Adam's moments, and the activations
    of the largest forward pass."""
    n_ues, n_bs = config.num_ues, config.num_bs
    obs_dim, n_choices = 3 * n_bs + 1, n_bs + 1
    rows = args.num_steps * args.num_envs * n_ues  # UE rows of a rollout (central: U per row)
    eval_ues = args.eval_episodes * n_ues * max((1, *args.eval_load_factors))
    sizes = (obs_dim * n_ues, *args.hidden_sizes, n_choices * n_ues)  # central's, the larger
    weights = sum(i * o for i, o in zip(sizes[:-1], sizes[1:]))
    return (rows * (4 * (obs_dim + n_choices + 6) + 8) + (args.num_envs * n_ues + eval_ues) * 8
            * (6 * n_bs + 10) + 2 * 4 * 4 * weights
            + 4 * 6 * max(rows, eval_ues) * sum(args.hidden_sizes)) / 2**30


def layer_init(layer, std=np.sqrt(2), bias_const=0.0):
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


def mlp(in_dim, hidden, out_dim, out_std):
    sizes = (in_dim, *hidden)
    layers = [m for i, o in zip(sizes[:-1], sizes[1:])
              for m in (layer_init(nn.Linear(i, o)), nn.Tanh())]
    return nn.Sequential(*layers, layer_init(nn.Linear(hidden[-1], out_dim), std=out_std))


class Agent(nn.Module):
    """Actor (H categorical heads over `n_choices`) and critic on agent rows: x (..., obs_dim)."""

    def __init__(self, obs_dim, n_heads, n_choices, hidden):
        super().__init__()
        self.n_heads, self.n_choices = n_heads, n_choices
        self.critic = mlp(obs_dim, hidden, 1, out_std=1.0)
        self.actor = mlp(obs_dim, hidden, n_heads * n_choices, out_std=0.01)

    def get_value(self, x):
        return self.critic(x).squeeze(-1)

    def logits(self, x):
        return self.actor(x).view(*x.shape[:-1], self.n_heads, self.n_choices)

    def get_action_and_value(self, x, action=None):
        """action (..., H) sampled when None; log-probability and entropy summed over the heads
        (...)."""
        probs = Categorical(logits=self.logits(x))
        if action is None:
            action = probs.sample()
        return action, probs.log_prob(action).sum(-1), probs.entropy().sum(-1), self.get_value(x)

    def greedy_action(self, x):
        return self.logits(x).argmax(-1)


def agent_rows(obs, mode):
    """Environment observations (E, U, D) -> agent rows: multi (E, U, D); central (E, 1, U * D)."""
    return obs if mode == "multi" else obs.reshape(obs.shape[0], 1, -1)


# ALGO LOGIC: advantage estimation and the clipped objective (tested on hand-made cases)
def gae(rewards, values, dones, next_value, gamma, gae_lambda):
    """Generalised advantage estimates (Schulman et al. 2016) over a rollout of T steps.

    rewards, values, dones (T, ...): dones[t] = 1 when the episode ended with step t (whatever value
    the end should carry is already in rewards[t]); next_value (...): V of the observation after the
    last step. Returns (advantages, returns), both (T, ...), returns = advantages + values.
    """
    advantages = torch.zeros_like(rewards)
    lastgaelam = torch.zeros_like(next_value)
    for t in reversed(range(len(rewards))):
        nextvalues = next_value if t == len(rewards) - 1 else values[t + 1]
        nextnonterminal = 1.0 - dones[t]
        delta = rewards[t] + gamma * nextvalues * nextnonterminal - values[t]
        advantages[t] = lastgaelam = delta + gamma * gae_lambda * nextnonterminal * lastgaelam
    return advantages, advantages + values


def clipped_policy_loss(newlogprob, oldlogprob, advantages, clip_coef):
    """PPO's clipped surrogate as a loss: mean of max(-A r, -A clip(r, 1 - eps, 1 + eps)),
    r = pi/pi_old.

    Returns (loss, old_approx_kl, approx_kl, clipfrac); approx_kl = mean((r - 1) - log r)
    (Schulman's low-variance estimator, as CleanRL logs it).
    """
    logratio = newlogprob - oldlogprob
    ratio = logratio.exp()
    pg_loss1 = -advantages * ratio
    pg_loss2 = -advantages * torch.clamp(ratio, 1 - clip_coef, 1 + clip_coef)
    with torch.no_grad():
        old_approx_kl = (-logratio).mean()
        approx_kl = ((ratio - 1) - logratio).mean()
        clipfrac = ((ratio - 1.0).abs() > clip_coef).float().mean()
    return torch.max(pg_loss1, pg_loss2).mean(), old_approx_kl, approx_kl, clipfrac


def categorical_kl(old_logits, new_logits):
    """KL(pi_old || pi) of H independent categorical heads, summed over the heads: logits
    (..., H, C) -> (...); RLlib's `action_kl` (exact, where approx_kl is a sample estimate)."""
    old_logp, new_logp = old_logits.log_softmax(-1), new_logits.log_softmax(-1)
    return (old_logp.exp() * (old_logp - new_logp)).sum(-1).sum(-1)


def adapted_kl_coef(kl_coef, kl, kl_target):
    """RLlib's `update_kl`: x1.5 when kl > 2 kl_target, x0.5 when kl < kl_target / 2, else kept."""
    if kl > 2.0 * kl_target:
        return kl_coef * 1.5
    if kl < 0.5 * kl_target:
        return kl_coef * 0.5
    return kl_coef


def evaluate(policy, env, seed):
    """One episode per env copy, all reset with `seed`; `policy(obs, env)` gives integer choices
    (E, U).

    Returns per-episode lists (E,): mean utility per UE-step, team return (mean over UEs of each
    UE's return), mean connections per UE and unconnected fraction.
    """
    obs, _ = env.reset(seed=seed)
    utility, connections, unconnected = (np.zeros(env.num_envs), np.zeros(env.num_envs),
                                         np.zeros(env.num_envs))
    for _ in range(env.episode_length):
        obs, _, _, _, info = env.step_choices(policy(obs, env))
        utility += info["ue_utility"].mean(axis=1)
        connections += info["metrics"]["connections_per_ue"]
        unconnected += info["metrics"]["unconnected_fraction"]
    n = env.episode_length
    return {"utility": (utility / n).tolist(),
            "return": info["episode"]["return"].mean(axis=1).tolist(),
            "connections_per_ue": (connections / n).tolist(),
            "unconnected_fraction": (unconnected / n).tolist()}


def greedy_policy(agent, mode):
    """The agent's argmax action of every head, as `evaluate` wants it."""
    def policy(obs, env):
        with torch.no_grad():
            choice = agent.greedy_action(torch.as_tensor(agent_rows(obs, mode)))
        return choice.reshape(env.num_envs, env.n_agents).numpy()
    return policy


if __name__ == "__main__":
    stop_signal = run_utils.catch_signals()  # SIGINT/SIGTERM: stop at the end of the iteration
    args = parse_args()
    script = os.path.basename(__file__)
    print(f"preset {args.preset}: {' '.join(PRESETS[args.preset])}", flush=True)
    overrides = env_overrides(args)
    config = comp_env.make_config(args.scenario, **overrides)
    run_utils.check_memory(memory_gib(args, config), f"--num-envs {args.num_envs} --num-steps "
                           f"{args.num_steps} --eval-episodes {args.eval_episodes} --hidden-sizes "
                           f"{' '.join(map(str, args.hidden_sizes))} on {config.num_ues} UEs")
    if args.run_dir is not None:
        run_utils.check_output_path("--run-dir", args.run_dir, is_dir=True)
    batch_size = int(args.num_envs * args.num_steps)
    num_iterations = args.total_timesteps // batch_size
    print(f"{num_iterations} iterations of {batch_size} env steps: {num_iterations * batch_size} "
          f"of --total-timesteps {args.total_timesteps}", flush=True)

    # TRY NOT TO MODIFY: seeding
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic
    torch.set_num_threads(args.torch_threads)

    # env setup: training copies with the mode's reward; evaluation copies always with the
    # multi-agent (sum) reward, so the reported return means the same for every training reward
    envs = comp_env.make_env(args.scenario, num_envs=args.num_envs, seed=args.seed,
                             reward=args.mode, reward_aggregate=args.reward_aggregate, **overrides)
    eval_env = comp_env.make_env(args.scenario, num_envs=args.eval_episodes, seed=args.eval_seed,
                                 reward="multi", **overrides)
    n_ues, obs_dim, n_choices = envs.n_agents, envs.obs_dim, envs.act_dim
    n_rows, n_heads, row_dim = agent_layout(args.mode, n_ues, obs_dim)
    _, minibatch_size = batch_rows(args, n_ues)
    v_clip = args.clip_coef if args.vf_clip is None else args.vf_clip
    reward_scale = args.reward_scale if args.reward_scale is not None else 1.0 / n_ues

    agent = Agent(row_dim, n_heads, n_choices, args.hidden_sizes)
    optimizer = optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)

    # ALGO LOGIC: Storage setup, (T, E, rows, ...)
    shape = (args.num_steps, args.num_envs, n_rows)
    obs = torch.zeros(shape + (row_dim,))
    actions = torch.zeros(shape + (n_heads,), dtype=torch.long)
    logprobs = torch.zeros(shape)
    old_logits = torch.zeros(shape + (n_heads, n_choices))  # filled only for the KL penalty
    rewards = torch.zeros(shape)
    dones = torch.zeros(shape)
    values = torch.zeros(shape)

    if stop_signal:
        print(f"{signal.Signals(stop_signal[0]).name} before the run started: nothing saved yet")
        sys.exit(128 + stop_signal[0])
    run = run_utils.Run(args, script, f"runs/comp-{args.scenario}__{args.exp_name}-{args.mode}__"
                                      f"{args.seed}__{int(time.time())}")
    writer, checkpoint = run.writer, run.checkpoint

    # the state that a checkpoint keeps (a fresh run's start, or the resumed run's)
    global_step, iteration, kl_coef = 0, 0, args.kl_coef
    eval_history, eval_time = [], 0.0
    modules = {"agent": agent, "optimizer": optimizer, "envs": envs}
    # numpy's global generator (np.random.shuffle draws from it), in the form Run saves
    legacy_rng = np.random.Generator(np.random.get_bit_generator())
    if checkpoint is not None:
        checkpoint = run.restore(modules, legacy_rng, torch.device("cpu"))
        random.setstate(checkpoint["python_rng"])
        global_step, iteration, kl_coef = (checkpoint[k] for k in ("global_step", "iteration",
                                                                     "kl_coef"))
        eval_history, eval_time, next_obs = (checkpoint[k] for k in ("eval_history", "eval_time",
                                                                      "next_obs"))
        if iteration > num_iterations:
            run_utils.fail(f"--total-timesteps {args.total_timesteps}: the checkpoint in {run.dir} "
                           f"is at global_step={global_step}, beyond it")

    def save_checkpoint():
        writer.flush()
        run.save(global_step, modules, legacy_rng, torch.device("cpu"), with_buffer=True,
                 hidden=list(args.hidden_sizes), iteration=iteration, kl_coef=kl_coef,
                 eval_history=eval_history, eval_time=eval_time, next_obs=next_obs,
                 python_rng=random.getstate())

    def stop_if_signalled():
        """A SIGINT/SIGTERM stops the run here, between iterations, with a checkpoint."""
        if stop_signal:
            save_checkpoint()
            run.stop(stop_signal[0], global_step)

    def run_evaluation(step):
        result = evaluate(greedy_policy(agent, args.mode), eval_env, args.eval_seed)
        means = {k: float(np.mean(v)) for k, v in result.items()}
        eval_history.append({"step": step, **means})
        print(f"global_step={step}, eval_utility={means['utility']:.3f}, "
              f"eval_return={means['return']:.3f}")
        writer.add_scalar("eval/episodic_return", means["return"], step)
        for k in ("utility", "connections_per_ue", "unconnected_fraction"):
            writer.add_scalar(f"eval/{k}", means[k], step)
        return result

    # TRY NOT TO MODIFY: start the game
    if checkpoint is None:
        eval_start = time.time()
        run_evaluation(global_step)
        eval_time += time.time() - eval_start
        next_obs = torch.as_tensor(agent_rows(envs.reset(seed=args.seed)[0], args.mode))
    stop_if_signalled()

    for iteration in range(iteration + 1, num_iterations + 1):
        # Annealing the rate if instructed to do so.
        if args.anneal_lr:
            frac = 1.0 - (iteration - 1.0) / num_iterations
            optimizer.param_groups[0]["lr"] = frac * args.learning_rate

        for step in range(0, args.num_steps):
            global_step += args.num_envs
            obs[step] = next_obs

            # ALGO LOGIC: action logic
            with torch.no_grad():
                action, logprob, _, value = agent.get_action_and_value(next_obs)
                if args.kl_coef > 0:
                    old_logits[step] = agent.logits(next_obs)
            values[step] = value
            actions[step] = action
            logprobs[step] = logprob

            # TRY NOT TO MODIFY: execute the game and log data.
            raw_obs, reward, terminations, truncations, infos = envs.step_choices(
                action.reshape(args.num_envs, n_ues).numpy())
            next_obs = torch.as_tensor(agent_rows(raw_obs, args.mode))
            # central: every UE holds the team reward, so the first column is the agent's reward
            step_reward = torch.as_tensor(reward[:, :n_rows]) * reward_scale
            done = torch.as_tensor(terminations | truncations, dtype=torch.float32)[:, None].expand(
                -1, n_rows)
            if truncations.any():  # bootstrap the value of the state the time limit cut off
                with torch.no_grad():
                    final_value = agent.get_value(
                        torch.as_tensor(agent_rows(infos["final_obs"], args.mode)))
                step_reward = step_reward + args.gamma * final_value * torch.as_tensor(
                    truncations & ~terminations, dtype=torch.float32)[:, None]
            rewards[step] = step_reward
            dones[step] = done

            if "episode" in infos:
                episodic_return = float(infos["episode"]["return"].mean())
                writer.add_scalar("charts/episodic_return", episodic_return, global_step)
                writer.add_scalar("charts/episodic_length",
                                  float(np.mean(infos["episode"]["length"])), global_step)

            if (args.eval_interval > 0
                    and global_step // args.eval_interval
                    != (global_step - args.num_envs) // args.eval_interval
                    and iteration < num_iterations):
                eval_start = time.time()
                run_evaluation(global_step)
                eval_time += time.time() - eval_start

        # bootstrap value if not done
        with torch.no_grad():
            next_value = agent.get_value(next_obs)
            advantages, returns = gae(rewards, values, dones, next_value, args.gamma,
                                      args.gae_lambda)

        # flatten the batch: every (step, env copy, agent row) is one sample
        b_obs = obs.reshape(-1, row_dim)
        b_logprobs = logprobs.reshape(-1)
        b_actions = actions.reshape(-1, n_heads)
        b_old_logits = old_logits.reshape(-1, n_heads, n_choices)
        b_advantages = advantages.reshape(-1)
        if args.norm_adv and args.norm_adv_over == "batch":
            adv_std = max(b_advantages.std(correction=0).item(), 1e-4)
            b_advantages = (b_advantages - b_advantages.mean()) / adv_std
        b_returns = returns.reshape(-1)
        b_values = values.reshape(-1)

        # Optimizing the policy and value network
        b_inds = np.arange(len(b_obs))
        clipfracs = []
        for epoch in range(args.update_epochs):
            epoch_kls = []
            np.random.shuffle(b_inds)
            for start in range(0, len(b_obs), minibatch_size):
                end = start + minibatch_size
                mb_inds = b_inds[start:end]

                _, newlogprob, entropy, newvalue = agent.get_action_and_value(
                    b_obs[mb_inds], b_actions[mb_inds])
                mb_advantages = b_advantages[mb_inds]
                if args.norm_adv and args.norm_adv_over == "minibatch":
                    mb_advantages = ((mb_advantages - mb_advantages.mean())
                                     / (mb_advantages.std() + 1e-8))

                # Policy loss
                pg_loss, old_approx_kl, approx_kl, clipfrac = clipped_policy_loss(
                    newlogprob, b_logprobs[mb_inds], mb_advantages, args.clip_coef)
                clipfracs.append(clipfrac.item())

                # Value loss
                if args.clip_vloss:
                    v_loss_unclipped = (newvalue - b_returns[mb_inds]) ** 2
                    v_change = torch.clamp(newvalue - b_values[mb_inds], -v_clip, v_clip)
                    v_clipped = b_values[mb_inds] + v_change
                    v_loss_clipped = (v_clipped - b_returns[mb_inds]) ** 2
                    v_loss = 0.5 * torch.max(v_loss_unclipped, v_loss_clipped).mean()
                else:
                    v_loss = 0.5 * ((newvalue - b_returns[mb_inds]) ** 2).mean()

                entropy_loss = entropy.mean()
                loss = pg_loss - args.ent_coef * entropy_loss + v_loss * args.vf_coef
                if args.kl_coef > 0:  # RLlib's KL penalty, its coefficient adapted after the update
                    kl = categorical_kl(b_old_logits[mb_inds], agent.logits(b_obs[mb_inds])).mean()
                    epoch_kls.append(kl.item())
                    loss = loss + kl_coef * kl

                optimizer.zero_grad()
                loss.backward()
                if args.max_grad_norm is not None:
                    nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                optimizer.step()

            if args.target_kl is not None and approx_kl > args.target_kl:
                break
        if args.kl_coef > 0:  # on the mean KL of the last epoch, as RLlib's learner stats
            writer.add_scalar("losses/kl", np.mean(epoch_kls), global_step)
            writer.add_scalar("losses/kl_coef", kl_coef, global_step)
            kl_coef = adapted_kl_coef(kl_coef, np.mean(epoch_kls), args.kl_target)

        y_pred, y_true = b_values.numpy(), b_returns.numpy()
        var_y = np.var(y_true)
        explained_var = np.nan if var_y == 0 else 1 - np.var(y_true - y_pred) / var_y

        # TRY NOT TO MODIFY: record rewards for plotting purposes
        sps = int(global_step / (run.wall_time() - eval_time))
        writer.add_scalar("charts/learning_rate", optimizer.param_groups[0]["lr"], global_step)
        writer.add_scalar("losses/value_loss", v_loss.item(), global_step)
        writer.add_scalar("losses/policy_loss", pg_loss.item(), global_step)
        writer.add_scalar("losses/entropy", entropy_loss.item(), global_step)
        writer.add_scalar("losses/old_approx_kl", old_approx_kl.item(), global_step)
        writer.add_scalar("losses/approx_kl", approx_kl.item(), global_step)
        writer.add_scalar("losses/clipfrac", np.mean(clipfracs), global_step)
        writer.add_scalar("losses/explained_variance", explained_var, global_step)
        writer.add_scalar("charts/SPS", sps, global_step)
        if iteration % 20 == 0 or iteration == num_iterations:
            print(f"global_step={global_step}, SPS={sps}")
        every = args.checkpoint_interval
        if every and global_step - run.last_checkpoint >= every:
            save_checkpoint()
        stop_if_signalled()

    train_time = run.wall_time()
    save_checkpoint()  # the trained agent: a signal during the final evaluation resumes here
    final_eval = run_evaluation(global_step)
    load_sweep = {}
    for factor in args.eval_load_factors:
        env = comp_env.make_env(args.scenario, num_envs=args.eval_episodes, seed=args.eval_seed,
                                reward="multi", **env_overrides(args, factor))
        result = evaluate(greedy_policy(agent, args.mode), env, args.eval_seed)
        load_sweep[str(factor)] = {"num_ues": env.n_agents,
                                   **{k: float(np.mean(v)) for k, v in result.items()}}
    if stop_signal:  # the final evaluation is redone on resume
        run.stop(stop_signal[0], global_step)
    if args.save_model:
        model_path = os.path.join(run.dir, f"{args.exp_name}.cleanrl_model")
        torch.save(agent.state_dict(), model_path)
        print(f"model saved to {model_path}")
    run.finish(global_step, num_ues=n_ues, num_bs=envs.num_bs, wall_time_s=train_time,
               eval_time_s=eval_time, eval_history=eval_history, final_eval=final_eval,
               load_sweep=load_sweep, batch_size=batch_size, minibatch_size=minibatch_size,
               num_iterations=num_iterations)
