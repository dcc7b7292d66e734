"""PettingZoo `ParallelEnv` over one copy (E = 1) of a vectorised environment of docs/INTERFACES.md.

`oran_env.ParallelEnv` and `comp_env.ParallelEnv` are this adapter specialised by
`make_parallel_env_class`; PettingZoo and Gymnasium are imported only here, when an adapter is first
used, so the simulators themselves need only NumPy.
"""
import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv


def make_parallel_env_class(name, make_vec_env, agent_prefix, observation_bounds, agent_info):
    """A `ParallelEnv` class whose instances wrap `make_vec_env(config, seed)` (a vectorised env,
    E = 1).

    agent_prefix: agents are `{agent_prefix}_0` ... `{agent_prefix}_{N-1}`.
    observation_bounds(env) -> (low, high), float32 arrays (obs_dim,) of the observation box.
    agent_info(info, i) -> the per-agent info dict of agent i, read from the vectorised step's info.
    Every agent is truncated together at the end of an episode (the last step returns the final
    observation and empties `agents`); call reset() to go on.
    """

    class AdaptedParallelEnv(ParallelEnv):
        metadata = {"name": name, "render_modes": []}

        def __init__(self, config=None, seed=None):
            self.env = make_vec_env(config, seed)
            self.possible_agents = [f"{agent_prefix}_{i}" for i in range(self.env.n_agents)]
            self.agents = []
            low, high = observation_bounds(self.env)
            obs_space = spaces.Box(low=low, high=high, dtype=np.float32)
            act_space = spaces.Box(low=-1.0, high=1.0, shape=(self.env.act_dim,), dtype=np.float32)
            self.observation_spaces = {a: obs_space for a in self.possible_agents}
            self.action_spaces = {a: act_space for a in self.possible_agents}

        def observation_space(self, agent):
            return self.observation_spaces[agent]

        def action_space(self, agent):
            return self.action_spaces[agent]

        def reset(self, seed=None, options=None):
            obs, _ = self.env.reset(seed=seed)
            self.agents = list(self.possible_agents)
            return self._per_agent(obs[0]), {a: {} for a in self.agents}

        def step(self, actions):
            if not self.agents:
                raise RuntimeError("the episode has ended; call reset() before step()")
            missing = [a for a in self.agents if a not in actions]
            if missing:
                raise ValueError(
                    f"actions: expected an action for every live agent, missing {missing}"
                )
            joint = np.stack([np.asarray(actions[a]) for a in self.agents])[None]  # (1, N, act_dim)
            obs, reward, terminated, truncated, info = self.env.step(joint)
            if truncated[0]:
                obs = info["final_obs"]
            result = (self._per_agent(obs[0]), self._per_agent(reward[0].astype(float)),
                      {a: bool(terminated[0]) for a in self.agents},
                      {a: bool(truncated[0]) for a in self.agents},
                      {a: agent_info(info, i) for i, a in enumerate(self.agents)})
            if terminated[0] or truncated[0]:
                self.agents = []
            return result

        def _per_agent(self, array):
            return dict(zip(self.possible_agents, array))

    AdaptedParallelEnv.__name__ = AdaptedParallelEnv.__qualname__ = "ParallelEnv"
    return AdaptedParallelEnv
