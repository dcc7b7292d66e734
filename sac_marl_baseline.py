# Multi-agent Soft Actor-Critic (one actor per agent, one global twin critic), CleanRL style.
# docs: README.md, section "Training scripts"; algorithm: SPEC Part C.1.
"""Multi-agent SAC for the O-RAN slicing simulator (`oran_env.py`) and the DeepCoMP environment (`comp_env.py`).

- Actors: one tanh-Gaussian policy per agent (CleanRL) in one ensemble (batched matmuls), one autotuned log-alpha
  each. Critic: one global twin Q-network, input (o_m, a_m, onehot(m)) [+ all o: `--critic-joint-obs`; + all o
  and a (MASAC): `--critic-joint-actions`], trained on all agents' sampled transitions as N * B rows.
- Uniform replay of joint transitions; after `--learning-starts` random steps, one update per vectorised step of
  `--num-envs` env copies (RB-level default 2). Evaluation: tanh of the mean and sampled, fixed episodes, own RNG.
  Checkpoints (every `--checkpoint-interval` env steps, on SIGINT/SIGTERM) hold all but the simulators' state.
"""
import argparse
import dataclasses
import fcntl
import importlib
import json
import math
import os
import pathlib
import shlex
import signal
import sys
import time
from typing import Annotated, Generic, Literal, Optional, TypeVar

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
import tyro
from torch.utils.tensorboard import SummaryWriter

ENV_MODULES = {"oran": "oran_env", "comp": "comp_env"}
RB_LEVEL_DEFAULTS = {"small": dict(num_envs=1, gamma=0.9, target_entropy=-0.5, lr_decay_to=0.0)}  # [ours] README
NET_SIZES = {"paper": (300, 400, 400), "cpu": (128, 128)}
LOG_STD_MAX, LOG_STD_MIN = 2, -5  # log-std squashed into [MIN, MAX] by tanh (from SpinUp / Denis Yarats)
EnvConfig = TypeVar("EnvConfig")
EVAL_SEED = 10_000  # seed of the evaluation episodes: one fixed set for every run, seed and method
# Valid intervals of the numeric flags ("(", ")": open ends); every other numeric flag must still be finite
RANGES = {**dict.fromkeys(("torch_threads", "num_envs", "total_timesteps", "buffer_size", "eval_episodes",
                           "log_interval", "hidden_sizes", "updates_per_step"), "[1, inf)"), "tau": "(0, 1]",
          **dict.fromkeys(("checkpoint_interval", "learning_starts", "alpha", "eval_interval", "init_bias"),
                          "[0, inf)"), "gamma": "[0, 1]", "lr_decay_to": "[0, 1]", "batch_size": "[2, inf)",
          **dict.fromkeys(("policy_lr", "q_lr", "alpha_lr", "progress_interval", "alpha_init"), "(0, inf)"),
          "seed": "[0, 4294967295]"}


