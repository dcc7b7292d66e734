"""DeepCoMP multi-agent coordinated-multipoint (CoMP) cell selection, vectorised with NumPy.

Reproduces the multi-agent environment of DeepCoMP v1.0 ("latest common configuration";
Schneider et al., "Multi-Agent Deep Reinforcement Learning for Coordinated Multipoint in Mobile
Networks", IEEE TNSM 2024; CN-UPB/DeepCoMP) as docs/comp.md describes it, with the array
interface of `oran_env.py` (docs/INTERFACES.md): a batch of E independent copies, one agent per
UE, arrays (E, U, ...) with U UEs and B base stations (BSs).

System model (docs/comp.md, [deepcomp] unless marked [ours]):
- Okumura-Hata (suburban) path loss with the distance d in metres, as upstream uses it:
      a(h_m) = 0.8 + (1.1 log10 f - 0.7) h_m - 1.56 log10 f,
      PL = 69.55 + 26.16 log10 f - 13.82 log10 h_b - a(h_m) + (44.9 - 6.55 log10 h_b) log10 d,
  f = 2500 MHz, h_b = 50 m, h_m = 1.5 m. SNR = 10^((P_tx - PL)/10) / N0 with P_tx = 30 dBm,
  N0 = 1e-9 mW; no interference. Unshared rate r = bw log2(1 + SNR), bw = 9e6 (nominal units: the
  rate is 1 at about 46.2 m). A UE can connect to a BS only while SNR > 2e-8 (strict; about 68.9 m).
- Sharing at a BS among its connected UEs: resource-fair (r_u / n, the default), rate-fair (everyone
  gets 1 / sum_v 1/r_v), proportional-fair (time fractions proportional to r_u / ewma_u, where
  ewma_u is the UE's total rate smoothed as 0.9 * current + 0.1 * old), max-cap (all time to the UE
  with the largest r_u; ties go to the lowest UE index), and mixed (BS i uses resource-fair,
  rate-fair, proportional-fair for i mod 3). A UE's total rate is the sum over its connections
  (CoMP).
- Utility u = clip(10 log10 rate, -20, 20), u = -20 at rate 0. Per-UE reward u / 20.
- Random-waypoint movement: start at an integer point of the map, integer waypoints at least
  `waypoint_border_m` from the border, speed (integer m/step) drawn per leg from 1..3 (slow) or
  5..10 (fast); on reaching a waypoint the UE stays there for `pause_steps` = 2 steps, then draws a
  new waypoint and speed. A UE that moves out of range of a connected BS is disconnected.
- Step order (upstream `MobileEnv.step`): apply all UEs' actions at once, compute rates and rewards,
  move the UEs (dropping lost connections and updating the EWMA), recompute rates, observe.
- Observation per UE, obs_dim = 3B + 1: connected BSs (0/1, B), relative SNR (SNR / the UE's largest
  SNR, in [0, 1], B), own utility / 20 (in [-1, 1], 1), BS utilisation (connected UEs / U, B).
- Action per UE: one real score in [-1, 1] per choice (noop, BS 1, ..., BS B), act_dim = B + 1; the
  argmax is taken (SAC's tanh output drives the discrete choice). Choice 0 is noop, choice i toggles
  BS i: disconnect if connected, connect if in range, else nothing. `step_choices` takes the integer
  choices (E, U) directly (discrete policies such as PPO's).
- Reward: "multi" (default) = sum of the normalised rewards u/20 of the UE's competing set, the UEs
  that share at least one BS with it (itself included; only itself when it has no connection);
  "central" = the sum over all UEs, given to every agent. `reward_aggregate="avg"` (DeepCoMP's
  later default, which deprecated the sum): multi = the mean of u/20 over the UEs connected to the
  BSs in the UE's range (`neighbourhood_average_reward`), central = the mean over all UEs.

Choices and differences, written down:
- [ours] Default UE counts per scenario (upstream's CLI defaults to 0): small 2 slow + 1 fast,
  medium 3 slow + 2 fast, large 10 slow + 5 fast. All are overridable config fields.
- [ours] Every reset draws a fresh episode from the environment's generator (upstream's
  `--rand-train`); upstream's default re-seeds and replays one fixed episode.
- The competing set is taken from the connections at reward time (after the actions, before the
  move), following docs/comp.md ("reward computed after the actions and before the move");
  upstream forms it after the move, from the connections that survived it.
- The EWMA is updated as upstream does: after the move, from the reward-time rates of the
  connections that survived the move.
- The initial position is an integer point of the whole map (upstream `randint(0, int(width))`), the
  waypoints integer points inside the border; medium's height 106.60 m thus gives waypoint y <= 96.
- Heuristics act on the current state like upstream's (which read the observation): best-cell keeps
  at most one connection, to the BS with the largest SNR (disconnect first, then connect, one action
  per step); full CoMP connects to the strongest not-yet-connected BS each step; dynamic CoMP
  (eps = 0.8, upstream's value) first drops a connection whose relative SNR < eps, then connects the
  strongest selected BS.

Per-step `info` (besides `metrics`, `final_obs`, `episode` of docs/INTERFACES.md), all at reward
time: `ue_rate` (E, U) total rate, `ue_utility` (E, U) utility, `connected` (E, U, B) bool
connections.
HEURISTICS: best_cell, full_comp, dynamic_comp (eps 0.8; `dynamic_comp(env, eps)` for others) and
random (uniform scores, for reference); `full_information_reference`: a per-step greedy search with
the state known, the room above the heuristics.
PettingZoo: `comp_env.ParallelEnv(config=None, seed=None)` or
`parallel_env(scenario, seed, **overrides)`.
`metrics` (E,): `utility` (mean utility per UE), `rate` (mean total rate per UE),
`connections_per_ue`, `unconnected_fraction`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
import typing
from typing import Literal

import numpy as np

# one evaluation and one config check for both simulators
from oran_env import check_config, evaluate  # noqa: F401

SHARING_MODELS = ("resource-fair", "rate-fair", "proportional-fair", "max-cap", "mixed")
MIXED_CYCLE = ("resource-fair", "rate-fair", "proportional-fair")  # BS i uses MIXED_CYCLE[i % 3]
UTILITY_MIN, UTILITY_MAX = -20.0, 20.0
EPSILON = 1e-16  # upstream's guard against log10(0) and division by zero


# Interval of every number of a CompConfig field (also inside tuples); "(" and ")" are open
# ends. The bounds keep the SNR 10^((P_tx - PL)/10) / N0 finite and the arrays within memory
# ((E, U, U) competing sets); bs_positions and waypoint_border_m depend on the map size and are
# checked in __post_init__.
COMP_RANGES = {
    "map_width": "[1, 10000]", "map_height": "[1, 10000]", "bs_positions": "[0, 10000]",
    "num_slow_ues": "[0, 1000]", "num_fast_ues": "[0, 1000]", "episode_length": "[1, 100000]",
    "bandwidth_hz": "(0, 1e12]", "frequency_mhz": "[1, 100000]", "tx_power_dbm": "[-100, 100]",
    "bs_height_m": "[1, 1000]", "ue_height_m": "(0, 100]", "noise_mw": "[1e-30, 1e10]",
    "snr_threshold": "[0, 1e30]", "ewma_weight": "[0, 1]", "slow_speed": "[0, 10000]",
    "fast_speed": "[0, 10000]", "pause_steps": "[0, 100000]", "waypoint_border_m": "[0, 5000]",
}


@dataclass
class CompConfig:
    """Every option of the DeepCoMP cell-selection environment (docs/comp.md)."""

    map_width: float = 120.0
    """Map width in metres [deepcomp: small 150, medium 120, large 230]."""
    map_height: float = 20.0 + 50.0 * math.sqrt(3.0)
    """Map height in metres [deepcomp: small 100, medium 106.60, large 260]."""
    bs_positions: tuple[tuple[float, float], ...] = (
        (10.0, 10.0), (110.0, 10.0), (60.0, 10.0 + 50.0 * math.sqrt(3.0))
    )
    """Base-station positions (x y pairs, metres) [deepcomp; medium: triangle of side 100 m, 10 m
    from the border]."""
    num_slow_ues: int = 3
    """Number of slow UEs (speed slow_speed) [ours: small 2, medium 3, large 10]."""
    num_fast_ues: int = 2
    """Number of fast UEs (speed fast_speed) [ours: small 1, medium 2, large 5]."""
    episode_length: int = 100
    """Steps per episode [deepcomp: 100]."""
    sharing: Literal["resource-fair", "rate-fair", "proportional-fair", "max-cap", "mixed"] = (
        "resource-fair"
    )
    """How a BS shares its time among connected UEs [deepcomp v1.0 default: resource-fair]."""
    reward: Literal["multi", "central"] = "multi"
    """multi: each UE is paid for its neighbourhood; central: for all UEs [deepcomp]."""
    reward_aggregate: Literal["sum", "avg"] = "sum"
    """How the UEs' u/20 are aggregated [deepcomp]: sum (multi: over the competing set, DeepCoMP
    v1.0) or avg (multi: mean over the UEs at the BSs in range, DeepCoMP's later default; central:
    mean)."""
    bandwidth_hz: float = 9e6
    """BS bandwidth bw in r = bw log2(1 + SNR) [deepcomp: 9e6]."""
    frequency_mhz: float = 2500.0
    """Carrier frequency in MHz for Okumura-Hata [deepcomp: 2500]."""
    tx_power_dbm: float = 30.0
    """BS transmit power in dBm [deepcomp: 30]."""
    bs_height_m: float = 50.0
    """BS antenna height in metres [deepcomp: 50]."""
    ue_height_m: float = 1.5
    """UE antenna height in metres [deepcomp: 1.5]."""
    noise_mw: float = 1e-9
    """Noise power in mW [deepcomp: 1e-9]."""
    snr_threshold: float = 2e-8
    """A UE can connect only while SNR > this (strict) [deepcomp: 2e-8, about 68.9 m]."""
    ewma_weight: float = 0.9
    """Weight of the current rate in the proportional-fair EWMA [deepcomp: 0.9]."""
    slow_speed: tuple[int, int] = (1, 3)
    """Inclusive range of a slow UE's speed in m/step, drawn per leg [deepcomp: 1..3]."""
    fast_speed: tuple[int, int] = (5, 10)
    """Inclusive range of a fast UE's speed in m/step, drawn per leg [deepcomp: 5..10]."""
    pause_steps: int = 2
    """Steps a UE stays on a reached waypoint [deepcomp: 2]."""
    waypoint_border_m: float = 10.0
    """Waypoints keep at least this distance from the map border [deepcomp: 10]."""

    def __post_init__(self):
        check_config(self, COMP_RANGES)

        def bad(field, expected, got):
            raise ValueError(f"CompConfig.{field}: expected {expected}, got {got!r}")

        self.bs_positions = tuple((float(x), float(y)) for x, y in self.bs_positions)
        if not 1 <= len(self.bs_positions) <= 100:
            bad("bs_positions", "1 to 100 (x, y) pairs", self.bs_positions)
        for x, y in self.bs_positions:
            if not (0 <= x <= self.map_width and 0 <= y <= self.map_height):
                bad(
                    "bs_positions",
                    f"inside the map [0, {self.map_width}] x [0, {self.map_height}]",
                    (x, y),
                )
        if self.num_slow_ues + self.num_fast_ues < 1:
            bad("num_slow_ues", "such that num_slow_ues + num_fast_ues >= 1", self.num_slow_ues)
        for field in ("slow_speed", "fast_speed"):
            low, high = getattr(self, field)
            if low > high:
                bad(field, "two integers (min, max) with min <= max", getattr(self, field))
            setattr(self, field, (int(low), int(high)))
        if not (0 <= math.ceil(self.waypoint_border_m)
                <= int(min(self.map_width, self.map_height) - self.waypoint_border_m)):
            bad(
                "waypoint_border_m",
                "in [0, min(map_width, map_height) / 2]",
                self.waypoint_border_m,
            )

    @property
    def num_ues(self) -> int:
        return self.num_slow_ues + self.num_fast_ues

    @property
    def num_bs(self) -> int:
        return len(self.bs_positions)


