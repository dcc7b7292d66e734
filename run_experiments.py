"""Experiment runner: one command runs a named grid of variants x rho settings x scenarios x seeds.

    python run_experiments.py --grid paper --records-dir records   # the main grid; records kept in the repo
    python run_experiments.py --grid paper --dry-run       # print every command, run nothing
    python run_experiments.py --grid paper --seeds 5 --first-seed 6   # a slice: seeds 6..10
    python run_experiments.py --grid paper --extra-args="--eval-interval 1000"    # more script flags
    python run_experiments.py --grid paper --backend ray --ray-address auto       # on a Ray cluster

Grids (10 seeds by default, SPEC Part D): `paper` (No-SAM, L2, and Actor/Critic/Both/TA-SAM x rho
equal 0.01/0.01, unequal 0.05/0.01, dynamic linear decay; on `paper` and `hetero`), `rb_small`
(No-SAM, L2, Both-SAM and TA-SAM with the paper's RB-level action on `small`), `rho_sweep`
(Actor/Critic/Both-SAM, fixed rho 0..0.06), `du_sweep` (No-SAM and TA-SAM, 2..10 DUs with 200
UEs), `nonstationary` (No-SAM, L2, TA-SAM; the traffic shifts half-way through training),
`generalisation` (the `paper` grid's saved models: paper-trained ones evaluated on `light`, `heavy`
and `hetero`, hetero-trained ones on `paper`; no training, run `paper` first), `comp` (No-SAM and
TA-SAM on DeepCoMP's medium scenario).

Every run lands in `results/<grid>/<variant>__<rho>__<scenario>__s<seed>/` (docs/INTERFACES.md,
section 3). Running the same command again skips finished runs (summary.json with status
"finished"), resumes interrupted ones (`--resume` when their checkpoint.pt exists) and starts the
rest from scratch, so a grid can be stopped with Ctrl-C (or SIGTERM, SIGHUP) and continued, or
widened with more seeds. A training process never outlives the runner that started it (own process
group, parent-death signal) and holds run.lock in its folder, so no folder ever gets two writers.
`--backend ray` runs each training run as a Ray task instead of in the local pool (README, section
"Running grids on a Ray cluster or Slurm"; Ray is imported only then).

Choices (ours, all overridable):
- Budget: 5,000 environment steps per run (10,000 for `nonstationary`, shift at 5,000) with the
  CPU_BUDGET flags: compact `slice_share` actions, batch 128, 1,000 warm-up steps (so 4,000
  updates), evaluation every 500 steps; the scripts' 128-128 CPU networks. Measured on the 2-core
  machine while other jobs shared it: 1,000 updates took about 21 s (baseline) and 33 s (Both-SAM)
  on `paper`, versus about 4x the baseline's time with the default 300-dim `rb_slice` actions and
  batch 256. Two 8,000-step `paper` runs side by side took 4m37s (No-SAM) and 5m41s (TA-SAM) of
  wall time and 5m32s of CPU time together, and their evaluation returns had levelled off by step
  4,000 (2,000 updates). Measured with 2 workers for the README's results: the 30 runs of
  `--rhos dynamic none` (plus the heuristic rows) took 37 min and the 20 `equal` runs 28 min, so the
  70 training runs of one scenario at 5 seeds needed about 1.5 hours on this 2-core machine (before
  the 32-episode evaluations; the README's results section gives the current times). Scale with
  --steps, --seeds, --workers; --no-cpu-budget runs the scripts' own defaults (e.g. with
  --extra-args="--cuda").
- Runs are ordered seed-major (all methods of seed 1, then seed 2, ...), so a grid cut short still
  holds complete seeds for every method.
- Each worker runs one training script as a subprocess with one torch thread (--torch-threads and
  the OMP/MKL variables): on a small machine several single-threaded runs beat one multi-threaded.
- Reference rows: the environment module's `HEURISTICS` (and, for oran, the full-information
  reference `full_info`) are evaluated once per scenario of the grid exactly as the scripts
  evaluate (the same fixed episodes, seed EVAL_SEED, `--eval-episodes` of them, same environment
  options) and stored as `heuristic-<name>__none__<scenario>__s0/` run folders with the same
  summary.json, so `plot_results.py` shows them next to the methods and normalises scores with them
  (0 = static_equal, 1 = full_info).
- Records: with `--records-dir records` every finished run's record (records.py) is written there
  and runs that have a record are skipped even when their run folder is gone, so a grid longer than
  one sitting is run in slices whose records accumulate in the repository.
- Generalisation rows: a `paper` run's model.pt (the commands pass --save-model) is rebuilt with its
  own script's `Actor` and scored with that script's `evaluate` on the target preset, keeping every
  other environment option of the run.

The mapping from variant / rho setting / scenario to the training scripts' command-line flags is the
block of tables right below; align it there if a script's flags change.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import fcntl
import importlib
import importlib.util
import json
import math
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import tyro

import records

# ------------------------------------------------------------------------------------------------
# Flag tables: the only place that knows the training scripts' command lines.
# ------------------------------------------------------------------------------------------------
VARIANTS: dict[str, tuple[str, list[str]]] = {  # variant -> (script, flags)   (SPEC C.2)
    "nosam": ("sac_marl_baseline.py", []),
    "l2": ("sac_marl_l2.py", []),
    "actor-sam": ("tasam_marl_sac.py", ["--no-sam-critic"]),
    "critic-sam": ("tasam_marl_sac.py", ["--no-sam-actor"]),
    "both-sam": ("tasam_marl_sac.py", ["--no-selective"]),
    "ta-sam": ("tasam_marl_sac.py", []),
}
LABELS = {"nosam": "No-SAM", "l2": "L2", "actor-sam": "Actor-SAM", "critic-sam": "Critic-SAM",
          "both-sam": "Both-SAM", "ta-sam": "TA-SAM"}
RHO_FLAGS: dict[str, list[str]] = {  # rho setting -> flags (SPEC C.3); only for tasam_marl_sac.py
    "equal": ["--rho-schedule", "fixed", "--rho-actor", "0.01", "--rho-critic", "0.01"],
    "unequal": ["--rho-schedule", "fixed", "--rho-actor", "0.05", "--rho-critic", "0.01"],
    "dynamic": ["--rho-schedule", "dynamic"],  # linear decay; --rho-init/--rho-final/--rho-decay-steps: script defaults
}


def fixed_rho_flags(rho: float) -> list[str]:
    """Flags of the rho sweep's setting `fixed<rho>`: the same fixed rho for actors and critic."""
    return ["--rho-schedule", "fixed", "--rho-actor", f"{rho:g}", "--rho-critic", f"{rho:g}"]


