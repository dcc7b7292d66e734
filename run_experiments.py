"""Experiment runner: `python run_experiments.py <experiment>` runs what the records of one entry of
experiments.py lack.

    python run_experiments.py --list                         # the experiments
    python run_experiments.py rb-paper                       # its runs and reference rows
    python run_experiments.py rb-paper --seeds 6 7 8         # a slice of its seeds
    python run_experiments.py rb-paper --dry-run             # what would run, and why
    python run_experiments.py paper --backend ray --ray-address auto      # on a Ray cluster

Every run of an entry (experiments.training_runs: its methods x scenarios x seeds, seed-major)
trains in `<results-dir>/<experiment>/<run>/` and ends as `records/<experiment>/<run>.json`
(records.py). A run is skipped when its record is finished and holds the arguments the script
makes of the run's command line today (records.args_differ, after resolving them with the
script's own parser); a record of the same arguments in one of the entry's `reuse` experiments is
copied in instead of training again. A finished run folder of other arguments (another budget,
say) is never counted as the run: the runner names what differs and starts nothing. Each run
folder is one run, started once (a scenario or seed named twice is one run), and an entry may not
set what the runner and the run name own (--seed, --total-timesteps, --run-dir, --resume, the
scenario, in the entry's flags a method's flags). An unfinished run resumes from its checkpoint
(--resume), so a grid can be stopped (Ctrl-C, SIGTERM, SIGHUP: the runs checkpoint, the runner
exits 128 + the signal's number, a second signal changes nothing) and continued in another
sitting. A training process never outlives the runner (own process group, parent-death signal),
holds run.lock in its folder, runs under `nice` with --torch-threads torch threads (OMP/MKL
variables too). Bad input (a flag out of its range, an unknown experiment, a path that cannot be
read or written) exits 2 with a message naming it, before any work.

Reference rows (an entry's `references`: the environment's heuristics, the full-information
reference, constant RB splits `split-<eMBB>-<mMTC>-<URLLC>` and heuristics with their parameters
`<heuristic>-<values>`, e.g. the UE-count rule `ue_count-<RBs per URLLC UE>-<RBs per mMTC UE>`)
are scored in this process with the environment family's one evaluation function
(`oran_env.evaluate`, with each episode's metrics) on the runs' evaluation episodes, as are
the transfer rows (an entry's `transfer_from`: another experiment's saved models on another
scenario). `--backend ray` runs each training run as a Ray task (docs/experiments.md; Ray is
imported only then).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import fcntl
import importlib
import importlib.util
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
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


def stop_before_the_runs(signum, frame):
    """SIGINT/SIGTERM/SIGHUP before main's own handlers (during the imports): nothing started."""
    print(f"{signal.Signals(signum).name}: stopped before any run started", flush=True)
    os._exit(128 + signum)  # at once, without a KeyboardInterrupt traceback from the imports


if __name__ == "__main__":
    for early_signal in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(early_signal, stop_before_the_runs)

import numpy as np  # noqa: E402
import tyro  # noqa: E402

import records  # noqa: E402
import run_utils  # noqa: E402
from experiments import (EXPERIMENTS, TRAINING_REWARD_ROWS, Experiment,  # noqa: E402
                         argv, load_factor, run_name, training_runs)

FLAG_RUN_DIR, FLAG_RESUME, FLAG_THREADS = "--run-dir", "--resume", "--torch-threads"
MODEL_FILE = "model.pt"  # written by --save-model: {"actor", "qf", "hidden_sizes"}
ENV_MODULES = {"oran": "oran_env", "comp": "comp_env"}  # env id -> simulator module
CHECKPOINT, SUMMARY, LOCK, RUN_LOG = "checkpoint.pt", "summary.json", "run.lock", "runner.log"
RAY_TOKEN = ".ray-driver-token"  # in <results-dir>/<experiment>/: a node reading it shares the disk
COMPANIONS = ("run_utils.py",)  # modules next to the scripts that a script may import
# flags the runner sets for every run (seed, budget, run folder, resume, scenario): an entry's
# flags that named one would train another run than the one its name and folder say (its
# --torch-threads may stand: the runner's comes last, and threads change no result)
OWNED_FLAGS = ("--seed", "--total-timesteps", FLAG_RUN_DIR, FLAG_RESUME, "--scenario", "--env-id")
RANGES = {"seeds": "[0, 4294967295]", "workers": "[1, 1024]", "torch_threads": "[1, 1024]",
          "nice": "[0, 19]", "cpus_per_run": "(0, 4096]", "gpus_per_run": "[0, 1024]",
          "ray_max_retries": "[0, 1000]"}