@dataclasses.dataclass
class Args(Generic[EnvConfig]):
    exp_name: str = os.path.basename(__file__)[: -len(".py")]
    """the name of this experiment"""
    seed: int = 1
    """seed of the experiment (networks, warm-up actions, replay sampling, environments)"""
    torch_deterministic: bool = True
    """if toggled, `torch.backends.cudnn.deterministic=True`"""
    cuda: bool = False
    """use the GPU (an error when torch sees none)"""
    torch_threads: int = 2
    """CPU threads of torch (2: 1.3x faster than 1 on an idle 2-core machine; 1 for parallel runs)"""
    run_dir: Optional[str] = None
    """run folder (events, checkpoint.pt, summary.json); default runs/{env_id}-{scenario}__{exp_name}__{seed}__{time}"""
    resume: bool = False
    """continue the run in --run-dir from its checkpoint.pt (fresh without one; exits if finished)"""
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
    """env copies stepped together, one update round per vectorised step (RB-level default [ours]: 2; `small`: 1)"""

    # Algorithm
    total_timesteps: int = 20_000
    """total environment steps of the experiment (the paper's train_steps)"""
    learning_starts: int = 2_000
    """environment steps of uniform random actions before the first update"""
    buffer_size: int = 100_000
    """replay memory size (joint transitions)"""
    batch_size: int = 256
    """transitions sampled per update; the critic sees them for every agent (N * batch rows)"""
    updates_per_step: int = 1
    """gradient updates per vectorised env step (--num-envs transitions) after the warm-up"""
    gamma: float = 0.99
    """the discount factor gamma (RB-level on `small` [ours]: 0.9, as RB_LEVEL_DEFAULTS)"""
    tau: float = 0.005
    """target smoothing coefficient"""
    policy_lr: float = 1e-4
    """learning rate of the actors' Adam optimiser (paper: 1e-4)"""
    q_lr: float = 1e-4
    """learning rate of the critic's Adam optimiser (paper: 1e-4)"""
    lr_decay_to: float = 1.0
    """[ours] actor and critic learning rates fall linearly to this fraction at the budget (1: constant; `small`: 0)"""
    alpha_lr: float = 1e-3
    """learning rate of the per-agent entropy temperatures (CleanRL uses its q_lr, 1e-3)"""
    autotune: bool = True
    """automatic tuning of each agent's entropy coefficient"""
    alpha: float = 0.2
    """entropy coefficient of every agent when --no-autotune"""
    target_entropy: float = -1.0
    """target entropy per action dimension when autotuning (SAC's -act_dim: -1; RB-level on `small` [ours]: -0.5)"""
    alpha_init: Optional[float] = None
    """initial temperatures when autotuning (default: 1e-3 [ours] for RB-level actions, else CleanRL's 1.0)"""
    init_bias: float = 1.0
    """[ours] RB-level actions start at the equal RB split: slice-score bias +-init_bias (0: CleanRL's init)"""
    net_size: Literal["auto", "paper", "cpu"] = "auto"
    """hidden layers: paper = 300-400-400 tanh, cpu = 128-128 tanh, auto = paper with --cuda, else cpu"""
    hidden_sizes: Optional[tuple[int, ...]] = None
    """explicit hidden layer sizes of actors and critic (overrides --net-size)"""
    critic_joint_obs: bool = False
    """also feed every agent's observation to the global critic"""
    critic_joint_actions: bool = False
    """centralised critic (MASAC): also every agent's observation and action (the actor loss: others' from replay)"""

    # Evaluation and logging
    eval_interval: int = 2_000
    """env steps between evaluations (0 = only the final one)"""
    eval_episodes: int = 32
    """evaluation episodes (parallel environment copies; the same fixed episodes at every evaluation)"""
    log_interval: int = 100
    """updates between loss/SPS log entries"""
    progress_interval: float = 10.0
    """seconds between progress lines (step, steps/s over the recent window, last evaluation, ETA)"""

    env: Annotated[EnvConfig, tyro.conf.OmitArgPrefixes] = None
    """environment options (defaults: the chosen --env-id/--scenario preset)"""

    def __post_init__(self):
        for f in dataclasses.fields(self):  # one generic check: finite numbers (also in tuples), inside RANGES
            values, interval = getattr(self, f.name), RANGES.get(f.name, "(-inf, inf)")
            low, high = (float(x) for x in interval[1:-1].split(","))
            for value in values if isinstance(values, tuple) else (values,):
                if type(value) in (int, float) and not (math.isfinite(value) and low <= value <= high and (
                        value, interval[0]) != (low, "(") and (value, interval[-1]) != (high, ")")):
                    raise ValueError(f"--{f.name.replace('_', '-')} must be a finite number in {interval}, got {value}")
        if self.learning_starts >= self.total_timesteps:
            raise ValueError(f"--learning-starts ({self.learning_starts}) must be below --total-timesteps "
                             f"({self.total_timesteps}), otherwise no update runs")
        if self.batch_size > self.buffer_size:
            raise ValueError(f"--batch-size ({self.batch_size}) must not exceed --buffer-size ({self.buffer_size})")
        if self.resume and self.run_dir is None:
            raise ValueError("--resume needs --run-dir (the folder of the run to continue)")


def fail(message):  # bad input: one line naming the flag, exit code 2 (as for a bad flag), no traceback
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def parse_args() -> Args:
    """--env-id, --scenario and --action-mode are read first: tyro's defaults (and --help) show their presets."""
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--env-id", default=Args.env_id, choices=sorted(ENV_MODULES))
    pre.add_argument("--scenario", default=None)
    pre.add_argument("--action-mode", default=None)
    known, _ = pre.parse_known_args()
    scenario = known.scenario or {"oran": "paper", "comp": "medium"}[known.env_id]
    try:
        config = importlib.import_module(ENV_MODULES[known.env_id]).make_config(scenario)
    except (ImportError, ValueError) as e:  # a missing simulator module must lie next to this script
        fail(f"--env-id {known.env_id} --scenario {scenario}: {e}")
    rb_level = "rb_slice" in (known.action_mode or getattr(config, "action_mode", ""))
    preset = {"num_envs": 2, **RB_LEVEL_DEFAULTS.get(scenario, {})} if rb_level else {}
    return tyro.cli(Args[type(config)], default=Args(env_id=known.env_id, scenario=scenario, env=config, **preset))