COMMON_FLAGS: list[str] = ["--save-model"]  # added to every training command (model.pt for transfer)
# The CPU budget [ours] (--cpu-budget, on by default; see the module docstring for the measurements):
# the compact `slice_share` action mode (3 action dims per DU instead of rb_slice's 3K), batch 128,
# 1,000 warm-up steps and an evaluation every 500 steps. The scripts' CPU networks (128-128) are their
# own default without --cuda. --no-cpu-budget runs the scripts' defaults.
# env id -> (environment options, which the heuristic rows use too, and script flags)
_BUDGET_SCRIPT_FLAGS = ["--batch-size", "128", "--learning-starts", "1000", "--eval-interval", "500"]
CPU_BUDGET: dict[str, tuple[dict, list[str]]] = {"oran": ({"action_mode": "slice_share"}, _BUDGET_SCRIPT_FLAGS),
                                                "comp": ({}, _BUDGET_SCRIPT_FLAGS)}


def env_option_flags(options: dict) -> list[str]:
    """Environment options as the scripts' flags: action_mode -> --action-mode."""
    return [x for k, v in options.items() for x in ("--" + k.replace("_", "-"), str(v))]
FLAG_SEED, FLAG_STEPS, FLAG_RUN_DIR, FLAG_RESUME = "--seed", "--total-timesteps", "--run-dir", "--resume"
FLAG_SCENARIO, FLAG_ENV_ID, FLAG_THREADS = "--scenario", "--env-id", "--torch-threads"
FLAG_SHIFT = "--shift-after-steps"  # oran_env option: vectorised env steps before the traffic shift
EVAL_SEED = 10_000  # the scripts evaluate on environments seeded EVAL_SEED: the same episodes for every run
MODEL_FILE = "model.pt"  # written by --save-model: {"actor", "qf", "hidden_sizes"}
ENV_MODULES = {"oran": "oran_env", "comp": "comp_env"}  # env id -> simulator module
# reference rows evaluated next to HEURISTICS: row name -> policy function of the env module
REFERENCES = {"oran": {"full_info": "full_information_reference"}, "comp": {}}
ENV_ID_VALUES = {"oran": None, "comp": "comp"}  # env id -> value of FLAG_ENV_ID (None: script default)
# scenario token (the run id's third part) -> (env id, preset name of the env module's SCENARIOS)
SCENARIOS: dict[str, tuple[str, str]] = {
    **{name: ("oran", name) for name in ("paper", "hetero", "small", "light", "heavy", "nonstationary")},
    **{f"du{n}": ("oran", f"du{n}") for n in range(2, 11)},  # 2..10 DUs, 200 UEs
    **{f"comp-{name}": ("comp", name) for name in ("small", "medium", "large")},
}
CHECKPOINT, SUMMARY, LOCK, RUN_LOG = "checkpoint.pt", "summary.json", "run.lock", "runner.log"
RAY_TOKEN = ".ray-driver-token"  # in <results-dir>/<grid>/: a Ray node that reads it shares the driver's disk
SAM_VARIANTS = ("actor-sam", "critic-sam", "both-sam", "ta-sam")
RHO_SWEEP = (0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06)


@dataclass(frozen=True)
class GridSpec:
    """One named grid: (variant, rho setting) pairs crossed with scenarios and seeds."""

    methods: tuple[tuple[str, str], ...]
    scenarios: tuple[str, ...]
    steps: int  # default --total-timesteps per run [ours]; --steps overrides
    doc: str
    transfer_from: tuple[str, tuple[tuple[str, str], ...]] | None = None  # (grid, ((target, source scenario), ..))
    shift_fraction: float | None = None  # traffic shift after this fraction of the budget
    env_options: tuple[tuple[str, str], ...] = ()  # replace the CPU budget's environment options (action mode)
    script_flags: tuple[str, ...] = ()  # more script flags, after the CPU budget's


PAPER_METHODS = (("nosam", "none"), ("l2", "none")) + tuple(
    (v, r) for r in ("equal", "unequal", "dynamic") for v in SAM_VARIANTS)