@dataclass
class Args:
    experiment: tyro.conf.Positional[str] = ""
    """the experiment to run (a key of experiments.EXPERIMENTS; --list shows them)"""
    list: bool = False
    """print the experiments and exit"""
    definitions: Path | None = None
    """a Python file whose EXPERIMENTS dict adds entries (or replaces entries of the same name) to
    experiments.py's, for experiments of your own"""
    seeds: tuple[int, ...] = ()
    """run these seeds instead of the experiment's own"""
    results_dir: Path = Path("runs/experiments")
    """run folders go to <results-dir>/<experiment>/<run>/"""
    records: Path = Path("records")
    """records root: finished runs land in <records>/<experiment>/<run>.json"""
    workers: int = 2
    """runs executed at the same time (the local pool; with --backend ray and no --ray-address, the
    local Ray instance gets --workers x --cpus-per-run CPUs)"""
    torch_threads: int = 1
    """torch/OpenMP threads per run"""
    nice: int = 10
    """niceness of the training processes (local backend)"""
    references: bool = True
    """score the experiment's reference rows"""
    training: bool = True
    """train the experiment's runs (--no-training: only the reference rows, the records of finished
    run folders and the records reused from other experiments)"""
    dry_run: bool = False
    """print what would be skipped, reused, resumed or started, run nothing"""
    python: str = sys.executable
    """python interpreter of the training scripts (a Ray task uses its worker's Python)"""
    backend: Literal["local", "ray"] = "local"
    """where the training runs execute: `local` (a pool of --workers processes) or `ray` (one Ray
    task per run on a local Ray instance or the cluster at --ray-address; needs
    `pip install ray`)"""
    ray_address: str | None = None
    """Ray cluster to connect to (`auto`, or the head's `host:6379`); none starts a local one"""
    cpus_per_run: float = 1.0
    """Ray: CPUs reserved for each run (keep it >= --torch-threads)"""
    gpus_per_run: float = 0.0
    """Ray: GPUs reserved for each run; a fraction packs several runs on one GPU"""
    ray_storage: Literal["auto", "shared", "copy"] = "auto"
    """Ray: `shared`: tasks write into the run folders directly (a filesystem shared with the
    driver); `copy`: a task trains in a temporary folder on its node and returns the run folder's
    files; `auto`: `shared` on the nodes that see the driver's results folder, `copy` elsewhere"""
    ray_max_retries: int = 3
    """Ray: times a run's task is started again after its worker process or node died"""

    def __post_init__(self):
        run_utils.check_ranges(self, RANGES)


@dataclass(frozen=True)
class Task:
    """One record to produce: a training run, a reference row or a transfer row."""

    kind: Literal["train", "heuristic", "transfer"]
    experiment: str
    run: str
    scenario: str
    run_dir: Path
    cmd: tuple[str, ...] = field(default=(), compare=False)  # train: the script's command line
    requested: dict = field(default_factory=dict, compare=False)  # the complete arguments asked for
    source: Path | None = None  # transfer: the run folder whose model.pt is evaluated

    @property
    def run_id(self) -> str:
        return self.run


