"""Run records: the one committed form of a run, from which every figure and table is made
without retraining (`plot_results.py` reads nothing else).

    records/<experiment>/<run>.json       run = <variant>__<rho>__<scenario>__s<seed>

A record (RECORD_VERSION 2) holds, flat:
- experiment, run, kind ("train", "heuristic" or "transfer"), script;
- args: the run's complete resolved arguments (a training script's summary.json "args": every
  flag's value as the run used it), torch_threads (the run's torch thread count);
- global_step, wall_time_s, eval_history ([step, return, ...] of the deterministic policy),
  eval_sampled_history (the sampled policy), final_eval (the last evaluation: return, per-episode
  returns, metrics, per-UE throughput percentiles 0..100 in place of the per-UE values),
  best_eval_return;
- curves: the scalar curves the figures draw (training return, rho, critic sharpness, per-actor
  TD-error variance and SAM activation, alpha), averaged into at most CURVE_POINTS bins;
- score (below) and finished: a run is finished when its script said so and it has evaluations
  (a heuristic or transfer row: its one evaluation);
- converted: null, or where the record came from when it was converted from an older format
  (with `args_complete: false` where the complete arguments could not be recovered);
- extra: what only some experiments keep (post-hoc decodings, a load sweep, ...).

Protocol (ours, after rliable's recommendations; docs/results.md#the-papers-claims):
- score of a run = the mean of its deterministic evaluation returns at the steps
  s >= SCORE_WINDOW * T of a run of T environment steps; each evaluation is the mean team return
  over the same fixed evaluation episodes. A heuristic's or transfer row's score is its evaluation.
- sample efficiency = the area under the evaluation curve divided by the step range it covers.

`validate` checks a record before it is written or read (plot_results reads nothing else): the
schema version, every key's JSON type (a bool is no number), finite numbers of magnitude <=
MAX_MAGNITUDE everywhere, a run name whose method experiments.py declares (`python records.py
validate` and plot_results), the score of its evaluations; `check_file` says why a file is not
a valid record.

A record's args decide whether it is the run an experiment asks for (`args_differ`): every
argument must be equal but the run machinery's (MACHINERY_ARGS). ADDED_ARGS lists arguments that
scripts gained after records were made, with the value that reproduces the older runs.

    python records.py convert-learning-check old/tasam_marl_sac__paper__s6.json --experiment NAME
    python records.py convert-run runs/experiments/rb-paper/ta-sam__dynamic__paper__s6 \\
        --experiment NAME
    python records.py validate                 # every record under records/
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from run_utils import write_json

RECORD_VERSION = 2
SCORE_WINDOW = 0.8  # the score averages the evaluations of the last 20% of training
CURVE_POINTS = 100
CURVE_PREFIXES = ("charts/episodic_return", "charts/rho_", "sharpness/", "td_var/", "sam_active/",
                  "losses/alpha")
UE_THROUGHPUT_KEY = "ue_throughput_mbps"
UE_PERCENTILES_KEY = "ue_throughput_mbps_percentiles"
SIGNIFICANT = 6  # digits kept of every float
KINDS = ("train", "heuristic", "transfer")
# arguments that say where and how fast a run ran, not what it computed
# not `cuda`: with --net-size auto it picks the networks, so a GPU run is another run
MACHINERY_ARGS = frozenset({"run_dir", "resume", "torch_threads", "checkpoint_interval",
                            "progress_interval"})
# argument -> its value in runs recorded before it existed (ppo_comp.py's DeepCoMP options: their
# defaults leave CleanRL's PPO as it was, checked bit for bit on seeded runs)
ADDED_ARGS: dict[str, object] = {"kl_coef": 0.0, "kl_target": 0.01, "minibatch_rows": None,
                                 "norm_adv_over": "minibatch", "preset": "cleanrl",
                                 "reward_aggregate": "sum", "vf_clip": None}
# arguments a script computes from the others at run time (CleanRL's PPO: from num_envs, num_steps)
DERIVED_ARGS = {"ppo_comp.py": {"batch_size", "minibatch_size", "num_iterations"}}
SUMMARY = "summary.json"
# training script -> variant name of its runs (tasam_marl_sac: by its SAM flags, see variant_of)
SCRIPT_VARIANTS = {"sac_marl_baseline.py": "nosam", "sac_marl_l2.py": "l2"}
RHO_NAMES = {(0.01, 0.01): "equal", (0.05, 0.01): "unequal"}  # fixed (actor, critic) rho -> name
EVAL_SEED = 10_000  # the SAC scripts' evaluation episodes: one fixed set for every run and method
LEARNING_CHECK_CODE = "f02121e"  # the commit whose scripts trained the learning-check records
FIXED_LEARNING_CHECK_FLAGS = ("--torch-threads", "1", "--eval-episodes", "32")


def compact(x):
    """JSON-ready copy with floats rounded to SIGNIFICANT digits and non-finite floats as None."""
    if isinstance(x, dict):
        return {k: compact(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [compact(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(f"{x:.{SIGNIFICANT}g}") if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def binned(steps: np.ndarray, values: np.ndarray, points: int = CURVE_POINTS) -> list[list[float]]:
    """[steps, values] averaged into at most `points` bins of equal numbers of entries."""
    if len(steps) <= points:
        return [steps.tolist(), values.tolist()]
    bins = np.array_split(np.arange(len(steps)), points)
    return [[float(steps[b].mean()) for b in bins], [float(values[b].mean()) for b in bins]]


def read_scalars(run_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """All scalar series of a run folder's event files: tag -> (steps, values), sorted by step.

    TensorBoard's EventAccumulator reads the files in order and, where a resumed run's writer
    starts with a purge step (as the scripts do), drops what the interrupted run logged from that
    step on. Values logged at the same step are averaged."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    series = {}
    for tag in acc.Tags().get("scalars", []):
        events = acc.Scalars(tag)
        if not events:
            continue
        steps = np.array([e.step for e in events], dtype=np.int64)
        values = np.array([e.value for e in events], dtype=float)
        uniq, inverse = np.unique(steps, return_inverse=True)
        series[tag] = (uniq, np.bincount(inverse, weights=values) / np.bincount(inverse))
    return series


