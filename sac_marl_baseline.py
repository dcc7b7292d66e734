# Multi-agent Soft Actor-Critic (one actor per agent, one global twin critic), CleanRL style.
# docs: README.md, section "Training scripts"; algorithm: SPEC Part C.1.
"""Multi-agent SAC for the O-RAN slicing simulator (`oran_env.py`) and the DeepCoMP environment (`comp_env.py`).

- Actors: one tanh-Gaussian policy per agent (CleanRL conventions), all N stored as one ensemble whose
  weights are shaped (N, in, out) and applied with one batched matmul, so N agents cost one forward.
- Critic: one global twin Q-network (with target copies) shared by all agents. Its input is the agent's
  observation and action plus a one-hot agent id (`--critic-joint-obs` appends every agent's
  observation). Each update trains it on all agents' sampled transitions as one batch of N * B rows.
- Temperature: one log-alpha per agent, autotuned towards the target entropy -act_dim.
- Replay buffer of joint transitions (all agents of one environment step together), sampled uniformly
  with replacement. One gradient update per vectorised environment step once `--learning-starts` env
  steps are collected (so `--num-envs` > 1 lowers the update-to-data ratio); warm-up actions are uniform
  in [-1, 1].
- `global_step` counts environment steps of one env copy summed over copies (`--num-envs` per iteration).
- Evaluation: deterministic (tanh of the mean action) on `--eval-episodes` separate environment copies,
  reset with the same seed at every evaluation, so successive evaluations score the same episodes.
  The team return is the mean over agents of each agent's episode return.
- Checkpoints (`checkpoint.pt`, every `--checkpoint-interval` env steps, taken at an episode boundary)
  hold the networks, optimisers, RNG states, logged history and the replay buffer's filled part, so
  `--resume` continues the same run; the environment is reset (with a seed derived from the step) since
  simulator state is not saved. The final checkpoint is written without the buffer to save disk.
- Network size: `--net-size auto` picks the paper's 300-400-400 when the GPU is used (`--cuda`) and the
  CPU preset 128-128 otherwise; `--hidden-sizes` overrides both.
"""
import argparse
import dataclasses
import importlib
import json
import os
import random
import sys
import time
from dataclasses import dataclass
from typing import Annotated, Generic, Literal, Optional, TypeVar

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
import tyro
from torch.utils.tensorboard import SummaryWriter

ENV_MODULES = {"oran": "oran_env", "comp": "comp_env"}
DEFAULT_SCENARIO = {"oran": "paper", "comp": "medium"}
NET_SIZES = {"paper": (300, 400, 400), "cpu": (128, 128)}
EnvConfig = TypeVar("EnvConfig")