def load_definitions(path: Path) -> None:
    """Adds the EXPERIMENTS of a definitions file to experiments.EXPERIMENTS."""
    run_utils.check_input_file("--definitions", str(path))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None:
        raise ValueError(f"--definitions {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # the file's own error, named, without a traceback
        raise ValueError(f"--definitions {path}: {type(e).__name__}: {e}") from None
    defined = getattr(module, "EXPERIMENTS", None)
    if not isinstance(defined, dict):
        raise ValueError(f"--definitions {path}: defines no EXPERIMENTS dict")
    if bad := [name for name, exp in defined.items()
               if not isinstance(name, str) or not name or not isinstance(exp, Experiment)]:
        raise ValueError(f"--definitions {path}: EXPERIMENTS must map names to "
                         f"experiments.Experiment entries, not {bad[:3]}")
    EXPERIMENTS.update(defined)


def experiment_of(args: Args) -> Experiment:
    if args.definitions is not None:
        load_definitions(args.definitions)
    if not args.experiment:
        raise ValueError("name the experiment to run (--list shows them)")
    run_utils.check_choice("experiment", args.experiment, sorted(EXPERIMENTS))
    exp = EXPERIMENTS[args.experiment]
    if exp.historical:
        raise ValueError(f"experiment {args.experiment!r} cannot be run again: {exp.historical} "
                         "(its records are kept as they are)")
    return exp


def check_args(args: Args) -> None:
    """The paths and the interpreter, before any work (the numbers: Args.__post_init__)."""
    run_utils.check_output_path("--results-dir", str(args.results_dir), is_dir=True)
    run_utils.check_output_path("--records", str(args.records), is_dir=True)
    interpreter = shutil.which(args.python)
    if interpreter is None or not os.path.isfile(interpreter):
        raise ValueError(f"--python {args.python}: not an executable file")


def script_path(script: str) -> Path:
    return Path(__file__).resolve().parent / script


def env_family(scenario: str) -> tuple[str, str, dict]:
    """(simulator module, preset, config overrides) of a scenario token: comp-<preset>-x<k> is
    the preset with k times its slow and fast UEs, as ppo_comp.py's load sweep builds it."""
    token, k = load_factor(scenario)
    if not token.startswith("comp-"):
        return ENV_MODULES["oran"], scenario, {}
    preset = token[len("comp-"):]
    if k == 1:
        return ENV_MODULES["comp"], preset, {}
    import comp_env

    return ENV_MODULES["comp"], preset, comp_env.ue_load(comp_env.make_config(preset), k)


def flag_names(flags) -> set[str]:
    """The flags a command line names (--x=1 and --no-x as --x, --x_y as --x-y)."""
    names = {f.split("=")[0].replace("_", "-") for f in flags if f.startswith("--")}
    return {"--" + n[len("--no-"):] if n.startswith("--no-") else n for n in names}


def check_flags(name: str, exp: Experiment) -> None:
    """ValueError naming a flag of an entry that overrides what the runner sets (OWNED_FLAGS) or,
    in the entry's flags, one of a method's (the run name's variant and rho)."""
    for method in exp.methods:
        for scenario in exp.scenarios:
            shared = exp.flags_of(scenario)
            if clash := sorted(flag_names(method.flags + shared) & flag_names(OWNED_FLAGS)):
                raise ValueError(
                    f"experiment {name}: its flags set {clash[0]}, which the runner sets for every "
                    "run (seed, budget, run folder, resume, scenario): declare it through the "
                    "entry's seeds, steps or scenarios")
            if clash := sorted(flag_names(method.flags) & flag_names(shared)):
                raise ValueError(
                    f"experiment {name}: its flags on {scenario} set {clash[0]}, a flag of method "
                    f"{method.variant}__{method.rho}, whose run name would then not say what it "
                    "trains")


def check_resolved(run: tuple, script: str, resolved: dict, steps: int) -> None:
    """ValueError unless the script's arguments of a run are the seed, budget and scenario that
    its name and folder say."""
    method, scenario, seed = run
    found = {"seed": resolved.get("seed"), "total_timesteps": resolved.get("total_timesteps"),
             "scenario": records.scenario_token(resolved, script) if "scenario" in resolved
             else None}
    if wrong := [f"{k} {v!r} (its name says {want!r})" for (k, v), want in
                 zip(found.items(), (seed, steps, scenario)) if v != want]:
        raise ValueError(f"{run_name(*run)}: {script} makes a run of {', '.join(wrong)} of its "
                         "command line")


def expand(args: Args, exp: Experiment) -> list[Task]:
    """The reference rows, then the training (or transfer) runs seed-major; each run folder once."""
    check_flags(args.experiment, exp)
    out = args.results_dir / args.experiment
    tasks = []
    if args.references:
        rows = dict.fromkeys((records.run_id(f"heuristic-{name}", "none", s, 0), s)
                             for s in exp.scenarios for name in exp.references)
        tasks += [Task("heuristic", args.experiment, name, s, out / name) for name, s in rows]
    runs = training_runs(exp, args.seeds or None)  # --no-training still reuses and records
    if exp.transfer_from:
        source_exp, sources = exp.transfer_from
        for method, scenario, seed in runs:
            name = run_name(method, scenario, seed)
            source = args.results_dir / source_exp / run_name(method, dict(sources)[scenario], seed)
            tasks.append(Task("transfer", args.experiment, name, scenario, out / name,
                              source=source))
        return tasks
    by_script: dict[str, list] = {}
    for method, scenario, seed in runs:
        by_script.setdefault(method.script, []).append((method, scenario, seed))
    requested = {}
    for script, group in by_script.items():
        lines = [argv(exp, *run) + [FLAG_THREADS, str(args.torch_threads)] for run in group]
        resolved_args = records.resolve_args(script_path(script), lines)
        for run, line, resolved in zip(group, lines, resolved_args):
            check_resolved(run, script, resolved, exp.steps_of(run[1]))
            requested[run_name(*run)] = (run[0].script, line, resolved)
    for method, scenario, seed in runs:
        name = run_name(method, scenario, seed)
        script, line, resolved = requested[name]
        run_dir = out / name
        cmd = (args.python, str(script_path(script)), *line, FLAG_RUN_DIR, str(run_dir))
        tasks.append(Task("train", args.experiment, name, scenario, run_dir, cmd, resolved))
    return tasks


# ------------------------------------------------------------------------------------------------
# Records: skip what is finished with the requested arguments, reuse, write
# ------------------------------------------------------------------------------------------------
def differences(recorded: dict, requested: dict, script: str) -> str:
    """The arguments in which a record or run folder is not the requested run, with both values
    ('' when it is the run)."""
    keys = records.args_differ(recorded, requested, script)
    return ", ".join(f"{k} {str(recorded.get(k))[:40]} (asked {str(requested.get(k))[:40]})"
                     for k in keys)


def record_state(task: Task, args: Args, exp: Experiment) -> tuple[str, str]:
    """('finished' | 'reuse' | 'todo', why) of a task given the records."""
    record = records.read_record(records.record_path(args.records, task.experiment, task.run))
    if record is not None and record["finished"]:
        if task.kind != "train":
            return "finished", "record"
        differ = records.args_differ(record["args"], task.requested, record["script"])
        if not differ:
            return "finished", "record"
        why = f"its record has other {differ}: " + differences(record["args"], task.requested,
                                                                record["script"])
    else:
        why = "no finished record" if record is None else "its record is not finished"
    if task.kind == "train":
        for other in exp.reuse:
            found = records.read_record(records.record_path(args.records, other, task.run))
            if found and found["finished"] and \
                    not records.args_differ(found["args"], task.requested, found["script"]):
                return "reuse", f"the record of {other}"
    return "todo", why


def reuse(task: Task, args: Args, other: str) -> None:
    """Copies a record of the same arguments from another experiment into this one."""
    record = records.read_record(records.record_path(args.records, other, task.run))
    source = {"from": f"records/{other}/{task.run}.json"}
    record = {**record, "experiment": task.experiment, "converted": {**(record["converted"] or {}),
                                                                     "reused": source["from"]}}
    records.write_record(args.records, record)


def write_run_record(task: Task, args: Args, exp: Experiment) -> str:
    """The record of a finished run folder; returns a line about it."""
    record = records.record_from_run(task.run_dir, task.experiment, task.run)
    if task.kind == "train":
        if differ := differences(record["args"], task.requested, record["script"]):
            raise RuntimeError(f"{task.run_dir} holds a run with other arguments than requested "
                               f"({differ}); move it away to train the run anew")
        if exp.posthoc == "decodings":
            record["extra"]["posthoc"] = records.compact(decodings(task.run_dir, exp.eval_episodes))
        elif exp.posthoc == "training-reward":
            record["extra"]["posthoc"] = records.compact(training_reward_returns(task.run_dir))
    records.write_record(args.records, record)
    score = record["score"]
    return f"score {score:.3f}" if isinstance(score, (int, float)) else "no score"


# ------------------------------------------------------------------------------------------------
# Reference and transfer rows, evaluated in this process with the env family's `evaluate`
# ------------------------------------------------------------------------------------------------
def fixed_split(shares: tuple[float, float, float]):
    """The policy that plays round(share x K) RBs per slice at every DU and step (the rest idle)."""
    import oran_env

    def policy(env):
        counts = np.rint(np.asarray(shares) * env.config.num_rbs).astype(int)
        if counts.sum() > env.config.num_rbs:
            raise ValueError(f"shares {shares} round to {counts.sum()} of the "
                             f"{env.config.num_rbs} RBs")
        rb_slice = oran_env.counts_to_rb_slice(counts, env.config.num_rbs)
        return oran_env.encode_allocation(env, np.broadcast_to(
            rb_slice, (env.num_envs, env.n_agents, len(rb_slice))))
    return policy


def reference_policy(module, name: str):
    """policy(env) of a reference row name (module docstring)."""
    kind, *params = name.split("-")
    values = tuple(float(p) for p in params)
    if not params and name in module.HEURISTICS:
        return module.HEURISTICS[name]
    if name == "full_info" and hasattr(module, "full_information_reference"):
        return module.full_information_reference
    if kind == "split" and len(values) == 3:
        return fixed_split(values)
    if params and kind in module.HEURISTICS:  # a parameterised heuristic, positional values
        return lambda env: module.HEURISTICS[kind](env, *values)
    raise ValueError(f"unknown reference row {name!r} for {module.__name__}")


def final_eval(returns, metrics, ue_tput, episodes=None) -> dict:
    """A row's final_eval from `evaluate`'s values; with its per-episode value also each metric
    per episode ("per_episode", as ppo_comp's records) and, per agent, the mean over episodes of
    its return and QoS ("per_agent")."""
    final = {"episodic_return": float(np.mean(returns)),
             "episodic_returns": np.asarray(returns).tolist(), "metrics": metrics}
    if ue_tput:
        final[records.UE_THROUGHPUT_KEY] = list(ue_tput)
    if episodes:
        final["per_episode"] = episodes["metrics"]
        final["per_agent"] = {key[len("agent_"):]: np.mean(episodes[key], axis=0).tolist()
                              for key in ("agent_returns", "agent_qos") if key in episodes}
    return final


def reference_row(task: Task, exp: Experiment) -> dict:
    """The record of a reference row: its policy on the runs' evaluation episodes."""
    name = task.run.split("__")[0][len("heuristic-"):]
    module_name, preset, overrides = env_family(task.scenario)
    module = importlib.import_module(module_name)
    policy = reference_policy(module, name)
    options = {**dict(exp.env_options), **overrides}
    start = time.time()
    envs = module.make_env(preset, num_envs=exp.eval_episodes, seed=exp.eval_seed, **options)
    result = module.evaluate(lambda obs, env: policy(env), envs, exp.eval_seed,
                             per_episode=True)
    args = {"heuristic": name, "env_options": options, "scenario": task.scenario, "seed": 0,
            "eval_episodes": exp.eval_episodes, "eval_seed": exp.eval_seed}
    return records.make_record(task.experiment, task.run, kind="heuristic",
                               script=f"heuristic:{name}", args=args, global_step=0,
                               wall_time_s=time.time() - start, eval_history=[],
                               final_eval=final_eval(*result))


def load_actor(source: Path):
    """(actor, summary) of a finished run's saved model, rebuilt with its own script's Actor."""
    import torch

    summary = records.read_summary(source)
    finished = summary is not None and summary.get("status") == "finished"
    if not finished or not (source / MODEL_FILE).is_file():
        raise RuntimeError(f"{source}: no finished run with {MODEL_FILE}; run its experiment first "
                           "(its runs pass --save-model)")
    sys.path.insert(0, str(script_path(summary["script"]).parent))
    script = importlib.import_module(Path(summary["script"]).stem)
    model = torch.load(source / MODEL_FILE, map_location="cpu", weights_only=True)
    return script, model, summary


def transfer_row(task: Task, exp: Experiment) -> dict:
    """The record of a saved model evaluated on another scenario: the run's own environment options,
    with the fields in which the target preset differs from the run's preset replaced."""
    import torch

    script, model, summary = load_actor(task.source)
    run_args = summary["args"]
    module_name, preset, overrides = env_family(task.scenario)
    envlib = importlib.import_module(module_name)
    trained, target = envlib.make_config(run_args["scenario"]), envlib.make_config(preset)
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in run_args["env"].items()}
    config.update({f.name: getattr(target, f.name) for f in dataclasses.fields(target)
                   if getattr(target, f.name) != getattr(trained, f.name)})
    config.update(overrides)
    start = time.time()
    envs = envlib.make_env(preset, num_envs=exp.eval_episodes, seed=exp.eval_seed, **config)
    actor = script.Actor(envs.n_agents, envs.obs_dim, envs.act_dim, tuple(model["hidden_sizes"]))
    actor.load_state_dict(model["actor"])
    policy = script.actor_policy(actor, torch.device("cpu"))  # deterministic: tanh of the mean
    result = envlib.evaluate(policy, envs, exp.eval_seed)
    args = {"source_run": str(task.source), "trained_steps": summary.get("global_step"),
            "source_args": run_args, "scenario": task.scenario, "seed": run_args["seed"],
            "eval_episodes": exp.eval_episodes, "eval_seed": exp.eval_seed}
    return records.make_record(task.experiment, task.run, kind="transfer",
                               script=f"transfer:{summary['script']}", args=args, global_step=0,
                               wall_time_s=time.time() - start, eval_history=[],
                               final_eval=final_eval(*result))


