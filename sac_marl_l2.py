# docs: docs/training.md (#multi-agent-sac, #the-variants, #sam-and-the-rho-schedule)
"""Multi-agent SAC + L2: sac_marl_baseline.py plus an L2 penalty (l2_coef / 2) ||theta||^2 on
every actor and critic parameter (weights and biases), applied as its gradient l2_coef * theta
through Adam's (coupled) weight_decay.

- Actors: one policy per agent (CleanRL's) in one ensemble (batched matmuls), one autotuned
  log-alpha each. Critic: one global twin Q-network, input (o_m, a_m, onehot(m)) [+ all o:
  `--critic-joint-obs`; + all o and a (MASAC): `--critic-joint-actions`], trained on all agents'
  sampled transitions as N * B rows.
- Uniform replay of joint transitions; after `--learning-starts` random steps, one update per
  vectorised step of `--num-envs` env copies. Evaluation: tanh of the mean and sampled, on fixed
  episodes, with its own RNG. Checkpoints (every `--checkpoint-interval` env steps, on SIGINT or
  SIGTERM) hold the whole state, the simulators' too: a resumed run goes on exactly as an
  uninterrupted one. Runs on any environment module with oran_env's vector API (`oran_env.py`,
  `comp_env.py`); the run machinery is in `run_utils.py`.
"""
import argparse
import dataclasses
import importlib
import math
import os
import signal
import sys
import time
from typing import Annotated, Generic, Literal, Optional, TypeVar


def stop_before_the_run(signum, frame):
    """SIGINT/SIGTERM before main's own handlers (during `import torch`): nothing to save yet."""
    print(f"{signal.Signals(signum).name}: stopped before the run started: nothing saved",
          flush=True)
    os._exit(128 + signum)  # at once, without a KeyboardInterrupt traceback from the imports


if __name__ == "__main__":
    signal.signal(signal.SIGINT, stop_before_the_run)
    signal.signal(signal.SIGTERM, stop_before_the_run)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.optim as optim  # noqa: E402
import tyro  # noqa: E402

import run_utils  # noqa: E402
from run_utils import fail  # noqa: E402