@dataclass
class Args(Generic[EnvConfig]):
    exp_name: str = os.path.basename(__file__)[: -len(".py")]
    """the name of this experiment"""
    seed: int = 1
    """seed of the experiment (networks, warm-up actions, replay sampling, environments)"""
    torch_deterministic: bool = True
    """if toggled, `torch.backends.cudnn.deterministic=True`"""
    cuda: bool = False
    """use the GPU when one is available"""
    torch_threads: int = 2
    """number of CPU threads torch uses (2: 1.3x faster than 1 for one run of the CPU preset on an idle 2-core
    machine; give each of several parallel runs 1 thread, as run_experiments.py does)"""
    run_dir: Optional[str] = None
    """run folder (TensorBoard events, checkpoint.pt, summary.json); default
    runs/{env_id}-{scenario}__{exp_name}__{seed}__{unix time}"""
    resume: bool = False
    """continue the run in --run-dir from its checkpoint.pt (starts fresh when there is none; exits at
    once when its summary.json says finished)"""
    checkpoint_interval: int = 10_000
    """env steps between checkpoints (taken at the next episode boundary); 0 = only at the end"""
    save_model: bool = False
    """save the final actor and critic weights to {run_dir}/model.pt"""

    # Environment
    env_id: Literal["oran", "comp"] = "oran"
    """environment: `oran` (O-RAN slicing, oran_env.py) or `comp` (DeepCoMP cell selection, comp_env.py)"""
    scenario: Optional[str] = None
    """named preset of the environment (default: `paper` for oran, `medium` for comp)"""
    num_envs: int = 1
    """number of environment copies stepped together for training"""

    # Algorithm
    total_timesteps: int = 20_000
    """total environment steps of the experiment (the paper's train_steps)"""
    learning_starts: int = 2_000
    """environment steps of uniform random actions before the first update"""
    buffer_size: int = 100_000
    """replay memory size (joint transitions)"""
    batch_size: int = 256
    """transitions sampled per update; the critic sees them for every agent (N * batch rows)"""
    gamma: float = 0.99
    """the discount factor gamma"""
    tau: float = 0.005
    """target smoothing coefficient"""
    policy_lr: float = 1e-4
    """learning rate of the actors' Adam optimiser (paper: 1e-4)"""
    q_lr: float = 1e-4
    """learning rate of the critic's Adam optimiser (paper: 1e-4)"""
    alpha_lr: float = 1e-3
    """learning rate of the per-agent entropy temperatures (CleanRL uses its q_lr, 1e-3)"""
    autotune: bool = True
    """automatic tuning of each agent's entropy coefficient"""
    alpha: float = 0.2
    """entropy coefficient of every agent when --no-autotune"""
    net_size: Literal["auto", "paper", "cpu"] = "auto"
    """hidden layers: paper = 300-400-400 tanh, cpu = 128-128 tanh, auto = paper with --cuda, else cpu"""
    hidden_sizes: Optional[tuple[int, ...]] = None
    """explicit hidden layer sizes of actors and critic (overrides --net-size)"""
    critic_joint_obs: bool = False
    """also feed every agent's observation to the global critic"""
    target_entropy_scale: float = 1.0
    """EXPERIMENTAL: target entropy = -scale * act_dim"""
    init_bias: float = 0.0
    """EXPERIMENTAL: > 0: the action head's bias starts at init_bias x the static-split action"""
    init_weight_scale: float = 1.0
    """EXPERIMENTAL: factor on the action head's initial weights"""
    updates_per_step: int = 1
    """EXPERIMENTAL: gradient updates per vectorised env step"""
    alpha_init: float = 1.0
    """EXPERIMENTAL: initial temperature when autotuning"""
    warmup: str = "uniform"
    """EXPERIMENTAL: warm-up actions: uniform or policy"""

    # Evaluation and logging
    eval_interval: int = 2_000
    """env steps between deterministic evaluations (0 = only the final one)"""
    eval_episodes: int = 5
    """evaluation episodes (run as parallel environment copies)"""
    log_interval: int = 100
    """updates between loss/SPS log entries"""

    env: Annotated[EnvConfig, tyro.conf.OmitArgPrefixes] = None
    """environment options (defaults: the chosen --env-id/--scenario preset)"""

    def __post_init__(self):
        positive = ("total_timesteps", "buffer_size", "batch_size", "num_envs", "eval_episodes", "torch_threads",
                    "log_interval", "policy_lr", "q_lr", "alpha_lr", "tau")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"--{name.replace('_', '-')} must be > 0, got {getattr(self, name)}")
        for name in ("learning_starts", "eval_interval", "checkpoint_interval", "alpha"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if self.learning_starts >= self.total_timesteps:
            raise ValueError(f"--learning-starts ({self.learning_starts}) must be below --total-timesteps "
                             f"({self.total_timesteps}), otherwise no update runs")
        if not (0.0 <= self.gamma <= 1.0 and self.tau <= 1.0):
            raise ValueError(f"--gamma and --tau must lie in [0, 1], got {self.gamma}, {self.tau}")
        if self.hidden_sizes is not None and (len(self.hidden_sizes) == 0 or min(self.hidden_sizes) < 1):
            raise ValueError(f"--hidden-sizes must be one or more positive ints, got {self.hidden_sizes}")
        if self.resume and self.run_dir is None:
            raise ValueError("--resume needs --run-dir (the folder of the run to continue)")


def parse_args() -> Args:
    """--env-id and --scenario are read first so that tyro's defaults (and --help) show that preset."""
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--env-id", default=Args.env_id, choices=sorted(ENV_MODULES))
    pre.add_argument("--scenario", default=None)
    known, _ = pre.parse_known_args()
    envlib = importlib.import_module(ENV_MODULES[known.env_id])
    scenario = known.scenario or DEFAULT_SCENARIO[known.env_id]
    try:
        config = envlib.make_config(scenario)
    except ValueError as e:
        sys.exit(f"error: --scenario {scenario}: {e}")
    return tyro.cli(Args[type(config)], default=Args(env_id=known.env_id, scenario=scenario, env=config))


class EnsembleLinear(nn.Module):
    """`n` independent linear layers applied as one batched matmul: x (n, B, in) -> (n, B, out).
    `members` (index tensor, M entries) applies only those layers to x (M, B, in)."""

    def __init__(self, n, in_features, out_features):
        super().__init__()
        bound = in_features**-0.5  # nn.Linear's default initialisation
        self.weight = nn.Parameter(torch.empty(n, in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n, 1, out_features).uniform_(-bound, bound))

    def forward(self, x, members=None):
        if members is None:
            return torch.baddbmm(self.bias, x, self.weight)
        return torch.baddbmm(self.bias[members], x, self.weight[members])


class SoftQNetwork(nn.Module):
    """Twin Q-functions as a 2-member ensemble: x (R, in) -> (2, R, 1)."""

    def __init__(self, in_dim, hidden):
        super().__init__()
        sizes = (in_dim, *hidden)
        self.layers = nn.ModuleList(EnsembleLinear(2, i, o) for i, o in zip(sizes[:-1], sizes[1:]))
        self.fc_q = EnsembleLinear(2, hidden[-1], 1)

    def forward(self, x):
        x = x.expand(2, -1, -1)
        for layer in self.layers:
            x = torch.tanh(layer(x))
        return self.fc_q(x)


LOG_STD_MAX = 2
LOG_STD_MIN = -5


class Actor(nn.Module):
    """N tanh-Gaussian policies, one per agent: obs (N, B, obs_dim) -> actions (N, B, act_dim) in [-1, 1]."""

    def __init__(self, n_agents, obs_dim, act_dim, hidden):
        super().__init__()
        sizes = (obs_dim, *hidden)
        self.layers = nn.ModuleList(EnsembleLinear(n_agents, i, o) for i, o in zip(sizes[:-1], sizes[1:]))
        self.fc_mean = EnsembleLinear(n_agents, hidden[-1], act_dim)
        self.fc_logstd = EnsembleLinear(n_agents, hidden[-1], act_dim)

    def forward(self, x, agents=None):
        for layer in self.layers:
            x = torch.tanh(layer(x, agents))
        mean = self.fc_mean(x, agents)
        log_std = torch.tanh(self.fc_logstd(x, agents))
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (log_std + 1)  # From SpinUp / Denis Yarats
        return mean, log_std

    def get_action(self, x, agents=None, noise=None):
        """Reparameterised sample, its log-probability (N, B, 1) and the deterministic action.
        `noise` ~ N(0, 1) may be given so that two passes use the same sample."""
        mean, log_std = self(x, agents)
        if noise is None:
            noise = torch.randn_like(mean)
        x_t = mean + log_std.exp() * noise
        y_t = torch.tanh(x_t)
        log_prob = -0.5 * noise.pow(2) - log_std - 0.5 * np.log(2 * np.pi)  # Normal(mean, std).log_prob(x_t)
        log_prob = log_prob - torch.log(1 - y_t.pow(2) + 1e-6)  # Enforcing Action Bound
        return y_t, log_prob.sum(-1, keepdim=True), torch.tanh(mean)


def critic_input(obs, actions, agent_ids, joint_obs, agents=None):
    """Global-critic rows (o_m, a_m, onehot(m) [, o_1 .. o_N]) for the agents m in `agents` (all when None).
    obs (N, B, obs_dim) of all agents, actions (M, B, act_dim) of those agents -> (M * B, in_dim)."""
    own_obs, ids = (obs, agent_ids) if agents is None else (obs[agents], agent_ids[agents])
    parts = [own_obs, actions, ids.unsqueeze(1).expand(-1, obs.shape[1], -1)]
    if joint_obs:
        parts.append(obs.transpose(0, 1).reshape(1, obs.shape[1], -1).expand(actions.shape[0], -1, -1))
    return torch.cat(parts, dim=-1).flatten(0, 1)


def actor_loss_fn(actor, qf, obs, alpha, agent_ids, joint_obs, agents=None, noise=None):
    """Sum over agents m of E[alpha_m log pi_m(a|o_m) - min_j Q_j(o_m, a, m)], so that each actor's gradient is
    that of its own SAC loss; `agents` restricts the sum to those actors. Returns (loss, log_pi)."""
    pi, log_pi, _ = actor.get_action(obs if agents is None else obs[agents], agents, noise)
    min_qf_pi = qf(critic_input(obs, pi, agent_ids, joint_obs, agents)).min(0).values.view(log_pi.shape)
    agent_alpha = alpha if agents is None else alpha[agents]
    return (agent_alpha.view(-1, 1, 1) * log_pi - min_qf_pi).mean(dim=(1, 2)).sum(), log_pi


class ReplayBuffer:
    """Circular NumPy store of joint transitions; `sample` returns torch tensors shaped (N, B, ...)."""

    def __init__(self, size, n_agents, obs_dim, act_dim):
        self.size, self.pos, self.full = size, 0, False
        self.obs = np.zeros((size, n_agents, obs_dim), np.float32)
        self.next_obs = np.zeros((size, n_agents, obs_dim), np.float32)
        self.actions = np.zeros((size, n_agents, act_dim), np.float32)
        self.rewards = np.zeros((size, n_agents), np.float32)
        self.terminated = np.zeros((size,), np.float32)

    def add(self, obs, next_obs, actions, rewards, terminated):
        idx = (self.pos + np.arange(len(obs))) % self.size
        self.obs[idx], self.next_obs[idx], self.actions[idx] = obs, next_obs, actions
        self.rewards[idx], self.terminated[idx] = rewards, terminated
        self.full = self.full or self.pos + len(obs) >= self.size
        self.pos = (self.pos + len(obs)) % self.size

    def sample(self, batch_size, rng, device):
        idx = rng.integers(0, self.size if self.full else self.pos, size=batch_size)
        to_agents_first = lambda a: torch.as_tensor(a[idx], device=device).transpose(0, 1)
        return {"obs": to_agents_first(self.obs), "next_obs": to_agents_first(self.next_obs),
                "actions": to_agents_first(self.actions), "rewards": to_agents_first(self.rewards).unsqueeze(-1),
                "terminated": torch.as_tensor(self.terminated[idx], device=device).view(1, -1, 1)}

    def state_dict(self):
        n = self.size if self.full else self.pos
        data = {k: torch.from_numpy(getattr(self, k)[:n]) for k in ("obs", "next_obs", "actions", "rewards",
                                                                       "terminated")}
        return {"pos": self.pos, "full": self.full, **data}

    def load_state_dict(self, state):
        self.pos, self.full = state["pos"], state["full"]
        for k in ("obs", "next_obs", "actions", "rewards", "terminated"):
            getattr(self, k)[: len(state[k])] = state[k].numpy()


def rb_claims(action, K, L=3):
    """EXPERIMENTAL: per-slice fraction of RBs claimed (L,) and over-use (claims above K over K)."""
    c = (action[..., : K * L] > 0).reshape(*action.shape[:-1], K, L).float()
    per_du = c.sum((-2, -1))
    return c.mean(dim=tuple(range(c.dim() - 1))).tolist(), float((per_du - K).clamp(min=0).mean() / K)


def evaluate(actor, eval_envs, seed, device, generator=None):
    """Deterministic episodes, one per evaluation env copy (all in lockstep): team returns (E,), mean of each
    info["metrics"] entry, and each UE's mean throughput over the episode when the env reports it."""
    obs, _ = eval_envs.reset(seed=seed)
    metrics, ue_tput = {}, []
    for _ in range(eval_envs.episode_length):
        with torch.no_grad():
            o = torch.as_tensor(obs, device=device).transpose(0, 1)
            noise = torch.zeros(*o.shape[:2], eval_envs.act_dim, device=device)
            action, _, _ = actor.get_action(o, noise=noise if generator is None else noise.normal_(generator=generator))
        obs, _, _, _, info = eval_envs.step(action.transpose(0, 1).cpu().numpy())
        for k, v in info["metrics"].items():
            metrics.setdefault(k, []).append(np.asarray(v, np.float64))
        if "ue_throughput_mbps" in info:
            ue_tput.append(np.asarray(info["ue_throughput_mbps"], np.float64))
    returns = info["episode"]["return"].mean(axis=1)
    ue_tput = np.mean(ue_tput, axis=0).ravel().tolist() if ue_tput else []
    return returns, {k: float(np.mean(v)) for k, v in metrics.items()}, ue_tput


def crossed(step, interval, stride):
    """True when the last `stride` env steps (ending at `step`) passed a multiple of `interval`."""
    return interval > 0 and step // interval != (step - stride) // interval


def save_atomic(path, write):
    tmp = f"{path}.tmp"
    write(tmp)
    os.replace(tmp, path)


def write_json(path, obj):
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=1)
    save_atomic(path, write)