def decodings(run_dir: Path, episodes: int) -> dict:
    """Return of each way of turning the final actor (checkpoint.pt) into one RB-level action, on
    the evaluation episodes: deterministic tanh(mean); sampled tanh(mean + std noise); z-score
    tanh(mean / std) (a contested RB goes to the slice most likely to claim it); expected count
    (each slice claims round(sum_k P(score_kl > 0)) RBs, its most likely ones)."""
    import torch

    import oran_env

    ckpt = torch.load(run_dir / CHECKPOINT, map_location="cpu", weights_only=True)
    sys.path.insert(0, str(script_path(ckpt["script"]).parent))
    script = importlib.import_module(Path(ckpt["script"]).stem)
    seed = script.EVAL_SEED
    env = oran_env.make_env(ckpt["args"]["scenario"], num_envs=episodes, seed=seed)
    actor = script.Actor(env.n_agents, env.obs_dim, env.act_dim, tuple(ckpt["hidden"]))
    actor.load_state_dict(ckpt["actor"])

    def decode(name, generator):
        def policy(obs, envs):
            with torch.no_grad():
                mean, log_std = actor(torch.as_tensor(obs).transpose(0, 1))
            std = log_std.exp()
            if name == "deterministic":
                action = torch.tanh(mean)
            elif name == "sampled":
                action = torch.tanh(mean + std * torch.randn(mean.shape, generator=generator))
            elif name == "z-score":
                action = torch.tanh(mean / std)
            else:
                # P(sampled score > 0) per (RB, slice)
                pk = torch.special.ndtr(mean / std).unflatten(-1, (-1, 3))
                count = pk.sum(-2, keepdim=True).round()
                rank = pk.argsort(-2, descending=True).argsort(-2)
                action = torch.where(rank < count, pk, -torch.ones_like(pk)).flatten(-2)
            return action.transpose(0, 1).numpy()
        return policy

    return {name: float(oran_env.evaluate(decode(name, torch.Generator().manual_seed(seed)), env,
                                          seed)[0].mean())
            for name in ("deterministic", "sampled", "z-score", "expected count")}