class EnsembleLinear(nn.Module):
    """`n` independent linear layers applied as one batched matmul: x (n, B, in) -> (n, B, out).
    `members` (index tensor, M entries) applies only those layers to x (M, B, in)."""

    def __init__(self, n, in_features, out_features):
        super().__init__()
        bound = in_features**-0.5  # nn.Linear's default initialisation
        self.weight = nn.Parameter(torch.empty(n, in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n, 1, out_features).uniform_(-bound, bound))

    def forward(self, x, members=None):
        weight, bias = (self.weight, self.bias) if members is None else (self.weight[members], self.bias[members])
        return torch.baddbmm(bias, x, weight)


class SoftQNetwork(nn.Module):
    """Twin Q-functions as a 2-member ensemble: x (R, in) -> (2, R, 1)."""

    def __init__(self, in_dim, hidden):
        super().__init__()
        self.layers = nn.ModuleList(EnsembleLinear(2, i, o) for i, o in zip((in_dim, *hidden), hidden))
        self.fc_q = EnsembleLinear(2, hidden[-1], 1)

    def forward(self, x):
        x = x.expand(2, -1, -1)
        for layer in self.layers:
            x = torch.tanh(layer(x))
        return self.fc_q(x)


class Actor(nn.Module):
    """N tanh-Gaussian policies, one per agent: obs (N, B, obs_dim) -> actions (N, B, act_dim) in [-1, 1]."""

    def __init__(self, n_agents, obs_dim, act_dim, hidden):
        super().__init__()
        self.layers = nn.ModuleList(EnsembleLinear(n_agents, i, o) for i, o in zip((obs_dim, *hidden), hidden))
        self.fc_mean = EnsembleLinear(n_agents, hidden[-1], act_dim)
        self.fc_logstd = EnsembleLinear(n_agents, hidden[-1], act_dim)

    def forward(self, x, agents=None):
        for layer in self.layers:
            x = torch.tanh(layer(x, agents))
        mean = self.fc_mean(x, agents)
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(self.fc_logstd(x, agents)) + 1)
        return mean, log_std

    def get_action(self, x, agents=None, noise=None):
        """Reparameterised sample (of `noise` ~ N(0, 1) if given), its log-probability (N, B, 1), tanh(mean)."""
        mean, log_std = self(x, agents)
        noise = torch.randn_like(mean) if noise is None else noise
        y_t = torch.tanh(mean + log_std.exp() * noise)
        log_prob = -0.5 * noise.pow(2) - log_std - 0.5 * np.log(2 * np.pi)  # Normal(mean, std).log_prob(x_t)
        log_prob = log_prob - torch.log(1 - y_t.pow(2) + 1e-6)  # Enforcing Action Bound
        return y_t, log_prob.sum(-1, keepdim=True), torch.tanh(mean)


def critic_input(obs, actions, agent_ids, joint, agents=None, all_actions=None):
    """Global-critic rows (o_m, a_m, onehot(m) [, o_1 .. o_N [, a_1 .. a_N]]) for the agents m in `agents` (all when
    None), `joint` "", "obs" or "obs+actions": obs (N, B, obs_dim), actions (M, B, act_dim) -> (M * B, in_dim). The
    joint actions are `all_actions` (N, B, act_dim; default `actions`) with row m's own slot set to a_m."""
    own_obs, ids = (obs, agent_ids) if agents is None else (obs[agents], agent_ids[agents])
    parts = [own_obs, actions, ids.unsqueeze(1).expand(-1, obs.shape[1], -1)]
    if joint:
        parts.append(obs.transpose(0, 1).reshape(1, obs.shape[1], -1).expand(actions.shape[0], -1, -1))
    if joint == "obs+actions":
        joint_actions = (actions if all_actions is None else all_actions).transpose(0, 1).repeat(len(ids), 1, 1, 1)
        joint_actions[torch.arange(len(ids), device=ids.device), :, ids.argmax(1)] = actions  # (M, B, N, act_dim)
        parts.append(joint_actions.flatten(2))
    return torch.cat(parts, dim=-1).flatten(0, 1)