def read_summary(run_dir: Path) -> dict | None:
    """summary.json of a run folder, or None when it is missing or not valid JSON (half-written)."""
    try:
        summary = json.loads((Path(run_dir) / SUMMARY).read_text())
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


# ------------------------------------------------------------------------------------------------
# Names
# ------------------------------------------------------------------------------------------------
def run_id(variant: str, rho: str, scenario: str, seed: int) -> str:
    return f"{variant}__{rho}__{scenario}__s{seed}"


def parse_run_id(name: str) -> dict | None:
    """Inverse of run_id: {'variant', 'rho', 'scenario', 'seed'}, or None for another name."""
    parts = name.split("__")
    if len(parts) != 4 or not parts[3].startswith("s") or not parts[3][1:].isdigit():
        return None
    return {"variant": parts[0], "rho": parts[1], "scenario": parts[2], "seed": int(parts[3][1:])}


def scenario_token(args: dict, script: str = "") -> str:
    """The run name's scenario part: the O-RAN preset, or comp-<preset> for comp_env."""
    env_id = "comp" if Path(script).name == "ppo_comp.py" else args.get("env_id", "oran")
    return args["scenario"] if env_id == "oran" else f"{env_id}-{args['scenario']}"


def variant_of(script: str, args: dict) -> tuple[str, str]:
    """(variant, rho setting) of a training run from its script and arguments."""
    script = Path(script).name
    if script == "ppo_comp.py":
        return f"ppo-{args['mode']}", "none"
    if script in SCRIPT_VARIANTS:
        return SCRIPT_VARIANTS[script], "none"
    if script != "tasam_marl_sac.py":
        raise ValueError(f"{script}: not a training script of this project")
    if not args["sam_actor"]:
        variant = "critic-sam"
    elif not args["sam_critic"]:
        variant = "actor-sam"
    else:
        variant = "ta-sam" if args["selective"] else "both-sam"
    if args["rho_schedule"] == "dynamic":
        return variant, "dynamic"
    radii = (float(args["rho_actor"]), float(args["rho_critic"]))
    if radii in RHO_NAMES:
        return variant, RHO_NAMES[radii]
    if radii[0] == radii[1]:
        return variant, f"fixed{radii[0]:g}"
    return variant, f"fixed{radii[0]:g}-{radii[1]:g}"