ENV_MODULES = {"oran": "oran_env", "comp": "comp_env"}
NET_SIZES = {"paper": (300, 400, 400), "cpu": (128, 128)}
LOG_STD_MAX, LOG_STD_MIN = 2, -5  # log-std squashed into [MIN, MAX] by tanh (SpinUp / D. Yarats)
EnvConfig = TypeVar("EnvConfig")
EVAL_SEED = 10_000  # seed of the evaluation episodes: one fixed set for every run, seed and method
# valid intervals of the numeric flags ("(", ")": open ends): the upper bounds keep the losses
# finite (temperatures, target entropy) and the allocations within memory (sizes and counts)
RANGES = {
    **dict.fromkeys(("checkpoint_interval", "learning_starts", "eval_interval"), "[0, 1e12]"),
    **dict.fromkeys(("policy_lr", "q_lr", "alpha_lr"), "(0, 1]"),
    "total_timesteps": "[1, 1e12]", "log_interval": "[1, 1e12]", "torch_threads": "[1, 1024]",
    "num_envs": "[1, 4096]", "eval_episodes": "[1, 4096]", "buffer_size": "[1, 1e10]",
    "hidden_sizes": "[1, 16384]", "updates_per_step": "[1, 1000]", "batch_size": "[2, 65536]",
    "alpha": "[0, 100]", "alpha_init": "(0, 100]", "target_entropy": "[-100, 100]",
    "init_bias": "[0, 10]", "progress_interval": "(0, 1e6]", "tau": "(0, 1]", "gamma": "[0, 1]",
    "lr_decay_to": "[0, 1]", "seed": "[0, 4294967295]",
}
RANGES["l2_coef"] = "[0, 1]"


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
    """CPU threads of torch (2: 1.3x faster than 1 on an idle 2-core machine; 1 for parallel
    runs)"""
    run_dir: Optional[str] = None
    """run folder (events, checkpoint.pt, summary.json); default
    runs/{env_id}-{scenario}__{exp_name}__{seed}__{time}"""
    resume: bool = False
    """continue the run in --run-dir from its checkpoint.pt (fresh without one; exits if
    finished)"""
    checkpoint_interval: int = 10_000
    """env steps between checkpoints (taken at the next episode boundary); 0 = only at the end"""
    save_model: bool = False
    """save the final actor and critic weights to {run_dir}/model.pt"""

    # Environment
    env_id: Literal["oran", "comp"] = "oran"
    """environment: `oran` (O-RAN slicing, oran_env.py) or `comp` (DeepCoMP, comp_env.py)"""
    scenario: Optional[str] = None
    """named preset of the environment (default: `paper` for oran, `medium` for comp)"""
    num_envs: int = 2
    """env copies stepped together, one update round per vectorised step; it must fit both the
    warm-up (--learning-starts) and the steps after it [ours]"""

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
    """the discount factor gamma"""
    tau: float = 0.005
    """target smoothing coefficient"""
    policy_lr: float = 1e-4
    """learning rate of the actors' Adam optimiser (paper: 1e-4)"""
    q_lr: float = 1e-4
    """learning rate of the critic's Adam optimiser (paper: 1e-4)"""
    lr_decay_to: float = 1.0
    """[ours] actor and critic learning rates fall linearly to this fraction at the budget
    (1: constant)"""
    alpha_lr: float = 1e-3
    """learning rate of the per-agent entropy temperatures (CleanRL uses its q_lr, 1e-3)"""
    autotune: bool = True
    """automatic tuning of each agent's entropy coefficient"""
    alpha: float = 0.2
    """entropy coefficient of every agent when --no-autotune"""
    target_entropy: float = -1.0
    """target entropy per action dimension when autotuning (SAC's -act_dim: -1)"""
    alpha_init: float = 1e-3
    """initial temperatures when autotuning ([ours]; CleanRL's: 1.0)"""
    init_bias: float = 1.0
    """[ours] the actors' mean starts at init_bias x the env's `action_prior` where it has one
    (oran_env's RB-level actions: the equal RB split); 0: CleanRL's init"""
    net_size: Literal["auto", "paper", "cpu"] = "auto"
    """hidden layers: paper = 300-400-400 tanh, cpu = 128-128 tanh, auto = paper with --cuda,
    else cpu"""
    hidden_sizes: Optional[tuple[int, ...]] = None
    """explicit hidden layer sizes of actors and critic (overrides --net-size)"""
    critic_joint_obs: bool = False
    """also feed every agent's observation to the global critic"""
    critic_joint_actions: bool = False
    """centralised critic (MASAC): also every agent's observation and action (the actor loss:
    the others' actions from replay)"""

    # L2 regularisation
    l2_coef: float = 1e-4
    """L2 penalty coefficient of actor and critic weights (Adam weight_decay)"""

    # Evaluation and logging
    eval_interval: int = 2_000
    """env steps between evaluations (0 = only the final one)"""
    eval_episodes: int = 32
    """evaluation episodes (parallel env copies; the same fixed episodes at every evaluation)"""
    log_interval: int = 100
    """updates between loss/SPS log entries"""
    progress_interval: float = 10.0
    """seconds between progress lines (step, steps/s over the recent window, last evaluation,
    ETA)"""

    env: Annotated[EnvConfig, tyro.conf.OmitArgPrefixes] = None
    """environment options (defaults: the chosen --env-id/--scenario preset)"""

    def __post_init__(self):
        run_utils.check_ranges(self, RANGES)
        if self.learning_starts >= self.total_timesteps:
            raise ValueError(f"--learning-starts ({self.learning_starts}) must be below "
                             f"--total-timesteps ({self.total_timesteps}), otherwise no update "
                             "runs")
        if (self.learning_starts and self.num_envs > self.learning_starts) or (
                self.num_envs > self.total_timesteps - self.learning_starts):
            raise ValueError(f"--num-envs ({self.num_envs}) must fit both the warm-up "
                             f"(--learning-starts {self.learning_starts}) and the steps after it "
                             f"(--total-timesteps {self.total_timesteps}): one vectorised step "
                             "takes --num-envs env steps")
        if self.batch_size > self.buffer_size:
            raise ValueError(f"--batch-size ({self.batch_size}) must not exceed --buffer-size "
                             f"({self.buffer_size})")
        if self.resume and self.run_dir is None:
            raise ValueError("--resume needs --run-dir (the folder of the run to continue)")