SCENARIOS: dict[str, CompConfig] = {
    "small": CompConfig(map_width=150.0, map_height=100.0,
                        bs_positions=((50.0, 50.0), (100.0, 50.0)),
                        num_slow_ues=2, num_fast_ues=1),
    "medium": CompConfig(),  # the field defaults
    "large": CompConfig(map_width=230.0, map_height=260.0,
                        bs_positions=((115.0, 130.0), (30.0, 80.0), (115.0, 30.0), (200.0, 80.0),
                                      (200.0, 180.0), (115.0, 230.0), (30.0, 180.0)),
                        num_slow_ues=10, num_fast_ues=5),
}


def make_config(scenario: str, **overrides) -> CompConfig:
    """A preset of SCENARIOS with some fields replaced; unknown scenario or field raises
    ValueError."""
    if scenario not in SCENARIOS:
        raise ValueError(
            f"unknown comp_env scenario {scenario!r}; expected one of {sorted(SCENARIOS)}"
        )
    fields = {f.name for f in dataclasses.fields(CompConfig)}
    for name in overrides:
        if name not in fields:
            raise ValueError(f"unknown CompConfig field {name!r}; expected one of {sorted(fields)}")
    return dataclasses.replace(SCENARIOS[scenario], **overrides)


def ue_load(config: CompConfig, factor: int) -> dict:
    """The config fields of `factor` times the config's slow and fast UEs (a load sweep)."""
    return {"num_slow_ues": factor * config.num_slow_ues,
            "num_fast_ues": factor * config.num_fast_ues}