def run_name(script: str, args: dict) -> str:
    return run_id(*variant_of(script, args), scenario_token(args, script), int(args["seed"]))


# ------------------------------------------------------------------------------------------------
# Score
# ------------------------------------------------------------------------------------------------
def eval_curve(record: dict) -> tuple[np.ndarray, np.ndarray]:
    """(steps, deterministic evaluation returns) of a run, in step order."""
    hist = sorted((int(s), float(v)) for s, v, *_ in record.get("eval_history") or []
                  if v is not None)
    return np.array([s for s, _ in hist], dtype=float), np.array([v for _, v in hist], dtype=float)


def run_score(record: dict) -> float | None:
    """Mean of the evaluations at steps >= SCORE_WINDOW * global_step (module docstring); a row
    without training scores its evaluation return; None without evaluations."""
    total = record.get("global_step") or 0
    steps, values = eval_curve(record)
    if total > 0 and record.get("kind", "train") == "train":
        late = values[steps >= SCORE_WINDOW * total]
        return float(late.mean()) if len(late) else None
    ret = (record.get("final_eval") or {}).get("episodic_return")
    return float(ret) if isinstance(ret, (int, float)) else None


def eval_auc(record: dict) -> float:
    """Area under the evaluation curve divided by its step range (the curve's mean level); a run
    with fewer than two evaluations gives its score."""
    steps, values = eval_curve(record)
    if len(steps) < 2 or steps[-1] <= steps[0]:
        return record["score"]
    return float(np.sum(np.diff(steps) * (values[1:] + values[:-1]) / 2) / (steps[-1] - steps[0]))


# ------------------------------------------------------------------------------------------------
# Make, validate, read, write
# ------------------------------------------------------------------------------------------------
def make_record(experiment: str, run: str, *, kind: str, script: str, args: dict, global_step: int,
                wall_time_s: float | None, eval_history: list, final_eval: dict,
                eval_sampled_history: list | None = None, best_eval_return: float | None = None,
                curves: dict | None = None, status: str = "finished", converted: dict | None = None,
                extra: dict | None = None) -> dict:
    """A record of the current version; the score and the finished flag are computed here."""
    final = dict(final_eval or {})
    tput = np.asarray(final.pop(UE_THROUGHPUT_KEY, None) or [], dtype=float)
    if len(tput):
        final[UE_PERCENTILES_KEY] = np.percentile(tput, np.arange(101)).tolist()
    record = {"record_version": RECORD_VERSION, "experiment": experiment, "run": run, "kind": kind,
              "script": script, "args": args, "torch_threads": args.get("torch_threads"),
              "global_step": int(global_step), "wall_time_s": wall_time_s,
              "eval_history": eval_history or [],
              "eval_sampled_history": eval_sampled_history or [],
              "final_eval": final, "best_eval_return": best_eval_return, "curves": curves or {},
              "converted": converted, "extra": extra or {}}
    if best_eval_return is None:  # the best evaluation, or the one evaluation of a row
        values = [v for _, v, *_ in record["eval_history"] if v is not None] or \
            [v for v in [final.get("episodic_return")] if isinstance(v, (int, float))]
        record["best_eval_return"] = max(values) if values else None
    record["score"] = run_score(record)
    has_evals = bool(record["eval_history"]) if kind == "train" else record["score"] is not None
    record["finished"] = status == "finished" and has_evals and record["score"] is not None
    return compact(record)