def parse_args() -> Args:
    """--env-id and --scenario are read first to pick the environment's config type and preset:
    tyro's defaults (and --help) then show that preset's values."""
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--env-id", default=Args.env_id, choices=sorted(ENV_MODULES))
    pre.add_argument("--scenario", default=None)
    known, _ = pre.parse_known_args()
    scenario = {"oran": "paper", "comp": "medium"}[known.env_id] if known.scenario is None else (
        known.scenario)
    try:
        config = importlib.import_module(ENV_MODULES[known.env_id]).make_config(scenario)
    except (ImportError, ValueError) as e:  # the simulator module must lie next to this script
        fail(f"--env-id {known.env_id} --scenario {scenario}: {e}")
    return tyro.cli(Args[type(config)], default=Args(env_id=known.env_id, scenario=scenario,
                                                      env=config))


def make_env(args, num_envs, seed):
    envlib = importlib.import_module(ENV_MODULES[args.env_id])
    return envlib.make_env(args.scenario, num_envs=num_envs, seed=seed, **vars(args.env))


def network_gib(n_agents, obs_dim, act_dim, hidden, batch_size):
    """An upper estimate of the networks' memory, GiB: actors and the widest critic (weights,
    gradients, Adam's moments, a SAM copy: 5 floats a parameter; the target critic: 1) and one
    update's activations (N * batch critic rows through the twin Qs, forward and backward)."""
    def parameters(dims):
        return sum(i * o + o for i, o in zip(dims, dims[1:]))

    critic = 2 * parameters((n_agents * (obs_dim + act_dim + 1) + obs_dim + act_dim, *hidden, 1))
    actors = n_agents * parameters((obs_dim, *hidden, 2 * act_dim))
    activations = 2 * 2 * n_agents * batch_size * sum(hidden)
    return (5 * (actors + critic) + critic + activations) * 4 / 2**30


class EnsembleLinear(nn.Module):
    """`n` independent linear layers applied as one batched matmul: x (n, B, in) -> (n, B, out).
    `members` (index tensor, M entries) applies only those layers to x (M, B, in)."""

    def __init__(self, n, in_features, out_features):
        super().__init__()
        bound = in_features**-0.5  # nn.Linear's default initialisation
        weight = torch.empty(n, in_features, out_features).uniform_(-bound, bound)
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(torch.empty(n, 1, out_features).uniform_(-bound, bound))

    def forward(self, x, members=None):
        if members is None:
            return torch.baddbmm(self.bias, x, self.weight)
        return torch.baddbmm(self.bias[members], x, self.weight[members])


class SoftQNetwork(nn.Module):
    """Twin Q-functions as a 2-member ensemble: x (R, in) -> (2, R, 1)."""

    def __init__(self, in_dim, hidden):
        super().__init__()
        self.layers = nn.ModuleList(
            EnsembleLinear(2, i, o) for i, o in zip((in_dim, *hidden), hidden))
        self.fc_q = EnsembleLinear(2, hidden[-1], 1)

    def forward(self, x):
        x = x.expand(2, -1, -1)
        for layer in self.layers:
            x = torch.tanh(layer(x))
        return self.fc_q(x)