def training_reward_returns(run_dir: Path) -> dict:
    """Team return under a PPO run's own training reward (its --mode and --reward-aggregate) of
    its final policy (checkpoint.pt, greedy) and of the heuristics, on the run's evaluation
    episodes: does the policy beat them on the objective it was trained on? (The run's own
    evaluation scores every policy with the multi-agent sum.)"""
    import types

    import torch

    import comp_env

    ckpt = torch.load(run_dir / CHECKPOINT, map_location="cpu", weights_only=True)
    sys.path.insert(0, str(script_path(ckpt["script"]).parent))
    script = importlib.import_module(Path(ckpt["script"]).stem)
    run = types.SimpleNamespace(**ckpt["args"])

    def episodes():
        return comp_env.make_env(run.scenario, num_envs=run.eval_episodes, seed=run.eval_seed,
                                 reward=run.mode, reward_aggregate=run.reward_aggregate,
                                 **script.env_overrides(run))

    env = episodes()
    _, n_heads, row_dim = script.agent_layout(run.mode, env.n_agents, env.obs_dim)
    agent = script.Agent(row_dim, n_heads, env.act_dim, tuple(ckpt["hidden"]))
    agent.load_state_dict(ckpt["agent"])
    greedy = script.evaluate(script.greedy_policy(agent, run.mode), env, run.eval_seed)
    returns = {"policy": float(np.mean(greedy["return"]))}
    for name in TRAINING_REWARD_ROWS:
        policy = reference_policy(comp_env, name)
        team_returns = comp_env.evaluate(lambda obs, envs: policy(envs), episodes(),
                                         run.eval_seed)[0]
        returns[name] = float(np.mean(team_returns))
    return {"reward": f"{run.mode} {run.reward_aggregate}", "returns": returns}