GENERALISATION = (("light", "paper"), ("heavy", "paper"), ("hetero", "paper"), ("paper", "hetero"))  # (target, source)
RB_METHODS = (("nosam", "none"), ("l2", "none"), ("both-sam", "dynamic"), ("ta-sam", "dynamic"))
GRIDS: dict[str, GridSpec] = {
    "paper": GridSpec(PAPER_METHODS, ("paper", "hetero"), 5_000,
                      "No-SAM, L2 and the four SAM variants x three rho settings on `paper` and `hetero`"),
    "rb_small": GridSpec(RB_METHODS, ("small",), 10_000,
                         "No-SAM, L2, Both-SAM and TA-SAM with the paper's RB-level action on `small`",
                         env_options=(("action_mode", "rb_slice"),), script_flags=("--eval-interval", "1000")),
    "rho_sweep": GridSpec(tuple((v, f"fixed{r:g}") for v in ("actor-sam", "critic-sam", "both-sam")
                                for r in RHO_SWEEP), ("paper",), 5_000,
                          "Actor/Critic/Both-SAM with a fixed rho in 0..0.06 (actor = critic rho)"),
    "du_sweep": GridSpec((("nosam", "none"), ("ta-sam", "dynamic")),
                         tuple(f"du{n}" for n in (2, 4, 6, 8, 10)), 5_000,
                         "No-SAM and TA-SAM with 2..10 DUs and 200 UEs"),
    "nonstationary": GridSpec((("nosam", "none"), ("l2", "none"), ("ta-sam", "dynamic")),
                              ("nonstationary",), 10_000,
                              "No-SAM, L2 and TA-SAM; the traffic shifts half-way through training",
                              shift_fraction=0.5),
    "generalisation": GridSpec(PAPER_METHODS, tuple(t for t, _ in GENERALISATION), 0,
                               "the `paper` grid's saved models evaluated on `light`, `heavy` and `hetero`, "
                               "and its `hetero` models on `paper`", transfer_from=("paper", GENERALISATION)),
    "comp": GridSpec((("nosam", "none"), ("ta-sam", "dynamic")), ("comp-medium",), 5_000,
                     "multi-agent SAC and TA-SAM on DeepCoMP's medium scenario"),
}


@dataclass
class Args:
    grid: Literal["paper", "rb_small", "rho_sweep", "du_sweep", "nonstationary", "generalisation", "comp"] = "paper"
    """named grid to run (see the module docstring and GRIDS)"""
    results_dir: Path = Path("results")
    """root of the results folder; runs go to <results-dir>/<grid>/<run id>/"""
    seeds: int = 10
    """number of seeds per configuration (seeds first-seed .. first-seed + seeds - 1)"""
    first_seed: int = 1
    """first seed"""
    steps: int | None = None
    """--total-timesteps per run (default: the grid's own budget)"""
    workers: int = 2
    """runs executed at the same time (the local backend's pool; with --backend ray and no --ray-address, the
    local Ray instance gets --workers x --cpus-per-run CPUs)"""
    torch_threads: int = 1
    """torch/OpenMP threads per run (OMP_NUM_THREADS, MKL_NUM_THREADS)"""
    variants: tuple[str, ...] = ()
    """only these variants (default: all of the grid's), e.g. --variants nosam ta-sam"""
    rhos: tuple[str, ...] = ()
    """only these rho settings (default: all of the grid's), e.g. --rhos dynamic none"""
    scenarios: tuple[str, ...] = ()
    """replace the grid's scenarios (tokens of SCENARIOS), e.g. --scenarios small"""
    extra_args: str = ""
    """more flags passed verbatim to every training script (after all others, so they win); write
    them with '=': --extra-args="--eval-interval 1000" """
    cpu_budget: bool = True
    """use CPU_BUDGET (compact slice_share actions, batch 128) in every training command and in the
    heuristic rows"""
    eval_episodes: int = 32
    """evaluation episodes of the heuristic and transfer rows (keep equal to the scripts' --eval-episodes)"""
    heuristics: bool = True
    """evaluate the environment's heuristics as reference rows (once per scenario, as seed 0: every run is
    evaluated on the same episodes, whatever its seed)"""
    records_dir: Path | None = None
    """write the record (records.py) of every finished run into <records-dir>/<grid>/ and skip the runs that
    have one (`--records-dir records`: a grid run in slices accumulates its records in the repository)"""
    dry_run: bool = False
    """print the commands and what would be skipped/resumed, run nothing"""
    python: str = sys.executable
    """python interpreter for the training scripts (local backend; a Ray task uses its worker's Python)"""
    backend: Literal["local", "ray"] = "local"
    """where the training runs execute: `local` (a pool of --workers subprocesses) or `ray` (one Ray task per
    run on a local Ray instance or the cluster at --ray-address; needs `pip install ray`)"""
    ray_address: str | None = None
    """Ray cluster to connect to (`auto`, or the head's `host:6379`); none starts a local Ray instance"""
    cpus_per_run: float = 1.0
    """Ray: CPUs reserved for each run (keep it >= --torch-threads)"""
    gpus_per_run: float = 0.0
    """Ray: GPUs reserved for each run; a fraction packs several runs on one GPU (0.25: four per GPU). The
    scripts use the GPU only with --extra-args="--cuda" (and --no-cpu-budget for the paper's networks)"""
    ray_storage: Literal["auto", "shared", "copy"] = "auto"
    """Ray: `shared`: tasks write into the run folders directly (a filesystem shared with the driver, so
    interrupted runs resume from their checkpoints); `copy`: a task trains in a temporary folder on its
    node and returns the run folder's files, which the driver writes into --results-dir; `auto`: `shared`
    on the nodes that see the driver's results folder, `copy` elsewhere"""
    ray_max_retries: int = 3
    """Ray: times a run's task is started again after its worker process or node died (Ray's max_retries)"""


@dataclass(frozen=True)
class Task:
    """One run folder to produce: a training run, a heuristic evaluation or a transfer evaluation."""

    kind: Literal["train", "heuristic", "transfer"]
    grid: str
    variant: str  # a VARIANTS key, or "heuristic-<name>"
    rho: str  # a RHO_FLAGS key, "fixed<value>" or "none"
    scenario: str  # a SCENARIOS key
    seed: int
    run_dir: Path
    cmd: tuple[str, ...] = field(default=(), compare=False)  # train tasks
    source: Path | None = None  # transfer tasks: the run folder whose model.pt is evaluated

    @property
    def run_id(self) -> str:
        return self.run_dir.name

    def record(self, records_dir: Path) -> Path:
        return records.record_path(records_dir, self.grid, self.run_id)


def write_record(task: Task, args: Args) -> None:
    """The record of a finished run folder, unless there is an up-to-date one (or --records-dir none)."""
    if args.records_dir is None:
        return
    if not records.record_is_current(task.run_dir, args.records_dir, task.grid):
        records.write_record(task.run_dir, args.records_dir, task.grid)