class Actor(nn.Module):
    """N tanh-Gaussian policies, one per agent: obs (N, B, obs_dim) -> actions (N, B, act_dim)."""

    def __init__(self, n_agents, obs_dim, act_dim, hidden):
        super().__init__()
        self.layers = nn.ModuleList(
            EnsembleLinear(n_agents, i, o) for i, o in zip((obs_dim, *hidden), hidden))
        self.fc_mean = EnsembleLinear(n_agents, hidden[-1], act_dim)
        self.fc_logstd = EnsembleLinear(n_agents, hidden[-1], act_dim)

    def forward(self, x, agents=None):
        for layer in self.layers:
            x = torch.tanh(layer(x, agents))
        mean = self.fc_mean(x, agents)
        log_std = torch.tanh(self.fc_logstd(x, agents))
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (log_std + 1)
        return mean, log_std

    def get_action(self, x, agents=None, noise=None):
        """Reparameterised sample (of `noise` ~ N(0, 1) if given), its log-probability (N, B, 1),
        and tanh(mean)."""
        mean, log_std = self(x, agents)
        noise = torch.randn_like(mean) if noise is None else noise
        y_t = torch.tanh(mean + log_std.exp() * noise)
        log_prob = -0.5 * noise.pow(2) - log_std - 0.5 * np.log(2 * np.pi)  # Normal.log_prob(x_t)
        log_prob = log_prob - torch.log(1 - y_t.pow(2) + 1e-6)  # Enforcing Action Bound
        return y_t, log_prob.sum(-1, keepdim=True), torch.tanh(mean)


def actor_policy(actor, device, generator=None):
    """The actors as a policy for `evaluate`: tanh of the mean, or sampled with the noise drawn
    from `generator` (never from training's RNG)."""

    @torch.no_grad()
    def policy(obs, envs):
        obs = torch.as_tensor(obs, device=device).transpose(0, 1)
        noise = torch.zeros(*obs.shape[:2], envs.act_dim, device=device)
        if generator is not None:
            noise.normal_(generator=generator)
        return actor.get_action(obs, noise=noise)[0].transpose(0, 1).cpu().numpy()

    return policy


def critic_input(obs, actions, agent_ids, joint, agents=None, all_actions=None):
    """Global-critic rows (o_m, a_m, onehot(m) [, o_1 .. o_N [, a_1 .. a_N]]) for the agents m in
    `agents` (all when None), `joint` "", "obs" or "obs+actions": obs (N, B, obs_dim), actions
    (M, B, act_dim) -> (M * B, in_dim). The joint actions are `all_actions` (N, B, act_dim;
    default `actions`) with row m's own slot set to a_m."""
    own_obs, ids = (obs, agent_ids) if agents is None else (obs[agents], agent_ids[agents])
    B = obs.shape[1]
    parts = [own_obs, actions, ids.unsqueeze(1).expand(-1, B, -1)]
    if joint:
        parts.append(obs.transpose(0, 1).reshape(1, B, -1).expand(actions.shape[0], -1, -1))
    if joint == "obs+actions":
        all_actions = actions if all_actions is None else all_actions
        joint_actions = all_actions.transpose(0, 1).repeat(len(ids), 1, 1, 1)  # (M, B, N, act_dim)
        joint_actions[torch.arange(len(ids), device=ids.device), :, ids.argmax(1)] = actions
        parts.append(joint_actions.flatten(2))
    return torch.cat(parts, dim=-1).flatten(0, 1)


def td_target(actor, qf_target, data, alpha, gamma, agent_ids, joint, noise=None):
    """Soft TD targets r + gamma (1 - d) (min_j Q'_j(o', a', m) - alpha_m log pi_m(a'|o'_m)),
    a' ~ pi_m(o'_m) (of `noise` if given): (N, B, 1)."""
    with torch.no_grad():
        next_actions, next_log_pi, _ = actor.get_action(data["next_obs"], noise=noise)
        qf_next_target = qf_target(critic_input(data["next_obs"], next_actions, agent_ids, joint))
        min_qf_next_target = qf_next_target.min(0).values.view(next_log_pi.shape)
        min_qf_next_target = min_qf_next_target - alpha.view(-1, 1, 1) * next_log_pi
        return data["rewards"] + (1 - data["terminated"]) * gamma * min_qf_next_target


