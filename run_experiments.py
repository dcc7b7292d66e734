"""Experiment runner: one command runs a named grid of variants x rho settings x scenarios x seeds.

    python run_experiments.py --grid paper                 # the main grid (see GRIDS below)
    python run_experiments.py --grid paper --dry-run       # print every command, run nothing
    python run_experiments.py --grid paper --seeds 10 --steps 20000 --workers 4   # scale up
    python run_experiments.py --grid paper --extra-args="--eval-interval 1000"    # more script flags

Grids: `paper` (No-SAM, L2, and Actor/Critic/Both/TA-SAM x rho equal 0.01/0.01, unequal 0.05/0.01,
dynamic linear decay; on `paper`), `rho_sweep` (Actor/Critic/Both-SAM, fixed rho 0..0.06),
`du_sweep` (No-SAM and TA-SAM, 2..10 DUs with 200 UEs), `nonstationary` (No-SAM, L2, TA-SAM; the
traffic shifts half-way through training), `generalisation` (the `paper` grid's saved models
evaluated on `light` and `heavy`, no training: run `paper` first), `comp` (No-SAM and TA-SAM on
DeepCoMP's medium scenario). Each grid has 5 seeds by default.

Every run lands in `results/<grid>/<variant>__<rho>__<scenario>__s<seed>/` (docs/INTERFACES.md,
section 3). Running the same command again skips finished runs (summary.json with status
"finished"), resumes interrupted ones (`--resume` when their checkpoint.pt exists) and starts the
rest from scratch, so a grid can be stopped with Ctrl-C and continued, or widened with more seeds.

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
  70 training runs of `paper` need about 1.5 hours on this 2-core machine. Scale with --steps,
  --seeds, --workers; --no-cpu-budget runs the scripts' own defaults (e.g. with
  --extra-args="--cuda").
- Runs are ordered seed-major (all methods of seed 1, then seed 2, ...), so a grid cut short still
  holds complete seeds for every method.
- Each worker runs one training script as a subprocess with one torch thread (--torch-threads and
  the OMP/MKL variables): on a small machine several single-threaded runs beat one multi-threaded.
- Reference rows: the environment module's `HEURISTICS` are evaluated for every scenario and seed
  of the grid exactly as the scripts evaluate (same evaluation seeds, `--eval-episodes` episodes,
  same environment options) and stored as `heuristic-<name>__none__<scenario>__s<seed>/` run
  folders with the same summary.json, so `plot_results.py` shows them next to the methods.
- Generalisation rows: a `paper` run's model.pt (the commands pass --save-model) is rebuilt with its
  own script's `Actor` and scored with that script's `evaluate` on the target preset, keeping every
  other environment option of the run.

The mapping from variant / rho setting / scenario to the training scripts' command-line flags is the
block of tables right below; align it there if a script's flags change.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import tyro

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
EVAL_SEED_OFFSET = 10_000  # the scripts evaluate on environments seeded seed + 10_000
MODEL_FILE = "model.pt"  # written by --save-model: {"actor", "qf", "hidden_sizes"}
ENV_MODULES = {"oran": "oran_env", "comp": "comp_env"}  # env id -> simulator module
ENV_ID_VALUES = {"oran": None, "comp": "comp"}  # env id -> value of FLAG_ENV_ID (None: script default)
# scenario token (the run id's third part) -> (env id, preset name of the env module's SCENARIOS)
SCENARIOS: dict[str, tuple[str, str]] = {
    **{name: ("oran", name) for name in ("paper", "small", "light", "heavy", "nonstationary")},
    **{f"du{n}": ("oran", f"du{n}") for n in range(2, 11)},  # 2..10 DUs, 200 UEs
    **{f"comp-{name}": ("comp", name) for name in ("small", "medium", "large")},
}
CHECKPOINT, SUMMARY = "checkpoint.pt", "summary.json"
SAM_VARIANTS = ("actor-sam", "critic-sam", "both-sam", "ta-sam")
RHO_SWEEP = (0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06)


@dataclass(frozen=True)
class GridSpec:
    """One named grid: (variant, rho setting) pairs crossed with scenarios and seeds."""

    methods: tuple[tuple[str, str], ...]
    scenarios: tuple[str, ...]
    steps: int  # default --total-timesteps per run [ours]; --steps overrides
    doc: str
    transfer_from: tuple[str, str] | None = None  # (grid, scenario) whose saved models to evaluate
    shift_fraction: float | None = None  # traffic shift after this fraction of the budget


PAPER_METHODS = (("nosam", "none"), ("l2", "none")) + tuple(
    (v, r) for r in ("equal", "unequal", "dynamic") for v in SAM_VARIANTS)
GRIDS: dict[str, GridSpec] = {
    "paper": GridSpec(PAPER_METHODS, ("paper",), 5_000,
                      "No-SAM, L2 and the four SAM variants x three rho settings on `paper`"),
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
    "generalisation": GridSpec(PAPER_METHODS, ("light", "heavy"), 0,
                               "the `paper` grid's saved models evaluated on `light`/`heavy`",
                               transfer_from=("paper", "paper")),
    "comp": GridSpec((("nosam", "none"), ("ta-sam", "dynamic")), ("comp-medium",), 5_000,
                     "multi-agent SAC and TA-SAM on DeepCoMP's medium scenario"),
}


@dataclass
class Args:
    grid: Literal["paper", "rho_sweep", "du_sweep", "nonstationary", "generalisation", "comp"] = "paper"
    """named grid to run (see the module docstring and GRIDS)"""
    results_dir: Path = Path("results")
    """root of the results folder; runs go to <results-dir>/<grid>/<run id>/"""
    seeds: int = 5
    """number of seeds per configuration (seeds first-seed .. first-seed + seeds - 1)"""
    first_seed: int = 1
    """first seed"""
    steps: int | None = None
    """--total-timesteps per run (default: the grid's own budget)"""
    workers: int = 2
    """runs executed at the same time"""
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
    """evaluate the environment's heuristics as reference rows"""
    dry_run: bool = False
    """print the commands and what would be skipped/resumed, run nothing"""
    python: str = sys.executable
    """python interpreter for the training scripts"""


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
                  grid_flags: tuple[str, ...] = (), cpu_budget: bool = True) -> tuple[str, ...]:
    """The training script's command line for one run (resume: continue from its checkpoint)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}: expected one of {sorted(VARIANTS)}")
    script, variant_flags = VARIANTS[variant]
    cmd = [python, script, *variant_flags, *rho_flags(variant, rho), *scenario_flags(scenario),
           FLAG_SEED, str(seed), FLAG_STEPS, str(steps), FLAG_RUN_DIR, str(run_dir),
           FLAG_THREADS, str(torch_threads), *grid_flags, *COMMON_FLAGS,
           *(budget_flags(scenario) if cpu_budget else []), *shlex.split(extra_args)]
    if resume:
        cmd.append(FLAG_RESUME)
    return tuple(cmd)


def budget_flags(scenario: str) -> list[str]:
    options, flags = CPU_BUDGET[SCENARIOS[scenario][0]]
    return env_option_flags(options) + flags


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
    return list(importlib.import_module(ENV_MODULES[SCENARIOS[scenario][0]]).HEURISTICS)


def expand_grid(args: Args) -> list[Task]:
    """All tasks of the grid, seed-major; heuristic rows after the training runs of each seed."""
    if args.seeds < 1 or args.workers < 1 or args.torch_threads < 1 or args.eval_episodes < 1:
        raise ValueError("--seeds, --workers, --torch-threads and --eval-episodes must be >= 1, got "
                         f"{args.seeds}, {args.workers}, {args.torch_threads}, {args.eval_episodes}")
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
    methods = [(v, r) for v, r in spec.methods
               if (not args.variants or v in args.variants) and (not args.rhos or r in args.rhos)]
    steps = args.steps or spec.steps
    grid_flags = (FLAG_SHIFT, str(int(steps * spec.shift_fraction))) if spec.shift_fraction else ()
    grid_dir = args.results_dir / args.grid
    tasks = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for scenario in scenarios:
            for variant, rho in methods:
                run_dir = grid_dir / run_id(variant, rho, scenario, seed)
                if spec.transfer_from:
                    source_grid, source_scenario = spec.transfer_from
                    source = args.results_dir / source_grid / run_id(variant, rho, source_scenario, seed)
                    tasks.append(Task("transfer", args.grid, variant, rho, scenario, seed, run_dir,
                                      source=source))
                    continue
                resume = run_state(run_dir) == "resume"
                tasks.append(Task("train", args.grid, variant, rho, scenario, seed, run_dir,
                                  train_command(args.python, variant, rho, scenario, seed, steps,
                                                run_dir, resume, args.extra_args, args.torch_threads,
                                                grid_flags, args.cpu_budget)))
            if args.heuristics:
                for name in heuristic_names(scenario):
                    variant = f"heuristic-{name}"
                    tasks.append(Task("heuristic", args.grid, variant, "none", scenario, seed,
                                      grid_dir / run_id(variant, "none", scenario, seed)))
    return tasks


# ------------------------------------------------------------------------------------------------
# Reference rows evaluated in the runner: heuristics, and saved models on another scenario
# ------------------------------------------------------------------------------------------------
def evaluate_heuristic(scenario: str, name: str, seed: int, episodes: int,
                       env_options: dict | None = None) -> dict:
    """final_eval dict (INTERFACES.md, section 2) of one heuristic over `episodes` episodes.

    Scored like the scripts' deterministic evaluation: `episodes` parallel copies of the environment
    seeded seed + EVAL_SEED_OFFSET run one episode each; an episode's team return is the mean over
    agents of their returns, each KPI its mean over steps and episodes, and each UE's throughput its
    mean over the episode. `env_options` override fields of the preset (as the runs' flags do)."""
    env_id, preset = SCENARIOS[scenario]
    module = importlib.import_module(ENV_MODULES[env_id])
    policy = module.HEURISTICS[name]
    env = module.make_env(preset, num_envs=episodes, seed=seed + EVAL_SEED_OFFSET, **(env_options or {}))
    env.reset(seed=seed + EVAL_SEED_OFFSET)
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
    `evaluate` (deterministic actions, environments seeded seed + EVAL_SEED_OFFSET). The environment
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
    seed = int(run_args["seed"]) + EVAL_SEED_OFFSET
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
        options = CPU_BUDGET[SCENARIOS[task.scenario][0]][0] if cpu_budget else {}
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
# Execution
# ------------------------------------------------------------------------------------------------
class Pool:
    """Runs tasks with a fixed number of workers; remembers its subprocesses to stop them."""

    def __init__(self, args: Args):
        self.args = args
        self.procs: set[subprocess.Popen] = set()
        self.lock = threading.Lock()
        self.stopping = False
        self.env = {**os.environ, "OMP_NUM_THREADS": str(args.torch_threads),
                    "MKL_NUM_THREADS": str(args.torch_threads)}

    def execute(self, task: Task) -> tuple[Task, str, float, str]:
        """Returns (task, outcome 'finished' | 'failed', seconds, message)."""
        start = time.time()
        if task.kind != "train":
            try:
                run_in_process(task, self.args.eval_episodes, self.args.cpu_budget)
            except Exception as e:  # report and go on with the rest of the grid
                return task, "failed", time.time() - start, f"{type(e).__name__}: {e}"
            return task, "finished", time.time() - start, ""
        if FLAG_RESUME not in task.cmd and task.run_dir.exists():
            shutil.rmtree(task.run_dir)  # leftovers of a run that died before its first checkpoint
        task.run_dir.mkdir(parents=True, exist_ok=True)
        log_path = task.run_dir / "runner.log"
        with open(log_path, "a") as log:
            log.write(f"$ {shlex.join(task.cmd)}\n")
            log.flush()
            with self.lock:
                if self.stopping:
                    return task, "failed", 0.0, "not started (stopping)"
                proc = subprocess.Popen(task.cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env)
                self.procs.add(proc)
            rc = proc.wait()
            with self.lock:
                self.procs.discard(proc)
        seconds = time.time() - start
        if rc != 0:
            return task, "failed", seconds, f"exit code {rc}, log: {log_path}"
        if run_state(task.run_dir) != "finished":
            return task, "failed", seconds, f"exited 0 but wrote no finished {SUMMARY}, log: {log_path}"
        return task, "finished", seconds, ""

    def stop(self) -> None:
        with self.lock:
            self.stopping = True
            for proc in self.procs:
                proc.terminate()


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
        else:
            todo.append(task)
    n_resume = sum(FLAG_RESUME in t.cmd for t in todo)
    print(f"grid {args.grid}: {len(tasks)} runs in {args.results_dir / args.grid} | "
          f"{skipped} finished (skipped), {n_resume} to resume, {len(todo) - n_resume} to start | "
          f"{args.workers} workers")
    if args.dry_run:
        for task in tasks:
            state = run_state(task.run_dir)
            what = (shlex.join(task.cmd) if task.kind == "train" else
                    f"(in-process) evaluate {task.source or task.variant} on {task.scenario}, "
                    f"seed {task.seed}, {args.eval_episodes} episodes -> {task.run_dir}")
            print(f"[{state}] {what}")
        return 0
    pool = Pool(args)
    done = failed = 0
    train_seconds: list[float] = []
    t0 = time.time()
    executor = ThreadPoolExecutor(max_workers=args.workers)
    futures = [executor.submit(pool.execute, task) for task in todo]
    try:
        for future in as_completed(futures):
            task, outcome, seconds, message = future.result()
            done += 1
            failed += outcome == "failed"
            if task.kind == "train":
                train_seconds.append(seconds)
            remaining = [t for t, f in zip(todo, futures) if not f.done()]
            n_left = sum(t.kind == "train" for t in remaining)
            eta = (np.mean(train_seconds) * n_left / args.workers) if train_seconds else float("nan")
            detail = message
            if outcome == "finished":
                summary = read_summary(task.run_dir) or {}
                ret = (summary.get("final_eval") or {}).get("episodic_return")
                detail = f"final eval return {ret:.3f}" if isinstance(ret, (int, float)) else ""
            print(f"[{done}/{len(todo)}] {outcome:8s} {task.run_id}  {fmt_duration(seconds)}  {detail}"
                  f"  | failed {failed}, left {len(remaining)}, elapsed {fmt_duration(time.time() - t0)}"
                  f", ETA {fmt_duration(eta) if np.isfinite(eta) else '?'}", flush=True)
    except KeyboardInterrupt:
        print("interrupted: stopping the running runs; run the same command again to resume",
              flush=True)
        pool.stop()
        executor.shutdown(wait=True, cancel_futures=True)
        return 130
    executor.shutdown(wait=True)
    print(f"grid {args.grid} done: {done - failed} finished, {failed} failed, {skipped} skipped, "
          f"{fmt_duration(time.time() - t0)}")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main(tyro.cli(Args)))
    except ValueError as e:  # bad input: exit code 2, as for a bad flag
        print(f"run_experiments.py: error: {e}", file=sys.stderr)
        sys.exit(2)