def execute_row(task: Task, args: Args, exp: Experiment) -> tuple[str, float, str]:
    """A reference or transfer row, in this process: (outcome, seconds, message)."""
    start = time.time()
    try:
        record = reference_row(task, exp) if task.kind == "heuristic" else transfer_row(task, exp)
        records.write_record(args.records, record)
    except Exception as e:  # report and go on with the rest of the experiment
        return "failed", time.time() - start, f"{type(e).__name__}: {e}"
    return "finished", time.time() - start, f"score {record['score']:.3f}"


# ------------------------------------------------------------------------------------------------
# Execution: one training process per run folder, which never outlives the runner or Ray worker
# that started it
# ------------------------------------------------------------------------------------------------
def run_state(run_dir: Path, requested: dict | None = None
              ) -> Literal["finished", "other", "resume", "fresh"]:
    """What to do with a run folder: skip it (finished; with `requested`: with those arguments),
    leave it alone (a finished run of other arguments), resume it from its checkpoint, or start it
    anew."""
    summary = records.read_summary(run_dir)
    if summary is not None and summary.get("status") == "finished":
        if requested is not None and differences(summary.get("args") or {}, requested,
                                                 summary.get("script", "")):
            return "other"
        return "finished"
    if (Path(run_dir) / CHECKPOINT).is_file():
        return "resume"
    return "fresh"


# <linux/prctl.h>: the signal a process gets when the thread that started it dies
PR_SET_PDEATHSIG = 1


def start_run_process(cmd: list[str], log, env: dict, cwd: str | None = None,
                      niceness: int = 0) -> subprocess.Popen:
    """Starts a training process that dies with its starter: in a session and process group of its
    own (the terminal's Ctrl-C and hang-up reach only the runner, which stops its runs itself) and,
    on Linux, with SIGTERM as its parent-death signal, which the kernel sends when the starting
    thread dies, also of SIGKILL. Elsewhere only the runner's signal handlers stop it."""
    parent = os.getpid()
    # looked up before the fork
    prctl = ctypes.CDLL(None).prctl if sys.platform == "linux" else None

    def die_with_parent():  # in the child, between fork and exec
        os.nice(niceness)
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                            start_new_session=True, preexec_fn=die_with_parent)


def folder_in_use(run_dir: Path) -> bool:
    """True while a training process holds the run folder's lock (the scripts flock run.lock for
    life)."""
    try:
        with open(Path(run_dir) / LOCK, "rb") as f:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released again when f closes
    except FileNotFoundError:
        return False
    except BlockingIOError:
        return True
    return False


def run_env(torch_threads: int) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": str(torch_threads),
            "MKL_NUM_THREADS": str(torch_threads)}


def run_training(cmd, run_dir: Path, env: dict, cwd: str | None = None,
                 launch=start_run_process, requested: dict | None = None) -> tuple[str, str]:
    """Runs one training command in its run folder; returns (outcome 'finished' | 'failed',
    message).

    Both backends run through here, so skip / resume / fresh is decided when the run starts (a Ray
    task started again after its worker died resumes from the checkpoint its first attempt wrote):
    a finished folder is left alone, one with a checkpoint is resumed (--resume), any other is
    cleared of a dead run's leftovers first. A folder whose lock another process holds, or that
    holds a finished run of other arguments than `requested`, is not touched. The script's output
    is appended to runner.log."""
    state = run_state(run_dir, requested)
    if state == "finished":
        return "finished", "already finished"
    if state == "other":
        return "failed", f"{run_dir} holds a finished run of other arguments; not started"
    if folder_in_use(run_dir):
        return "failed", (f"{run_dir} is in use by another training process (it holds {LOCK}); "
                          "not started")
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


class Pool:
    """The local backend: --workers threads, each running one task at a time; remembers its training
    processes to stop them (Ctrl-C, SIGTERM, SIGHUP)."""

    def __init__(self, args: Args, exp: Experiment):
        self.args, self.exp, self.slots = args, exp, args.workers
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
            return execute_row(task, self.args, self.exp)
        start = time.time()
        outcome, message = run_training(task.cmd, task.run_dir, self.env, launch=self.launch,
                                        requested=task.requested)
        return outcome, time.time() - start, message

    def launch(self, cmd, log, env, cwd) -> subprocess.Popen:
        with self.lock:
            if self.stopping:
                raise RuntimeError("not started: the grid is stopping")
            proc = start_run_process(cmd, log, env, cwd, self.args.nice)
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
    """A training script, the simulator modules and the scripts' companion module: all of this
    project that a script imports."""
    here = Path(__file__).resolve().parent
    paths = [Path(script), *(here / f"{m}.py" for m in ENV_MODULES.values()),
             *(here / c for c in COMPANIONS)]
    return {p.name: p.read_bytes() for p in paths}