def td_loss(qf_values, target):
    """Sum over the twin Qs of the mean squared TD error: qf_values (2, N * B, 1), target
    (N, B, 1)."""
    return (qf_values - target.reshape(-1, 1)).pow(2).mean(dim=(1, 2)).sum()


def actor_loss_fn(actor, qf, data, alpha, agent_ids, joint, agents=None, noise=None):
    """Sum over agents m of E[alpha_m log pi_m(a|o_m) - min_j Q_j(o_m, a, m)] on the batch `data`,
    so that each actor's gradient is that of its own SAC loss; `agents` restricts the sum to
    those actors. Returns (loss, log_pi)."""
    obs = data["obs"] if agents is None else data["obs"][agents]
    pi, log_pi, _ = actor.get_action(obs, agents, noise)
    qf_pi = qf(critic_input(data["obs"], pi, agent_ids, joint, agents, data["actions"]))
    agent_alpha = alpha if agents is None else alpha[agents]
    loss = agent_alpha.view(-1, 1, 1) * log_pi - qf_pi.min(0).values.view_as(log_pi)
    return loss.mean(dim=(1, 2)).sum(), log_pi


class ReplayBuffer:
    """Circular NumPy store of joint transitions; `sample` returns torch tensors (N, B, ...)."""
    FIELDS = ("obs", "next_obs", "actions", "rewards", "terminated")

    def __init__(self, size, n_agents, obs_dim, act_dim):
        self.size, self.pos, self.full = size, 0, False
        shapes = ((n_agents, obs_dim), (n_agents, obs_dim), (n_agents, act_dim), (n_agents,), ())
        for k, shape in zip(self.FIELDS, shapes):
            setattr(self, k, np.zeros((size, *shape), np.float32))

    def add(self, obs, next_obs, actions, rewards, terminated):
        idx = (self.pos + np.arange(len(obs))) % self.size
        self.obs[idx], self.next_obs[idx], self.actions[idx] = obs, next_obs, actions
        self.rewards[idx], self.terminated[idx] = rewards, terminated
        self.full = self.full or self.pos + len(obs) >= self.size
        self.pos = (self.pos + len(obs)) % self.size

    def sample(self, batch_size, rng, device):
        idx = rng.integers(0, self.size if self.full else self.pos, size=batch_size)
        data = {k: torch.as_tensor(getattr(self, k)[idx], device=device).transpose(0, 1)
                for k in self.FIELDS[:4]}
        return {**data, "rewards": data["rewards"].unsqueeze(-1),
                "terminated": torch.as_tensor(self.terminated[idx], device=device).view(1, -1, 1)}

    def state_dict(self):
        n = self.size if self.full else self.pos
        return {"pos": self.pos, "full": self.full,
                **{k: torch.from_numpy(getattr(self, k)[:n]) for k in self.FIELDS}}

    def load_state_dict(self, state):
        self.pos, self.full = state["pos"], state["full"]
        for k in self.FIELDS:
            getattr(self, k)[: len(state[k])] = state[k].numpy()