def run_id(variant: str, rho: str, scenario: str, seed: int) -> str:
    return f"{variant}__{rho}__{scenario}__s{seed}"


def parse_run_id(name: str) -> dict | None:
    """Inverse of run_id: {'variant', 'rho', 'scenario', 'seed'}, or None for another folder name."""
    parts = name.split("__")
    if len(parts) != 4 or not parts[3].startswith("s") or not parts[3][1:].isdigit():
        return None
    return {"variant": parts[0], "rho": parts[1], "scenario": parts[2], "seed": int(parts[3][1:])}


def rho_flags(variant: str, rho: str) -> list[str]:
    if rho == "none":
        if variant in SAM_VARIANTS:
            raise ValueError(f"variant {variant!r} needs a rho setting, got 'none'")
        return []
    if variant not in SAM_VARIANTS:
        raise ValueError(f"variant {variant!r} takes no rho setting (expected 'none'), got {rho!r}")
    if rho in RHO_FLAGS:
        return list(RHO_FLAGS[rho])
    if rho.startswith("fixed"):
        try:
            value = float(rho[len("fixed"):])
        except ValueError:
            value = -1.0
        if value >= 0:
            return fixed_rho_flags(value)
    raise ValueError(f"unknown rho setting {rho!r}: expected one of {sorted(RHO_FLAGS)}, "
                     "'fixed<value>' with value >= 0, or 'none'")


def scenario_flags(scenario: str) -> list[str]:
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}: expected one of {sorted(SCENARIOS)}")
    env_id, preset = SCENARIOS[scenario]
    flags = [FLAG_ENV_ID, ENV_ID_VALUES[env_id]] if ENV_ID_VALUES[env_id] else []
    return flags + [FLAG_SCENARIO, preset]


def train_command(python: str, variant: str, rho: str, scenario: str, seed: int, steps: int,
                  run_dir: Path, resume: bool, extra_args: str = "", torch_threads: int = 1,
                  grid_flags: tuple[str, ...] = (), cpu_budget: bool = True, grid: str = "paper") -> tuple[str, ...]:
    """The training script's command line for one run of a grid (resume: continue from its checkpoint)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}: expected one of {sorted(VARIANTS)}")
    script, variant_flags = VARIANTS[variant]
    cmd = [python, script, *variant_flags, *rho_flags(variant, rho), *scenario_flags(scenario),
           FLAG_SEED, str(seed), FLAG_STEPS, str(steps), FLAG_RUN_DIR, str(run_dir),
           FLAG_THREADS, str(torch_threads), *grid_flags, *COMMON_FLAGS,
           *budget_flags(grid, scenario, cpu_budget), *shlex.split(extra_args)]
    if resume:
        cmd.append(FLAG_RESUME)
    return tuple(cmd)


def env_options(grid: str, scenario: str, cpu_budget: bool) -> dict:
    """Environment options of a grid's runs and of its reference rows: the CPU budget's (with
    --cpu-budget), then the grid's own."""
    return {**(CPU_BUDGET[SCENARIOS[scenario][0]][0] if cpu_budget else {}), **dict(GRIDS[grid].env_options)}


def budget_flags(grid: str, scenario: str, cpu_budget: bool) -> list[str]:
    """Script flags of a grid's runs: its environment options, the CPU budget's flags, the grid's own."""
    flags = CPU_BUDGET[SCENARIOS[scenario][0]][1] if cpu_budget else []
    return env_option_flags(env_options(grid, scenario, cpu_budget)) + flags + list(GRIDS[grid].script_flags)