def record_from_run(run_dir: Path, experiment: str, run: str | None = None) -> dict:
    """The record of a run folder written by a training script or by the runner (summary.json and,
    for training runs, the curves of its event files)."""
    run_dir = Path(run_dir)
    summary = read_summary(run_dir)
    if summary is None:
        raise ValueError(f"{run_dir}: no readable {SUMMARY}")
    curves = {}
    if kind_of(summary.get("script", "")) == "train" and summary.get("global_step", 0) > 0:
        curves = {tag: binned(*series) for tag, series in read_scalars(run_dir).items()
                  if tag.startswith(CURVE_PREFIXES)}
    return record_from_summary(summary, experiment, run or run_dir.name, curves)


def kind_of(script: str) -> str:
    return "heuristic" if script.startswith("heuristic:") else \
        "transfer" if script.startswith("transfer:") else "train"


def record_from_summary(summary: dict, experiment: str, run: str | None = None, curves=None,
                        converted: dict | None = None) -> dict:
    """The record of a summary.json (a training run's, or a reference row's); a training run is
    named by its script and arguments unless `run` is given."""
    script = summary.get("script", "")
    kind = kind_of(script)
    if run is None or (kind == "train" and parse_run_id(run) is None):
        run = run_name(script, summary["args"])
    extra = {k: summary[k] for k in ("load_sweep", "num_ues", "num_bs", "eval_time_s")
             if k in summary}
    final, history = summary.get("final_eval") or {}, summary.get("eval_history") or []
    if script == "ppo_comp.py":
        final, history = ppo_final(final), [[h["step"], h["return"], h] for h in history]
    return make_record(experiment, run, kind=kind, script=script, args=summary.get("args") or {},
                       global_step=summary.get("global_step", 0),
                       wall_time_s=summary.get("wall_time_s"), eval_history=history,
                       eval_sampled_history=summary.get("eval_sampled_history"), final_eval=final,
                       best_eval_return=summary.get("best_eval_return"), curves=curves,
                       status=summary.get("status", "finished"), converted=converted, extra=extra)


def ppo_final(final: dict) -> dict:
    """ppo_comp's final evaluation (per-episode lists of each quantity) in the records' form."""
    per_episode = {k: list(v) for k, v in final.items()}
    return {"episodic_return": float(np.mean(per_episode["return"])),
            "episodic_returns": per_episode["return"],
            "metrics": {k: float(np.mean(v)) for k, v in per_episode.items() if k != "return"},
            "per_episode": per_episode}


REQUIRED = {"record_version": int, "experiment": str, "run": str, "kind": str, "script": str,
            "args": dict, "global_step": int, "eval_history": list, "eval_sampled_history": list,
            "final_eval": dict, "curves": dict, "finished": bool, "extra": dict}
OPTIONAL = {"score": float, "best_eval_return": float, "wall_time_s": float, "torch_threads": int,
            "converted": dict}  # None where a record has no value
MAX_MAGNITUDE = 1e12  # far above any quantity of these runs: a larger number is a corrupt record


def type_error(value, expected: type) -> str | None:
    """Why `value` is not of the JSON type `expected` (a bool is no number; an int is a float)."""
    ok = type(value) in ((int, float) if expected is float else (expected,))
    return None if ok else f"expected {'number' if expected is float else expected.__name__}, " \
                           f"got {json.dumps(value)[:40]}"