def actor_loss_fn(actor, qf, data, alpha, agent_ids, joint, agents=None, noise=None):
    """Sum over agents m of E[alpha_m log pi_m(a|o_m) - min_j Q_j(o_m, a, m)] on the batch `data`, so that each
    actor's gradient is that of its own SAC loss; `agents` restricts the sum to those actors. Returns (loss, log_pi)."""
    pi, log_pi, _ = actor.get_action(data["obs"] if agents is None else data["obs"][agents], agents, noise)
    min_qf_pi = qf(critic_input(data["obs"], pi, agent_ids, joint, agents, data["actions"])).min(0).values
    agent_alpha = alpha if agents is None else alpha[agents]
    return (agent_alpha.view(-1, 1, 1) * log_pi - min_qf_pi.view_as(log_pi)).mean(dim=(1, 2)).sum(), log_pi


class ReplayBuffer:
    """Circular NumPy store of joint transitions; `sample` returns torch tensors shaped (N, B, ...)."""
    FIELDS = ("obs", "next_obs", "actions", "rewards", "terminated")

    def __init__(self, size, n_agents, obs_dim, act_dim):
        self.size, self.pos, self.full = size, 0, False
        for k, shape in zip(self.FIELDS, ((n_agents, obs_dim),) * 2 + ((n_agents, act_dim), (n_agents,), ())):
            setattr(self, k, np.zeros((size, *shape), np.float32))

    def add(self, obs, next_obs, actions, rewards, terminated):
        idx = (self.pos + np.arange(len(obs))) % self.size
        self.obs[idx], self.next_obs[idx], self.actions[idx] = obs, next_obs, actions
        self.rewards[idx], self.terminated[idx] = rewards, terminated
        self.full = self.full or self.pos + len(obs) >= self.size
        self.pos = (self.pos + len(obs)) % self.size

    def sample(self, batch_size, rng, device):
        idx = rng.integers(0, self.size if self.full else self.pos, size=batch_size)
        data = {k: torch.as_tensor(getattr(self, k)[idx], device=device).transpose(0, 1) for k in self.FIELDS[:4]}
        return {**data, "rewards": data["rewards"].unsqueeze(-1),
                "terminated": torch.as_tensor(self.terminated[idx], device=device).view(1, -1, 1)}

    def state_dict(self):
        n = self.size if self.full else self.pos
        return {"pos": self.pos, "full": self.full, **{k: torch.from_numpy(getattr(self, k)[:n]) for k in self.FIELDS}}

    def load_state_dict(self, state):
        self.pos, self.full = state["pos"], state["full"]
        for k in self.FIELDS:
            getattr(self, k)[: len(state[k])] = state[k].numpy()


def evaluate(actor, eval_envs, seed, device, generator=None):
    """One episode per evaluation env copy (all in lockstep) of the deterministic policy (tanh of the mean), or
    of the sampled one with noise from `generator`: team returns (E,), mean of each info["metrics"] entry, and
    each UE's mean throughput over the episode when the env reports it. The training RNG is never drawn."""
    obs, _ = eval_envs.reset(seed=seed)
    metrics, ue_tput = {}, []
    for _ in range(eval_envs.episode_length):
        with torch.no_grad():
            obs_t = torch.as_tensor(obs, device=device).transpose(0, 1)
            noise = torch.zeros(*obs_t.shape[:2], eval_envs.act_dim, device=device)  # zero: tanh of the mean
            action, _, _ = actor.get_action(obs_t, noise=noise.normal_(generator=generator) if generator else noise)
        obs, _, _, _, info = eval_envs.step(action.transpose(0, 1).cpu().numpy())
        for k, v in info["metrics"].items():
            metrics.setdefault(k, []).append(np.asarray(v, np.float64))
        ue_tput.append(np.asarray(info.get("ue_throughput_mbps", []), np.float64))  # (E, U); comp: none
    ue_tput = np.mean(ue_tput, axis=0).ravel().tolist()
    return info["episode"]["return"].mean(axis=1), {k: float(np.mean(v)) for k, v in metrics.items()}, ue_tput


def write_json(path, obj):
    """Strict JSON, written atomically: NaN/inf become null and "non_finite_as_null" says whether any did."""
    found = []
    obj = json.loads(json.dumps(obj), parse_constant=found.append)  # append returns None: NaN, Infinity -> null
    text = json.dumps({**obj, "non_finite_as_null": bool(found)}, indent=1, allow_nan=False)
    pathlib.Path(f"{path}.tmp").write_text(text)
    os.replace(f"{path}.tmp", path)