if __name__ == "__main__":
    args = parse_args()
    script = os.path.basename(__file__)
    run_dir = args.run_dir or f"runs/{args.env_id}-{args.scenario}__{args.exp_name}__{args.seed}__{int(time.time())}"
    ckpt_path, summary_path = os.path.join(run_dir, "checkpoint.pt"), os.path.join(run_dir, "summary.json")
    if args.resume and os.path.exists(summary_path):
        with open(summary_path) as f:
            if json.load(f).get("status") == "finished":
                print(f"{summary_path} says finished; nothing to resume")
                sys.exit(0)
    checkpoint = None
    if args.resume and os.path.exists(ckpt_path):
        try:
            checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True)
            saved_args = checkpoint["args"]
        except Exception as e:  # any unreadable or foreign file: say which and stop
            sys.exit(f"error: cannot resume from {ckpt_path}: not a readable checkpoint of this script ({e!r})")
        allowed_to_change = {"resume", "run_dir", "total_timesteps", "cuda", "torch_threads", "checkpoint_interval"}
        changed = [k for k, v in json.loads(json.dumps(dataclasses.asdict(args))).items()
                   if k not in allowed_to_change and saved_args.get(k) != v]
        if changed or checkpoint.get("script") != script:
            sys.exit(f"error: {ckpt_path} was written by {checkpoint.get('script')} with other values of {changed}")
    os.makedirs(run_dir, exist_ok=True)
    writer = SummaryWriter(run_dir, purge_step=checkpoint["global_step"] + 1 if checkpoint else None)
    if checkpoint is None:
        writer.add_text(
            "hyperparameters",
            "|param|value|\n|-|-|\n%s" % ("\n".join([f"|{key}|{value}|" for key, value in vars(args).items()])),
        )

    # TRY NOT TO MODIFY: seeding
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic
    torch.set_num_threads(args.torch_threads)
    rng = np.random.default_rng(args.seed)

    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    net_size = args.net_size if args.net_size != "auto" else ("paper" if device.type == "cuda" else "cpu")
    hidden = args.hidden_sizes or NET_SIZES[net_size]

    # env setup
    envlib = importlib.import_module(ENV_MODULES[args.env_id])
    envs = envlib.make_env(args.scenario, num_envs=args.num_envs, seed=args.seed, **vars(args.env))
    eval_envs = envlib.make_env(args.scenario, num_envs=args.eval_episodes, seed=args.seed + 10_000, **vars(args.env))
    n_agents, obs_dim, act_dim = envs.n_agents, envs.obs_dim, envs.act_dim
    agent_ids = torch.eye(n_agents, device=device)
    critic_in_dim = obs_dim + act_dim + n_agents + (n_agents * obs_dim if args.critic_joint_obs else 0)

    actor = Actor(n_agents, obs_dim, act_dim, hidden).to(device)
    qf = SoftQNetwork(critic_in_dim, hidden).to(device)
    qf_target = SoftQNetwork(critic_in_dim, hidden).to(device)
    qf_target.load_state_dict(qf.state_dict())
    actor_params, qf_params = list(actor.parameters()), list(qf.parameters())
    q_optimizer = optim.Adam(qf_params, lr=args.q_lr)
    actor_optimizer = optim.Adam(actor_params, lr=args.policy_lr)

    # Automatic entropy tuning, one temperature per agent
    target_entropy = -float(act_dim) * args.target_entropy_scale
    K_rb = getattr(getattr(envs, "config", None), "num_rbs", None)
    diag_history, eval_sampled_history = [], []
    if args.init_bias > 0:
        with torch.no_grad():
            static = torch.as_tensor(envlib.HEURISTICS["static_equal"](envs)[0], device=device)  # (N, act_dim)
            actor.fc_mean.bias.copy_(args.init_bias * static.unsqueeze(1))
            actor.fc_mean.weight.mul_(args.init_weight_scale)
    eval_gen = torch.Generator().manual_seed(args.seed + 20_000)
    log_alpha = torch.full((n_agents,), float(np.log(args.alpha_init)), requires_grad=True, device=device)
    a_optimizer = optim.Adam([log_alpha], lr=args.alpha_lr)
    alpha = log_alpha.exp().detach() if args.autotune else torch.full((n_agents,), args.alpha, device=device)

    rb = ReplayBuffer(args.buffer_size, n_agents, obs_dim, act_dim)
    global_step, update, wall_time, eval_history, best_eval_return = 0, 0, 0.0, [], -float("inf")
    if checkpoint is not None:
        for module, key in ((actor, "actor"), (qf, "qf"), (qf_target, "qf_target"), (q_optimizer, "q_optimizer"),
                            (actor_optimizer, "actor_optimizer"), (a_optimizer, "a_optimizer")):
            module.load_state_dict(checkpoint[key])
        with torch.no_grad():
            log_alpha.copy_(checkpoint["log_alpha"])
        alpha = log_alpha.exp().detach() if args.autotune else alpha
        if checkpoint["buffer"] is not None:
            rb.load_state_dict(checkpoint["buffer"])
        elif checkpoint["global_step"] < args.total_timesteps:
            sys.exit(f"error: {ckpt_path} is the final checkpoint of a run, saved without its replay buffer; "
                     f"it cannot be extended beyond global_step={checkpoint['global_step']}")
        rng.bit_generator.state = checkpoint["numpy_rng"]
        torch.set_rng_state(checkpoint["torch_rng"])
        global_step, update, wall_time = checkpoint["global_step"], checkpoint["update"], checkpoint["wall_time"]
        eval_history, best_eval_return = checkpoint["eval_history"], checkpoint["best_eval_return"]
        print(f"resumed {run_dir} at global_step={global_step}")

    def save_checkpoint(with_buffer):
        state = {"script": script, "args": json.loads(json.dumps(dataclasses.asdict(args))),
                 "global_step": global_step, "update": update, "wall_time": wall_time + time.time() - start_time,
                 "actor": actor.state_dict(), "qf": qf.state_dict(), "qf_target": qf_target.state_dict(),
                 "q_optimizer": q_optimizer.state_dict(), "actor_optimizer": actor_optimizer.state_dict(),
                 "a_optimizer": a_optimizer.state_dict(), "log_alpha": log_alpha.detach().cpu(),
                 "buffer": rb.state_dict() if with_buffer else None, "numpy_rng": rng.bit_generator.state,
                 "torch_rng": torch.get_rng_state(), "eval_history": eval_history,
                 "best_eval_return": best_eval_return}
        save_atomic(ckpt_path, lambda tmp: torch.save(state, tmp))

    def run_evaluation():
        global best_eval_return
        eval_returns, eval_metrics, ue_tput = evaluate(actor, eval_envs, args.seed + 10_000, device)
        eval_return = float(eval_returns.mean())
        eval_history.append([global_step, eval_return])
        best_eval_return = max(best_eval_return, eval_return)
        print(f"global_step={global_step}, eval_return={eval_return:.3f}")
        writer.add_scalar("eval/episodic_return", eval_return, global_step)
        for k, v in eval_metrics.items():
            writer.add_scalar(f"eval/{k}", v, global_step)
        eval_gen.manual_seed(args.seed + 20_000)
        s_returns, s_metrics, _ = evaluate(actor, eval_envs, args.seed + 10_000, device, eval_gen)
        eval_sampled_history.append([global_step, float(s_returns.mean()),
                                     {k: s_metrics[k] for k in ("qos_embb", "qos_mmtc", "qos_urllc", "rb_overuse",
                                                                "rb_utilisation") if k in s_metrics},
                                     {k: eval_metrics[k] for k in ("qos_embb", "qos_mmtc", "qos_urllc",
                                                                   "rb_overuse", "rb_utilisation")
                                      if k in eval_metrics}])
        print(f"global_step={global_step}, eval_sampled_return={float(s_returns.mean()):.3f}")
        writer.add_scalar("eval_sampled/episodic_return", float(s_returns.mean()), global_step)
        return eval_returns, eval_metrics, ue_tput

    start_time, start_step, last_checkpoint = time.time(), global_step, global_step
    episode_metrics = {}

    # TRY NOT TO MODIFY: start the game
    obs, _ = envs.reset(seed=args.seed + global_step)
    while global_step < args.total_timesteps:
        global_step += args.num_envs
        # ALGO LOGIC: put action logic here
        if global_step <= args.learning_starts and args.warmup == "uniform":
            actions = rng.uniform(-1.0, 1.0, size=(args.num_envs, n_agents, act_dim)).astype(np.float32)
        else:
            with torch.no_grad():
                actions, _, _ = actor.get_action(torch.as_tensor(obs, device=device).transpose(0, 1))
            actions = actions.transpose(0, 1).cpu().numpy()

        # TRY NOT TO MODIFY: execute the game and log data.
        next_obs, rewards, terminations, truncations, infos = envs.step(actions)
        for k, v in infos["metrics"].items():
            episode_metrics.setdefault(k, []).append(np.mean(v))

        # TRY NOT TO MODIFY: save data to reply buffer; handle `final_obs`
        real_next_obs = next_obs.copy()
        done = terminations | truncations
        if done.any():
            real_next_obs[done] = infos["final_obs"][done]
        rb.add(obs, real_next_obs, actions, rewards, terminations)

        # TRY NOT TO MODIFY: CRUCIAL step easy to overlook
        obs = next_obs

        # ALGO LOGIC: training.
        for _ in range(args.updates_per_step if global_step > args.learning_starts else 0):
            data = rb.sample(args.batch_size, rng, device)
            with torch.no_grad():
                next_state_actions, next_state_log_pi, _ = actor.get_action(data["next_obs"])
                qf_next_target = qf_target(critic_input(data["next_obs"], next_state_actions, agent_ids,
                                                        args.critic_joint_obs))
                min_qf_next_target = qf_next_target.min(0).values.view(next_state_log_pi.shape)
                min_qf_next_target = min_qf_next_target - alpha.view(-1, 1, 1) * next_state_log_pi
                next_q_value = data["rewards"] + (1 - data["terminated"]) * args.gamma * min_qf_next_target

            qf_input = critic_input(data["obs"], data["actions"], agent_ids, args.critic_joint_obs)
            qf_a_values = qf(qf_input)
            qf_loss = (qf_a_values - next_q_value.reshape(-1, 1)).pow(2).mean(dim=(1, 2)).sum()

            # optimize the model
            q_optimizer.zero_grad()
            qf_loss.backward()
            q_optimizer.step()

            actor_loss, log_pi = actor_loss_fn(actor, qf, data["obs"], alpha, agent_ids, args.critic_joint_obs)
            actor_optimizer.zero_grad()
            actor_loss.backward(inputs=actor_params)
            actor_optimizer.step()

            if args.autotune:
                alpha_loss = (-log_alpha.exp().view(-1, 1, 1) * (log_pi.detach() + target_entropy)).mean(dim=(1, 2))
                a_optimizer.zero_grad()
                alpha_loss.sum().backward()
                a_optimizer.step()
                alpha = log_alpha.exp().detach()

            # update the target networks
            with torch.no_grad():
                for param, target_param in zip(qf_params, qf_target.parameters()):
                    target_param.lerp_(param, args.tau)

            update += 1
            if update % args.log_interval == 0:
                sps = int((global_step - start_step) / (time.time() - start_time))
                writer.add_scalar("losses/qf_values", qf_a_values.mean().item(), global_step)
                writer.add_scalar("losses/qf_loss", qf_loss.item() / 2.0, global_step)
                writer.add_scalar("losses/actor_loss", actor_loss.item() / n_agents, global_step)
                writer.add_scalar("losses/alpha", alpha.mean().item(), global_step)
                writer.add_scalar("charts/SPS", sps, global_step)
                with torch.no_grad():
                    mean_b, log_std_b = actor(data["obs"])
                    std_b = log_std_b.exp()
                    samp_b = mean_b + std_b * torch.randn_like(mean_b)
                    flip = torch.special.ndtr(-mean_b.abs() / std_b).mean().item()
                    d = {"alpha": alpha.tolist(), "entropy": -log_pi.mean().item() / act_dim,
                         "std_q": torch.quantile(std_b.mean((0, 1)), torch.tensor([0.05, 0.5, 0.95])).tolist(),
                         "flip": flip, "absmean": mean_b.abs().mean().item()}
                    if K_rb and act_dim >= 3 * K_rb:
                        d["det_claims"], d["det_over"] = rb_claims(mean_b, K_rb)
                        d["smp_claims"], d["smp_over"] = rb_claims(samp_b, K_rb)
                diag_history.append([global_step, d])

        if "episode" in infos:
            episodic_return = float(infos["episode"]["return"].mean())
            print(f"global_step={global_step}, episodic_return={episodic_return:.3f}")
            writer.add_scalar("charts/episodic_return", episodic_return, global_step)
            writer.add_scalar("charts/episodic_length", float(np.mean(infos["episode"]["length"])), global_step)
            for k, v in episode_metrics.items():
                writer.add_scalar(f"env/{k}", float(np.mean(v)), global_step)
            episode_metrics = {}

        final = global_step >= args.total_timesteps
        if not final and crossed(global_step, args.eval_interval, args.num_envs):
            run_evaluation()

        if "episode" in infos and not final and args.checkpoint_interval > 0 \
                and global_step - last_checkpoint >= args.checkpoint_interval:
            writer.flush()
            save_checkpoint(with_buffer=True)
            last_checkpoint = global_step

    if eval_history and eval_history[-1][0] == global_step:
        eval_history.pop()  # resumed from the final checkpoint: its final evaluation is redone below
    eval_returns, eval_metrics, ue_tput = run_evaluation()
    save_checkpoint(with_buffer=False)
    if args.save_model:
        torch.save({"actor": actor.state_dict(), "qf": qf.state_dict(), "hidden_sizes": list(hidden)},
                   os.path.join(run_dir, "model.pt"))
    write_json(summary_path, {
        "status": "finished", "script": script, "args": json.loads(json.dumps(dataclasses.asdict(args))),
        "global_step": global_step, "wall_time_s": wall_time + time.time() - start_time,
        "final_eval": {"episodic_return": float(eval_returns.mean()), "episodic_returns": eval_returns.tolist(),
                       "metrics": eval_metrics, "ue_throughput_mbps": ue_tput},
        "best_eval_return": best_eval_return, "eval_history": eval_history,
        "eval_sampled_history": eval_sampled_history, "diag_history": diag_history})
    writer.close()