def bad_numbers(value, where: str) -> list[str]:
    """Every number under `value` that is not finite or larger in magnitude than MAX_MAGNITUDE."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in bad_numbers(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in bad_numbers(v, f"{where}[{i}]")]
    if type(value) in (int, float) and not abs(value) <= MAX_MAGNITUDE:  # NaN compares False
        return [f"{where}: {value!r} is not a finite number of magnitude <= {MAX_MAGNITUDE:g}"]
    return []


def history_problems(history: list, name: str) -> list[str]:
    """An evaluation history is [[step, return, ...], ...]: an integer step >= 0, a number."""
    return [f"{name}[{i}]: expected [step, return, ...], got {json.dumps(entry)[:40]}"
            for i, entry in enumerate(history)
            if not (isinstance(entry, list) and len(entry) >= 2 and type(entry[0]) is int
                    and entry[0] >= 0 and type_error(entry[1], float) is None)]


def validate(record, known_method=None) -> list[str]:
    """What is wrong with a record (empty when it is a valid record of this version): the schema
    version, the keys and their JSON types, finite numbers of a sane size everywhere, a run name
    <variant>__<rho>__<scenario>__s<seed> (with `known_method(variant, rho)` true, where given),
    the score and the finished flag as make_record computes them."""
    if not isinstance(record, dict) or record.get("record_version") != RECORD_VERSION:
        found = record.get("record_version") if isinstance(record, dict) else type(record).__name__
        return [f"not a record of version {RECORD_VERSION} (record_version: {found})"]
    problems = [f"{key}: missing" if key not in record else f"{key}: {why}"
                for key, expected in REQUIRED.items()
                if (why := type_error(record.get(key), expected)) is not None]
    problems += [f"{key}: {why}" for key, expected in OPTIONAL.items()
                 if record.get(key) is not None
                 and (why := type_error(record[key], expected)) is not None]
    problems += bad_numbers(record, "record")
    if problems:
        return problems
    if record["kind"] not in KINDS:
        problems.append(f"kind {record['kind']!r} not in {KINDS}")
    parsed = parse_run_id(record["run"])
    if parsed is None:
        problems.append(f"run {record['run']!r} is not <variant>__<rho>__<scenario>__s<seed>")
    elif known_method is not None and not known_method(parsed["variant"], parsed["rho"]):
        problems.append(f"unknown method {parsed['variant']}__{parsed['rho']} (not declared in "
                        "experiments.py)")
    problems += history_problems(record["eval_history"], "eval_history")
    problems += history_problems(record["eval_sampled_history"], "eval_sampled_history")
    final = record["final_eval"]
    for key, expected in (("episodic_return", float), ("metrics", dict)):
        if record["finished"] and (why := type_error(final.get(key), expected)) is not None:
            problems.append(f"final_eval.{key}: {why}")
    if not isinstance(final.get("episodic_returns", []), list) or any(
            type_error(v, float) for v in final.get("episodic_returns", [])):
        problems.append("final_eval.episodic_returns: expected a list of numbers")
    if problems:
        return problems
    score = run_score(record)
    if record["finished"] and score is None:
        problems.append("finished without a score")
    elif score is not None and not (isinstance(record.get("score"), (int, float)) and math.isclose(
            record["score"], score, rel_tol=10**-(SIGNIFICANT - 1), abs_tol=1e-9)):
        problems.append(f"score {record.get('score')} is not its evaluations' score {score:.6g}")
    if record["finished"] and record["kind"] == "train" and not record["eval_history"]:
        problems.append("finished without evaluations")
    complete = (record.get("converted") or {}).get("args_complete", True)
    if record["kind"] == "train" and complete and "seed" not in record["args"]:
        problems.append("args are not a run's complete arguments (no seed)")
    return problems


def check_file(path: Path, known_method=None) -> tuple[dict | None, list[str]]:
    """(record, []) of a valid record file at records/<experiment>/<run>.json, else (None, what is
    wrong with it)."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        return None, [f"not a readable JSON file ({type(e).__name__}: {str(e)[:80]})"]
    problems = validate(record, known_method)
    if not problems and (record["experiment"], record["run"]) != (path.parent.name, path.stem):
        problems.append(f"holds {record['experiment']}/{record['run']}, not "
                        f"{path.parent.name}/{path.stem}")
    return (None, problems) if problems else (record, [])


def read_record(path: Path) -> dict | None:
    """A valid record, or None when the file is not one."""
    return check_file(path)[0]


def record_path(records_dir: Path, experiment: str, run: str) -> Path:
    return Path(records_dir) / experiment / f"{run}.json"


def write_record(records_dir: Path, record: dict) -> Path:
    """Writes a valid record atomically to <records_dir>/<experiment>/<run>.json."""
    problems = validate(record)
    if problems:
        name = f"{record.get('experiment')}/{record.get('run')}"
        raise ValueError(f"record {name}: {'; '.join(problems)}")
    path = record_path(records_dir, record["experiment"], record["run"])
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, record)
    return path