if __name__ == "__main__":
    stop_signal = run_utils.catch_signals()  # SIGINT/SIGTERM: checkpoint at the end of the step
    args = parse_args()
    script = os.path.basename(__file__)
    if args.cuda and not torch.cuda.is_available():
        fail("--cuda: torch sees no GPU on this machine (drop --cuda to run on the CPU)")
    envs = make_env(args, args.num_envs, args.seed)
    eval_envs = make_env(args, args.eval_episodes, EVAL_SEED)
    evaluate = importlib.import_module(ENV_MODULES[args.env_id]).evaluate
    n_agents, obs_dim, act_dim = envs.n_agents, envs.obs_dim, envs.act_dim
    buffer_gib = args.buffer_size * (n_agents * (2 * obs_dim + act_dim + 1) + 1) * 4 / 2**30
    run_utils.check_memory(buffer_gib, f"--buffer-size {args.buffer_size}: the replay buffer")
    sizes = args.hidden_sizes or NET_SIZES["paper"]  # the larger preset: an upper estimate
    run_utils.check_memory(network_gib(n_agents, obs_dim, act_dim, sizes, args.batch_size),
                           f"--hidden-sizes {' '.join(map(str, sizes))}: training the networks")
    run = run_utils.Run(args, script, f"runs/{args.env_id}-{args.scenario}__{args.exp_name}__"
                                      f"{args.seed}__{int(time.time())}")
    writer, checkpoint = run.writer, run.checkpoint

    # TRY NOT TO MODIFY: seeding (all randomness: rng, torch's generators, the environments' seeds)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic
    torch.set_num_threads(args.torch_threads)
    rng = np.random.default_rng(args.seed)

    device = torch.device("cuda" if args.cuda else "cpu")
    net_size = args.net_size if args.net_size != "auto" else ("paper" if args.cuda else "cpu")
    # the hidden sizes are kept on resume
    hidden = tuple(checkpoint["hidden"]) if checkpoint else args.hidden_sizes or NET_SIZES[net_size]
    agent_ids = torch.eye(n_agents, device=device)
    joint = "obs+actions" if args.critic_joint_actions else "obs" if args.critic_joint_obs else ""
    critic_in_dim = obs_dim + act_dim + n_agents + n_agents * (
        obs_dim * bool(joint) + act_dim * ("actions" in joint))

    actor = Actor(n_agents, obs_dim, act_dim, hidden).to(device)
    prior = getattr(envs, "action_prior", None)  # (N, act_dim), NaN where no preference
    if prior is not None and args.init_bias:  # [ours] tanh(mean) starts at the prior's action
        prior = torch.as_tensor(prior, device=device).unsqueeze(1)
        bias = actor.fc_mean.bias.data
        bias.copy_(torch.where(prior.isnan(), bias, args.init_bias * prior))
    qf = SoftQNetwork(critic_in_dim, hidden).to(device)
    qf_target = SoftQNetwork(critic_in_dim, hidden).to(device)
    qf_target.load_state_dict(qf.state_dict())
    actor_params, qf_params = list(actor.parameters()), list(qf.parameters())
    q_optimizer = optim.Adam(qf_params, lr=args.q_lr, weight_decay=args.l2_coef)
    actor_optimizer = optim.Adam(actor_params, lr=args.policy_lr, weight_decay=args.l2_coef)

    target_entropy = args.target_entropy * act_dim
    log_alpha = torch.full((n_agents,), math.log(args.alpha_init), device=device)
    log_alpha.requires_grad_()
    a_optimizer = optim.Adam([log_alpha], lr=args.alpha_lr)
    rb = ReplayBuffer(args.buffer_size, n_agents, obs_dim, act_dim)
    global_step, update = 0, 0
    history = {"eval_history": [], "eval_sampled_history": [], "eval_episode_returns": []}
    modules = {"actor": actor, "qf": qf, "qf_target": qf_target, "q_optimizer": q_optimizer,
               "actor_optimizer": actor_optimizer, "a_optimizer": a_optimizer, "buffer": rb,
               "envs": envs, "eval_envs": eval_envs}  # the envs' state: an exact resume
    if checkpoint is not None:
        checkpoint = run.restore(modules, rng, device)
        log_alpha.data.copy_(checkpoint["log_alpha"])
        global_step, update = checkpoint["global_step"], checkpoint["update"]
        history = checkpoint["history"]
    if args.autotune:
        alpha = log_alpha.exp().detach()
    else:
        alpha = torch.full((n_agents,), args.alpha, device=device)

    def save_checkpoint(with_buffer):
        run.save(global_step, modules, rng, device, with_buffer, hidden=list(hidden), update=update,
                 history=history, log_alpha=log_alpha, obs=torch.from_numpy(obs),
                 episode_metrics=episode_metrics)

    def run_evaluation():
        results = {}
        sampling = torch.Generator(device=device).manual_seed(EVAL_SEED)
        for tag, generator in (("eval", None), ("eval_sampled", sampling)):
            returns, metrics, ue_tput = evaluate(actor_policy(actor, device, generator), eval_envs,
                                                 EVAL_SEED)
            results[tag] = returns, metrics, ue_tput
            history[f"{tag}_history"].append([global_step, float(returns.mean())])
            for k, v in {"episodic_return": float(returns.mean()), **metrics}.items():
                writer.add_scalar(f"{tag}/{k}", v, global_step)
        history["eval_episode_returns"].append([global_step, results["eval"][0].tolist()])
        print(f"global_step={global_step}, eval_return={history['eval_history'][-1][1]:.3f} "
              f"(sampled policy {history['eval_sampled_history'][-1][1]:.3f})")
        progress.restart(global_step)  # the progress rates count training steps only
        return results

    progress = run_utils.Progress(args.progress_interval, args.total_timesteps, global_step)
    last_log, episode_metrics = (time.time(), global_step), {}
    print(f"{script}: {args.env_id}/{args.scenario} {getattr(args.env, 'action_mode', '')}, "
          f"{n_agents} agents, obs {obs_dim}, act {act_dim}, "
          f"networks {'-'.join(map(str, hidden))}, {device} x {args.torch_threads} threads,\n"
          f"  step {global_step}/{args.total_timesteps} "
          f"({args.learning_starts} warm-up), folder {run.dir}", flush=True)

    # TRY NOT TO MODIFY: start the game
    if checkpoint is not None and "envs" in checkpoint:  # the envs go on where they stopped
        obs, episode_metrics = checkpoint["obs"].cpu().numpy(), checkpoint["episode_metrics"]
    else:  # an older checkpoint lacks the envs' state: a fresh episode, env steps kept (shift)
        envs.env_steps = global_step  # env steps over all copies
        obs, _ = envs.reset(seed=[args.seed, global_step])  # a pair: never the evaluation seed
    while global_step < args.total_timesteps:
        global_step += args.num_envs
        # ALGO LOGIC: put action logic here
        if global_step <= args.learning_starts:
            actions = rng.uniform(-1.0, 1.0, size=(args.num_envs, n_agents, act_dim))
            actions = actions.astype(np.float32)
        else:
            with torch.no_grad():
                obs_t = torch.as_tensor(obs, device=device).transpose(0, 1)
                actions, _, _ = actor.get_action(obs_t)
            actions = actions.transpose(0, 1).cpu().numpy()
            run.check_finite("the policy's actions", global_step, actions=actions)

        # TRY NOT TO MODIFY: execute the game and log data.
        next_obs, rewards, terminations, truncations, infos = envs.step(actions)
        for k, v in infos["metrics"].items():
            episode_metrics.setdefault(k, []).append(float(np.mean(v)))  # plain: checkpointed

        # TRY NOT TO MODIFY: save data to reply buffer; handle `final_obs`
        done = (terminations | truncations)[:, None, None]
        real_next_obs = np.where(done, infos["final_obs"], next_obs) if done.any() else next_obs
        rb.add(obs, real_next_obs, actions, rewards, terminations)

        # TRY NOT TO MODIFY: CRUCIAL step easy to overlook
        obs = next_obs

        # ALGO LOGIC: training.
        decay = 1 + (args.lr_decay_to - 1) * global_step / args.total_timesteps  # linear
        q_optimizer.param_groups[0]["lr"] = args.q_lr * decay
        actor_optimizer.param_groups[0]["lr"] = args.policy_lr * decay
        for _ in range(args.updates_per_step if global_step > args.learning_starts else 0):
            data = rb.sample(args.batch_size, rng, device)
            next_q_value = td_target(actor, qf_target, data, alpha, args.gamma, agent_ids, joint)
            qf_input = critic_input(data["obs"], data["actions"], agent_ids, joint)
            qf_a_values = qf(qf_input)
            qf_loss = td_loss(qf_a_values, next_q_value)

            # optimize the model
            q_optimizer.zero_grad()
            qf_loss.backward()
            q_optimizer.step()

            noise = torch.randn(n_agents, args.batch_size, act_dim, device=device)
            actor_loss, log_pi = actor_loss_fn(actor, qf, data, alpha, agent_ids, joint,
                                               noise=noise)
            actor_optimizer.zero_grad()
            actor_loss.backward(inputs=actor_params)
            actor_optimizer.step()

            if args.autotune:
                alpha_loss = -log_alpha.exp().view(-1, 1, 1) * (log_pi.detach() + target_entropy)
                a_optimizer.zero_grad()
                alpha_loss.mean(dim=(1, 2)).sum().backward()
                a_optimizer.step()
                alpha = log_alpha.exp().detach()

            # update the target networks
            with torch.no_grad():
                for param, target_param in zip(qf_params, qf_target.parameters()):
                    target_param.lerp_(param, args.tau)

            run.check_finite(f"update {update + 1}", global_step, qf_loss=qf_loss,
                             actor_loss=actor_loss, alpha=alpha)
            update += 1
            if update == 1:
                print(f"global_step={global_step}: warm-up done, updates start", flush=True)
            if update % args.log_interval == 0:  # SPS over the last log_interval updates
                now = time.time()
                sps = (global_step - last_log[1]) / (now - last_log[0])
                last_log = (now, global_step)
                writer.add_scalar("losses/qf_values", qf_a_values.mean().item(), global_step)
                writer.add_scalar("losses/qf_loss", qf_loss.item() / 2.0, global_step)
                writer.add_scalar("losses/actor_loss", actor_loss.item() / n_agents, global_step)
                writer.add_scalar("losses/alpha", alpha.mean().item(), global_step)
                writer.add_scalar("charts/SPS", sps, global_step)
                entropy = -log_pi.mean().item() / act_dim
                writer.add_scalar("policy/entropy_per_dim", entropy, global_step)
                _, log_std = actor(data["obs"])
                writer.add_histogram("policy/std", log_std.detach().exp().mean((0, 1)), global_step)

        if "episode" in infos:
            print(f"global_step={global_step}, "
                  f"episodic_return={infos['episode']['return'].mean():.3f}")
            writer.add_scalar("charts/episodic_return", infos["episode"]["return"].mean(),
                              global_step)
            writer.add_scalar("charts/episodic_length", infos["episode"]["length"].mean(),
                              global_step)
            for k, v in episode_metrics.items():  # whatever the env reports in info["metrics"]
                writer.add_scalar(f"env/{k}", float(np.mean(v)), global_step)
            episode_metrics = {}
        final = global_step >= args.total_timesteps
        every = args.eval_interval  # evaluate when the last num_envs steps crossed a multiple
        if not final and every and (global_step - args.num_envs) // every < global_step // every:
            run_evaluation()

        if stop_signal or ("episode" in infos and not final and args.checkpoint_interval > 0
                           and global_step - run.last_checkpoint >= args.checkpoint_interval):
            writer.flush()
            save_checkpoint(with_buffer=True)
        if stop_signal:
            run.stop(stop_signal[0], global_step)
        progress.report(global_step, history["eval_history"])

    for series in [s for s in history.values() if s and s[-1][0] == global_step]:
        series.pop()  # an older final checkpoint holds its final evaluation: redone below
    save_checkpoint(with_buffer=False)  # before the final evaluation, which a resume redoes
    results = run_evaluation()
    if stop_signal:  # during the final evaluation: resuming from the final checkpoint finishes
        run.stop(stop_signal[0], global_step)
    eval_returns, eval_metrics, ue_tput = results["eval"]
    sampled_returns = results["eval_sampled"][0]
    if args.save_model:
        torch.save({"actor": actor.state_dict(), "qf": qf.state_dict(),
                    "hidden_sizes": list(hidden)}, os.path.join(run.dir, "model.pt"))
    final_eval = {"episodic_return": float(eval_returns.mean()),
                  "episodic_returns": eval_returns.tolist(),
                  "sampled_episodic_return": float(sampled_returns.mean()),
                  "metrics": eval_metrics, "ue_throughput_mbps": ue_tput}
    best_eval_return = max(r for _, r in history["eval_history"])
    run.finish(global_step, best_eval_return=best_eval_return, final_eval=final_eval, **history)