def make_env(
    scenario: str = "medium", num_envs: int = 1, seed: int | None = None, **overrides
) -> "CompEnv":
    """The vectorised environment of a preset scenario with some config fields replaced."""
    return CompEnv(make_config(scenario, **overrides), num_envs=num_envs, seed=seed)


# ----------------------------------------------------------------------------------------------
# Radio model


def path_loss_db(distance_m, cfg: CompConfig):
    """Okumura-Hata suburban path loss in dB with the distance in metres, as upstream
    (docs/comp.md)."""
    log_f = math.log10(cfg.frequency_mhz)
    a_hm = 0.8 + (1.1 * log_f - 0.7) * cfg.ue_height_m - 1.56 * log_f
    const = 69.55 + 26.16 * log_f - 13.82 * math.log10(cfg.bs_height_m) - a_hm
    slope = 44.9 - 6.55 * math.log10(cfg.bs_height_m)
    return const + slope * np.log10(distance_m + EPSILON)


def snr(ue_pos, bs_pos, cfg: CompConfig):
    """SNR = 10^((P_tx - PL)/10) / N0, no interference. ue_pos (..., U, 2), bs_pos (B, 2) ->
    (..., U, B)."""
    dx = ue_pos[..., :, None, 0] - bs_pos[:, 0]
    dy = ue_pos[..., :, None, 1] - bs_pos[:, 1]
    received_dbm = cfg.tx_power_dbm - path_loss_db(np.sqrt(dx * dx + dy * dy), cfg)
    return np.exp(received_dbm * (math.log(10.0) / 10.0)) / cfg.noise_mw  # exp is faster than 10**x