def check_output_dir(path: Path, flag: str) -> None:
    """Up-front check of a folder a command will write into (created later when missing): ValueError
    naming `flag` when the path is a file, lies under a file, or its nearest existing folder is not writable."""
    existing = next(p for p in (path.absolute(), *path.absolute().parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{flag} {path}: {existing} is not a writable folder")


def read_summary(run_dir: Path) -> dict | None:
    """summary.json of a run folder, or None when it is missing or not valid JSON (half-written)."""
    try:
        with open(Path(run_dir) / SUMMARY) as f:
            summary = json.load(f)
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


def run_state(run_dir: Path) -> Literal["finished", "resume", "fresh"]:
    """What to do with a run folder: skip it, resume it from its checkpoint, or start it anew."""
    summary = read_summary(run_dir)
    if summary is not None and summary.get("status") == "finished":
        return "finished"
    if (Path(run_dir) / CHECKPOINT).is_file():
        return "resume"
    return "fresh"


def heuristic_names(scenario: str) -> list[str]:
    """The reference rows of a scenario: its env module's HEURISTICS and REFERENCES."""
    env_id = SCENARIOS[scenario][0]
    module = importlib.import_module(ENV_MODULES[env_id])
    return list(module.HEURISTICS) + [name for name, f in REFERENCES[env_id].items() if hasattr(module, f)]


def expand_grid(args: Args) -> list[Task]:
    """All tasks of the grid: the heuristic rows, then the runs seed-major."""
    if args.seeds < 1 or args.workers < 1 or args.torch_threads < 1 or args.eval_episodes < 1:
        raise ValueError("--seeds, --workers, --torch-threads and --eval-episodes must be >= 1, got "
                         f"{args.seeds}, {args.workers}, {args.torch_threads}, {args.eval_episodes}")
    if args.cpus_per_run <= 0 or args.gpus_per_run < 0 or args.ray_max_retries < 0:
        raise ValueError("--cpus-per-run must be > 0, --gpus-per-run and --ray-max-retries >= 0, got "
                         f"{args.cpus_per_run}, {args.gpus_per_run}, {args.ray_max_retries}")
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be a positive number of environment steps, got {args.steps}")
    check_output_dir(args.results_dir, "--results-dir")
    interpreter = shutil.which(args.python)
    if interpreter is None or not os.path.isfile(interpreter):
        raise ValueError(f"--python {args.python}: not an executable file")
    spec = GRIDS[args.grid]
    for name, choices in (("variants", {v for v, _ in spec.methods}),
                          ("rhos", {r for _, r in spec.methods})):
        unknown = set(getattr(args, name)) - choices
        if unknown:
            raise ValueError(f"--{name}: {sorted(unknown)} not in grid {args.grid!r} "
                             f"(expected some of {sorted(choices)})")
    scenarios = args.scenarios or spec.scenarios
    for s in scenarios:
        scenario_flags(s)  # validates the token
        if spec.transfer_from and s not in dict(spec.transfer_from[1]):
            raise ValueError(f"--scenarios: grid {args.grid!r} evaluates on {sorted(dict(spec.transfer_from[1]))}, "
                             f"not {s!r}")
    methods = [(v, r) for v, r in spec.methods
               if (not args.variants or v in args.variants) and (not args.rhos or r in args.rhos)]
    steps = args.steps or spec.steps
    grid_flags = (FLAG_SHIFT, str(int(steps * spec.shift_fraction))) if spec.shift_fraction else ()
    grid_dir = args.results_dir / args.grid
    tasks = []
    if args.heuristics:
        tasks += [Task("heuristic", args.grid, f"heuristic-{name}", "none", scenario, 0,
                       grid_dir / run_id(f"heuristic-{name}", "none", scenario, 0))
                  for scenario in scenarios for name in heuristic_names(scenario)]
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for scenario in scenarios:
            for variant, rho in methods:
                run_dir = grid_dir / run_id(variant, rho, scenario, seed)
                if spec.transfer_from:
                    source_grid, sources = spec.transfer_from
                    source = args.results_dir / source_grid / run_id(variant, rho, dict(sources)[scenario], seed)
                    tasks.append(Task("transfer", args.grid, variant, rho, scenario, seed, run_dir,
                                      source=source))
                    continue
                resume = run_state(run_dir) == "resume"
                tasks.append(Task("train", args.grid, variant, rho, scenario, seed, run_dir,
                                  train_command(args.python, variant, rho, scenario, seed, steps,
                                                run_dir, resume, args.extra_args, args.torch_threads,
                                                grid_flags, args.cpu_budget, args.grid)))
    return tasks


# ------------------------------------------------------------------------------------------------
# Reference rows evaluated in the runner: heuristics, and saved models on another scenario
# ------------------------------------------------------------------------------------------------
def evaluate_heuristic(scenario: str, name, seed: int, episodes: int,
                       env_options: dict | None = None) -> dict:
    """final_eval dict (INTERFACES.md, section 2) of one heuristic (its name, or a policy(env) -> actions)
    over `episodes` episodes.

    Scored like the scripts' deterministic evaluation: `episodes` parallel copies of the environment
    seeded EVAL_SEED run one episode each; an episode's team return is the mean over
    agents of their returns, each KPI its mean over steps and episodes, and each UE's throughput its
    mean over the episode. `env_options` override fields of the preset (as the runs' flags do)."""
    env_id, preset = SCENARIOS[scenario]
    module = importlib.import_module(ENV_MODULES[env_id])
    policy = name if callable(name) else module.HEURISTICS.get(name) or getattr(module, REFERENCES[env_id][name])
    env = module.make_env(preset, num_envs=episodes, seed=EVAL_SEED, **(env_options or {}))
    env.reset(seed=EVAL_SEED)
    metrics: dict[str, list[float]] = {}
    ue_tput = []  # (T, E, U)
    for _ in range(env.episode_length):
        _, _, _, _, info = env.step(policy(env))
        for key, value in info["metrics"].items():
            metrics.setdefault(key, []).append(float(np.mean(value)))
        if UE_THROUGHPUT_KEY in info:
            ue_tput.append(np.asarray(info[UE_THROUGHPUT_KEY], dtype=float))
    if "episode" not in info:
        raise RuntimeError(f"{ENV_MODULES[env_id]}: no info['episode'] after episode_length "
                           f"= {env.episode_length} steps (expected on the last step)")
    returns = np.asarray(info["episode"]["return"], dtype=float).mean(axis=1)  # (E,)
    final = {"episodic_return": float(returns.mean()), "episodic_returns": returns.tolist(),
             "metrics": {k: float(np.mean(v)) for k, v in metrics.items()}}
    if ue_tput:
        final["ue_throughput_mbps"] = np.mean(ue_tput, axis=0).ravel().tolist()
    return final


UE_THROUGHPUT_KEY = "ue_throughput_mbps"  # info key of per-UE throughput (Mbit/s), arrays (E, U)


def evaluate_transfer(source: Path, scenario: str, episodes: int) -> tuple[dict, dict]:
    """(final_eval, source summary) of a finished run's saved model on another scenario.

    The model is rebuilt with its own training script's `Actor` and scored with that script's
    `evaluate` (deterministic actions, environments seeded EVAL_SEED). The environment
    is the run's own configuration with the fields replaced in which the target preset differs from
    the run's preset (e.g. `load` for paper -> light), so every other option the run used stays."""
    import torch

    summary = read_summary(source)
    if summary is None or summary.get("status") != "finished" or not (source / MODEL_FILE).is_file():
        raise RuntimeError(f"{source}: no finished run with {MODEL_FILE}; run its grid first "
                           "(training commands include --save-model)")
    run_args = summary["args"]
    script = importlib.import_module(Path(summary["script"]).stem)
    env_id, preset = SCENARIOS[scenario]
    if run_args.get("env_id", "oran") != env_id:
        raise RuntimeError(f"{source}: trained on env {run_args.get('env_id')!r}, "
                           f"scenario {scenario!r} belongs to {env_id!r}")
    envlib = importlib.import_module(ENV_MODULES[env_id])
    trained, target = envlib.make_config(run_args["scenario"]), envlib.make_config(preset)
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in run_args["env"].items()}
    config.update({f.name: getattr(target, f.name) for f in dataclasses.fields(target)
                   if getattr(target, f.name) != getattr(trained, f.name)})
    seed = EVAL_SEED
    envs = envlib.make_env(preset, num_envs=episodes, seed=seed, **config)
    model = torch.load(source / MODEL_FILE, map_location="cpu", weights_only=True)
    actor = script.Actor(envs.n_agents, envs.obs_dim, envs.act_dim, tuple(model["hidden_sizes"]))
    actor.load_state_dict(model["actor"])
    returns, metrics, ue_tput = script.evaluate(actor, envs, seed, torch.device("cpu"))
    final = {"episodic_return": float(np.mean(returns)), "episodic_returns": np.asarray(returns).tolist(),
             "metrics": metrics, "ue_throughput_mbps": list(ue_tput)}
    return final, summary


def write_summary(run_dir: Path, summary: dict) -> None:
    """Atomic write (temporary file + rename), as the training scripts do."""
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / (SUMMARY + ".tmp")
    tmp.write_text(json.dumps(summary, indent=1))
    os.replace(tmp, run_dir / SUMMARY)


def run_in_process(task: Task, episodes: int, cpu_budget: bool = True) -> None:
    """Heuristic and transfer rows: a summary.json with global_step 0 (no training, no events)."""
    start = time.time()
    if task.kind == "heuristic":
        name = task.variant[len("heuristic-"):]
        options = env_options(task.grid, task.scenario, cpu_budget)
        final = evaluate_heuristic(task.scenario, name, task.seed, episodes, options)
        script, extra = f"heuristic:{name}", {"heuristic": name, "env_options": options}
    else:
        final, source = evaluate_transfer(task.source, task.scenario, episodes)
        script = f"transfer:{source['script']}"
        extra = {"source_run": str(task.source), "trained_steps": source.get("global_step"),
                 "source_args": source["args"]}
    write_summary(task.run_dir, {
        "status": "finished", "script": script,
        "args": {**extra, "scenario": task.scenario, "seed": task.seed, "eval_episodes": episodes},
        "global_step": 0, "wall_time_s": time.time() - start, "final_eval": final,
        "best_eval_return": final["episodic_return"], "eval_history": []})


# ------------------------------------------------------------------------------------------------
# Execution: one training process per run folder, which never outlives the runner or Ray worker
# that started it
# ------------------------------------------------------------------------------------------------
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>: the signal a process gets when the thread that started it dies


def start_run_process(cmd: list[str], log, env: dict, cwd: str | None = None) -> subprocess.Popen:
    """Starts a training process that dies with its starter: in a session and process group of its own
    (the terminal's Ctrl-C and hang-up reach only the runner, which stops its runs itself) and, on Linux,
    with SIGTERM as its parent-death signal, which the kernel sends when the starting thread dies, also of
    SIGKILL. Elsewhere only the runner's signal handlers stop it."""
    parent = os.getpid()
    prctl = ctypes.CDLL(None).prctl if sys.platform == "linux" else None  # looked up before the fork

    def die_with_parent():  # in the child, between fork and exec
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                            start_new_session=True, preexec_fn=die_with_parent)


