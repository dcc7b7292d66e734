"""Vectorised O-RAN downlink RAN-slicing simulator (docs/model.md).

One agent per Distributed Unit (DU). Each DU splits its K resource blocks (RBs) among three slices
(eMBB, mMTC, URLLC, always in this order); inside a slice the RBs go to UEs (proportional-fair
scheduling, or the policy's own choice in the literal ``rb_slice_ue`` mode). A batch of E
independent environments is stepped together, every array shaped (E, N, ...) or (E, U, ...):
E = num_envs, N = num_dus (agents), U = num_ues, K = num_rbs, L = 3 slices.

System model (docs/model.md; [paper] = stated by the paper, [ours] = our documented default):
- DUs on a hexagonal grid in spiral order (centre, first ring, ...), ISD 500 m [ours]. UEs are
  dropped uniformly in the bounding box of the sites widened by one cell radius (ISD/sqrt 3), at
  least 35 m from every site, and reflect at the box edges [ours: a box, not the union of hexagons,
  keeps reflection trivial]. Each UE is served by the DU of largest long-term gain, re-evaluated
  every step (handover).
- Path loss: 3GPP TR 38.901 UMa NLOS (`path_loss_db`), log-normal shadowing per (UE, DU) drawn at
  reset. Fast fading: Rayleigh, |h|^2 ~ Exp(1), independent per (UE, DU, RB) and per step [paper].
  Transmit power 46 dBm split equally over the K RBs; a DU radiates only on RBs that carry data.
  SINR = signal / (noise + interference from the other DUs that radiate on the same RB)
  (`sinr`); rate per RB = B log2(1 + SINR), capped at 7.4 bit/s/Hz, zero below -10 dB (`rate_bps`).
- Time: one step = one near-RT RIC decision interval, dt = 100 ms; the allocation is held for the
  whole step, one fading sample per link and RB per step (block fading over the step).
- Traffic (nominal load x `load` x `slice_load`): eMBB Poisson 1500 B packets at 4 Mbit/s per UE;
  URLLC Poisson 32 B packets at 100 packets/s; mMTC active with probability 0.1 per step, one 100 B
  report. Each UE has a FIFO backlog bounded by `buffer_kbit`; overflow is dropped and counted.
  A step: arrivals join the backlog, the scheduler serves min(backlog, capacity), overflow drops.
- QoS (docs/model.md#qos, `qos`): Q_l = satisfied / counted UEs of slice l at the DU (1 when
  none counted). eMBB: served >= min(backlog + arrivals, 4 Mbit/s x dt). URLLC: estimated delay
  (backlog left ahead of a new packet + the packet) / service rate + 1 ms <= 5 ms, infinite without
  an RB; a URLLC UE with nothing to send counts as satisfied. mMTC: counted only when active in the
  step, satisfied when its backlog is empty after the step.
- Reward per DU (`reward`, docs/model.md#the-mdp-of-each-du):
  sum_l sigmoid(alpha_l Q_l) - zeta overuse / K - zeta sum_l max(0, Qmin_l - Q_l).
- Heterogeneous DUs [ours] (``du_ue_weights``, ``du_slice_mix``, ``home_radius_m``; the `hetero`
  scenario): each UE has a home DU (counts in proportion to the weights, slices by the DU's mix),
  is dropped in the disk of radius home_radius_m around the home site and turns back toward it
  when it leaves that disk; it is still served by the DU of largest gain.

Scheduling and fading samples (the speed design, [ours]):
- Proportional fair inside a slice, demand-aware: RB k of DU n, given to slice l, goes to the UE
  of slice l served by n, with data, that maximises the PF metric. The default metric
  (``pf_metric="linear"``) is rbar_u |h_uk|^2 / T_u: the UE's mean per-RB rate rbar_u (at its
  wideband SINR, all other DUs active) scaled by the RB's fading power, over its EWMA served
  throughput T_u; it ranks like the exact log2(1 + SINR_uk) / T_u (``pf_metric="log"``) to first
  order and needs no logarithm per (UE, RB). One allocation is held for a whole 100 ms step, so
  plain per-RB PF would hand a UE with 2.5 kbit to send ten RBs while a neighbour gets none: after
  each PF pass, a UE keeps its RBs (in frequency order) only until their estimated capacity covers
  ``sched_margin`` x its backlog, and the released RBs go, in the next pass, to the UEs still
  short. The passes repeat until no free RB of a slice has a short UE of that slice at its DU
  (work-conserving, docs/model.md#the-mdp-of-each-du; ``sched_rounds`` > 0 caps them). RBs
  nobody needs stay idle and radiate nothing.
- The scheduler knows the step's arrivals (buffer status) and its serving-link fading (CSI) when
  it allocates: both are drawn at the end of the previous step (or at reset) and kept in
  ``env.arrivals`` (E, U) and ``env.fading`` (E, U, K), so heuristic policies may read them;
  RL observations never contain them.
- Only the fading samples the step needs are drawn: the serving link of every UE on every RB
  (E, U, K) and, for the UE that got RB k at DU n, its links to the N-1 other DUs on RB k
  (E, N, K, N-1). Every sample that is drawn is an independent Exp(1), and a link that is never
  looked at has no effect, so this is distributed exactly like drawing the full (U, N, K) tensor.
  ``fading_block_rbs`` > 1 shares one serving-link sample over blocks of RBs (a speed option;
  interfering links stay per RB).
- Everything is vectorised over (E, ...): the UEs are kept sorted by (env, serving DU, slice)
  ("rows", `Rows`), and a PF pass is one max over a padded (position, group, RB) array whose
  float32 keys carry the position in their lowest bits (`pf_first_pass`); the only Python loops
  are over the 3 slices and the PF passes.

Code layout: the physics and the scheduler are functions of arrays, named after the quantities
they return (shapes in their docstrings): radio (`path_loss_db`, `link_gains`, `wideband_sinr`,
`rb_sinr`, `rate_bps`), traffic and queues (`traffic_profile`, `mean_arrivals`, `draw_arrivals`,
`serve_queues`), mobility (`drop_ues`, `move_ues`), allocation and scheduling (`decode_action`,
`schedule_pf` with its passes `pf_first_pass`, `pf_free_pass`, `keep_needed`; `ue_choice_rows`),
QoS and reward (`ue_satisfied`, `qos`, `reward`). `ORANEnv` holds the state and calls them in
the order of a step: traffic, association, fading, allocation, scheduling, rates, queues, QoS,
reward, then mobility and handover, the next step's draws and the observation.

Heuristic baselines (``HEURISTICS``, docs/model.md#heuristics; `policy(env) -> actions` in the
env's action mode):
``static_equal`` (K/3 RBs per slice), ``demand_proportional`` (RBs in proportion to each slice's
RBs needed for backlog + arrivals at its UEs' wideband rate, at least one per URLLC/mMTC UE with
data), ``urllc_first`` (URLLC, then mMTC, get 2x their RBs needed, eMBB the rest),
``pf_no_slicing`` (the demand-aware PF over the whole band, each RB labelled with its winner's
slice), ``ue_count`` (from the observation alone: 1.5 RB per URLLC UE and 0.3 per mMTC UE,
rounded up, eMBB the rest) and ``random`` (uniform actions). ``OBSERVATION_ONLY`` names those
that read nothing beyond the agents' observation; ``full_information_reference`` is a per-step
search that sees the step's arrivals and fading (a reference, not an upper bound). A slice
split becomes contiguous RB blocks; in ``rb_slice`` mode the blocks are +1/-1 scores, in
``slice_share`` the fractions, in ``rb_slice_ue`` the scores plus +1 on the slot of the UE the
env's PF would pick.

Action modes (actions in [-1, 1]^act_dim per DU; thresholds at 0 as SAC's tanh output):
- ``rb_slice`` (default): K x L scores, RB k is claimed by slice l when score > 0 and goes to the
  claiming slice of largest score; PF inside the slice. Over-use = max(0, claims - K).
- ``rb_slice_ue`` (the paper, literal): the K x L slice scores above plus K x U_max UE scores
  (U_max = ``ue_slots``; the UEs served by a DU fill its slots in UE-id order, extra UEs get no
  slot). RB k goes to the UE of its slice with the largest positive score; none positive: idle.
  Over-use counts slice claims as in ``rb_slice``.
- ``slice_share``: L requested RB fractions (a + 1) / 2; requests above K in total are scaled
  down; contiguous RB blocks in slice order; PF inside. Over-use = max(0, requested - K).

Observation per DU (``obs_mode``): ``paper`` = [Q_l (L), UEs per slice at the DU / expected
number (L), previous RB fraction per slice (L)]; ``full_action`` replaces the last block by the
full previous action vector; ``rich`` appends per-slice backlog (log1p of backlog over expected
arrivals per step), arrivals (over expected) and mean wideband SINR (dB / 20).

Auto-reset (docs/INTERFACES.md): episodes of ``episode_length`` steps run in lockstep; on the last
step ``truncated`` is True, ``obs`` is the first observation of the next episode, and
``info["final_obs"]`` / ``info["episode"]`` hold the finished episode's last observation and
return. Other info arrays: ``ue_throughput_mbps`` (E, U); ``qos`` (E, N, L); ``overuse`` (E, N)
RB claims above K; ``rb_slice`` (E, N, K) slice of each RB (-1 idle); ``rb_ue`` (E, N, K) UE that
got the RB (-1 idle); ``sinr`` (E, N, K) linear SINR of each RB (0 idle); ``ue_arrival_bits``,
``ue_served_bits``, ``ue_dropped_bits`` (E, U) for the step.

Pictures: ``ORANEnv(..., render_mode="rgb_array").render()`` returns an (H, W, 3) uint8 frame
of environment copy 0 (Gymnasium convention; matplotlib, imported only then).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
import typing
from typing import Literal, NamedTuple

import numpy as np

SLICES = ("embb", "mmtc", "urllc")
EMBB, MMTC, URLLC = 0, 1, 2


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------
def has_type(value, kind) -> bool:
    """Whether `value` fits the field annotation `kind`: ints count as floats, bools as neither,
    floats must be finite, tuples must have the annotated length and element types, Literals one
    of their values."""
    origin, params = typing.get_origin(kind), typing.get_args(kind)
    if origin is Literal:
        return isinstance(value, str) and value in params
    if origin is tuple:
        if not isinstance(value, (tuple, list)):
            return False
        kinds = params[:1] * len(value) if params[-1:] == (...,) else params
        return len(value) == len(kinds) and all(map(has_type, value, kinds))
    if kind is float:
        return (isinstance(value, (int, float, np.integer, np.floating))
                and not isinstance(value, bool) and math.isfinite(value))
    return (isinstance(value, (int, np.integer) if kind is int else kind)
            and not isinstance(value, bool))


def in_interval(value, interval: str) -> bool:
    """Whether the number `value` lies in `interval`, "[low, high]" with "(" and ")" for open
    ends (the notation of the training scripts' RANGES)."""
    low, high = (float(x) for x in interval[1:-1].split(","))
    return (low <= value <= high and (value, interval[0]) != (low, "(")
            and (value, interval[-1]) != (high, ")"))


def numbers(value):
    """The numbers of a field value: itself, or those inside its (nested) tuples."""
    if isinstance(value, (tuple, list)):
        return [x for v in value for x in numbers(v)]
    return [value]


def check_config(config, ranges: dict[str, str]):
    """The field checks of a simulator config: every field of its annotated type (floats finite)
    and every number of a field (also inside tuples) in its interval in `ranges`; raises
    ValueError naming the first field that is not, with what it allows."""
    cls = type(config)
    for f, kind in zip(dataclasses.fields(cls), typing.get_type_hints(cls).values()):
        # types first (finite floats), so the range checks compare numbers
        value = getattr(config, f.name)
        if not has_type(value, kind):
            name = kind.__name__ if isinstance(kind, type) else str(kind).replace("typing.", "")
            raise ValueError(f"{cls.__name__}.{f.name}: expected type {name} (floats finite), "
                             f"got {value!r}")
    for name, interval in ranges.items():
        if not all(in_interval(x, interval) for x in numbers(getattr(config, name))):
            raise ValueError(f"{cls.__name__}.{name}: expected numbers in {interval}, "
                             f"got {getattr(config, name)!r}")


# Interval of every number of an ORANConfig field (also inside tuples); "(" and ")" are open
# ends. The upper bounds keep every quantity finite (10^(dB/10), Poisson means, queue bits) and
# the arrays within memory (counts); fields that depend on others are checked in __post_init__.
ORAN_RANGES = {
    "num_dus": "[1, 19]", "num_slices": "[3, 3]", "num_ues": "[1, 5000]", "num_rbs": "[1, 500]",
    "load": "[0, 100]", "slice_load": "[0, 100]", "shift_slice_load": "[0, 100]",
    "slice_shares": "[0, 1]", "shift_slice_shares": "[0, 1]",
    "episode_length": "[1, 100000]", "step_ms": "[0.01, 10000]", "ue_slots": "[0, 10000]",
    "inter_site_distance_m": "[10, 100000]", "min_ue_distance_m": "[0, 100000]",
    "carrier_ghz": "[0.5, 100]", "bs_height_m": "[1, 1000]", "ue_height_m": "[1, 1000]",
    "shadowing_db": "[0, 30]", "tx_power_dbm": "[-100, 100]", "rb_bandwidth_khz": "[1, 1000000]",
    "noise_psd_dbm_hz": "[-250, 0]", "noise_figure_db": "[0, 50]",
    "max_spectral_efficiency": "(0, 100]", "min_sinr_db": "[-100, 100]",
    "fading_block_rbs": "[1, 500]", "speed_mps": "[0, 1000]", "heading_changes_deg": "[-360, 360]",
    "embb_rate_mbps": "[0, 100000]", "urllc_packet_rate": "[0, 1000000]",
    "mmtc_activity": "[0, 1]", "buffer_kbit": "[0, 1000000000]",
    **dict.fromkeys(("embb_packet_bytes", "urllc_packet_bytes", "mmtc_packet_bytes"),
                    "[1, 1000000]"),
    "embb_target_mbps": "[0, 100000]", "urllc_delay_budget_ms": "(0, 100000]",
    "urllc_processing_ms": "[0, 100000]", "delay_report_cap_ms": "(0, 1000000]",
    "reward_alpha": "[0, 1000]", "reward_zeta": "[0, 1000000]", "qos_min": "[0, 1]",
    "pf_window_steps": "[1, 1000000]", "sched_rounds": "[0, 1000000]",
    "sched_margin": "(0, 1000000]", "shift_after_steps": "[0, 1000000000000000]",
    "du_ue_weights": "[0, 1000000]", "du_slice_mix": "[0, 1]", "home_radius_m": "[0, 100000]",
}


@dataclass
class ORANConfig:
    """Every option of the O-RAN simulator; per-slice tuples are ordered (eMBB, mMTC, URLLC)."""

    num_dus: int = 6
    """number of DUs (agents) on the hexagonal grid [paper: 6, swept 2..10]"""
    num_slices: int = 3
    """number of slices; only 3 (eMBB, mMTC, URLLC) is supported [paper]"""
    num_ues: int = 200
    """number of UEs in total [paper]"""
    num_rbs: int = 100
    """RBs per DU, K (20 MHz / 200 kHz) [paper]"""
    load: float = 1.0
    """traffic multiplier applied to every slice (1 = nominal load) [ours]"""
    slice_load: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """extra per-slice traffic multipliers (eMBB, mMTC, URLLC) [ours]"""
    slice_shares: tuple[float, float, float] = (1 / 3, 1 / 3, 1 / 3)
    """fraction of the UEs in each slice (eMBB, mMTC, URLLC); fixed per episode [ours]"""
    action_mode: Literal["rb_slice", "rb_slice_ue", "slice_share"] = "rb_slice"
    """action encoding: rb_slice (K x L scores, PF inside), rb_slice_ue (paper literal: plus
    K x U_max UE scores), slice_share (L fractions, PF inside)"""
    obs_mode: Literal["paper", "full_action", "rich"] = "paper"
    """observation: paper (QoS, UE counts, previous RB fraction per slice), full_action (previous
    action vector instead of the fractions), rich (paper plus backlog, arrivals, SINR per slice)"""
    episode_length: int = 100
    """steps per episode [ours]"""
    step_ms: float = 100.0
    """duration of one step (near-RT RIC decision interval), ms [ours]"""
    ue_slots: int = 0
    """UE slots per DU in rb_slice_ue mode (U_max); 0 = ceil(1.5 num_ues / num_dus) [ours]"""
    # radio
    inter_site_distance_m: float = 500.0
    """inter-site distance of the hexagonal grid, m [ours]"""
    min_ue_distance_m: float = 35.0
    """minimum 2D UE-site distance at the drop (and in path loss while moving), m [ours]"""
    carrier_ghz: float = 3.5
    """carrier frequency, GHz [ours]"""
    bs_height_m: float = 25.0
    """DU antenna height, m (TR 38.901 UMa)"""
    ue_height_m: float = 1.5
    """UE height, m"""
    shadowing_db: float = 6.0
    """log-normal shadowing standard deviation, dB; drawn per (UE, DU) at reset [ours]"""
    tx_power_dbm: float = 46.0
    """DU transmit power over the whole band, split equally over the K RBs, dBm [ours]"""
    rb_bandwidth_khz: float = 200.0
    """RB bandwidth, kHz [paper]"""
    noise_psd_dbm_hz: float = -174.0
    """thermal noise density, dBm/Hz"""
    noise_figure_db: float = 9.0
    """UE noise figure, dB [ours]"""
    max_spectral_efficiency: float = 7.4
    """Shannon rate cap, bit/s/Hz [ours]"""
    min_sinr_db: float = -10.0
    """SINR below which an RB carries nothing, dB [ours]"""
    fading_block_rbs: int = 1
    """RBs sharing one serving-link fading sample (1 = independent per RB,
    docs/model.md#radio-model)"""
    # mobility
    speed_mps: tuple[float, float] = (10.0, 20.0)
    """UE speed range, m/s, drawn per UE at reset [paper*]"""
    heading_changes_deg: tuple[float, ...] = (-60.0, -30.0, -15.0, 0.0, 15.0, 30.0, 60.0)
    """heading change drawn uniformly from this set every step, degrees [paper*]"""
    # traffic
    embb_rate_mbps: float = 4.0
    """mean eMBB offered rate per UE (Poisson packets), Mbit/s [ours: 4 rather than 2, so that
    the nominal load is contended; docs/model.md#time-traffic-and-queues]"""
    embb_packet_bytes: int = 1500
    """eMBB packet size, bytes [ours]"""
    urllc_packet_rate: float = 100.0
    """mean URLLC packets per second per UE (Poisson) [ours]"""
    urllc_packet_bytes: int = 32
    """URLLC packet size, bytes [ours]"""
    mmtc_activity: float = 0.1
    """probability that an mMTC device sends a report in a step [ours]"""
    mmtc_packet_bytes: int = 100
    """mMTC report size, bytes [ours]"""
    buffer_kbit: tuple[float, float, float] = (4000.0, 3.2, 12.8)
    """per-UE buffer size per slice, kbit (1 s of eMBB, 4 mMTC reports, 50 URLLC packets) [ours]"""
    # QoS and reward
    embb_target_mbps: float = 4.0
    """eMBB throughput target per UE, Mbit/s [ours: 4 with the offered rate; docs/model.md#qos]"""
    urllc_delay_budget_ms: float = 5.0
    """URLLC delay budget, ms [ours]"""
    urllc_processing_ms: float = 1.0
    """processing delay added to the URLLC delay estimate, ms [ours]"""
    delay_report_cap_ms: float = 100.0
    """cap applied to infinite/large URLLC delays in the reported mean delay metric, ms [ours]"""
    reward_alpha: tuple[float, float, float] = (5.0, 3.0, 8.0)
    """sigmoid slopes alpha_l of the reward (eMBB, mMTC, URLLC) [ours]"""
    reward_zeta: float = 5.0
    """penalty weight zeta of RB over-use and QoS shortfall [ours]"""
    qos_min: tuple[float, float, float] = (0.5, 0.3, 0.7)
    """minimum QoS Qmin_l below which the shortfall is penalised [ours]"""
    # scheduler
    pf_metric: Literal["linear", "log"] = "linear"
    """PF metric: linear = rbar_u |h|^2 / T_u (fast), log = log2(1 + SINR_uk) / T_u (exact)
    [ours]"""
    pf_window_steps: float = 10.0
    """time constant of the PF throughput average T_u, in steps [ours]"""
    sched_rounds: int = 0
    """cap on the PF passes per step (after each, RBs beyond a UE's need go to UEs still short);
    0 = no cap: pass until no free RB of a slice is wanted (work-conserving,
    docs/model.md#the-mdp-of-each-du) [ours]"""
    sched_margin: float = 1.0
    """a UE's need = margin x its backlog, at the scheduler's estimated rate [ours]"""
    # non-stationarity
    shift_after_steps: int = 0
    """environment steps (over all copies: ``env_steps``) after which the traffic profile shifts,
    at the next episode start; 0 = never"""
    shift_slice_load: tuple[float, float, float] = (2.0, 1.0, 3.0)
    """per-slice traffic multipliers after the shift [ours]"""
    shift_slice_shares: tuple[float, float, float] = (0.5, 0.25, 0.25)
    """slice shares after the shift (half of the UEs in eMBB) [ours]"""
    # heterogeneous DUs (the `hetero` scenario)
    du_ue_weights: tuple[float, ...] = ()
    """relative UE density per DU, one value per DU: each UE gets a home DU, the UE counts in
    proportion (largest remainder); () = no home DU, UEs dropped uniformly over the area [ours]"""
    du_slice_mix: tuple[tuple[float, float, float], ...] = ()
    """slice shares (eMBB, mMTC, URLLC) of the UEs homed at each DU, one triple per DU, each
    summing to 1; () = slice_shares at every DU [ours]"""
    home_radius_m: float = 0.0
    """UEs with a home DU (du_ue_weights or du_slice_mix set) are dropped within this distance of
    their home site and turn back toward it when they move out of it; 0 = the cell radius
    inter_site_distance_m / sqrt(3) [ours]"""

    def __post_init__(self):
        check_config(self, ORAN_RANGES)
        for name in ("slice_load", "slice_shares", "buffer_kbit", "reward_alpha", "qos_min",
                     "shift_slice_load", "shift_slice_shares", "speed_mps", "heading_changes_deg"):
            setattr(self, name, tuple(float(v) for v in getattr(self, name)))

        def need(ok, name, expected):
            if not ok:
                raise ValueError(f"ORANConfig.{name}: expected {expected}, "
                                 f"got {getattr(self, name)!r}")

        for name in ("slice_shares", "shift_slice_shares"):
            need(abs(sum(getattr(self, name)) - 1) < 1e-6, name, "shares summing to 1")
        need(self.fading_block_rbs <= self.num_rbs, "fading_block_rbs", "an int in 1..num_rbs")
        need(self.min_ue_distance_m < self.inter_site_distance_m / 3, "min_ue_distance_m",
             "a float in [0, inter_site_distance_m / 3)")
        need(self.speed_mps[0] <= self.speed_mps[1], "speed_mps", "(low, high) with low <= high")
        need(len(self.heading_changes_deg) >= 1, "heading_changes_deg", "at least one angle")
        self._check_du_profiles(need)

    def _check_du_profiles(self, need):
        """The per-DU profile fields (du_ue_weights, du_slice_mix, home_radius_m) against num_dus
        and the cell radius (their types and intervals are checked in check_config)."""
        n = self.num_dus
        self.du_ue_weights = tuple(float(x) for x in self.du_ue_weights)
        self.du_slice_mix = tuple(tuple(float(x) for x in m) for m in self.du_slice_mix)
        w, mix = self.du_ue_weights, self.du_slice_mix
        need(not w or (len(w) == n and sum(w) > 0), "du_ue_weights",
             f"() or {n} finite weights >= 0 (one per DU) with a positive sum")
        need(not mix or (len(mix) == n and all(abs(sum(m) - 1) < 1e-6 for m in mix)),
             "du_slice_mix", f"() or {n} triples (eMBB, mMTC, URLLC) of finite shares >= 0 "
             "summing to 1, one per DU")
        cell_radius = self.inter_site_distance_m / math.sqrt(3)
        need(self.home_radius_m <= cell_radius, "home_radius_m",
             f"a float in [0, {cell_radius:.1f}] (0 = the cell radius)")

    @property
    def num_ue_slots(self) -> int:
        return self.ue_slots or math.ceil(1.5 * self.num_ues / self.num_dus)


SCENARIOS: dict[str, ORANConfig] = {
    "paper": ORANConfig(),
    "small": ORANConfig(num_dus=2, num_ues=30, num_rbs=25),
    "light": ORANConfig(load=0.5),
    "heavy": ORANConfig(load=1.5),
    "nonstationary": ORANConfig(shift_after_steps=10_000),
    # DUs facing different tasks (docs/model.md#scenarios): a hotspot with twice the average UE
    # count, an URLLC-heavy industrial site, an mMTC-heavy site, two lightly loaded sites, one
    # average
    "hetero": ORANConfig(du_ue_weights=(2.0, 1.0, 1.0, 0.5, 0.5, 1.0),
                         du_slice_mix=((0.4, 0.3, 0.3), (0.2, 0.2, 0.6), (0.1, 0.8, 0.1),
                                       (1 / 3, 1 / 3, 1 / 3), (1 / 3, 1 / 3, 1 / 3),
                                       (1 / 3, 1 / 3, 1 / 3))),
    **{f"du{n}": ORANConfig(num_dus=n) for n in range(2, 11)},
}


def make_config(scenario: str = "paper", **overrides) -> ORANConfig:
    """The named preset with some fields replaced; unknown names raise ValueError."""
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario: expected one of {sorted(SCENARIOS)}, got {scenario!r}")
    names = {f.name for f in dataclasses.fields(ORANConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"ORANConfig has no field {unknown[0]!r}; fields: {sorted(names)}")
    return dataclasses.replace(SCENARIOS[scenario], **overrides)


def make_env(scenario: str = "paper", num_envs: int = 1, seed: int | None = None,
             render_mode: str | None = None, **overrides):
    """Vectorised environment of a preset (see make_config)."""
    return ORANEnv(make_config(scenario, **overrides), num_envs=num_envs, seed=seed,
                   render_mode=render_mode)


# ---------------------------------------------------------------------------------------------
# Radio and QoS quantities (docs/model.md#radio-model, #qos, #the-mdp-of-each-du)
# ---------------------------------------------------------------------------------------------
def hex_sites(num_dus: int, isd: float) -> np.ndarray:
    """DU positions (N, 2) on a hexagonal grid, spiral order: centre, ring 1, ring 2, ..."""
    sites = [(0.0, 0.0)]
    ring = 1
    while len(sites) < num_dus:
        # walk the ring's 6 sides starting from the corner at angle 30 deg
        corners = [ring * isd * np.array([math.cos(math.radians(30 + 60 * i)),
                                          math.sin(math.radians(30 + 60 * i))]) for i in range(7)]
        for side in range(6):
            for step in range(ring):
                p = corners[side] + (corners[side + 1] - corners[side]) * step / ring
                sites.append((float(p[0]), float(p[1])))
        ring += 1
    return np.array(sites[:num_dus])


def path_loss_db(d2d_m, carrier_ghz: float = 3.5, h_bs: float = 25.0, h_ut: float = 1.5):
    """3GPP TR 38.901 UMa NLOS:
    PL = 13.54 + 39.08 log10(d3D) + 20 log10(fc/GHz) - 0.6 (hUT - 1.5)."""
    d3d = np.sqrt(np.square(d2d_m) + (h_bs - h_ut) ** 2)
    return 39.08 * np.log10(d3d) + (13.54 + 20 * math.log10(carrier_ghz) - 0.6 * (h_ut - 1.5))


def long_term_gain(pl_db, shadow_db):
    """Linear large-scale power gain of a link: 10^(-(PL + shadowing) / 10)."""
    return np.exp((pl_db + shadow_db) * (-math.log(10) / 10))


def noise_mw_per_rb(noise_psd_dbm_hz: float, rb_bandwidth_hz: float, noise_figure_db: float):
    """Thermal noise per RB, mW: -174 dBm/Hz + 10 log10(B) + NF (about -112 dBm for 200 kHz)."""
    return 10 ** ((noise_psd_dbm_hz + 10 * math.log10(rb_bandwidth_hz) + noise_figure_db) / 10)


def sinr(signal_mw, interference_mw, noise_mw):
    """SINR = S / (N + I) (linear)."""
    return signal_mw / (noise_mw + interference_mw)


def rate_bps(sinr_lin, bandwidth_hz: float, max_se: float = 7.4, min_sinr_db: float = -10.0):
    """Capped Shannon rate of one RB: B min(log2(1 + SINR), max_se), 0 below the SINR floor."""
    se = np.minimum(np.log2(1 + sinr_lin), max_se)
    return np.where(sinr_lin >= 10 ** (min_sinr_db / 10), bandwidth_hz * se, 0.0)


def urllc_delay_ms(backlog_bits, packet_bits, service_rate_bps, processing_ms: float = 1.0):
    """Delay estimate of a new URLLC packet: (backlog ahead + packet) / service rate + processing;
    infinite when the UE has no service rate (no RB)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        d = 1e3 * (backlog_bits + packet_bits) / service_rate_bps + processing_ms
    return np.where(service_rate_bps > 0, d, np.inf)


def qos(satisfied, counted, group, num_groups: int):
    """Q per group = satisfied / counted UEs of the group (1 when none is counted), in [0, 1].
    satisfied, counted: (M,) bool; group: (M,) int in [0, num_groups)."""
    n = np.bincount(group, weights=counted, minlength=num_groups)
    s = np.bincount(group, weights=satisfied & counted, minlength=num_groups)
    return np.where(n > 0, s / np.maximum(n, 1), 1.0)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def reward(q, overuse, num_rbs: int, alpha, zeta: float, qos_min):
    """Per-DU reward (docs/model.md#the-mdp-of-each-du):
    sum_l sigmoid(alpha_l Q_l) - zeta overuse / K - zeta sum_l max(0, Qmin_l - Q_l).
    q: (..., L); overuse: (...) RB claims above K."""
    alpha, qos_min = np.asarray(alpha), np.asarray(qos_min)
    return (sigmoid(alpha * q).sum(-1) - zeta * overuse / num_rbs
            - zeta * np.maximum(0.0, qos_min - q).sum(-1))


def global_slice_shares(config: ORANConfig, shifted: bool = False):
    """Slice shares over all UEs (L,): slice_shares, or with per-DU profiles the DUs' mixes
    weighted by their UE density (shift_slice_shares after a non-stationary shift)."""
    if shifted:
        return np.array(config.shift_slice_shares)
    if not config.du_slice_mix:
        return np.array(config.slice_shares)
    w = np.asarray(config.du_ue_weights or [1.0] * config.num_dus)
    return (w / w.sum()) @ np.array(config.du_slice_mix)


def split_counts(shares, total: int):
    """Integer counts (L,) summing to total, in proportion to shares (L,) (largest remainder,
    ties to the first)."""
    shares = np.asarray(shares, dtype=np.float64) / np.sum(shares)
    n = np.floor(shares * total).astype(int)
    n[np.argsort(-(shares * total - n), kind="stable")[: total - n.sum()]] += 1
    return n


def counts_to_rb_slice(counts, num_rbs: int):
    """Contiguous RB blocks in slice order: counts (..., L) ints summing to <= K -> (..., K) slice
    of each RB, -1 for RBs left idle."""
    ends = np.cumsum(counts, axis=-1)
    k = np.arange(num_rbs)
    s = (k[..., :, None] >= ends[..., None, :]).sum(-1)
    return np.where(s < counts.shape[-1], s, -1).astype(np.int8)


# ---------------------------------------------------------------------------------------------
# Traffic (docs/model.md#time-traffic-and-queues)
# ---------------------------------------------------------------------------------------------
def traffic_profile(config: ORANConfig, shifted: bool = False):
    """The traffic now: per-slice load multipliers (L,) and the slice shares of the UEs homed at
    each DU (N, L): every DU alike without per-DU profiles; after a non-stationary shift, the
    shift's multipliers and shares."""
    N = config.num_dus
    if shifted:
        return np.array(config.shift_slice_load), np.tile(config.shift_slice_shares, (N, 1))
    return np.array(config.slice_load), np.array(config.du_slice_mix or [config.slice_shares] * N)


def slice_membership(rng, mix, du_weights, num_envs: int, num_ues: int):
    """Each UE's slice (E, U) and home DU (E, U) (None without per-DU profiles, du_weights None).
    Exact shares by largest remainder, shuffled per environment: the slices follow mix[0] (L,);
    with home DUs the UE counts follow du_weights (N,) and the slices each DU's mix (N, L)."""
    E, U, L = num_envs, num_ues, mix.shape[1]
    if du_weights is None:
        base = np.repeat(np.arange(L), split_counts(mix[0], U))
        return rng.permuted(np.broadcast_to(base, (E, U)), axis=1).astype(np.intp), None
    per_du = split_counts(du_weights, U)
    base = np.concatenate([np.repeat(np.arange(L), split_counts(mix[n], per_du[n]))
                           for n in range(len(per_du))])
    perm = rng.permuted(np.broadcast_to(np.arange(U), (E, U)), axis=1)
    return base[perm].astype(np.intp), np.repeat(np.arange(len(per_du)), per_du)[perm]


def mean_arrivals(config: ORANConfig, slice_load, packet_bits, dt: float):
    """Per slice (L,): mean arrivals per step in bits (load x slice_load x nominal: eMBB rate x dt,
    mMTC activity x report, URLLC packet rate x dt x packet), Poisson packets per step (eMBB,
    URLLC; 0 for mMTC) and the mMTC activity probability per step (a float)."""
    load = config.load * slice_load
    bits = np.array([config.embb_rate_mbps * 1e6 * dt, config.mmtc_activity * packet_bits[MMTC],
                     config.urllc_packet_rate * dt * packet_bits[URLLC]]) * load
    packets = np.array([bits[EMBB] / packet_bits[EMBB], 0.0, bits[URLLC] / packet_bits[URLLC]])
    return bits, packets, min(1.0, config.mmtc_activity * load[MMTC])


def draw_arrivals(rng, p_active, packets, packet_bits):
    """One step's arrivals: (active (E, U) bool: an mMTC device that reports, arrival bits (E, U):
    one report when active, else Poisson(packets) packets of packet_bits). p_active, packets,
    packet_bits: (E, U) per UE."""
    active = rng.random(p_active.shape) < p_active
    return active, np.where(active, 1, rng.poisson(packets)) * packet_bits


def draw_serving_fading(rng, num_rows: int, num_rbs: int, block_rbs: int = 1):
    """Rayleigh fading power |h|^2 ~ Exp(1) (float32) of each UE's serving link on each RB,
    (num_rows, K); block_rbs > 1 shares one sample over blocks of RBs."""
    if block_rbs == 1:
        return rng.standard_exponential((num_rows, num_rbs), dtype=np.float32)
    blocks = rng.standard_exponential((num_rows, -(-num_rbs // block_rbs)), dtype=np.float32)
    return np.repeat(blocks, block_rbs, axis=1)[:, :num_rbs]


def serve_queues(demand_bits, capacity_bits, buffer_bits):
    """The FIFO queues of one step: served = min(backlog + arrivals, capacity), left = the rest,
    dropped = what of it exceeds the buffer. All (E, U) bits; the new backlog is left - dropped."""
    served = np.minimum(demand_bits, capacity_bits)
    left = demand_bits - served
    return served, left, np.maximum(0.0, left - buffer_bits)


# ---------------------------------------------------------------------------------------------
# UE drop, mobility and association (docs/model.md#system, docs/model.md#radio-model)
# ---------------------------------------------------------------------------------------------
def drop_ues(rng, shape, sites, area_lo, area_hi, min_distance_m: float, home=None,
             home_radius_m: float = 0.0):
    """UE positions (E, U, 2) for shape (E, U): uniform over the area box, or with home DUs home
    (E, U) uniform over the disk of radius home_radius_m around the home site; UEs closer than
    min_distance_m to a site are redrawn."""
    def draw(which):  # positions (M, 2) for the UEs which (E, U) bool
        n = int(which.sum())
        if home is None:
            return rng.uniform(area_lo, area_hi, size=(n, 2))
        r = home_radius_m * np.sqrt(rng.random(n))
        a = rng.uniform(-np.pi, np.pi, n)
        return sites[home[which]] + r[:, None] * np.stack([np.cos(a), np.sin(a)], -1)

    pos = draw(np.ones(shape, dtype=bool)).reshape(*shape, 2)
    while True:
        bad = np.linalg.norm(pos[:, :, None, :] - sites, axis=-1).min(-1) < min_distance_m
        if not bad.any():
            return pos
        pos[bad] = draw(bad)


def move_ues(rng, pos, heading, speed, dt: float, turns, lo, hi, home_sites=None,
             home_radius_m: float = 0.0):
    """One step of the random-direction mobility: a heading change drawn from turns (radians),
    a move of speed x dt, reflection at the area edges lo, hi (E, U, 2); a UE with a home site
    home_sites (E, U, 2) that is out of its home disk turns back toward the site.
    pos (E, U, 2), heading, speed (E, U). Returns (pos, heading)."""
    heading = heading + turns[rng.integers(0, len(turns), size=heading.shape)]
    vel = np.empty(pos.shape)
    np.cos(heading, out=vel[..., 0])
    np.sin(heading, out=vel[..., 1])
    pos = pos + (speed * dt)[..., None] * vel
    below, above = pos < lo, pos > hi
    pos = np.where(below, 2 * lo - pos, np.where(above, 2 * hi - pos, pos))
    vel = np.where(below | above, -vel, vel)
    heading = np.arctan2(vel[..., 1], vel[..., 0])
    pos = np.clip(pos, lo, hi)
    if home_sites is not None:
        away = pos - home_sites
        out = np.einsum("eui,eui->eu", away, away) > home_radius_m ** 2
        heading = np.where(out, np.arctan2(-away[..., 1], -away[..., 0]), heading)
    return pos, heading


def link_gains(pos, sites, shadow_db, config: ORANConfig):
    """Long-term power gain (E, U, N) float32 of every UE-DU link: path loss at the 2D distance
    (at least min_ue_distance_m) and the shadowing shadow_db (E, U, N). pos (E, U, 2)."""
    dx = pos[:, :, 0, None] - sites[:, 0]  # (E, U, N)
    dy = pos[:, :, 1, None] - sites[:, 1]
    d2d = np.sqrt(dx * dx + dy * dy).astype(np.float32)
    pl = path_loss_db(np.maximum(d2d, np.float32(config.min_ue_distance_m)), config.carrier_ghz,
                      config.bs_height_m, config.ue_height_m)
    return long_term_gain(pl, shadow_db)


def wideband_sinr(gain, serving, noise_mw: float, p_rb_mw: float):
    """The serving gain g (E, U) and the wideband SINR g / (noise / P_rb + sum of the other DUs'
    gains) (E, U) with every other DU active: the scheduler's channel-quality estimate.
    gain (E, U, N), serving (E, U)."""
    E, U, N = gain.shape
    g_serv = gain.ravel().take(np.arange(E * U) * N + serving.ravel()).reshape(E, U)
    # the sum over the N DUs as a matmul (faster than a reduction over a short last axis)
    total = gain @ np.ones(N, dtype=np.float32)
    noise_and_interference = noise_mw / p_rb_mw + total - g_serv
    # with one DU and a noise term below float32's resolution at the gain, the sum rounds to 0
    return g_serv, g_serv / np.where(noise_and_interference > 0, noise_and_interference,
                                     noise_mw / p_rb_mw)


def mean_rb_rate_bps(sinr_wideband, bandwidth_hz: float, max_se: float):
    """Rate of one RB at the wideband SINR (E, U), without the SINR floor: a UE below the floor
    on average still gets RBs on which its fading lifts it above."""
    return bandwidth_hz * np.minimum(np.log2(1 + sinr_wideband.astype(np.float64)), max_se)


# ---------------------------------------------------------------------------------------------
# Scheduling (docs/model.md#the-mdp-of-each-du): the UEs as "rows", sorted by (env, DU, slice)
# ---------------------------------------------------------------------------------------------
class PFLayout(NamedTuple):
    """Padded layout of the rows for a PF pass over groups ((env, DU, slice), or (env, DU) for
    whole-band PF): position-major, so that the max over positions is an element-wise max of
    contiguous (group, RB) slabs."""

    index: np.ndarray  # (R,) place of each row in the padded (size x groups) array
    size: int  # largest group
    starts: np.ndarray  # (G,) first row of each group
    pos: np.ndarray  # (R,) int32 position of each row in its group


class Rows(NamedTuple):
    """The UEs of one association in the scheduler's order (R = E*U rows sorted by (env, serving
    DU, slice)) and their per-row channel quantities."""

    order: np.ndarray  # (R,) flat UE e * U + u of each row
    row_of_ue: np.ndarray  # (R,) row of each flat UE
    du: np.ndarray  # (R,) flat (env, DU) serving the row
    group: np.ndarray  # (R,) flat (env, DU, slice) of the row
    group_counts: np.ndarray  # (E*N*L,) rows per (env, DU, slice)
    gain_serving: np.ndarray  # (R,) float32 long-term gain of the serving link
    gain_others: np.ndarray  # (R, N-1) float32 gains of the other DUs, in `others` order
    sinr: np.ndarray  # (R,) float32 wideband SINR
    rate: np.ndarray  # (R,) mean per-RB rate at the wideband SINR, bit/s


def pf_layout(counts, key):
    """PFLayout of rows sorted by group: counts (G,) rows per group, key (R,) group of each row."""
    starts = np.cumsum(counts) - counts
    pos = np.arange(len(key)) - starts[key]
    return PFLayout(pos * len(counts) + key, max(int(counts.max()), 1), starts,
                    pos.astype(np.int32))


def scheduler_rows(ue_du, ue_group, group_counts, gain, g_serv, sinr_wideband, rate_wideband,
                   others):
    """Rows for the flat (env, DU) and (env, DU, slice) of each UE ue_du, ue_group (E*U,) and the
    UEs per group group_counts (E*N*L,); gain (E, U, N); g_serv, sinr_wideband, rate_wideband
    (E, U); others (N, N-1) the other DUs of each DU."""
    N = gain.shape[-1]
    # stable sort by group; a 16-bit key sorts by radix
    order = np.argsort(ue_group.astype(np.int16) if len(group_counts) < 2 ** 15 else ue_group,
                       kind="stable")
    row_of_ue = np.empty_like(order)
    row_of_ue[order] = np.arange(len(order))
    group, du = ue_group[order], ue_du[order]
    return Rows(order, row_of_ue, du, group, group_counts, g_serv.ravel()[order],
                gain.ravel().take(order[:, None] * N + others[du % N]),
                sinr_wideband.ravel()[order], rate_wideband.ravel()[order])


def ue_slots(rows: Rows, num_slots: int, num_envs: int, num_dus: int):
    """rb_slice_ue mode: the UEs served by each DU fill its slots in UE-id order (extra UEs get
    none): (E, N, S) flat UE index e * U + u of each slot, -1 empty."""
    rank = pf_layout(rows.group_counts.reshape(-1, 3).sum(-1), rows.du).pos  # (R,) within DU
    ok = rank < num_slots
    slot = np.full(num_envs * num_dus * num_slots, -1, dtype=np.intp)
    slot[rows.du[ok] * num_slots + rank[ok]] = rows.order[ok]
    return slot.reshape(num_envs, num_dus, num_slots)


def decode_action(a, action_mode: str, num_rbs: int):
    """Actions (E, N, act_dim) in [-1, 1] -> (rb_slice (E, N, K) int8 slice of each RB or -1 for
    none, overuse (E, N) RB claims above K, ue_scores (E, N, K, S) in rb_slice_ue mode else None).
    slice_share: L requested fractions (a + 1) / 2, scaled down when above K in total, as
    contiguous blocks; rb_slice(_ue): RB k goes to the claiming slice (score > 0) of largest
    score, the first slice winning ties."""
    E, N = a.shape[:2]
    K, L = num_rbs, 3
    if action_mode == "slice_share":
        req = np.rint((a + 1) * (K / 2)).astype(np.int64)  # (E, N, L) requested RBs
        total = req.sum(-1, keepdims=True)
        overuse = np.maximum(0, total[..., 0] - K)
        counts = np.where(total > K, req * K // np.maximum(total, 1), req)
        return counts_to_rb_slice(counts, K), overuse, None
    scores = a[..., : K * L].reshape(E, N, K, L)
    overuse = np.maximum(0, np.count_nonzero(scores > 0, axis=(2, 3)) - K)
    # the largest score per RB by a loop over the L slices (argmax over a short last axis is slow)
    best, rb_slice = scores[..., 0], np.zeros((E, N, K), dtype=np.int8)
    for l in range(1, L):
        better = scores[..., l] > best
        rb_slice[better] = l
        best = np.maximum(best, scores[..., l])
    rb_slice[best <= 0] = -1
    ue_scores = a[..., K * L:].reshape(E, N, K, -1) if action_mode == "rb_slice_ue" else None
    return rb_slice, overuse, ue_scores


def pf_priority(rate_rows, pf_avg_rows, demand_rows, pf_metric: str):
    """Per-row PF weight (R,) float32: rbar_u / T_u ("linear": the metric is then
    rbar_u |h_uk|^2 / T_u) or 1 / T_u ("log": log2(1 + SINR_uk) / T_u), 0 for a UE without data.
    T_u: the EWMA served throughput pf_avg_rows (at least 1 bit/s)."""
    pf_avg = np.maximum(pf_avg_rows, 1.0)
    prio = rate_rows / pf_avg if pf_metric == "linear" else 1.0 / pf_avg
    return (prio * (demand_rows > 0)).astype(np.float32)


def pf_first_pass(fading_rows, prio, sinr_rows, pf_metric: str, layout: PFLayout, rb_group,
                  rb_on):
    """One PF pass over every RB: RB k of flat DU m (rb_on (M, K)) goes to the row of largest PF
    metric among the rows of its group rb_group (M, K) with prio > 0. fading_rows (R, K), prio
    (R,), sinr_rows (R,). Returns (M*K,) row, or -1.

    Speed: the metric's float32 bit pattern (monotone for positive floats) carries the row's
    position in its group in its lowest bits, so one max over the padded (position, group, RB)
    array yields the maximum and its argmax together; the metric keeps 23 - b significant bits
    (b = bits of the largest group size), ties going to the later row."""
    K = fading_rows.shape[1]
    if pf_metric == "linear":
        m = fading_rows * prio[:, None]
    else:
        m = (np.log2(1 + sinr_rows[:, None] * fading_rows) * prio[:, None]).astype(np.float32)
    index, size, starts, pos = layout
    mask = (1 << max(size - 1, 1).bit_length()) - 1
    mi = m.view(np.int32)
    np.bitwise_and(mi, ~mask, out=mi)
    np.bitwise_or(mi, pos[:, None], out=mi)
    padded = np.zeros((len(starts) * size, K), dtype=np.int32)
    padded[index] = mi
    best = padded.reshape(size, len(starts), K).max(0)  # (groups, K)
    b = best.ravel().take(rb_group * K + np.arange(K))  # (M, K)
    ok = (b > mask) & rb_on  # a candidate with metric > 0
    return np.where(ok, starts.take(rb_group) + (b & mask), -1).ravel()


def pf_free_pass(free, free_group, fading_rows, prio, row_group, num_groups: int):
    """A later PF pass over the free RBs free (flat (e, n, k), sorted; group free_group) among the
    rows still short (prio > 0; row_group (R,) their group): every (free RB, candidate row of
    its group) pair is listed and the best PF metric per RB wins. Returns (flat RBs, their rows)
    in RB order, or None when no free RB has a candidate."""
    K = fading_rows.shape[1]
    cand = np.flatnonzero(prio > 0)  # rows, sorted by group
    if len(cand) == 0:
        return None
    counts = np.bincount(row_group[cand], minlength=num_groups)
    cstart = np.cumsum(counts) - counts
    n_i = counts[free_group]  # candidates per free RB
    total = int(n_i.sum())
    if total == 0:
        return None
    pair_rb = np.repeat(free, n_i)  # flat (e, n, k) of each pair
    first = np.cumsum(n_i) - n_i
    # pair j of a free RB takes the RB group's j-th candidate in cand
    pair_row = cand[np.repeat(cstart[free_group] - first, n_i) + np.arange(total)]
    val = fading_rows.ravel().take(pair_row * K + pair_rb % K) * prio[pair_row]
    has = n_i > 0
    seg_max = np.maximum.reduceat(val, first[has])
    is_max = np.flatnonzero(val == np.repeat(seg_max, n_i[has]))
    rb = pair_rb[is_max]
    first_max = np.ones(len(rb), dtype=bool)  # one winner per RB should metrics tie
    first_max[1:] = rb[1:] != rb[:-1]
    return rb[first_max], pair_row[is_max[first_max]]


def rb_capacity_est_bits(rbs, rows, fading_rows, sinr_rows, config: ORANConfig):
    """The scheduler's capacity estimate of flat RBs (e, n, k) for their rows, bits per step: the
    rate at the row's wideband SINR (every other DU active) times the RB's fading power."""
    K = config.num_rbs
    h = fading_rows.ravel().take(rows * K + rbs % K)
    return rate_bps(sinr_rows[rows] * h, config.rb_bandwidth_khz * 1e3,
                    config.max_spectral_efficiency, config.min_sinr_db) * (config.step_ms / 1e3)


def keep_needed(rows, est, need, kept):
    """Of the RBs offered to rows (in RB order, estimated capacity est bits), each row keeps its
    RBs in frequency order while the capacity it holds (kept[row] bits from earlier passes plus
    the RBs before in this offer) is below need[row]: the last kept RB may overshoot, no RB
    beyond it is held. Returns the keep mask."""
    # stable sort by row; a 16-bit key lets numpy use its radix sort
    o = np.argsort(rows.astype(np.int16) if len(need) < 2 ** 15 else rows, kind="stable")
    ws, es = rows[o], est[o]
    before = np.cumsum(es) - es
    first = np.ones(len(ws), dtype=bool)
    first[1:] = ws[1:] != ws[:-1]
    before -= np.maximum.accumulate(np.where(first, before, 0.0))
    keep = np.empty(len(ws), dtype=bool)
    keep[o] = before < need[ws] - kept[ws]
    return keep


def schedule_pf(rb_slice, demand_rows, pf_avg_rows, fading_rows, rows: Rows, config: ORANConfig,
                match_slice: bool = True, rounds: int | None = None):
    """The DU scheduler: proportional fair inside each slice (over the whole band when not
    match_slice), demand-aware and work-conserving (docs/model.md#the-mdp-of-each-du, [ours]).

    rb_slice (E, N, K) int8 slice of each RB (-1: none); demand_rows, pf_avg_rows (R,) each
    row's backlog + arrivals (bits) and PF throughput average; fading_rows (R, K). Returns
    (E, N, K) the row that gets each RB, -1 idle.

    A UE's need is ``sched_margin`` x its demand at the estimated rate (`rb_capacity_est_bits`).
    The first PF pass offers every RB of a slice to the slice's UEs with data; each UE keeps its
    RBs only up to its need (`keep_needed`). Each later pass offers the RBs still free to the
    UEs still short, who again keep only what they need, until no free RB has a short UE of its
    group (or ``rounds`` passes, default ``sched_rounds``; 0 = no cap). A pass gives every free
    RB that has a short UE of its group to one of them, so only the RBs released by the last
    pass can still find a taker; a pass that releases RBs leaves at least one more UE covered,
    so this ends after at most one pass per UE (on `paper` 3-4 passes per step, the later ones
    over the few RBs just released). RBs nobody needs stay idle and radiate nothing."""
    E, N, K = rb_slice.shape
    L = 3
    need = config.sched_margin * demand_rows
    prio = pf_priority(rows.rate, pf_avg_rows, demand_rows, config.pf_metric)
    slices = rb_slice.reshape(E * N, K)
    if match_slice:
        rb_group = np.arange(E * N)[:, None] * L + np.maximum(slices, 0)
        row_group, group_counts = rows.group, rows.group_counts
    else:
        rb_group = np.broadcast_to(np.arange(E * N)[:, None], (E * N, K))
        row_group, group_counts = rows.du, rows.group_counts.reshape(E * N, L).sum(-1)
    layout, num_groups = pf_layout(group_counts, row_group), len(group_counts)
    win = pf_first_pass(fading_rows, prio, rows.sinr, config.pf_metric, layout, rb_group,
                        slices >= 0)
    rbs = np.flatnonzero(win >= 0)
    cand = win[rbs]
    kept = np.zeros(len(need))
    max_rounds = rounds if rounds is not None else config.sched_rounds
    passes = 1
    while True:
        est = rb_capacity_est_bits(rbs, cand, fading_rows, rows.sinr, config)
        keep = keep_needed(cand, est, need, kept)
        got = cand[keep]
        win[rbs[keep]] = got
        kept += np.bincount(got, est[keep], minlength=len(need))
        free = rbs[~keep]
        win[free] = -1
        if len(free) == 0 or passes == max_rounds:
            break
        prio[got[kept[got] >= need[got]]] = 0  # the UEs this pass covered leave the race
        free_group = rb_group.ravel().take(free) if match_slice else free // K
        offer = pf_free_pass(free, free_group, fading_rows, prio, row_group, num_groups)
        if offer is None:
            break
        rbs, cand = offer
        passes += 1
    return win.reshape(rb_slice.shape)


def ue_choice_rows(rb_slice, ue_scores, has_data, slot_ue, slice_of, row_of_ue):
    """rb_slice_ue mode: RB k goes to the UE slot of its slice with the largest positive score
    ue_scores (E, N, K, S); none positive, or that UE has no data (has_data (E, U)): idle.
    slot_ue (E, N, S), slice_of (E, U), row_of_ue (R,). Returns (E, N, K) row, or -1."""
    slot_slice = np.where(slot_ue >= 0, slice_of.ravel()[np.maximum(slot_ue, 0)], -1)
    ok = (slot_slice[:, :, None, :] == rb_slice[..., None]) & (rb_slice[..., None] >= 0)
    masked = np.where(ok & (ue_scores > 0), ue_scores, 0.0)
    j = masked.argmax(-1)  # (E, N, K)
    chosen = np.take_along_axis(slot_ue[:, :, None, :], j[..., None], -1)[..., 0]
    # an RB given to a UE with nothing to send carries no data (and no interference)
    chosen = np.where((masked.max(-1) > 0) & has_data.ravel()[np.maximum(chosen, 0)], chosen, -1)
    return np.where(chosen >= 0, row_of_ue[np.maximum(chosen, 0)], -1)


def rb_fraction(rb_slice, num_slices: int = 3):
    """Fraction of each DU's RBs given to each slice, (E, N, L), from rb_slice (E, N, K)."""
    E, N, K = rb_slice.shape
    L = num_slices
    per_slice = np.bincount((np.arange(E * N)[:, None] * (L + 1) + rb_slice.reshape(E * N, K)
                             + 1).ravel(), minlength=E * N * (L + 1))  # slice -1 (idle) first
    return per_slice.reshape(E, N, L + 1)[..., 1:] / K


# ---------------------------------------------------------------------------------------------
# Rates, served bits and QoS of a step (docs/model.md#radio-model, docs/model.md#qos)
# ---------------------------------------------------------------------------------------------
def interferer_rbs(num_envs: int, others, num_rbs: int):
    """Flat (env, DU, RB) index (E, N, K, N-1) of RB k of each other DU (others (N, N-1)), for RB
    k of DU n: the RBs whose transmissions interfere with it."""
    N, K = len(others), num_rbs
    return (np.arange(num_envs)[:, None, None, None] * N + others[:, None, :]) * K \
        + np.arange(K)[:, None]


def rb_sinr(win, fading_rows, h_int, rows: Rows, interferers, p_rb_mw: float, noise_mw: float):
    """SINR (E, N, K) of each RB at the row that got it (win (E, N, K), -1: idle, SINR 0): the
    serving link's P_rb g |h|^2 over noise plus the P_rb g' |h'|^2 of each other DU that radiates
    on the same RB. fading_rows (R, K) serving links; h_int (E, N, K, N-1) interfering links'
    fading power, in `others` order; interferers (E, N, K, N-1) flat index of those RBs."""
    K = win.shape[-1]
    used = win >= 0
    wr = np.maximum(win, 0)
    h_serv = fading_rows.ravel().take(wr * K + np.arange(K))  # (E, N, K)
    signal = p_rb_mw * rows.gain_serving.take(wr) * h_serv
    # (E, N, K, N-1) long-term gain of the RB's UE from each other DU (an idle RB reads row 0,
    # its SINR is zeroed below); flat indices with take: faster than multi-array indexing
    received = rows.gain_others.take(wr, axis=0) * h_int
    received *= used.ravel().take(interferers)
    # the sum over the N-1 interferers as a matmul (faster than a reduction over a short axis)
    interference = p_rb_mw * (received @ np.ones(h_int.shape[-1], dtype=np.float32))
    return sinr(signal, interference, noise_mw) * used


def ue_capacity_bits(win, rate, dt: float, row_of_ue):
    """Bits each UE can be served in the step, (E, U): the rates rate (E, N, K) of the RBs it got
    (win (E, N, K) rows, -1 idle, rate 0) times dt."""
    cap_rows = np.bincount(np.maximum(win, 0).ravel(), weights=(rate * dt).ravel(),
                           minlength=len(row_of_ue))  # idle RBs add rate 0 to row 0
    return cap_rows[row_of_ue].reshape(win.shape[0], -1)


def ue_satisfied(slice_of, demand, served, left, capacity, active, ue_packet_bits,
                 config: ORANConfig, dt: float):
    """Per-UE KPI of the step (docs/model.md#qos), all (E, U): (satisfied, counted, URLLC delay
    estimate in ms). eMBB: served >= min(demand, target x dt); URLLC: delay <= budget, or
    nothing to send; mMTC: counted when active, satisfied when its backlog is empty."""
    embb_ok = served >= np.minimum(demand, config.embb_target_mbps * 1e6 * dt) * (1 - 1e-9)
    delay = urllc_delay_ms(left, ue_packet_bits, capacity / dt, config.urllc_processing_ms)
    urllc_ok = (delay <= config.urllc_delay_budget_ms) | ~(demand > 0)
    mmtc_ok = left <= 0
    satisfied = np.where(slice_of == EMBB, embb_ok, np.where(slice_of == URLLC, urllc_ok, mmtc_ok))
    return satisfied, (slice_of != MMTC) | active, delay


def step_metrics(q, served, left, delay, has_data, active, slice_of, frac, used, overuse, dropped,
                 config: ORANConfig, dt: float):
    """info["metrics"]: per env (E,), each averaged over the DUs. q (E, N, L); served, left,
    delay, has_data, active, slice_of, dropped (E, U); frac (E, N, L) RB fraction per slice; used
    (E, N, K) RBs that carry data; overuse (E, N). rb_share_<slice> is the fraction of the RBs
    the allocation gives the slice (whether or not they carry data): the shares and the
    fraction given to no slice sum to 1, and rb_utilisation <= their sum. rb_idle_unmet is the
    fraction of the RBs that carry no data at a DU where some slice's QoS is below 1: RBs a
    policy leaves idle while it could still serve someone."""
    E, N, K = used.shape
    L = 3
    # per-(env, slice) sums as one bincount (fewer calls than a slice loop)
    thr_slice = np.bincount((np.arange(E)[:, None] * L + slice_of).ravel(), served.ravel(),
                            E * L).reshape(E, L) / (dt * 1e6 * N)
    is_urllc = (slice_of == URLLC) & has_data
    mmtc_act = active.sum(-1)
    q_env = q.mean(1)  # (E, L)
    share = frac.sum(1) / N  # (E, L)
    return {
        "qos_embb": q_env[:, EMBB], "qos_mmtc": q_env[:, MMTC],
        "qos_urllc": q_env[:, URLLC], "qos_mean": q_env.mean(-1),
        "throughput_embb_mbps": thr_slice[:, EMBB], "throughput_mmtc_mbps": thr_slice[:, MMTC],
        "throughput_urllc_mbps": thr_slice[:, URLLC],
        "urllc_delay_ms": (np.minimum(delay, config.delay_report_cap_ms) * is_urllc).sum(-1)
        / np.maximum(is_urllc.sum(-1), 1),
        "mmtc_availability": np.where(mmtc_act > 0, (active & (left <= 0)).sum(-1)
                                      / np.maximum(mmtc_act, 1), 1.0),
        "rb_utilisation": used.mean((1, 2)),
        "rb_idle_unmet": ((1 - used.mean(-1)) * (q.min(-1) < 1)).mean(-1),
        "rb_share_embb": share[:, EMBB], "rb_share_mmtc": share[:, MMTC],
        "rb_share_urllc": share[:, URLLC],
        "rb_overuse": overuse.mean(-1) / K,
        "drops_mbit": dropped.sum(-1) / (1e6 * N),
    }


def pf_average(pf_avg, served_bits, dt: float, window_steps: float):
    """The PF throughput average T_u (E, U), bit/s: an EWMA of the served rate with time constant
    window_steps steps."""
    beta = 1.0 / window_steps
    return (1 - beta) * pf_avg + beta * served_bits / dt


# ---------------------------------------------------------------------------------------------
# The vectorised environment: state and the order of a step
# ---------------------------------------------------------------------------------------------
def plain_state(value):
    """A state value as plain Python (JSON, and `torch.load(..., weights_only=True)`): arrays as
    nested lists, a generator as its bit generator's state, a NamedTuple of arrays as a dict."""
    if isinstance(value, np.random.Generator):
        return value.bit_generator.state
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return {name: plain_state(v) for name, v in value._asdict().items()}
    return value.tolist() if isinstance(value, (np.ndarray, np.generic)) else value


def restored_state(current, value, key: str):
    """The inverse of `plain_state`, shaped after `current` (the env's own value of `key`): an
    array keeps its dtype and shape, a number or flag its type. ValueError naming `key` when
    `value` does not fit (another scenario or number of copies, a foreign file)."""
    def mismatch(got):
        return ValueError(f"state[{key!r}]: expected {expected}, got {got}")

    if isinstance(current, np.random.Generator):
        expected = f"the state of a {type(current.bit_generator).__name__} generator"
        generator = np.random.Generator(type(current.bit_generator)())
        try:
            generator.bit_generator.state = value
        except (TypeError, ValueError, KeyError) as e:
            raise mismatch(repr(e)[:80]) from None
        return generator
    if isinstance(current, tuple) and hasattr(current, "_asdict"):
        expected = f"a dict of {', '.join(current._fields)}"
        if not isinstance(value, dict) or sorted(value) != sorted(current._fields):
            raise mismatch(sorted(value) if isinstance(value, dict) else type(value).__name__)
        return type(current)(**{name: restored_state(getattr(current, name), value[name],
                                                     f"{key}.{name}") for name in current._fields})
    if isinstance(current, np.ndarray):
        expected = f"a {current.dtype} array of shape {current.shape}"
        try:
            array = np.array(value, dtype=current.dtype)
        except (TypeError, ValueError, OverflowError) as e:
            raise mismatch(repr(e)[:80]) from None
        if array.shape != current.shape:
            raise mismatch(f"shape {array.shape}")
        return array
    expected = type(current).__name__
    if type(value) is not type(current):
        raise mismatch(type(value).__name__)
    return value


class ORANEnv:
    """E independent copies of the O-RAN slicing system, stepped together (see module docstring)."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, config: ORANConfig | None = None, num_envs: int = 1, seed: int | None = None,
                 render_mode: str | None = None):
        if config is None:
            config = ORANConfig()
        if not isinstance(config, ORANConfig):
            raise ValueError(f"config: expected an ORANConfig, got {type(config).__name__}")
        if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs: expected an int >= 1, got {num_envs!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode: expected None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        c = self.config = config
        self.num_envs, self.n_agents = int(num_envs), c.num_dus
        self.episode_length = c.episode_length
        E, N, U, K, L = self.num_envs, c.num_dus, c.num_ues, c.num_rbs, 3
        self._shape = (E, N, U, K, L)
        self.act_dim = {"rb_slice": K * L, "slice_share": L,
                        "rb_slice_ue": K * L + K * c.num_ue_slots}[c.action_mode]
        self.obs_dim = {"paper": 3 * L, "rich": 6 * L,
                        "full_action": 2 * L + self.act_dim}[c.obs_mode]
        self.dt = c.step_ms / 1e3
        self.sites = hex_sites(N, c.inter_site_distance_m)
        radius = c.inter_site_distance_m / math.sqrt(3)
        self.area_lo = self.sites.min(0) - radius
        self.area_hi = self.sites.max(0) + radius
        # the area bounds broadcast to the positions' shape (E, U, 2): element-wise work on
        # same-shaped arrays runs in one long loop, a (2,) operand makes numpy loop over pairs
        self._lo_eu = np.broadcast_to(self.area_lo, (E, U, 2)).copy()
        self._hi_eu = np.broadcast_to(self.area_hi, (E, U, 2)).copy()
        self.p_rb_mw = 10 ** (c.tx_power_dbm / 10) / K
        self.bandwidth = c.rb_bandwidth_khz * 1e3
        self.noise_mw = noise_mw_per_rb(c.noise_psd_dbm_hz, self.bandwidth, c.noise_figure_db)
        self.others = np.array([[m for m in range(N) if m != n] for n in range(N)], dtype=np.intp)
        self._interferers = interferer_rbs(E, self.others, K)  # (E, N, K, N-1)
        self.packet_bits = np.array([8 * c.embb_packet_bytes, 8 * c.mmtc_packet_bytes,
                                     8 * c.urllc_packet_bytes], dtype=np.float64)
        self.buffer_bits = np.array(c.buffer_kbit) * 1e3
        self._turns = np.radians(np.asarray(c.heading_changes_deg))
        # environment steps over all copies (num_envs per vectorised step) since construction;
        # the non-stationary shift happens at the first episode start at or after
        # shift_after_steps of them. A training script sets it to its global step on resume.
        self.env_steps = 0
        self.home = None  # home DU of each UE (E, U), with per-DU profiles only
        self.home_radius = c.home_radius_m or radius
        weights = np.asarray(c.du_ue_weights or [1.0] * N)
        # share of the UEs homed at each DU; None: no home DUs
        self._du_weights = weights / weights.sum() if c.du_ue_weights or c.du_slice_mix else None
        self.shifted = False
        self._seed(seed)
        self.reset()

    # -- seeding and episodes -----------------------------------------------------------------
    def _seed(self, seed):
        ss = np.random.SeedSequence(seed)
        env_ss, policy_ss = ss.spawn(2)
        self.rng = np.random.default_rng(env_ss)
        self.policy_rng = np.random.default_rng(policy_ss)  # for stochastic heuristics only

    def reset(self, seed: int | None = None):
        if seed is not None:
            self._seed(seed)
        self._new_episode()
        return self._observe(), {}

    def _new_episode(self):
        """Traffic profile, slices, UE drop and shadowing of a new episode; empty queues."""
        c, rng = self.config, self.rng
        E, N, U, K, L = self._shape
        if c.shift_after_steps and self.env_steps >= c.shift_after_steps:
            self.shifted = True
        slice_load, mix = traffic_profile(c, self.shifted)
        self.slice_of, self.home = slice_membership(rng, mix, self._du_weights, E, U)
        bits, packets, p_mmtc = mean_arrivals(c, slice_load, self.packet_bits, self.dt)
        self.mean_arrival_bits = bits[self.slice_of]  # (E, U)
        self._packets = packets[self.slice_of]  # Poisson packets per step (E, U)
        self._p_active = np.where(self.slice_of == MMTC, p_mmtc, 0.0)
        self._ue_packet_bits = self.packet_bits[self.slice_of]
        self._ue_buffer = self.buffer_bits[self.slice_of]
        self.pos = drop_ues(rng, (E, U), self.sites, self.area_lo, self.area_hi,
                            c.min_ue_distance_m, self.home, self.home_radius)
        self.heading = rng.uniform(-np.pi, np.pi, size=(E, U))
        self.speed = rng.uniform(*c.speed_mps, size=(E, U))
        self.shadow_db = rng.normal(0.0, c.shadowing_db, size=(E, U, N)).astype(np.float32)
        self.serving = np.zeros((E, U), dtype=np.intp)
        self._associate()
        self.backlog = np.zeros((E, U))
        self.pf_avg = self.rate_geom.copy()  # T_u starts at the UE's mean per-RB rate
        self.t = 0
        self.ep_return = np.zeros((E, N))
        self.last_q = np.ones((E, N, L))
        self.last_frac = np.zeros((E, N, L))
        self.last_action = np.zeros((E, N, self.act_dim), dtype=np.float32)
        self.last_arrivals = np.zeros((E, U))
        self.last_rb_slice = np.full((E, N, K), -1, dtype=np.int8)  # for render()
        self.last_rb_ue = np.full((E, N, K), -1)
        self.last_reward = np.zeros((E, N))
        self._draw_next()

    def _associate(self):
        """Long-term gains after a move; serving DU = largest gain; the scheduler's rows. Returns
        handovers per env (E,)."""
        c = self.config
        E, N, U, K, L = self._shape
        self.gain = link_gains(self.pos, self.sites, self.shadow_db, c)  # (E, U, N) float32
        serving = self.gain.argmax(-1)
        handovers = (serving != self.serving).sum(-1)
        self.serving = serving
        g_serv, self.sinr_geom = wideband_sinr(self.gain, serving, self.noise_mw, self.p_rb_mw)
        self.rate_geom = mean_rb_rate_bps(self.sinr_geom, self.bandwidth, c.max_spectral_efficiency)
        du = (np.arange(E)[:, None] * N + serving).ravel()  # (E*U,) flat (env, DU)
        self._ue_group = du * L + self.slice_of.ravel()  # (E*U,) flat (env, DU, slice)
        group_counts = np.bincount(self._ue_group, minlength=E * N * L)
        self.ue_count = group_counts.reshape(E, N, L)
        self._rows = scheduler_rows(du, self._ue_group, group_counts, self.gain, g_serv,
                                    self.sinr_geom, self.rate_geom, self.others)
        if c.action_mode == "rb_slice_ue":
            self.slot_ue = ue_slots(self._rows, c.num_ue_slots, E, N)
        return handovers

    def _draw_next(self):
        """What the coming step is made of, known to the scheduler: each UE's arrivals and its
        serving-link fading on every RB (stored per row)."""
        E, N, U, K, L = self._shape
        self.active, self.arrivals = draw_arrivals(self.rng, self._p_active, self._packets,
                                                   self._ue_packet_bits)
        self._fading_rows = draw_serving_fading(self.rng, E * U, K, self.config.fading_block_rbs)

    @property
    def fading(self):
        """Serving-link fading power |h_uk|^2 of the coming step, (E, U, K) in UE order."""
        E, N, U, K, L = self._shape
        return self._fading_rows[self._rows.row_of_ue].reshape(E, U, K)

    @property
    def action_prior(self):
        """The equal split as a prior action per DU, (N, act_dim) float32, for the action modes
        whose action starts with K x L slice scores (rb_slice, rb_slice_ue): the static equal
        split's scores on those dims, NaN on the others (UE scores); None for slice_share."""
        E, N, U, K, L = self._shape
        if self.config.action_mode == "slice_share":
            return None
        prior = np.full((N, self.act_dim), np.nan, dtype=np.float32)
        rb_slice = counts_to_rb_slice(_round_to_total(np.ones((N, L)), K), K)
        prior[:, : K * L] = np.where(rb_slice[..., None] == np.arange(L), 1.0, -1.0).reshape(N, -1)
        return prior

    # -- state, for an exact resume --------------------------------------------------------------
    # what the future of the copies depends on beyond the config and num_envs: the counters, the
    # generators, the episode's draws and everything derived from them (slot_ue: rb_slice_ue only)
    STATE = ("env_steps", "shifted", "t", "rng", "policy_rng", "slice_of", "home",
             "mean_arrival_bits", "_packets", "_p_active", "_ue_packet_bits", "_ue_buffer", "pos",
             "heading", "speed", "shadow_db", "serving", "gain", "sinr_geom", "rate_geom",
             "_ue_group", "ue_count", "_rows", "slot_ue", "backlog", "pf_avg", "ep_return",
             "last_q", "last_frac", "last_action", "last_arrivals", "last_rb_slice", "last_rb_ue",
             "last_reward", "active", "arrivals", "_fading_rows", "last_obs")

    def state_dict(self) -> dict:
        """Everything the copies' future depends on (not the config) as plain Python values:
        JSON-able, and read by `torch.load(..., weights_only=True)`."""
        return {key: plain_state(getattr(self, key)) for key in self.STATE if hasattr(self, key)}

    def load_state_dict(self, state: dict):
        """Continue from `state_dict()` of an env of the same config and num_envs, exactly: each
        value takes the dtype and shape of this env's own. ValueError naming the key when a key is
        missing or unknown or a value does not fit; then nothing is changed."""
        keys = [key for key in self.STATE if hasattr(self, key)]
        if not isinstance(state, dict):
            raise ValueError(f"state: expected a dict, got {type(state).__name__}")
        if wrong := [f"{key!r} ({'missing' if key in keys else 'unknown'})"
                     for key in sorted(set(keys) ^ set(state), key=str)]:
            raise ValueError(f"state: keys {', '.join(wrong)} (another environment's state?)")
        values = {key: restored_state(getattr(self, key), state[key], key) for key in keys}
        for key, value in values.items():
            setattr(self, key, value)

    # -- observation --------------------------------------------------------------------------
    def _observe(self):
        c = self.config
        E, N, U, K, L = self._shape
        expected = np.maximum(global_slice_shares(c, self.shifted) * U / N, 1e-9)
        parts = [self.last_q, self.ue_count / expected]
        parts.append(self.last_action if c.obs_mode == "full_action" else self.last_frac)
        if c.obs_mode == "rich":
            def per_slice(x):  # sum over the UEs of each (env, DU, slice), (E, N, L)
                return np.bincount(self._ue_group, x.ravel(), E * N * L).reshape(E, N, L)

            sinr_db = 10 * np.log10(np.maximum(self.sinr_geom, 1e-6))
            scale = np.maximum(per_slice(self.mean_arrival_bits), 1.0)
            parts += [np.log1p(per_slice(self.backlog) / scale),
                      per_slice(self.last_arrivals) / scale,
                      per_slice(sinr_db) / np.maximum(self.ue_count, 1) / 20.0]
        # kept for the observation-only rules
        self.last_obs = np.concatenate(parts, axis=-1).astype(np.float32)
        return self.last_obs

    # -- actions and the scheduler ------------------------------------------------------------
    def _check_actions(self, actions):
        a = np.asarray(actions)
        shape = (self.num_envs, self.n_agents, self.act_dim)
        if not np.issubdtype(a.dtype, np.floating):
            raise ValueError(f"actions: expected a float array, got dtype {a.dtype}")
        if a.shape != shape:
            raise ValueError(f"actions: expected shape (num_envs, n_agents, act_dim) = {shape}, "
                             f"got {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError("actions: expected finite values, got NaN or inf")
        if a.min() < -1.0 or a.max() > 1.0:
            raise ValueError(f"actions: expected values in [-1, 1], got range "
                             f"[{a.min():.4g}, {a.max():.4g}]")
        return a

    def _schedule_rows(self, rb_slice, demand, match_slice=True, rounds=None):
        """`schedule_pf` on this step's rows: (E, N, K) row of each RB, -1 idle."""
        order = self._rows.order
        return schedule_pf(rb_slice, demand.ravel()[order], self.pf_avg.ravel()[order],
                           self._fading_rows, self._rows, self.config, match_slice, rounds)

    def schedule(self, rb_slice, demand, match_slice: bool = True, rounds: int | None = None):
        """The DU scheduler (public, for heuristics): RB -> UE for an RB -> slice allocation
        rb_slice (E, N, K) (-1 idle) and per-UE demand (E, U) bits. Returns (E, N, K) flat UE
        index e * U + u, or -1 for an RB left idle. match_slice=False: PF over the whole band;
        rounds: PF passes (default ``sched_rounds``)."""
        win = self._schedule_rows(np.asarray(rb_slice, dtype=np.int8), demand, match_slice, rounds)
        return np.where(win >= 0, self._rows.order[np.maximum(win, 0)], -1)

    # -- step ---------------------------------------------------------------------------------
    def step(self, actions):
        """One decision interval of every copy, in the order of docs/model.md."""
        c = self.config
        E, N, U, K, L = self._shape
        a = self._check_actions(actions)
        rows, dt = self._rows, self.dt

        # traffic (docs/model.md#time-traffic-and-queues): the step's arrivals, drawn at the end
        # of the previous step so that the scheduler knows them, join the backlog
        arrivals, active = self.arrivals, self.active
        demand = self.backlog + arrivals  # (E, U) bits that could be served
        has_data = demand > 0

        # association (docs/model.md#system): the serving DUs and the scheduler's rows are those
        # of the last move. Fading (docs/model.md#radio-model): the serving links' was drawn
        # with the arrivals, the interfering links' is drawn now
        h_int = self.rng.standard_exponential((E, N, K, N - 1), dtype=np.float32)

        # allocation (docs/model.md#the-mdp-of-each-du): the action gives each RB a slice or none
        rb_slice, overuse, ue_scores = decode_action(a, c.action_mode, K)

        # scheduling: each RB's UE (row): PF inside the slice, or the policy's own choice
        if ue_scores is None:
            win = self._schedule_rows(rb_slice, demand)
        else:
            win = ue_choice_rows(rb_slice, ue_scores, has_data, self.slot_ue, self.slice_of,
                                 rows.row_of_ue)
        used = win >= 0  # (E, N, K) RBs that carry data

        # rates (docs/model.md#radio-model): SINR of each used RB at its UE, capped Shannon rate
        sinr_rb = rb_sinr(win, self._fading_rows, h_int, rows, self._interferers, self.p_rb_mw,
                          self.noise_mw)  # (E, N, K), 0 when idle
        rate = rate_bps(sinr_rb, self.bandwidth, c.max_spectral_efficiency, c.min_sinr_db) * used
        capacity = ue_capacity_bits(win, rate, dt, rows.row_of_ue)  # (E, U)

        # queues: served = min(backlog + arrivals, capacity); buffer overflow is dropped
        served, left, dropped = serve_queues(demand, capacity, self._ue_buffer)
        self.backlog = left - dropped

        # QoS per slice and DU (docs/model.md#qos), reward per DU
        satisfied, counted, delay = ue_satisfied(self.slice_of, demand, served, left, capacity,
                                                 active, self._ue_packet_bits, c, dt)
        q = qos(satisfied.ravel(), counted.ravel(), self._ue_group, E * N * L).reshape(E, N, L)
        r = reward(q, overuse, K, c.reward_alpha, c.reward_zeta, c.qos_min)

        # bookkeeping: metrics, PF average, what the next observation and render() read
        frac = rb_fraction(rb_slice, L)
        metrics = step_metrics(q, served, left, delay, has_data, active, self.slice_of, frac, used,
                               overuse, dropped, c, dt)
        self.pf_avg = pf_average(self.pf_avg, served, dt, c.pf_window_steps)
        rb_ue = np.where(used, rows.order.take(np.maximum(win, 0)) % U, -1)  # before handover
        self.last_q, self.last_frac, self.last_action = q, frac, a.astype(np.float32)
        self.last_arrivals = arrivals
        self.last_rb_slice, self.last_rb_ue, self.last_reward = rb_slice, rb_ue, r

        # mobility and handover, then the next step's traffic and serving-link fading
        home_sites = None if self.home is None else self.sites[self.home]
        self.pos, self.heading = move_ues(self.rng, self.pos, self.heading, self.speed, dt,
                                          self._turns, self._lo_eu, self._hi_eu, home_sites,
                                          self.home_radius)
        metrics["handovers"] = self._associate() / N
        self._draw_next()

        self.t += 1
        self.env_steps += E
        self.ep_return += r
        info = {"metrics": metrics, "ue_throughput_mbps": (served / (dt * 1e6)).astype(np.float32),
                "qos": q.astype(np.float32), "overuse": overuse, "rb_slice": rb_slice,
                "sinr": sinr_rb, "rb_ue": rb_ue, "ue_arrival_bits": arrivals,
                "ue_served_bits": served, "ue_dropped_bits": dropped}
        terminated = np.zeros(E, dtype=bool)
        truncated = np.full(E, self.t >= self.episode_length)
        obs = self._observe()
        if self.t >= self.episode_length:
            info["final_obs"] = obs
            info["episode"] = {"return": self.ep_return.astype(np.float32),
                               "length": np.full(E, self.t, dtype=np.int64)}
            self._new_episode()
            obs = self._observe()
        return obs, r.astype(np.float32), terminated, truncated, info

    # -- pictures -------------------------------------------------------------------------------
    def render(self):
        """Gymnasium convention: with render_mode="rgb_array", an (H, W, 3) uint8 picture of
        environment copy 0 (matplotlib, Agg; imported here only): left, the sites and their cells,
        the UEs coloured by slice with a line to their serving DU (a UE that got no RB in the last
        step is drawn hollow); right, each DU's RB split of the last step per slice (solid: RBs
        that carried data, pale: RBs of the slice left idle, grey: RBs given to no slice). Without
        a render_mode it warns and returns None, as Gymnasium environments do."""
        if self.render_mode is None:
            import warnings

            warnings.warn("ORANEnv.render: no render_mode was given; use render_mode='rgb_array'")
            return None
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.patches import RegularPolygon

        E, N, U, K, L = self._shape
        colours = ("#1f77b4", "#2ca02c", "#d62728")  # eMBB, mMTC, URLLC
        fig = Figure(figsize=(10, 5), dpi=100)
        FigureCanvasAgg(fig)
        ax, bars = fig.add_axes((0.01, 0.02, 0.55, 0.84)), fig.add_axes((0.66, 0.12, 0.32, 0.72))
        radius = self.config.inter_site_distance_m / math.sqrt(3)
        for n, (x, y) in enumerate(self.sites):
            ax.add_patch(RegularPolygon((x, y), 6, radius=radius, orientation=math.pi / 6,
                                        fill=False, lw=0.6, ec="0.6"))
            ax.annotate(f"du_{n}", (x, y), xytext=(6, 6), textcoords="offset points", fontsize=9)
        pos, serving, sl = self.pos[0], self.serving[0], self.slice_of[0]
        got_rb = np.zeros(U, dtype=bool)
        got_rb[self.last_rb_ue[0][self.last_rb_ue[0] >= 0]] = True
        for l in range(L):
            ue = np.flatnonzero(sl == l)
            for u in ue:
                (x0, y0), (x1, y1) = pos[u], self.sites[serving[u]]
                ax.plot((x0, x1), (y0, y1), color=colours[l], lw=0.4, alpha=0.35)
            ax.scatter(pos[ue, 0], pos[ue, 1], s=14, edgecolors=colours[l], linewidths=1.0,
                       c=[colours[l] if g else "none" for g in got_rb[ue]], zorder=3)
            ax.scatter([], [], s=14, c=colours[l], label=SLICES[l])
        ax.scatter(self.sites[:, 0], self.sites[:, 1], marker="^", s=90, c="k", zorder=4)
        ax.set_xlim(self.area_lo[0], self.area_hi[0])
        ax.set_ylim(self.area_lo[1], self.area_hi[1])
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.scatter([], [], s=14, edgecolors="k", c="none", label="no RB")
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), fontsize=8, ncol=4, frameon=False)
        rb_slice, used = self.last_rb_slice[0], self.last_rb_ue[0] >= 0
        left = np.zeros(N)
        for l in range(L):
            for count, alpha, label in (((rb_slice == l) & used, 1.0, SLICES[l]),
                                        ((rb_slice == l) & ~used, 0.3, None)):
                width = count.sum(-1)
                bars.barh(np.arange(N), width, left=left, color=colours[l], alpha=alpha,
                          label=label)
                left += width
        bars.barh(np.arange(N), K - left, left=left, color="0.85", label="no slice")
        bars.set_yticks(np.arange(N), [f"du_{n}\n" + " ".join(f"{q:.2f}" for q in self.last_q[0, n])
                                       for n in range(N)], fontsize=7)
        bars.set_ylabel("DU, Q eMBB mMTC URLLC", fontsize=8)
        bars.invert_yaxis()
        bars.set_xlim(0, K)
        bars.set_xlabel("RBs of the last step (pale: idle)", fontsize=8)
        bars.legend(loc="upper center", bbox_to_anchor=(0.5, 1.16), ncol=4, fontsize=7,
                    frameon=False)
        fig.suptitle(f"{self.config.num_dus} DUs, {U} UEs, step {self.t}/{self.episode_length}: "
                     f"last reward per DU {self.last_reward[0].mean():.2f}", fontsize=10)
        fig.canvas.draw()
        return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


# ---------------------------------------------------------------------------------------------
# Heuristic baselines (docs/model.md#heuristics): policy(env) -> actions (E, N, act_dim) in the
# env's action mode
# ---------------------------------------------------------------------------------------------
def _round_to_total(x, total: int):
    """Non-negative reals (..., L) -> ints with the given row sum (largest remainder)."""
    x = np.maximum(x, 0)
    s = x.sum(-1, keepdims=True)
    x = np.where(s > 0, x * total / np.where(s > 0, s, 1), total / x.shape[-1])
    base = np.floor(x).astype(np.int64)
    rem = total - base.sum(-1, keepdims=True)
    rank = np.argsort(np.argsort(-(x - base), axis=-1, kind="stable"), axis=-1)
    return base + (rank < rem)


def _rbs_needed(env):
    """Per-UE RBs needed this step: (backlog + arrivals) / (mean per-RB rate x dt), and at
    least one RB for a URLLC or mMTC UE with something to send. Summed per (env, DU, slice)."""
    E, N, U, K, L = env._shape
    bits = env.backlog + env.arrivals
    need = bits / np.maximum(env.rate_geom * env.dt, 1.0)
    small = (env.slice_of != EMBB) & (bits > 0)
    need = np.where(small, np.maximum(need, 1.0), need)
    return np.bincount(env._ue_group, need.ravel(), E * N * L).reshape(E, N, L)


def encode_allocation(env, rb_slice, winners=None):
    """Express an RB -> slice allocation (E, N, K) (and optionally the RB -> UE winners) as an
    action of the env's mode. rb_slice: (+1 on the RB's slice, -1 elsewhere); slice_share: the
    per-slice RB fractions; rb_slice_ue: the slice bits plus +1 on the winner's slot (PF winners
    of the slice when none are given)."""
    E, N, U, K, L = env._shape
    mode = env.config.action_mode
    if mode == "slice_share":
        counts = np.stack([(rb_slice == l).sum(-1) for l in range(L)], -1)
        return (2.0 * counts / K - 1.0).astype(np.float32)
    slice_bits = np.where(rb_slice[..., None] == np.arange(L), 1.0, -1.0).reshape(E, N, K * L)
    if mode == "rb_slice":
        return slice_bits.astype(np.float32)
    has_slot = np.zeros(E * U, dtype=bool)
    has_slot[env.slot_ue[env.slot_ue >= 0]] = True
    if winners is None:
        winners = env.schedule(rb_slice, (env.backlog + env.arrivals) * has_slot.reshape(E, U))
    ue_bits = (env.slot_ue[:, :, None, :] == winners[..., None]) & (winners[..., None] >= 0)
    ue_bits = np.where(ue_bits, 1.0, -1.0).reshape(E, N, -1)
    return np.concatenate([slice_bits, ue_bits], -1).astype(np.float32)


def static_equal_split(env):
    """Static equal split of the K RBs among the slices, PF inside each slice."""
    E, N, U, K, L = env._shape
    counts = _round_to_total(np.ones((E, N, L)), K)
    return encode_allocation(env, counts_to_rb_slice(counts, K))


def demand_proportional(env):
    """Split proportional to each slice's RBs needed (backlog + mean arrivals), PF inside."""
    E, N, U, K, L = env._shape
    counts = _round_to_total(_rbs_needed(env), K)
    return encode_allocation(env, counts_to_rb_slice(counts, K))


def urllc_first(env, margin: float = 2.0):
    """Strict priority URLLC > mMTC > eMBB: URLLC and mMTC get `margin` x their RBs needed (a
    margin for the fading of the RBs they get), eMBB every RB left."""
    E, N, U, K, L = env._shape
    need = np.ceil(margin * _rbs_needed(env)).astype(np.int64)
    n_u = np.minimum(need[..., URLLC], K)
    n_m = np.minimum(need[..., MMTC], K - n_u)
    counts = np.stack([K - n_u - n_m, n_m, n_u], -1)
    return encode_allocation(env, counts_to_rb_slice(counts, K))


def pf_no_slicing(env, rounds: int | None = None):
    """PF over the whole band: every UE of the DU competes for every RB (no slice isolation), each
    RB is labelled with its winner's slice. `rounds` caps the PF passes (None: the scheduler's
    work-conserving default). Exact in
    rb_slice_ue mode; rb_slice and slice_share pass the labels (or per-slice counts) to the
    env's PF inside the slices, which may pick other UEs for them."""
    E, N, U, K, L = env._shape
    demand = env.backlog + env.arrivals
    if env.config.action_mode == "rb_slice_ue":
        has_slot = np.zeros(E * U, dtype=bool)
        has_slot[env.slot_ue[env.slot_ue >= 0]] = True
        demand = demand * has_slot.reshape(E, U)
    win = env.schedule(np.zeros((E, N, K), dtype=np.int8), demand, match_slice=False,
                       rounds=rounds)
    rb_slice = np.where(win >= 0, env.slice_of.ravel()[np.maximum(win, 0)], -1).astype(np.int8)
    return encode_allocation(env, rb_slice, win)


def ue_count_rbs(obs, config: ORANConfig, rbs_per_urllc: float = 1.5, rbs_per_mmtc: float = 0.3,
                 shifted: bool = False):
    """The UE-count rule, from the observation alone: (E, N, L) RB counts. The UEs per slice at
    the DU are read from the observation's second block (count over the expected number, the
    same at every DU, known from the config; `shifted`: after a non-stationary shift, whose
    shares the observation is then normalised by); URLLC gets ceil(rbs_per_urllc x URLLC UEs),
    mMTC ceil(rbs_per_mmtc x mMTC UEs), eMBB the rest. obs: (E, N, obs_dim) of any obs_mode."""
    L, K = 3, config.num_rbs
    expected = global_slice_shares(config, shifted) * config.num_ues / config.num_dus
    ues = np.rint(np.asarray(obs)[..., L:2 * L] * expected)
    n_u = np.minimum(np.ceil(rbs_per_urllc * ues[..., URLLC] - 1e-9), K).astype(np.int64)
    n_m = np.minimum(np.ceil(rbs_per_mmtc * ues[..., MMTC] - 1e-9).astype(np.int64), K - n_u)
    return np.stack([K - n_u - n_m, n_m, n_u], -1)


def ue_count_split(env, rbs_per_urllc: float = 1.5, rbs_per_mmtc: float = 0.3):
    """The UE-count rule (`ue_count_rbs`) on the env's latest observation, as contiguous blocks;
    PF inside each slice (in rb_slice_ue mode the UE bits are the env's PF winners, as for the
    other block heuristics). Observation-only: it reads nothing the agents do not see."""
    counts = ue_count_rbs(env.last_obs, env.config, rbs_per_urllc, rbs_per_mmtc, env.shifted)
    return encode_allocation(env, counts_to_rb_slice(counts, env.config.num_rbs))


def random_policy(env):
    """Uniform random actions in [-1, 1] (from the env's separate policy generator)."""
    shape = (env.num_envs, env.n_agents, env.act_dim)
    return env.policy_rng.uniform(-1, 1, shape).astype(np.float32)


HEURISTICS = {
    "static_equal": static_equal_split,
    "demand_proportional": demand_proportional,
    "urllc_first": urllc_first,
    "pf_no_slicing": pf_no_slicing,
    "ue_count": ue_count_split,
    "random": random_policy,
}


# Heuristics that read only what the agents observe (the rest read the DU's buffer status,
# arrivals or channel: information an RL policy of obs_mode "paper" does not get)
OBSERVATION_ONLY = ("static_equal", "ue_count", "random")
FULL_INFO_MARGINS = (0.5, 1.0, 1.5, 2.0, 3.0)


def full_information_reference(env, candidates=None):
    """A per-step search over each DU's slice split that sees the step (docs/model.md#heuristics).

    Every candidate allocation (default: urllc_first with each margin in FULL_INFO_MARGINS,
    demand_proportional, pf_no_slicing, static_equal and ue_count) is applied at all DUs and the
    step simulated on a copy of the env: the step's arrivals, serving-link fading and
    interfering-link draws are those the real step will use. Each DU then takes the candidate
    that gave it the largest reward. It is NOT an upper bound: it is myopic (no look-ahead
    over the backlog it leaves), searches a small family of splits, and each DU is scored
    against the others playing the same candidate, not what they end up choosing (so the
    executed step differs from every simulated one). The true bound is the episode maximum of
    the reward, episode_length x sum_l sigmoid(alpha_l). Cost: one simulated step per
    candidate."""
    import copy

    if candidates is None:
        candidates = [lambda e, m=m: urllc_first(e, m) for m in FULL_INFO_MARGINS]
        candidates += [demand_proportional, pf_no_slicing, static_equal_split, ue_count_split]
    actions = np.stack([policy(env) for policy in candidates])  # (M, E, N, act_dim)
    rewards = np.stack([copy.deepcopy(env).step(a)[1] for a in actions])  # (M, E, N)
    best = rewards.argmax(0)
    return np.take_along_axis(actions, best[None, ..., None], 0)[0]


# ---------------------------------------------------------------------------------------------
# PettingZoo adapter (pettingzoo / gymnasium imported only when the adapter is used)
# ---------------------------------------------------------------------------------------------
def evaluate(policy, envs, seed: int, per_episode: bool = False):
    """Score `policy` on fixed episodes: one episode per env copy of `envs`, all in lockstep from
    `envs.reset(seed=seed)` (the same episodes for every policy given the same `seed` and copies).

    `policy(obs, envs) -> actions`: obs (E, N, obs_dim) -> actions (E, N, act_dim); a heuristic
    reads `envs` itself, a learned policy the observations. Returns the team returns (E,) (each
    episode's mean over agents of their returns), each info["metrics"] entry's mean over steps and
    episodes, and each UE's mean throughput over the episode (a flat list; empty for an env that
    reports none). The same function scores every environment family with this vector-env API
    (comp_env uses it). With `per_episode`, a fourth value holds each episode's means over steps:
    "metrics" {key: (E,)}, "agent_returns" (E, N) and, where the env reports info["qos"] (E, N, L),
    "agent_qos" (E, N, L), as nested lists.

    An environment with a non-stationary shift replays its episodes before the shift at every
    call: its env-step count restarts, so an evaluation environment kept across a run's
    evaluations never crosses the shift however many steps its evaluations add up to."""
    if hasattr(envs, "env_steps"):  # oran_env's non-stationary clock (comp_env has none)
        envs.env_steps, envs.shifted = 0, False
    obs, _ = envs.reset(seed=seed)
    metrics, ue_tput, agent_qos = {}, [], []
    for _ in range(envs.episode_length):
        obs, _, _, _, info = envs.step(policy(obs, envs))
        for key, value in info["metrics"].items():
            metrics.setdefault(key, []).append(np.asarray(value, np.float64))
        ue_tput.append(np.asarray(info.get("ue_throughput_mbps", []), np.float64))  # (E, U)
        if per_episode and "qos" in info:
            agent_qos.append(np.asarray(info["qos"], np.float64))  # (E, N, L)
    if "episode" not in info:
        raise RuntimeError(f"no info['episode'] after episode_length = {envs.episode_length} steps")
    # in the env's dtype, as the scripts always did
    returns = info["episode"]["return"].mean(axis=1)
    result = ({key: float(np.mean(values)) for key, values in metrics.items()},
              np.mean(ue_tput, axis=0).ravel().tolist())
    if not per_episode:
        return (returns, *result)
    episodes = {"metrics": {key: np.mean(v, axis=0).tolist() for key, v in metrics.items()},
                "agent_returns": np.asarray(info["episode"]["return"], np.float64).tolist()}
    if agent_qos:
        episodes["agent_qos"] = np.mean(agent_qos, axis=0).tolist()
    return (returns, *result, episodes)


def _make_parallel_env_class():
    """ParallelEnv over one ORANEnv (E = 1); agents du_0 ... du_{N-1}; per-agent info: the DU's
    Q_l."""
    from pettingzoo_adapter import make_parallel_env_class

    def observation_bounds(env):
        return np.full(env.obs_dim, -np.inf, np.float32), np.full(env.obs_dim, np.inf, np.float32)

    def make(config, seed):
        return ORANEnv(config, num_envs=1, seed=seed)

    return make_parallel_env_class("oran_slicing_v0", make, "du", observation_bounds,
                                   lambda info, i: {"qos": info["qos"][0, i]})


def __getattr__(name):
    if name == "ParallelEnv":
        cls = _make_parallel_env_class()
        globals()["ParallelEnv"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