def unshared_rate(snr_, cfg: CompConfig):
    """Rate a UE would get with a BS to itself: r = bw log2(1 + SNR) (nominal units)."""
    return cfg.bandwidth_hz * np.log2(1.0 + snr_)


def sharing_fractions(connected, rate_unshared, ewma, model: str):
    """Time fraction each UE gets at each BS under one sharing model.

    connected (E, U, B) bool, rate_unshared (E, U, B), ewma (E, U) -> (E, U, B); the fractions of
    the UEs connected to a BS sum to 1, unconnected UEs get 0.
    """
    if model == "resource-fair":
        n = connected.sum(axis=1, keepdims=True)  # (E, 1, B)
        return connected / np.maximum(n, 1)
    if model == "rate-fair":
        # fraction ~ 1/r_u gives every UE the same rate 1 / sum_v 1/r_v
        weight = np.where(connected, 1.0 / np.maximum(rate_unshared, EPSILON), 0.0)
    elif model == "proportional-fair":
        weight = np.where(connected, rate_unshared / (ewma[..., None] + EPSILON), 0.0)
    elif model == "max-cap":
        # (E, B), first on ties
        best = np.argmax(np.where(connected, rate_unshared, -np.inf), axis=1)
        return connected & (np.arange(connected.shape[1])[None, :, None] == best[:, None, :])
    else:
        raise ValueError(f"unknown sharing model {model!r}; expected one of {SHARING_MODELS[:-1]}")
    total = weight.sum(axis=1, keepdims=True)
    return weight / np.where(total > 0, total, 1.0)


def bs_sharing_models(cfg: CompConfig) -> list[str]:
    """The sharing model of each BS; `mixed` cycles resource-, rate-, proportional-fair."""
    if cfg.sharing == "mixed":
        return [MIXED_CYCLE[i % len(MIXED_CYCLE)] for i in range(cfg.num_bs)]
    return [cfg.sharing] * cfg.num_bs


def shared_rate(connected, rate_unshared, ewma, models: list[str]):
    """Rate each UE gets from each BS after sharing, (E, U, B); a UE's CoMP rate is the sum
    over B."""
    if len(set(models)) == 1:
        return sharing_fractions(connected, rate_unshared, ewma, models[0]) * rate_unshared
    fraction = np.zeros(connected.shape)
    for model in set(models):
        at_bs = np.array([m == model for m in models])  # (B,)
        fraction = np.where(
            at_bs, sharing_fractions(connected, rate_unshared, ewma, model), fraction
        )
    return fraction * rate_unshared


def utility(rate):
    """Log utility u = clip(10 log10 rate, -20, 20), u = -20 at rate 0 (upstream `log_utility`)."""
    rate = np.asarray(rate, dtype=np.float64)
    log_rate = 10.0 * np.log10(np.maximum(rate, np.finfo(np.float64).tiny))
    return np.where(rate > 0, np.clip(log_rate, UTILITY_MIN, UTILITY_MAX), UTILITY_MIN)