def effective_args(args: dict) -> dict:
    """Arguments with the values the scripts derived from others filled in: --alpha-init unset
    (None) meant 1e-3 for RB-level actions and 1.0 otherwise (the scripts up to f02121e)."""
    if args.get("alpha_init", 0) is not None:
        return args
    rb_level = "rb_slice" in str((args.get("env") or {}).get("action_mode", ""))
    return {**args, "alpha_init": 1e-3 if rb_level else 1.0}


def args_differ(recorded: dict, requested: dict, script: str = "") -> list[str]:
    """The arguments in which a record is not the requested run: all but the run machinery's and
    those the script derives from the others, compared to SIGNIFICANT digits (as records keep
    them)."""
    recorded, requested = compact(effective_args(recorded)), compact(effective_args(requested))
    derived = DERIVED_ARGS.get(Path(script).name, set())
    keys = (set(recorded) | set(requested)) - MACHINERY_ARGS - derived
    missing = object()
    return sorted(k for k in keys if recorded.get(k, ADDED_ARGS.get(k, missing))
                  != requested.get(k, ADDED_ARGS.get(k, missing)))


# ------------------------------------------------------------------------------------------------
# Resolving a script's arguments, and converting learning-check records
# ------------------------------------------------------------------------------------------------
RESOLVER = """
import dataclasses, importlib, json, sys
from unittest import mock
import tyro
module = importlib.import_module(sys.argv[1])
out = []
for argv in json.load(sys.stdin):
    with mock.patch.object(sys, "argv", [sys.argv[1] + ".py", *argv]):
        args = module.parse_args() if hasattr(module, "parse_args") else tyro.cli(module.Args)
    out.append(json.loads(json.dumps(dataclasses.asdict(args))))
print(json.dumps(out))
"""