if __name__ == "__main__":
    args = parse_args()
    script, saved_args = os.path.basename(__file__), json.loads(json.dumps(dataclasses.asdict(args)))
    run_dir = args.run_dir or f"runs/{args.env_id}-{args.scenario}__{args.exp_name}__{args.seed}__{int(time.time())}"
    ckpt_path, summary_path = os.path.join(run_dir, "checkpoint.pt"), os.path.join(run_dir, "summary.json")
    if args.cuda and not torch.cuda.is_available():
        fail("--cuda: torch sees no GPU on this machine (drop --cuda to run on the CPU)")
    envlib = importlib.import_module(ENV_MODULES[args.env_id])
    envs = envlib.make_env(args.scenario, num_envs=args.num_envs, seed=args.seed, **vars(args.env))
    eval_envs = envlib.make_env(args.scenario, num_envs=args.eval_episodes, seed=EVAL_SEED, **vars(args.env))
    n_agents, obs_dim, act_dim = envs.n_agents, envs.obs_dim, envs.act_dim
    buffer_gib = args.buffer_size * (n_agents * (2 * obs_dim + act_dim + 1) + 1) * 4 / 2**30
    if buffer_gib > (memory_gib := os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30):
        fail(f"--buffer-size {args.buffer_size}: the replay buffer needs {buffer_gib:.1f} GiB of {memory_gib:.1f} GiB")
    held = os.path.isdir(run_dir) and sorted(f for f in os.listdir(run_dir) if f in ("checkpoint.pt", "summary.json")
                                             or f.startswith("events.out.tfevents"))
    if held and not args.resume:
        fail(f"--run-dir {run_dir} already holds a run ({', '.join(held)}); add --resume to continue it")
    try:  # an unreadable or foreign summary.json is reported and left as it is
        summary = json.load(open(summary_path)) if args.resume and os.path.exists(summary_path) else {"script": script}
    except ValueError as e:
        summary = e
    if not isinstance(summary, dict) or summary.get("script") != script:
        fail(f"--resume: {summary_path} is not a summary.json of {script} ({str(summary)[:80]})")
    if summary.get("status") == "finished":
        print(f"{summary_path} says finished; nothing to resume")
        sys.exit(0)
    checkpoint = None
    if args.resume and os.path.exists(ckpt_path):
        try:
            checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True)
            old_args, _ = checkpoint["args"], checkpoint["hidden"]  # a checkpoint of an older format lacks "hidden"
        except Exception as e:  # any unreadable or foreign file: say which and stop
            fail(f"cannot resume from {ckpt_path}: not a readable checkpoint of this script ({e!r})")
        allowed_to_change = {"resume", "run_dir", "total_timesteps", "cuda", "torch_threads", "checkpoint_interval",
                             "progress_interval"}
        changed = [k for k, v in saved_args.items() if k not in allowed_to_change and old_args.get(k) != v]
        if changed or checkpoint.get("script") != script:
            fail(f"--resume: {ckpt_path} was written by {checkpoint.get('script')} with other values of {changed}")
    try:
        os.makedirs(run_dir, exist_ok=True)
        run_lock = open(os.path.join(run_dir, "run.lock"), "a")  # flock held until this process exits: one writer
        fcntl.flock(run_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        writer = SummaryWriter(run_dir, purge_step=checkpoint["global_step"] + 1 if checkpoint else None)
    except BlockingIOError:  # nothing written: the other process owns this folder
        fail(f"another process is training in {run_dir} (it holds run.lock)")
    except OSError as e:  # a file, a path under a file, a folder we may not write into
        fail(f"--run-dir {run_dir}: cannot write there ({e.strerror or e})")
    if checkpoint is None:
        writer.add_text("hyperparameters", "|param|value|\n|-|-|" + "".join(f"\n|{k}|{v}|" for k, v in
                                                                       vars(args).items()))

    # TRY NOT TO MODIFY: seeding (all randomness comes from rng, torch's generators and the environments' seeds)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic
    torch.set_num_threads(args.torch_threads)
    rng = np.random.default_rng(args.seed)

    device = torch.device("cuda" if args.cuda else "cpu")
    net_size = args.net_size if args.net_size != "auto" else ("paper" if args.cuda else "cpu")
    hidden = tuple(checkpoint["hidden"]) if checkpoint else args.hidden_sizes or NET_SIZES[net_size]  # kept on resume
    agent_ids = torch.eye(n_agents, device=device)
    num_rbs = getattr(args.env, "num_rbs", 0) if "rb_slice" in str(getattr(args.env, "action_mode", "")) else 0
    joint = "obs+actions" if args.critic_joint_actions else "obs" if args.critic_joint_obs else ""  # critic's extras
    critic_in_dim = obs_dim + act_dim + n_agents + n_agents * (obs_dim * bool(joint) + act_dim * ("actions" in joint))

    actor = Actor(n_agents, obs_dim, act_dim, hidden).to(device)
    if num_rbs and args.init_bias:  # [ours] the slice scores start at the equal RB split, +-init_bias blocks
        static_split = envlib.HEURISTICS["static_equal"](envs)[0, :, None, : 3 * num_rbs]  # (N, 1, 3K)
        actor.fc_mean.bias.data[..., : 3 * num_rbs] = args.init_bias * torch.as_tensor(static_split, device=device)
    qf = SoftQNetwork(critic_in_dim, hidden).to(device)
    qf_target = SoftQNetwork(critic_in_dim, hidden).to(device)
    qf_target.load_state_dict(qf.state_dict())
    actor_params, qf_params = list(actor.parameters()), list(qf.parameters())
    q_optimizer, actor_optimizer = optim.Adam(qf_params, lr=args.q_lr), optim.Adam(actor_params, lr=args.policy_lr)

    target_entropy, alpha_init = args.target_entropy * act_dim, args.alpha_init or (1e-3 if num_rbs else 1.0)
    log_alpha = torch.full((n_agents,), math.log(alpha_init), requires_grad=True, device=device)
    a_optimizer = optim.Adam([log_alpha], lr=args.alpha_lr)
    rb, global_step, update, wall_time = ReplayBuffer(args.buffer_size, n_agents, obs_dim, act_dim), 0, 0, 0.0
    history = {"eval_history": [], "eval_sampled_history": [], "eval_episode_returns": []}
    modules = {"actor": actor, "qf": qf, "qf_target": qf_target, "q_optimizer": q_optimizer,
               "actor_optimizer": actor_optimizer, "a_optimizer": a_optimizer}
    if checkpoint is not None:
        for key, module in modules.items():
            module.load_state_dict(checkpoint[key])
        log_alpha.data.copy_(checkpoint["log_alpha"])
        if checkpoint["buffer"] is not None:
            rb.load_state_dict(checkpoint["buffer"])
        elif checkpoint["global_step"] < args.total_timesteps:
            fail(f"--resume: {ckpt_path} is the final checkpoint of a run, saved without its replay buffer; "
                 f"it cannot be extended beyond global_step={checkpoint['global_step']}")
        rng.bit_generator.state = checkpoint["numpy_rng"]
        torch.set_rng_state(checkpoint["torch_rng"])
        if device.type == "cuda" and checkpoint["cuda_rng"] is not None:
            torch.cuda.set_rng_state(checkpoint["cuda_rng"])
        global_step, update, wall_time, history = map(checkpoint.pop, "global_step update wall_time history".split())
        print(f"resumed {run_dir} at global_step={global_step}")
    alpha = log_alpha.exp().detach() if args.autotune else torch.full((n_agents,), args.alpha, device=device)

    def save_checkpoint(with_buffer):
        state = {"script": script, "args": saved_args, "hidden": list(hidden), "global_step": global_step, "update":
                 update, "wall_time": wall_time + time.time() - start_time, "log_alpha": log_alpha.detach().cpu(),
                 **{key: module.state_dict() for key, module in modules.items()},
                 "buffer": rb.state_dict() if with_buffer else None, "numpy_rng": rng.bit_generator.state,
                 "torch_rng": torch.get_rng_state(), "history": history,
                 "cuda_rng": torch.cuda.get_rng_state() if device.type == "cuda" else None}
        torch.save(state, f"{ckpt_path}.tmp")
        os.replace(f"{ckpt_path}.tmp", ckpt_path)

    def run_evaluation():
        global last_progress  # the progress window restarts after an evaluation: rates of training steps only
        results = {}
        for tag, generator in (("eval", None), ("eval_sampled", torch.Generator(device=device).manual_seed(EVAL_SEED))):
            results[tag] = returns, metrics, _ = evaluate(actor, eval_envs, EVAL_SEED, device, generator)
            history[f"{tag}_history"].append([global_step, float(returns.mean())])
            for k, v in {"episodic_return": float(returns.mean()), **metrics}.items():
                writer.add_scalar(f"{tag}/{k}", v, global_step)
        history["eval_episode_returns"].append([global_step, results["eval"][0].tolist()])
        print(f"global_step={global_step}, eval_return={history['eval_history'][-1][1]:.3f} "
              f"(sampled policy {history['eval_sampled_history'][-1][1]:.3f})")
        last_progress = (time.time(), global_step)
        return results

    def check_finite(where, **values):  # the non-finite guard: stop before a NaN/inf is used or simulated
        if bad := [k for k, v in values.items() if not torch.isfinite(torch.as_tensor(v)).all()]:
            print(f"error: non-finite {', '.join(bad)} in {where} at global_step={global_step}; last checkpoint: step "
                  f"{last_checkpoint} (0: none); try lower --q-lr, --policy-lr, --alpha-lr", file=sys.stderr)
            sys.exit(3)
    stop_signal = []  # SIGINT/SIGTERM only raise this flag: the loop checkpoints and exits at the end of its step
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda signum, frame: stop_signal.append(signum))
    start_time, last_checkpoint, episode_metrics = time.time(), global_step, {}
    last_progress = last_log = (start_time, global_step)
    print(f"{script}: {args.env_id}/{args.scenario} {getattr(args.env, 'action_mode', '')}, {n_agents} agents, obs "
          f"{obs_dim}, act {act_dim}, networks {'-'.join(map(str, hidden))}, {device} x {args.torch_threads} threads,\n"
          f"  step {global_step}/{args.total_timesteps} ({args.learning_starts} warm-up), folder {run_dir}", flush=True)

    # TRY NOT TO MODIFY: start the game
    envs.env_steps = global_step  # oran's traffic shift counts the run's env steps across a resume (comp: unused)
    obs, _ = envs.reset(seed=[args.seed, global_step])  # a pair: never the evaluation seed
    while global_step < args.total_timesteps:
        global_step += args.num_envs
        # ALGO LOGIC: put action logic here
        if global_step <= args.learning_starts:
            actions = rng.uniform(-1.0, 1.0, size=(args.num_envs, n_agents, act_dim)).astype(np.float32)
        else:
            with torch.no_grad():
                actions, _, _ = actor.get_action(torch.as_tensor(obs, device=device).transpose(0, 1))
            actions = actions.transpose(0, 1).cpu().numpy()
            check_finite("the policy's actions", actions=actions)
        # TRY NOT TO MODIFY: execute the game and log data.
        next_obs, rewards, terminations, truncations, infos = envs.step(actions)
        for k, v in infos["metrics"].items():
            episode_metrics.setdefault(k, []).append(np.mean(v))
        # TRY NOT TO MODIFY: save data to reply buffer; handle `final_obs`
        done = (terminations | truncations)[:, None, None]
        real_next_obs = np.where(done, infos["final_obs"], next_obs) if done.any() else next_obs
        rb.add(obs, real_next_obs, actions, rewards, terminations)
        # TRY NOT TO MODIFY: CRUCIAL step easy to overlook
        obs = next_obs
        # ALGO LOGIC: training.
        for opt, lr in ((q_optimizer, args.q_lr), (actor_optimizer, args.policy_lr)):  # linear to --lr-decay-to
            opt.param_groups[0]["lr"] = lr * (1 + (args.lr_decay_to - 1) * global_step / args.total_timesteps)
        for _ in range(args.updates_per_step if global_step > args.learning_starts else 0):
            data = rb.sample(args.batch_size, rng, device)
            with torch.no_grad():
                next_state_actions, next_state_log_pi, _ = actor.get_action(data["next_obs"])
                qf_next_target = qf_target(critic_input(data["next_obs"], next_state_actions, agent_ids, joint))
                min_qf_next_target = qf_next_target.min(0).values.view(next_state_log_pi.shape)
                min_qf_next_target = min_qf_next_target - alpha.view(-1, 1, 1) * next_state_log_pi
                next_q_value = data["rewards"] + (1 - data["terminated"]) * args.gamma * min_qf_next_target
            qf_input = critic_input(data["obs"], data["actions"], agent_ids, joint)
            qf_a_values = qf(qf_input)
            qf_loss = (qf_a_values - next_q_value.reshape(-1, 1)).pow(2).mean(dim=(1, 2)).sum()
            q_optimizer.zero_grad()
            qf_loss.backward()
            q_optimizer.step()
            actor_loss, log_pi = actor_loss_fn(actor, qf, data, alpha, agent_ids, joint)
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
            check_finite(f"update {update + 1}", qf_loss=qf_loss, actor_loss=actor_loss, alpha=alpha)
            update += 1
            if update == 1:
                print(f"global_step={global_step}: warm-up done, updates start", flush=True)
            if update % args.log_interval == 0:  # SPS over the last log_interval updates
                sps, last_log = (global_step - last_log[1]) / ((now := time.time()) - last_log[0]), (now, global_step)
                mean, log_std = (t.detach() for t in actor(data["obs"]))  # one pass: RB claims (share of K), std
                claims = {"sign": mean > 0, "sampled": torch.special.ndtr(mean / log_std.exp())}  # slice l: dims l::3
                for tag, v in {"losses/qf_values": qf_a_values.mean().item(), "losses/qf_loss": qf_loss.item() / 2.0,
                               "losses/actor_loss": actor_loss.item() / n_agents, "losses/alpha": alpha.mean().item(),
                               "charts/SPS": sps, "policy/entropy_per_dim": -log_pi.mean().item() / act_dim,
                               **{f"rb_claims_{k}/slice_{l}": c[..., l : 3 * num_rbs : 3].float().mean()
                                  .item() for k, c in claims.items() for l in range(3 if num_rbs else 0)}}.items():
                    writer.add_scalar(tag, v, global_step)
                writer.add_histogram("policy/std", log_std.exp().mean((0, 1)), global_step)

        if "episode" in infos:
            print(f"global_step={global_step}, episodic_return={infos['episode']['return'].mean():.3f}")
            for k, v in {"charts/episodic_return": infos["episode"]["return"], "charts/episodic_length":
                         infos["episode"]["length"], **{f"env/{k}": v for k, v in episode_metrics.items()}}.items():
                writer.add_scalar(k, float(np.mean(v)), global_step)
            episode_metrics = {}
        final = global_step >= args.total_timesteps
        if not final and args.eval_interval and (global_step - args.num_envs) // args.eval_interval < \
                global_step // args.eval_interval:  # the last num_envs steps crossed a multiple of eval_interval
            run_evaluation()

        if stop_signal or "episode" in infos and not final and args.checkpoint_interval > 0 \
                and global_step - last_checkpoint >= args.checkpoint_interval:
            writer.flush()
            save_checkpoint(with_buffer=True)
            last_checkpoint = global_step
        if stop_signal:
            print(f"{signal.Signals(stop_signal[0]).name}: checkpoint at global_step={global_step}; resume with:\n  "
                  + shlex.join([sys.executable, *sys.argv] + ["--resume"] * (not args.resume)
                               + ["--run-dir", run_dir] * (not args.run_dir)), flush=True)
            sys.exit(128 + stop_signal[0])
        if (now := time.time()) - last_progress[0] >= args.progress_interval:  # rate and ETA over the last interval
            sps, last_progress = (global_step - last_progress[1]) / (now - last_progress[0]), (now, global_step)
            print(f"progress: global_step={global_step}/{args.total_timesteps}, {sps:.1f} steps/s, last eval_return="
                  f"{([[0, math.nan]] + history['eval_history'])[-1][1]:.3f}, ETA "
                  f"{(args.total_timesteps - global_step) / sps / 60:.1f} min", flush=True)

    for series in [s for s in history.values() if s and s[-1][0] == global_step]:
        series.pop()  # resumed from the final checkpoint: its final evaluation is redone below
    results = run_evaluation()
    (eval_returns, eval_metrics, ue_tput), sampled_returns = results["eval"], results["eval_sampled"][0]
    save_checkpoint(with_buffer=False)
    if args.save_model:
        torch.save({"actor": actor.state_dict(), "qf": qf.state_dict(), "hidden_sizes": list(hidden)},
                   os.path.join(run_dir, "model.pt"))
    write_json(summary_path, {
        "status": "finished", "script": script, "args": saved_args, "global_step": global_step, "wall_time_s":
        wall_time + time.time() - start_time, "best_eval_return": max(r for _, r in history["eval_history"]),
        "final_eval": {"episodic_return": float(eval_returns.mean()), "episodic_returns": eval_returns.tolist(),
                       "sampled_episodic_return": float(sampled_returns.mean()), "metrics": eval_metrics,
                       "ue_throughput_mbps": ue_tput}, **history})
    writer.close()