def apply_choices(connected, in_range, choice):
    """The connections after every UE's choice at once: choice 0 = noop, choice i toggles BS i
    (disconnect if connected, connect only in range). connected, in_range (E, U, B) bool, choice
    (E, U) int -> (E, U, B) bool."""
    toggle = choice[..., None] == np.arange(1, connected.shape[-1] + 1)  # (E, U, B)
    return connected ^ (toggle & (connected | in_range))


def competing_set_reward(connected, ue_reward):
    """Sum of ue_reward over the UEs sharing at least one BS with each UE (itself when unconnected).

    connected (E, U, B) bool, ue_reward (E, U) -> (E, U).
    """
    links = connected.astype(np.float64)
    shares_bs = (links @ links.transpose(0, 2, 1)) > 0  # (E, U, U)
    return np.where(
        connected.any(axis=2), (shares_bs * ue_reward[:, None, :]).sum(axis=2), ue_reward
    )


def neighbourhood_average_reward(connected, in_range, ue_reward):
    """DeepCoMP's `avg` multi-agent reward: the mean of ue_reward over the UEs connected to the BSs
    in range of each UE, a UE counted once per such BS it is connected to, the UE itself included
    (added once when it has no connection); its own reward when no UE is connected to a BS in its
    range.

        R_u = (sum_{b in range(u)} sum_{v at b} r_v + [u unconnected] r_u)
              / (sum_{b in range(u)} n_b + [u unconnected])

    Unlike the competing-set sum, R_u does not grow with the number of neighbours, so neither
    connecting more UEs (low load) nor disconnecting (high load) pays by itself [deepcomp].
    connected, in_range (E, U, B) bool, ue_reward (E, U) -> (E, U).
    """
    # (E, B) reward of the UEs at each BS
    bs_total = (connected * ue_reward[:, :, None]).sum(axis=1)
    bs_count = connected.sum(axis=1)  # (E, B)
    total = (in_range * bs_total[:, None, :]).sum(axis=2)  # (E, U)
    count = (in_range * bs_count[:, None, :]).sum(axis=2)
    alone = ~connected.any(axis=2)
    mean = (total + alone * ue_reward) / np.maximum(count + alone, 1)
    return np.where(count > 0, mean, ue_reward)


def team_reward(connected, in_range, ue_reward, reward: str, aggregate: str):
    """Each agent's reward (E, U) from the UEs' normalised utilities ue_reward (E, U) = u / 20."""
    if reward == "central":
        team = ue_reward.sum(axis=1) if aggregate == "sum" else ue_reward.mean(axis=1)
        return np.repeat(team[:, None], ue_reward.shape[1], axis=1)
    if aggregate == "sum":
        return competing_set_reward(connected, ue_reward)
    return neighbourhood_average_reward(connected, in_range, ue_reward)


# ----------------------------------------------------------------------------------------------
# Environment