def folder_files(folder: Path) -> dict[str, bytes]:
    """{path relative to the folder: content} of a run folder's files, but its lock (a
    process's)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != LOCK}


def write_files(folder: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)


def replace_run_folder(run_dir: Path, files: dict[str, bytes]) -> None:
    """Puts the files of a run folder that a Ray task sent back in place of the driver's copy:
    written to a sibling folder first and renamed, so an interrupted driver never leaves a
    half-written run folder."""
    incoming, old = (run_dir.with_name(run_dir.name + ".incoming"),
                     run_dir.with_name(run_dir.name + ".old"))
    for path in (incoming, old):
        shutil.rmtree(path, ignore_errors=True)
    write_files(incoming, files)
    if run_dir.exists():
        os.replace(run_dir, old)
    os.replace(incoming, run_dir)
    shutil.rmtree(old, ignore_errors=True)


def ray_run(cmd, run_dir: str, torch_threads: int, code: dict[str, bytes], storage: str,
            token: tuple[str, str], inputs: dict[str, bytes],
            requested: dict | None = None) -> tuple[str, float, str, dict | None]:
    """A run's Ray task, on the node Ray chose: returns (outcome, seconds, message, files).

    The training script and the simulators arrive as `code` and run from a temporary folder with
    this worker's Python. With shared storage (`storage` 'shared', or 'auto' and this node reads the
    driver's `token` file) the run writes into `run_dir` itself and files is None. Otherwise it
    trains in a temporary run folder, seeded with `inputs` (the driver's copy of an interrupted run,
    to resume), and files are that folder's files, for the driver to write into its results
    folder."""
    start = time.time()
    try:
        shared = storage == "shared" or (storage == "auto"
                                         and Path(token[0]).read_text() == token[1])
    except OSError:
        shared = False
    with tempfile.TemporaryDirectory(prefix="tasam-run-") as tmp:
        write_files(Path(tmp), code)
        folder = Path(run_dir) if shared else Path(tmp) / "runs" / Path(run_dir).name
        if not shared:
            write_files(folder, inputs)
        # a killed attempt's training process may still be exiting (parent-death signal)
        for _ in range(20):
            if not folder_in_use(folder):
                break
            time.sleep(0.5)
        cmd = [sys.executable, Path(cmd[1]).name, *cmd[2:]]
        cmd[cmd.index(FLAG_RUN_DIR) + 1] = str(folder)
        outcome, message = run_training(cmd, folder, run_env(torch_threads), cwd=tmp,
                                        requested=requested)
        files = None if shared else folder_files(folder)
    return outcome, time.time() - start, message.replace(str(folder), run_dir), files


class RayPool:
    """The Ray backend: one Ray task per training run, placed by Ray with --cpus-per-run and
    --gpus-per-run and started again (--ray-max-retries) when its worker process or node dies;
    heuristic and transfer rows run in the driver, as in the local backend."""

    def __init__(self, args: Args, exp: Experiment):
        try:
            import ray
        except ImportError:
            raise SystemExit("run_experiments.py: error: --backend ray needs the `ray` package, "
                             "which is not installed: pip install ray") from None
        self.ray, self.args, self.exp = ray, args, exp
        self.started = not ray.is_initialized()  # else: a caller's Ray (a notebook, the tests)
        if self.started:
            # ray.init reads RAY_ADDRESS too
            cluster = args.ray_address or os.environ.get("RAY_ADDRESS")
            local = {} if cluster else {"num_cpus": math.ceil(args.workers * args.cpus_per_run),
                                        "include_dashboard": False}
            try:
                ray.init(address=args.ray_address, log_to_driver=False, **local)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise SystemExit(f"run_experiments.py: error: cannot start or join Ray "
                                 f"(--ray-address {args.ray_address}): {e}") from None
        # imported: send this module's code with the tasks, as for a script
        if __name__ != "__main__":
            ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
        resources = ray.cluster_resources()
        slots = resources.get("CPU", 1.0) / args.cpus_per_run
        if args.gpus_per_run > 0:
            slots = min(slots, resources.get("GPU", 0.0) / args.gpus_per_run)
        self.slots = max(1, int(slots))
        self.remote = ray.remote(ray_run).options(num_cpus=args.cpus_per_run,
                                                  num_gpus=args.gpus_per_run,
                                                  max_retries=args.ray_max_retries)
        grid_dir = (args.results_dir / args.experiment).resolve()
        grid_dir.mkdir(parents=True, exist_ok=True)
        self.token = (str(grid_dir / RAY_TOKEN), uuid.uuid4().hex)
        Path(self.token[0]).write_text(self.token[1])
        self.code: dict[str, object] = {}  # script -> object store reference of its code_files
        self.refs: list = []
        self.executor = ThreadPoolExecutor(max_workers=1)  # heuristic and transfer rows

    def submit(self, task: Task) -> Future:
        if task.kind != "train":
            return self.executor.submit(execute_row, task, self.args, self.exp)
        script = task.cmd[1]
        if script not in self.code:
            self.code[script] = self.ray.put(code_files(script))
        resumable = self.args.ray_storage != "shared" and run_state(task.run_dir) == "resume"
        inputs = folder_files(task.run_dir) if resumable and not folder_in_use(task.run_dir) else {}
        ref = self.remote.remote(task.cmd, str(task.run_dir.resolve()), self.args.torch_threads,
                                 self.code[script], self.args.ray_storage, self.token, inputs,
                                 task.requested)
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
                return "failed", seconds, (f"{task.run_dir} is in use by another training "
                                           "process; the files of the Ray task's run are not "
                                           "written over it")
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


class StopSignals:
    """SIGINT, SIGTERM and SIGHUP from the first line of main (in the main thread; elsewhere none):
    the first one sets `signum`, on which the runner stops its runs (they checkpoint) and exits
    128 + signum; a later one changes nothing (`timeout` sends a second SIGTERM)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self):
        self.signum: int | None = None
        main_thread = threading.current_thread() is threading.main_thread()
        self.previous = {s: signal.signal(s, self.receive)
                         for s in (self.SIGNALS if main_thread else ())}

    def receive(self, signum, frame) -> None:
        if self.signum is None:
            self.signum = signum

    def restore(self) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def stopped(self) -> int:
        print(f"interrupted ({signal.Signals(self.signum).name}): stopped; run the same command "
              "again to resume", flush=True)
        return 128 + self.signum