def folder_in_use(run_dir: Path) -> bool:
    """True while a training process holds the run folder's lock (the scripts flock run.lock for life)."""
    try:
        with open(Path(run_dir) / LOCK, "rb") as f:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released again when f closes
    except FileNotFoundError:
        return False
    except BlockingIOError:
        return True
    return False


def run_env(torch_threads: int) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": str(torch_threads), "MKL_NUM_THREADS": str(torch_threads)}


def run_training(cmd, run_dir: Path, env: dict, cwd: str | None = None,
                 launch=start_run_process) -> tuple[str, str]:
    """Runs one training command in its run folder; returns (outcome 'finished' | 'failed', message).

    Both backends run through here, so skip / resume / fresh is decided when the run starts (a Ray task
    started again after its worker died resumes from the checkpoint its first attempt wrote): a finished
    folder is left alone, one with a checkpoint is resumed (--resume), any other is cleared of a dead
    run's leftovers first. A folder whose lock another process holds is not touched. The script's output
    is appended to runner.log."""
    state = run_state(run_dir)
    if state == "finished":
        return "finished", "already finished"
    if folder_in_use(run_dir):
        return "failed", f"{run_dir} is in use by another training process (it holds {LOCK}); not started"
    cmd = [c for c in cmd if c != FLAG_RESUME] + ([FLAG_RESUME] if state == "resume" else [])
    if state == "fresh" and run_dir.exists():
        shutil.rmtree(run_dir)  # leftovers of a run that died before its first checkpoint
    run_dir.mkdir(parents=True, exist_ok=True)
    log_path = run_dir / RUN_LOG
    with open(log_path, "a") as log:
        log.write(f"$ {shlex.join(cmd)}\n")
        log.flush()
        rc = launch(cmd, log, env, cwd).wait()
    if rc != 0:
        return "failed", f"exit code {rc}, log: {log_path}"
    if run_state(run_dir) != "finished":
        return "failed", f"exited 0 but wrote no finished {SUMMARY}, log: {log_path}"
    return "finished", ""


def execute_row(task: Task, args: Args) -> tuple[str, float, str]:
    """A heuristic or transfer row, in this process: (outcome, seconds, message)."""
    start = time.time()
    try:
        run_in_process(task, args.eval_episodes, args.cpu_budget)
    except Exception as e:  # report and go on with the rest of the grid
        return "failed", time.time() - start, f"{type(e).__name__}: {e}"
    return "finished", time.time() - start, ""