class CompEnv:
    """E copies of the DeepCoMP multi-agent environment stepped in lockstep (docs/INTERFACES.md).

    State (all public for heuristics and tests): `position` (E, U, 2), `waypoint` (E, U, 2), `speed`
    (E, U), `pausing` (E, U) bool, `pause_count` (E, U), `connected` (E, U, B) bool, `ewma` (E, U),
    `snr` (E, U, B) at the current positions, `rate` (E, U, B) current shared rates, `t` (steps into
    the episode).
    """

    def __init__(self, config: CompConfig, num_envs: int = 1, seed: int | None = None):
        if not isinstance(config, CompConfig):
            raise ValueError(f"config must be a CompConfig, got {type(config).__name__}")
        if not (isinstance(num_envs, (int, np.integer)) and num_envs >= 1):
            raise ValueError(f"num_envs must be an integer >= 1, got {num_envs!r}")
        self.config = config
        self.num_envs = int(num_envs)
        self.n_agents = config.num_ues
        self.num_bs = config.num_bs
        self.obs_dim = 3 * self.num_bs + 1
        self.act_dim = self.num_bs + 1
        self.episode_length = config.episode_length
        self.bs_pos = np.array(config.bs_positions, dtype=np.float64)  # (B, 2)
        self.bs_models = bs_sharing_models(config)
        self.is_fast = np.arange(self.n_agents) >= config.num_slow_ues  # (U,) slow UEs first
        self.rng = np.random.default_rng(seed)
        # for `random_policy`
        self.policy_rng = np.random.default_rng(None if seed is None else (seed, 1))
        self.reset()

    # -- movement ------------------------------------------------------------------------------

    def _draw_legs(self):
        """A fresh waypoint (E, U, 2) and speed (E, U) for every UE (callers keep what they
        need)."""
        cfg = self.config
        border = cfg.waypoint_border_m
        high = np.array([int(cfg.map_width - border), int(cfg.map_height - border)]) + 1
        waypoint = self.rng.integers(
            math.ceil(border), high, size=(self.num_envs, self.n_agents, 2)
        ).astype(np.float64)
        slow = self.rng.integers(
            cfg.slow_speed[0], cfg.slow_speed[1] + 1, size=(self.num_envs, self.n_agents)
        )
        fast = self.rng.integers(
            cfg.fast_speed[0], cfg.fast_speed[1] + 1, size=(self.num_envs, self.n_agents)
        )
        return waypoint, np.where(self.is_fast, fast, slow).astype(np.float64)

    def _move(self):
        """One random-waypoint step for every UE (upstream `RandomWaypoint.step`)."""
        arrived = np.all(self.position == self.waypoint, axis=-1)
        self.pausing |= arrived
        keep_pausing = self.pausing & (self.pause_count < self.config.pause_steps)
        self.pause_count = np.where(keep_pausing, self.pause_count + 1, self.pause_count)
        new_leg = self.pausing & ~keep_pausing
        if new_leg.any():
            waypoint, speed = self._draw_legs()
            self.waypoint = np.where(new_leg[..., None], waypoint, self.waypoint)
            self.speed = np.where(new_leg, speed, self.speed)
            self.pausing &= ~new_leg
            self.pause_count = np.where(new_leg, 0, self.pause_count)
        to_go = self.waypoint - self.position
        distance = np.linalg.norm(to_go, axis=-1)
        reach = distance <= self.speed
        step = self.speed / np.where(reach, 1.0, distance)
        moved = np.where(reach[..., None], self.waypoint, self.position + step[..., None] * to_go)
        self.position = np.where(keep_pausing[..., None], self.position, moved)

    # -- radio ---------------------------------------------------------------------------------

    def _update_radio(self):
        """SNR and unshared rates at the current positions."""
        self.snr = snr(self.position, self.bs_pos, self.config)
        self.in_range = self.snr > self.config.snr_threshold
        self.rate_unshared = unshared_rate(self.snr, self.config)

    def _shared_rate(self):
        return shared_rate(self.connected, self.rate_unshared, self.ewma, self.bs_models)

    def _observe(self):
        """obs (E, U, 3B + 1): connected, relative SNR, utility / 20, BS utilisation."""
        relative_snr = self.snr / self.snr.max(axis=2, keepdims=True)
        own_utility = utility(self.rate.sum(axis=2))[..., None] / UTILITY_MAX
        load = np.broadcast_to(
            self.connected.sum(axis=1, keepdims=True) / self.n_agents, self.connected.shape
        )
        return np.concatenate(
            [self.connected, relative_snr, own_utility, load], axis=2
        ).astype(np.float32)

    # -- API -----------------------------------------------------------------------------------

    def reset(self, seed: int | None = None):
        """Start new episodes in all E copies; `seed` re-seeds the environment's generator."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
            self.policy_rng = np.random.default_rng((seed, 1))
        cfg = self.config
        shape = (self.num_envs, self.n_agents)
        corner = np.array([int(cfg.map_width), int(cfg.map_height)]) + 1
        self.position = self.rng.integers(0, corner, size=shape + (2,)).astype(np.float64)
        self.waypoint, self.speed = self._draw_legs()
        self.pausing = np.zeros(shape, dtype=bool)
        self.pause_count = np.zeros(shape, dtype=np.int64)
        self.connected = np.zeros(shape + (self.num_bs,), dtype=bool)
        self.ewma = np.zeros(shape)
        self.t = 0
        self.episode_return = np.zeros(shape)
        self._update_radio()
        self.rate = self._shared_rate()
        return self._observe(), {}

    def _check_actions(self, actions):
        actions = np.asarray(actions)
        expected = (self.num_envs, self.n_agents, self.act_dim)
        if actions.dtype.kind != "f":
            raise ValueError(f"actions must be a float array, got dtype {actions.dtype}")
        if actions.shape != expected:
            raise ValueError(
                f"actions must have shape (num_envs, n_agents, act_dim) = {expected}, "
                f"got {actions.shape}"
            )
        if not np.all(np.isfinite(actions)):
            raise ValueError("actions contain NaN or inf")
        if actions.min() < -1.0 or actions.max() > 1.0:
            raise ValueError(
                f"actions must lie in [-1, 1], got values in [{actions.min()}, {actions.max()}]"
            )
        return actions

    def step(self, actions):
        """Apply actions (E, U, B+1) -> (obs, reward (E, U), terminated (E,), truncated (E,),
        info)."""
        return self.step_choices(self._check_actions(actions).argmax(axis=2))

    def step_choices(self, choice):
        """Apply integer choices (E, U) in 0..B (0 = noop, i = toggle BS i) -> as `step`.

        The entry point for discrete policies (PPO's categorical actions); `step` takes the argmax
        of its scores and calls this.
        """
        choice = np.asarray(choice)
        if choice.dtype.kind not in "iu" or choice.shape != (self.num_envs, self.n_agents):
            raise ValueError(f"choices must be an integer array of shape (num_envs, n_agents) = "
                             f"{(self.num_envs, self.n_agents)}, got {choice.dtype} {choice.shape}")
        if choice.min() < 0 or choice.max() > self.num_bs:
            raise ValueError(
                f"choices must lie in 0..{self.num_bs}, "
                f"got values in [{choice.min()}, {choice.max()}]"
            )
        cfg = self.config
        # 1. all UEs act at once: choice 0 = noop, choice i toggles BS i (connect only in range)
        self.connected = apply_choices(self.connected, self.in_range, choice)
        # 2. rates and rewards after the actions, before the move
        rate = self._shared_rate()  # (E, U, B)
        ue_rate = rate.sum(axis=2)
        ue_utility = utility(ue_rate)
        ue_reward = ue_utility / UTILITY_MAX
        reward = team_reward(
            self.connected, self.in_range, ue_reward, cfg.reward, cfg.reward_aggregate
        )
        n_connections = self.connected.sum(axis=2)
        info = {
            "metrics": {
                "utility": ue_utility.mean(axis=1),
                "rate": ue_rate.mean(axis=1),
                "connections_per_ue": n_connections.mean(axis=1),
                "unconnected_fraction": (n_connections == 0).mean(axis=1),
            },
            "ue_rate": ue_rate,
            "ue_utility": ue_utility,
            "connected": self.connected.copy(),
        }
        # 3. move, drop connections that went out of range, update the EWMA from what survived
        self._move()
        self._update_radio()
        self.connected &= self.in_range
        self.ewma = (
            cfg.ewma_weight * (rate * self.connected).sum(axis=2)
            + (1.0 - cfg.ewma_weight) * self.ewma
        )
        self.rate = self._shared_rate()
        obs = self._observe()

        self.t += 1
        self.episode_return += reward
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.full(self.num_envs, self.t >= self.episode_length)
        if self.t >= self.episode_length:
            info["final_obs"] = obs
            info["episode"] = {"return": self.episode_return.astype(np.float32),
                               "length": np.full(self.num_envs, self.t, dtype=np.int64)}
            obs, _ = self.reset()
        return obs, reward.astype(np.float32), terminated, truncated, info

    # -- checkpoints ---------------------------------------------------------------------------

    STATE_ARRAYS = ("position", "waypoint", "speed", "pausing", "pause_count", "connected", "ewma",
                    "snr", "in_range", "rate_unshared", "rate", "episode_return")
    STATE_GENERATORS = ("rng", "policy_rng")

    def state_dict(self):
        """Everything the copies' future depends on, as plain Python values (lists, ints, dicts)
        that `torch.load(weights_only=True)` reads: the state arrays, `t` and the generators'
        states."""
        return {**{k: getattr(self, k).tolist() for k in self.STATE_ARRAYS}, "t": self.t,
                **{k: getattr(self, k).bit_generator.state for k in self.STATE_GENERATORS}}

    def load_state_dict(self, state):
        """Continue from `state_dict()`'s values: each array keeps its dtype and must keep its
        shape (the same config and number of copies); a missing or unknown key is a ValueError."""
        expected = {*self.STATE_ARRAYS, "t", *self.STATE_GENERATORS}
        missing, unknown = sorted(expected - set(state)), sorted(set(state) - expected)
        if missing or unknown:
            raise ValueError(f"env state: missing keys {missing}, unknown keys {unknown}")
        arrays = {}
        for key in self.STATE_ARRAYS:  # all checked before any is written
            old = getattr(self, key)
            try:
                arrays[key] = np.asarray(state[key], dtype=old.dtype)
            except (TypeError, ValueError) as e:
                raise ValueError(f"env state: {key!r}: {e}") from None
            if arrays[key].shape != old.shape:
                raise ValueError(f"env state: {key!r} has shape {arrays[key].shape}, this env's "
                                 f"is {old.shape}")
        for key, value in arrays.items():
            setattr(self, key, value)
        self.t = int(state["t"])
        for key in self.STATE_GENERATORS:
            getattr(self, key).bit_generator.state = state[key]


# ----------------------------------------------------------------------------------------------
# Heuristic baselines: policy(env) -> actions (E, U, B+1), scores whose argmax is the intended
# choice


def _scores(choice, act_dim):
    """Scores in [-1, 1] (E, U, act_dim): +1 at the chosen index, -1 elsewhere."""
    return np.where(choice[..., None] == np.arange(act_dim), 1.0, -1.0)


def best_cell(env: CompEnv):
    """3GPP-like: at most one connection, to the BS with the largest SNR (disconnect first)."""
    best = env.snr.argmax(axis=2)  # (E, U), first on ties
    on_best = np.take_along_axis(env.connected, best[..., None], axis=2)[..., 0]
    any_conn = env.connected.any(axis=2)
    choice = np.where(on_best, 0, np.where(any_conn, env.connected.argmax(axis=2) + 1, best + 1))
    return _scores(choice, env.act_dim)


def full_comp(env: CompEnv):
    """Full CoMP: connect to the strongest BS not yet connected, one per step (out of range:
    no-op)."""
    free = ~env.connected
    strongest_free = np.where(free, env.snr, -np.inf).argmax(axis=2)
    choice = np.where(free.any(axis=2), strongest_free + 1, 0)
    return _scores(choice, env.act_dim)


def dynamic_comp(env: CompEnv, eps: float = 0.8):
    """Dynamic CoMP: keep the BSs with SNR >= eps * best SNR; drop others first, then add the
    strongest."""
    selected = env.snr >= eps * env.snr.max(axis=2, keepdims=True)
    drop = env.connected & ~selected
    add = selected & ~env.connected
    strongest_add = np.where(add, env.snr, -np.inf).argmax(axis=2)
    choice = np.where(drop.any(axis=2), drop.argmax(axis=2) + 1,
                      np.where(add.any(axis=2), strongest_add + 1, 0))
    return _scores(choice, env.act_dim)


def random_policy(env: CompEnv):
    """Uniform random scores in [-1, 1] (from the env's separate policy generator), for
    reference."""
    return env.policy_rng.uniform(-1.0, 1.0, (env.num_envs, env.n_agents, env.act_dim))


HEURISTICS = {
    "best_cell": best_cell,
    "full_comp": full_comp,
    "dynamic_comp": dynamic_comp,
    "random": random_policy,
}


def full_information_reference(env: CompEnv, sweeps: int = 2):
    """A per-step full-information reference (not a heuristic a UE could run, nor an upper bound):
    every UE's choice (noop or toggle one BS) by greedy coordinate search, `sweeps` passes over the
    UEs, each keeping the choice that most raises this step's mean utility, with the state known
    (positions, rates, every UE's connections and sharing). Myopic: it does not look past the
    step."""
    choice = np.zeros((env.num_envs, env.n_agents), dtype=np.int64)

    def mean_utility(choice):  # the env's step 1-2 for a candidate joint choice, (E,)
        connected = apply_choices(env.connected, env.in_range, choice)
        rate = shared_rate(connected, env.rate_unshared, env.ewma, env.bs_models)
        return utility(rate.sum(axis=2)).mean(axis=1)

    best = mean_utility(choice)
    for _ in range(sweeps):
        for ue in range(env.n_agents):
            for candidate in range(env.act_dim):
                trial = choice.copy()
                trial[:, ue] = candidate
                value = mean_utility(trial)
                better = value > best
                choice[better, ue] = candidate
                best = np.where(better, value, best)
    return _scores(choice, env.act_dim)


# ----------------------------------------------------------------------------------------------
# PettingZoo adapter `comp_env.ParallelEnv` (pettingzoo and gymnasium are imported on first use)


def _observation_bounds(env):
    # connected, relative SNR in [0, 1]; utility / 20 in [-1, 1]; BS utilisation in [0, 1]
    b = env.num_bs
    low = np.concatenate([np.zeros(2 * b), [-1.0], np.zeros(b)]).astype(np.float32)
    return low, np.ones_like(low)


@functools.cache
def _parallel_env_class():
    """ParallelEnv over one CompEnv (E = 1); agents `ue_0` .. `ue_{U-1}`; config None: medium."""
    from pettingzoo_adapter import make_parallel_env_class

    return make_parallel_env_class(
        "comp_env_v0",
        lambda config, seed: CompEnv(config or make_config("medium"), num_envs=1, seed=seed),
        "ue",
        _observation_bounds,
        lambda info, i: {
            "rate": float(info["ue_rate"][0, i]),
            "utility": float(info["ue_utility"][0, i]),
        },
    )


def parallel_env(scenario: str = "medium", seed: int | None = None, **overrides):
    """`ParallelEnv` over one environment of a preset scenario with some config fields replaced."""
    return _parallel_env_class()(make_config(scenario, **overrides), seed=seed)


def __getattr__(name):
    if name == "ParallelEnv":  # built on first access so that importing comp_env needs only numpy
        return _parallel_env_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