def fmt_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def main(args: Args) -> int:
    stop = StopSignals()
    try:
        return run_grid(args, stop)
    except ValueError:
        if stop.signum is None:  # bad input
            raise
        return stop.stopped()  # e.g. a Ctrl-C that also reached the argument resolver
    finally:
        stop.restore()


def run_grid(args: Args, stop: StopSignals) -> int:
    if args.list:
        if args.definitions is not None:
            load_definitions(args.definitions)
        for name, exp in EXPERIMENTS.items():
            print(f"{name:36s} {exp.doc}{' [historical]' if exp.historical else ''}")
        return 0
    check_args(args)
    exp = experiment_of(args)
    tasks = expand(args, exp)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.torch_threads))  # in-process evaluations
    todo, lines, conflicts, skipped = [], [], [], 0
    for task in tasks:
        if stop.signum is not None:
            return stop.stopped()
        state, why = record_state(task, args, exp)
        if state == "finished":
            skipped += 1
            continue
        if state == "reuse":
            lines.append(f"[reuse] {task.run}: {why}")
            if not args.dry_run:
                reuse(task, args, why.split()[-1])
            skipped += 1
            continue
        folder = run_state(task.run_dir, task.requested) if task.kind == "train" else "row"
        if folder == "other":  # never counted as the requested run, never written over
            summary = records.read_summary(task.run_dir)
            differ = differences(summary["args"], task.requested, summary["script"])
            conflicts.append(f"[conflict] {task.run}: {why}; {task.run_dir} holds a finished run "
                             f"of other arguments, {differ}; move it away to train the requested "
                             "run")
            continue
        if folder == "finished":
            lines.append(f"[record] {task.run}: finished in {task.run_dir}, {why}")
            if not args.dry_run:
                try:
                    write_run_record(task, args, exp)
                except (RuntimeError, ValueError) as e:  # an unreadable run folder: say which
                    print(f"error: {e}", file=sys.stderr)
                    return 1
            skipped += 1
            continue
        if task.kind != "heuristic" and not args.training:
            continue
        if folder == "resume":
            task = dataclasses.replace(task, cmd=task.cmd + (FLAG_RESUME,))
        todo.append(task)
        what = shlex.join(task.cmd) if task.kind == "train" else f"(in-process) score {task.run}"
        lines.append(f"[{folder}] {task.run}: {why}; {what}")
    n_train = sum(t.kind == "train" for t in todo)
    where = (f"{args.workers} workers" if args.backend == "local"
             else f"Ray tasks of {args.cpus_per_run:g} "
             f"CPU + {args.gpus_per_run:g} GPU, {args.ray_storage} storage")
    print(f"{args.experiment}: {len(tasks)} records | {skipped} there | {n_train} runs to train, "
          f"{len(todo) - n_train} rows to score | {where}")
    if args.dry_run or conflicts:
        print("\n".join(lines + conflicts))
    if conflicts and not args.dry_run:
        print(f"error: {len(conflicts)} run folders hold runs of other arguments; nothing started",
              file=sys.stderr)
        return 1
    if args.dry_run:
        return 0
    pool = RayPool(args, exp) if args.backend == "ray" else Pool(args, exp)
    done = failed = 0
    train_seconds: list[float] = []
    t0 = time.time()
    futures = {pool.submit(task): task for task in todo}
    pending = set(futures)
    while pending and stop.signum is None:
        finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
        for future in finished:
            task = futures[future]
            outcome, seconds, detail = pool.result(task, future)
            if task.kind == "train":
                train_seconds.append(seconds)
                if outcome == "finished":
                    try:
                        detail = write_run_record(task, args, exp)
                    except (RuntimeError, ValueError) as e:
                        outcome, detail = "failed", str(e)
            done += 1
            failed += outcome == "failed"
            n_left = sum(futures[f].kind == "train" for f in pending)
            eta = (np.mean(train_seconds) * n_left / pool.slots) if train_seconds else float("nan")
            print(f"[{done}/{len(todo)}] {outcome:8s} {task.run}  {fmt_duration(seconds)}  {detail}"
                  f"  | failed {failed}, left {len(pending)}, elapsed "
                  f"{fmt_duration(time.time() - t0)}, ETA "
                  f"{fmt_duration(eta) if np.isfinite(eta) else '?'}", flush=True)
    if stop.signum is not None:
        print(f"{signal.Signals(stop.signum).name}: stopping the running runs (they checkpoint)",
              flush=True)
        pool.stop()
        return stop.stopped()
    pool.close()
    print(f"{args.experiment} done: {done - failed} finished, {failed} failed, {skipped} there, "
          f"{fmt_duration(time.time() - t0)}")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main(tyro.cli(Args)))
    except ValueError as e:  # bad input: exit code 2, as for a bad flag
        print(f"run_experiments.py: error: {e}", file=sys.stderr)
        sys.exit(2)