class Pool:
    """The local backend: --workers threads, each running one task at a time; remembers its training
    processes to stop them (Ctrl-C, SIGTERM, SIGHUP)."""

    def __init__(self, args: Args):
        self.args, self.slots = args, args.workers
        self.procs: set[subprocess.Popen] = set()
        self.lock = threading.Lock()
        self.stopping = False
        self.env = run_env(args.torch_threads)
        self.executor = ThreadPoolExecutor(max_workers=args.workers)

    def submit(self, task: Task) -> Future:
        return self.executor.submit(self.execute, task)

    def execute(self, task: Task) -> tuple[str, float, str]:
        """(outcome 'finished' | 'failed', seconds, message)."""
        if task.kind != "train":
            return execute_row(task, self.args)
        start = time.time()
        outcome, message = run_training(task.cmd, task.run_dir, self.env, launch=self.launch)
        return outcome, time.time() - start, message

    def launch(self, cmd, log, env, cwd) -> subprocess.Popen:
        with self.lock:
            if self.stopping:
                raise RuntimeError("not started: the grid is stopping")
            proc = start_run_process(cmd, log, env, cwd)
            self.procs.add(proc)
        return proc

    def result(self, task: Task, future: Future) -> tuple[str, float, str]:
        return future.result()

    def stop(self) -> None:
        with self.lock:
            self.stopping = True
            for proc in self.procs:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)  # its own process group (start_new_session)
        self.executor.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        self.executor.shutdown(wait=True)


def code_files(script: str) -> dict[str, bytes]:
    """A training script and the simulator modules, which are all of this project that a script imports."""
    paths = [Path(script)] + [Path(importlib.util.find_spec(m).origin) for m in ENV_MODULES.values()]
    return {p.name: p.read_bytes() for p in paths}