def resolve_args(script: Path, argvs: list[list[str]], python: str = sys.executable) -> list[dict]:
    """The complete arguments (summary.json "args") that `script` makes of each command line: the
    script's own parser, run in a subprocess next to the script (this module imports no script)."""
    script = Path(script).resolve()
    proc = subprocess.run([python, "-c", RESOLVER, script.stem], input=json.dumps(argvs),
                          capture_output=True, text=True, cwd=script.parent,
                          env={**os.environ, "PYTHONPATH": str(script.parent)})
    if proc.returncode != 0:  # the script's message, out of tyro's box
        lines = [line.strip(" │╭╮╰╯─") for line in proc.stderr.splitlines()]
        why = " ".join(x for x in lines
                       if x and "helptext" not in x and not x.startswith("Value error"))
        raise ValueError(f"{script.name} rejects a command line of {argvs}: {why[-400:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def old_code(rev: str, folder: Path, repo: Path = Path(__file__).resolve().parent) -> Path:
    """The training scripts and simulators of commit `rev`, written into `folder`."""
    for name in ("sac_marl_baseline.py", "sac_marl_l2.py", "tasam_marl_sac.py", "oran_env.py",
                 "comp_env.py", "pettingzoo_adapter.py"):
        text = subprocess.run(["git", "-C", str(repo), "show", f"{rev}:{name}"],
                              capture_output=True, text=True, check=True).stdout
        (folder / name).write_text(text)
    return folder


def learning_check_argv(old: dict, flags: list[str]) -> list[str]:
    """The command line benchmarks/learning_check.py ran for a record, but its run folder and
    --resume (run machinery, which the records do not keep)."""
    budget = ["--total-timesteps", str(old["total_timesteps"])] if old["total_timesteps"] != 20000 \
        else []
    return ["--scenario", old["scenario"], "--seed", str(old["seed"]), *FIXED_LEARNING_CHECK_FLAGS,
            *budget, *flags]


def convert_learning_check(paths: list[Path], experiment: str, records_dir: Path,
                           flags: list[str] | None = None,
                           rev: str = LEARNING_CHECK_CODE) -> list[Path]:
    """Records of the learning check's files ({script}__{scenario}__s{seed}.json: flags, histories,
    final QoS, no arguments): their complete arguments are what the scripts of commit `rev` make of
    the learning check's command line with the record's flags (`flags` for records that keep
    none)."""
    olds = []
    for path in paths:
        try:
            olds.append(json.loads(Path(path).read_text()))
        except ValueError as e:
            raise ValueError(f"{path}: not a learning-check record ({e})") from None
    for path, old in zip(paths, olds):
        if old.get("flags") is None and flags is None:
            raise ValueError(f"{path} keeps no flags: give them with --flags")
        if old.get("partial"):
            raise ValueError(f"{path} is a partial run (stopped before its end): not converted")
    written = []
    with tempfile.TemporaryDirectory(prefix="learning-check-") as tmp:
        old_code(rev, Path(tmp))
        for script in sorted({old["script"] for old in olds}):
            group = [(p, o) for p, o in zip(paths, olds) if o["script"] == script]
            argvs = [learning_check_argv(o, o["flags"] if o.get("flags") is not None else flags)
                     for _, o in group]
            resolved = resolve_args(Path(tmp) / script, argvs)
            for (path, old), argv, args in zip(group, argvs, resolved):
                if args["total_timesteps"] != old["total_timesteps"]:
                    raise ValueError(f"{path}: the flags give {args['total_timesteps']} steps, "
                                     f"the record {old['total_timesteps']}")
                record = make_record(
                    experiment, run_name(script, args), kind="train", script=script, args=args,
                    global_step=old["total_timesteps"], wall_time_s=old["wall_time_s"],
                    eval_history=old["eval_history"],
                    eval_sampled_history=old["eval_sampled_history"],
                    final_eval={"episodic_return": old["eval_history"][-1][1],
                                "sampled_episodic_return": old["eval_sampled_history"][-1][1],
                                "metrics": old["final_qos"]},
                    best_eval_return=max(v for _, v, *_ in old["eval_history"]),
                    converted={"from": "learning_check", "file": Path(path).name,
                               "args_resolved_by": f"{script} of {rev}: {shlex.join(argv)}"})
                written.append(write_record(records_dir, record))
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="records.py", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    lc = sub.add_parser("convert-learning-check", help="records of learning-check files")
    lc.add_argument("paths", nargs="+", type=Path, help="record files or folders of them")
    run = sub.add_parser("convert-run", help="records of finished run folders (their summary.json)")
    run.add_argument("paths", nargs="+", type=Path, help="run folders")
    for q in (lc, run):
        q.add_argument("--experiment", required=True, help="experiment the records belong to")
        q.add_argument("--records", type=Path, default=Path("records"), help="records root")
    lc.add_argument("--flags", default=None, help="flags of records that keep none, e.g. "
                                                  "--flags='--num-envs 1'")
    lc.add_argument("--rev", default=LEARNING_CHECK_CODE, help="commit whose scripts trained them")
    val = sub.add_parser("validate", help="check every record under folders (default: records)")
    val.add_argument("paths", nargs="*", type=Path, default=[Path("records")])
    args = p.parse_args(argv)
    if missing := [str(path) for path in args.paths if not path.exists()]:
        print(f"records.py: error: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    files = [f for path in args.paths
             for f in (sorted(path.rglob("*.json")) if path.is_dir() else [path])]
    try:
        if args.command == "validate":
            from experiments import known_method  # the names the experiments declare (CLI only)

            bad = [(f, check_file(f, known_method)[1]) for f in files]
            for f, problems in bad:
                if problems:
                    print(f"{f}: {'; '.join(problems)}")
            print(f"{len(files)} records, {sum(bool(b) for _, b in bad)} invalid")
            return 1 if any(b for _, b in bad) else 0
        if args.command == "convert-learning-check":
            flags = None if args.flags is None else shlex.split(args.flags)
            written = convert_learning_check(files, args.experiment, args.records, flags, args.rev)
        else:
            written = []
            for path in args.paths:
                record = record_from_run(path, args.experiment)
                if not record["finished"]:
                    raise ValueError(f"{path}: not a finished run with evaluations")
                written.append(write_record(args.records, record))
    except (ValueError, OSError, KeyError, subprocess.CalledProcessError) as e:
        print(f"records.py: error: {e}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