def folder_files(folder: Path) -> dict[str, bytes]:
    """{path relative to the folder: content} of a run folder's files, but its lock (a process's)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != LOCK}


def write_files(folder: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)


def replace_run_folder(run_dir: Path, files: dict[str, bytes]) -> None:
    """Puts the files of a run folder that a Ray task sent back in place of the driver's copy: written to a
    sibling folder first and renamed, so an interrupted driver never leaves a half-written run folder."""
    incoming, old = run_dir.with_name(run_dir.name + ".incoming"), run_dir.with_name(run_dir.name + ".old")
    for path in (incoming, old):
        shutil.rmtree(path, ignore_errors=True)
    write_files(incoming, files)
    if run_dir.exists():
        os.replace(run_dir, old)
    os.replace(incoming, run_dir)
    shutil.rmtree(old, ignore_errors=True)


def ray_run(cmd, run_dir: str, torch_threads: int, code: dict[str, bytes], storage: str,
            token: tuple[str, str], inputs: dict[str, bytes]) -> tuple[str, float, str, dict | None]:
    """A run's Ray task, on the node Ray chose: returns (outcome, seconds, message, files).

    The training script and the simulators arrive as `code` and run from a temporary folder with this
    worker's Python. With shared storage (`storage` 'shared', or 'auto' and this node reads the driver's
    `token` file) the run writes into `run_dir` itself and files is None. Otherwise it trains in a
    temporary run folder, seeded with `inputs` (the driver's copy of an interrupted run, to resume), and
    files are that folder's files, for the driver to write into its results folder."""
    start = time.time()
    try:
        shared = storage == "shared" or (storage == "auto" and Path(token[0]).read_text() == token[1])
    except OSError:
        shared = False
    with tempfile.TemporaryDirectory(prefix="tasam-run-") as tmp:
        write_files(Path(tmp), code)
        folder = Path(run_dir) if shared else Path(tmp) / "runs" / Path(run_dir).name
        if not shared:
            write_files(folder, inputs)
        for _ in range(20):  # a killed attempt's training process may still be exiting (parent-death signal)
            if not folder_in_use(folder):
                break
            time.sleep(0.5)
        cmd = [sys.executable, Path(cmd[1]).name, *cmd[2:]]
        cmd[cmd.index(FLAG_RUN_DIR) + 1] = str(folder)
        outcome, message = run_training(cmd, folder, run_env(torch_threads), cwd=tmp)
        files = None if shared else folder_files(folder)
    return outcome, time.time() - start, message.replace(str(folder), run_dir), files


class RayPool:
    """The Ray backend: one Ray task per training run, placed by Ray with --cpus-per-run and --gpus-per-run
    and started again (--ray-max-retries) when its worker process or node dies; heuristic and transfer rows
    run in the driver, as in the local backend."""

    def __init__(self, args: Args):
        try:
            import ray
        except ImportError:
            raise SystemExit("run_experiments.py: error: --backend ray needs the `ray` package, which is not "
                             "installed: pip install ray") from None
        self.ray, self.args = ray, args
        self.started = not ray.is_initialized()  # else: a caller's Ray (a notebook, the tests)
        if self.started:
            cluster = args.ray_address or os.environ.get("RAY_ADDRESS")  # ray.init reads RAY_ADDRESS too
            local = {} if cluster else {"num_cpus": math.ceil(args.workers * args.cpus_per_run),
                                        "include_dashboard": False}
            try:
                ray.init(address=args.ray_address, log_to_driver=False, **local)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise SystemExit(f"run_experiments.py: error: cannot start or join Ray "
                                 f"(--ray-address {args.ray_address}): {e}") from None
        if __name__ != "__main__":  # imported: send this module's code with the tasks, as for a script
            ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
        resources = ray.cluster_resources()
        slots = resources.get("CPU", 1.0) / args.cpus_per_run
        if args.gpus_per_run > 0:
            slots = min(slots, resources.get("GPU", 0.0) / args.gpus_per_run)
        self.slots = max(1, int(slots))
        self.remote = ray.remote(ray_run).options(num_cpus=args.cpus_per_run, num_gpus=args.gpus_per_run,
                                                  max_retries=args.ray_max_retries)
        grid_dir = (args.results_dir / args.grid).resolve()
        grid_dir.mkdir(parents=True, exist_ok=True)
        self.token = (str(grid_dir / RAY_TOKEN), uuid.uuid4().hex)
        Path(self.token[0]).write_text(self.token[1])
        self.code: dict[str, object] = {}  # script -> object store reference of its code_files
        self.refs: list = []
        self.executor = ThreadPoolExecutor(max_workers=1)  # heuristic and transfer rows

    def submit(self, task: Task) -> Future:
        if task.kind != "train":
            return self.executor.submit(execute_row, task, self.args)
        script = task.cmd[1]
        if script not in self.code:
            self.code[script] = self.ray.put(code_files(script))
        resumable = self.args.ray_storage != "shared" and run_state(task.run_dir) == "resume"
        inputs = folder_files(task.run_dir) if resumable and not folder_in_use(task.run_dir) else {}
        ref = self.remote.remote(task.cmd, str(task.run_dir.resolve()), self.args.torch_threads,
                                 self.code[script], self.args.ray_storage, self.token, inputs)
        self.refs.append(ref)
        return ref.future()

    def result(self, task: Task, future: Future) -> tuple[str, float, str]:
        if task.kind != "train":
            return future.result()
        try:
            outcome, seconds, message, files = future.result()
        except Exception as e:  # its worker died more than --ray-max-retries times, or Ray failed
            return "failed", 0.0, f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"
        if files is not None:
            if folder_in_use(task.run_dir):
                return "failed", seconds, f"{task.run_dir} is in use by another training process; the " \
                                          "files of the Ray task's run are not written over it"
            replace_run_folder(task.run_dir, files)
        return outcome, seconds, message

    def stop(self) -> None:
        for ref in self.refs:
            self.ray.cancel(ref, force=True)  # kills the worker, whose training process follows it
        self.close()

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
        if self.started:
            self.ray.shutdown()


class Stopped(Exception):
    """Raised in the main thread by SIGTERM and SIGHUP, to stop the grid as Ctrl-C does."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def raise_stopped(signum, frame):
    raise Stopped(signum)


def fmt_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def main(args: Args) -> int:
    tasks = expand_grid(args)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.torch_threads))  # in-process evaluations
    todo, skipped = [], 0
    for task in tasks:
        if run_state(task.run_dir) == "finished":
            skipped += 1
            write_record(task, args)  # a run finished before records were kept, or in another sitting
        elif args.records_dir is not None and task.record(args.records_dir).exists():
            skipped += 1
        else:
            todo.append(task)
    n_resume = sum(FLAG_RESUME in t.cmd for t in todo)
    where = (f"{args.workers} workers" if args.backend == "local" else f"Ray tasks of {args.cpus_per_run:g} "
             f"CPU + {args.gpus_per_run:g} GPU, {args.ray_storage} storage")
    print(f"grid {args.grid}: {len(tasks)} runs in {args.results_dir / args.grid} | "
          f"{skipped} finished (skipped), {n_resume} to resume, {len(todo) - n_resume} to start | {where}")
    if args.dry_run:
        for task in tasks:
            state = run_state(task.run_dir)
            what = (shlex.join(task.cmd) if task.kind == "train" else
                    f"(in-process) evaluate {task.source or task.variant} on {task.scenario}, "
                    f"seed {task.seed}, {args.eval_episodes} episodes -> {task.run_dir}")
            print(f"[{state}] {what}")
        return 0
    pool = RayPool(args) if args.backend == "ray" else Pool(args)
    done = failed = 0
    train_seconds: list[float] = []
    t0 = time.time()
    main_thread = threading.current_thread() is threading.main_thread()
    stop_signals = (signal.SIGTERM, signal.SIGHUP) if main_thread else ()  # handlers only in the main thread
    handlers = {s: signal.signal(s, raise_stopped) for s in stop_signals}
    try:
        futures = {pool.submit(task): task for task in todo}
        for future in as_completed(futures):
            task = futures[future]
            outcome, seconds, message = pool.result(task, future)
            done += 1
            failed += outcome == "failed"
            if task.kind == "train":
                train_seconds.append(seconds)
            remaining = [t for f, t in futures.items() if not f.done()]
            n_left = sum(t.kind == "train" for t in remaining)
            eta = (np.mean(train_seconds) * n_left / pool.slots) if train_seconds else float("nan")
            detail = message
            if outcome == "finished":
                write_record(task, args)
                summary = read_summary(task.run_dir) or {}
                ret = (summary.get("final_eval") or {}).get("episodic_return")
                detail = f"final eval return {ret:.3f}" if isinstance(ret, (int, float)) else ""
            print(f"[{done}/{len(todo)}] {outcome:8s} {task.run_id}  {fmt_duration(seconds)}  {detail}"
                  f"  | failed {failed}, left {len(remaining)}, elapsed {fmt_duration(time.time() - t0)}"
                  f", ETA {fmt_duration(eta) if np.isfinite(eta) else '?'}", flush=True)
    except (KeyboardInterrupt, Stopped) as e:
        signum = e.signum if isinstance(e, Stopped) else signal.SIGINT
        print(f"interrupted ({signal.Signals(signum).name}): stopping the running runs; run the same command "
              "again to resume", flush=True)
        pool.stop()
        return 128 + signum
    finally:
        for s, handler in handlers.items():
            signal.signal(s, handler)
    pool.close()
    print(f"grid {args.grid} done: {done - failed} finished, {failed} failed, {skipped} skipped, "
          f"{fmt_duration(time.time() - t0)}")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main(tyro.cli(Args)))
    except ValueError as e:  # bad input: exit code 2, as for a bad flag
        print(f"run_experiments.py: error: {e}", file=sys.stderr)
        sys.exit(2)
