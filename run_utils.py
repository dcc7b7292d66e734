"""Run machinery of the training scripts (as CleanRL keeps cleanrl_utils): flag checks, the run
folder (one writer, resume checks, checkpoints, summary.json), signals, progress lines, the
non-finite guard, the atomic JSON writer, and the sharpness diagnostic that TA-SAM logs (the top
Hessian eigenvalue of a loss). docs/training.md#logging

Imports the standard library and torch only; it is handed the script's `Args` and never imports
a script.
"""
import dataclasses
import fcntl
import json
import math
import os
import pathlib
import shlex
import signal
import sys
import time

import torch
from torch.utils.tensorboard import SummaryWriter


def fail(message):
    """Bad input: one line naming the flag, exit code 2 (as for a bad flag), no traceback."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def check_ranges(args, ranges):
    """Raise ValueError naming the first numeric field of `args` (also inside tuples) that is not
    finite or lies outside its interval in `ranges` (name -> "[low, high)"; "(" and ")" are open
    ends; a field not listed must only be finite)."""
    for field in dataclasses.fields(args):
        values, interval = getattr(args, field.name), ranges.get(field.name, "(-inf, inf)")
        low, high = (float(x) for x in interval[1:-1].split(","))
        for value in values if isinstance(values, tuple) else (values,):
            if type(value) not in (int, float):
                continue
            if not (math.isfinite(value) and low <= value <= high and (value, interval[0]) != (
                    low, "(") and (value, interval[-1]) != (high, ")")):
                raise ValueError(f"--{field.name.replace('_', '-')} must be a finite number in "
                                 f"{interval}, got {value}")


def check_choice(flag, value, choices):
    """Exit 2 unless `value` is one of `choices` (a name checked against what exists)."""
    if value not in choices:
        fail(f"{flag} must be one of {', '.join(map(str, choices))}, got {value!r}")


def check_input_file(flag, path):
    """Exit 2 unless `path` is a readable file (checked before any work starts)."""
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        what = "a folder" if os.path.isdir(path) else "missing" if not os.path.exists(path) else \
            "not readable"
        fail(f"{flag} {path}: not a readable file ({what})")


def check_output_path(flag, path, is_dir):
    """Exit 2 unless `path` (a folder if `is_dir`, else a file) can be written: an existing path of
    the other kind, a path under a file or a folder this process may not write into is named
    before any work starts (nothing is created here)."""
    if os.path.exists(path) and os.path.isdir(path) != is_dir:
        fail(f"{flag} {path}: exists and is {'a file' if is_dir else 'a folder'}")
    existing = os.path.abspath(path if os.path.exists(path) and is_dir else os.path.dirname(
        os.path.abspath(path)))
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        fail(f"{flag} {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        fail(f"{flag} {path}: no permission to write into {existing}")


def check_memory(gib, what):
    """Stop before allocating `gib` GiB that this machine does not have."""
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    if gib > memory_gib:
        fail(f"{what} needs {gib:.1f} GiB of {memory_gib:.1f} GiB")


def catch_signals():
    """SIGINT and SIGTERM only append their number to the returned list: the training loop
    checkpoints and exits at the end of its step. Installed first in a script's main, so that an
    early signal prints no traceback; a second signal changes nothing."""
    received = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda signum, frame: received.append(signum))
    return received


def to_cpu(value):
    """Tensors (also in dicts) detached and on the CPU, for a checkpoint."""
    if isinstance(value, dict):
        return {k: to_cpu(v) for k, v in value.items()}
    return value.detach().cpu() if isinstance(value, torch.Tensor) else value


def to_device(value, device):
    """Tensors (also in dicts) of a checkpoint moved to `device`."""
    if isinstance(value, dict):
        return {k: to_device(v, device) for k, v in value.items()}
    return value.to(device) if isinstance(value, torch.Tensor) else value


class Run:
    """The run folder of one training run (events, checkpoint.pt, summary.json, run.lock).

    Opening it checks it before anything is written: a folder that holds a run needs --resume, a
    finished run exits 0, a checkpoint must be this script's with the same flags (except those in
    RESUMABLE); then it takes run.lock (one writer per folder) and opens the TensorBoard writer.
    `checkpoint` is the loaded checkpoint.pt of a resumed run, else None."""

    RESUMABLE = {"resume", "run_dir", "total_timesteps", "cuda", "torch_threads",
                 "checkpoint_interval", "progress_interval"}  # flags a resume may change

    def __init__(self, args, script, default_dir):
        self.args, self.script, self.dir = args, script, args.run_dir or default_dir
        self.saved_args = json.loads(json.dumps(dataclasses.asdict(args)))
        self.ckpt_path = os.path.join(self.dir, "checkpoint.pt")
        self.summary_path = os.path.join(self.dir, "summary.json")
        held = os.path.isdir(self.dir) and sorted(
            f for f in os.listdir(self.dir)
            if f in ("checkpoint.pt", "summary.json") or f.startswith("events.out.tfevents"))
        if held and not args.resume:
            fail(f"--run-dir {self.dir} already holds a run ({', '.join(held)}); "
                 "add --resume to continue it")
        summary = {"script": script}
        for path in (self.summary_path, self.ckpt_path) if args.resume else ():
            if os.path.lexists(path):  # a folder or an unreadable file: named, left as it is
                check_input_file("--resume", path)
        try:  # an unreadable or foreign summary.json is reported and left as it is
            if args.resume and os.path.exists(self.summary_path):
                summary = json.load(open(self.summary_path))
        except ValueError as e:
            summary = e
        if not isinstance(summary, dict) or summary.get("script") != script:
            fail(f"--resume: {self.summary_path} is not a summary.json of {script} "
                 f"({str(summary)[:80]})")
        if summary.get("status") == "finished":
            if args.total_timesteps > (summary.get("global_step") or math.inf):
                fail(f"--resume --total-timesteps {args.total_timesteps}: {self.summary_path} says "
                     f"the run finished at global_step={summary['global_step']}; a finished run "
                     "cannot be extended (its final checkpoint holds no replay buffer): start a "
                     "new run")
            print(f"{self.summary_path} says finished; nothing to resume")
            sys.exit(0)
        self.checkpoint = None
        if args.resume and os.path.exists(self.ckpt_path):
            self.checkpoint = self.load_checkpoint()
        step = self.checkpoint["global_step"] if self.checkpoint else 0
        if step > args.total_timesteps:
            fail(f"--resume --total-timesteps {args.total_timesteps}: {self.ckpt_path} is already "
                 f"at global_step={step}")
        try:
            os.makedirs(self.dir, exist_ok=True)
            # the flock is held until this process exits: one writer per folder
            self.lock = open(os.path.join(self.dir, "run.lock"), "a")
            fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self.writer = SummaryWriter(self.dir, purge_step=step + 1 if self.checkpoint else None)
        except BlockingIOError:  # nothing written: the other process owns this folder
            fail(f"another process is training in {self.dir} (it holds run.lock)")
        except OSError as e:  # a file, a path under a file, a folder we may not write into
            fail(f"--run-dir {self.dir}: cannot write there ({e.strerror or e})")
        if self.checkpoint is None:
            self.writer.add_text("hyperparameters", "|param|value|\n|-|-|" + "".join(
                f"\n|{k}|{v}|" for k, v in vars(args).items()))
        self.last_checkpoint, self.start_time = step, time.time()
        self.wall_time_before = self.checkpoint["wall_time"] if self.checkpoint else 0.0

    def load_checkpoint(self):
        try:
            checkpoint = torch.load(self.ckpt_path, map_location="cpu", weights_only=True)
            old_args, _ = checkpoint["args"], checkpoint["hidden"]  # an older format lacks "hidden"
        except Exception as e:  # any unreadable or foreign file: say which and stop
            fail(f"cannot resume from {self.ckpt_path}: not a readable checkpoint of this script "
                 f"({e!r})")
        changed = [k for k, v in self.saved_args.items()
                   if k not in self.RESUMABLE and old_args.get(k) != v]
        if changed or checkpoint.get("script") != self.script:
            fail(f"--resume: {self.ckpt_path} was written by {checkpoint.get('script')} with other "
                 f"values of {changed}")
        return checkpoint

    def wall_time(self):
        """Seconds of training over every sitting of the run."""
        return self.wall_time_before + time.time() - self.start_time

    def restore(self, modules, rng, device):
        """Load the checkpoint into `modules` (name -> object with load_state_dict; "buffer": the
        replay buffer, which a final checkpoint lacks) and the random generators; returns the
        checkpoint with its other tensors on `device`."""
        checkpoint = self.checkpoint
        if "buffer" in modules and checkpoint["buffer"] is None and \
                checkpoint["global_step"] < self.args.total_timesteps:
            fail(f"--resume: {self.ckpt_path} is the final checkpoint of a run, saved without its "
                 f"replay buffer; it cannot be extended beyond "
                 f"global_step={checkpoint['global_step']}")
        # a module that an older checkpoint lacks (the envs' state) is left as it is; the script
        # checks for it
        if missing := [key for key in modules if key not in checkpoint]:
            print(f"warning: {self.ckpt_path} is of an older format, without {', '.join(missing)}: "
                  "the run goes on from fresh episodes, not exactly as it would have without the "
                  "stop", flush=True)
        for key, module in modules.items():
            try:
                if checkpoint.get(key) is not None:
                    module.load_state_dict(checkpoint[key])
            except ValueError as e:  # e.g. an environment's state of another simulator version
                fail(f"--resume: {self.ckpt_path} does not fit this run's {key}: {e}")
        rng.bit_generator.state = checkpoint["numpy_rng"]
        torch.set_rng_state(checkpoint["torch_rng"])
        if device.type == "cuda" and checkpoint["cuda_rng"] is not None:
            torch.cuda.set_rng_state(checkpoint["cuda_rng"])
        print(f"resumed {self.dir} at global_step={checkpoint['global_step']}")
        return {k: v if k in modules else to_device(v, device) for k, v in checkpoint.items()}

    def save(self, global_step, modules, rng, device, with_buffer, **values):
        """checkpoint.pt, replaced atomically: the state dicts of `modules` (the replay buffer's
        only `with_buffer`), the random generators, the wall time and `values` (on the CPU)."""
        state = {"script": self.script, "args": self.saved_args, "global_step": global_step,
                 "wall_time": self.wall_time(), **to_cpu(values),
                 **{key: module.state_dict() if key != "buffer" or with_buffer else None
                    for key, module in modules.items()},
                 # as plain values: the key array of numpy's legacy MT19937 becomes a list, which
                 # torch.load(weights_only=True) reads
                 "numpy_rng": json.loads(json.dumps(rng.bit_generator.state,
                                                    default=lambda array: array.tolist())),
                 "torch_rng": torch.get_rng_state(),
                 "cuda_rng": torch.cuda.get_rng_state() if device.type == "cuda" else None}
        torch.save(state, f"{self.ckpt_path}.tmp")
        os.replace(f"{self.ckpt_path}.tmp", self.ckpt_path)
        self.last_checkpoint = global_step

    def check_finite(self, where, global_step, **values):
        """The non-finite guard: stop (exit 3) before a NaN or inf is used or simulated."""
        if bad := [k for k, v in values.items() if not torch.isfinite(torch.as_tensor(v)).all()]:
            print(f"error: non-finite {', '.join(bad)} in {where} at global_step={global_step}; "
                  f"last checkpoint: step {self.last_checkpoint} (0: none); try lower --q-lr, "
                  "--policy-lr, --alpha-lr", file=sys.stderr)
            sys.exit(3)

    def stop(self, signum, global_step):
        """After the checkpoint of a SIGINT/SIGTERM: print the command that resumes, exit. Further
        signals are ignored from here: Python drops its handlers while it shuts down, and a second
        SIGTERM would then kill the process instead of letting it exit with 128 + signum."""
        for other in (signal.SIGINT, signal.SIGTERM):
            signal.signal(other, signal.SIG_IGN)
        print(f"{signal.Signals(signum).name}: checkpoint at global_step={global_step}; resume "
              "with:\n  " + shlex.join([sys.executable, *sys.argv]
                                       + ["--resume"] * (not self.args.resume)
                                       + ["--run-dir", self.dir] * (not self.args.run_dir)),
              flush=True)
        sys.exit(128 + signum)

    def finish(self, global_step, **summary):
        """summary.json of the finished run."""
        write_json(self.summary_path, {
            "status": "finished", "script": self.script, "args": self.saved_args,
            "global_step": global_step, "wall_time_s": self.wall_time(), **summary})
        self.writer.close()


class Progress:
    """A progress line every `interval` seconds: the step, steps/s over the window since the last
    line or evaluation (training steps only), the last evaluation return and the ETA."""

    def __init__(self, interval, total_steps, global_step):
        self.interval, self.total_steps = interval, total_steps
        self.restart(global_step)

    def restart(self, global_step):
        self.last = (time.time(), global_step)

    def report(self, global_step, eval_history):
        if (now := time.time()) - self.last[0] >= self.interval:
            sps = (global_step - self.last[1]) / (now - self.last[0])
            self.last = (now, global_step)
            print(f"progress: global_step={global_step}/{self.total_steps}, {sps:.1f} steps/s, "
                  f"last eval_return={([[0, math.nan]] + eval_history)[-1][1]:.3f}, ETA "
                  f"{(self.total_steps - global_step) / sps / 60:.1f} min", flush=True)


def write_json(path, obj):
    """Strict JSON, written atomically (a reader never sees half a file): NaN and inf become null,
    and "non_finite_as_null" says whether any did."""
    found = []
    obj = json.loads(json.dumps(obj), parse_constant=found.append)  # NaN -> None (append's)
    text = json.dumps({**obj, "non_finite_as_null": bool(found)}, indent=1, allow_nan=False)
    pathlib.Path(f"{path}.tmp").write_text(text)
    os.replace(f"{path}.tmp", path)


def hessian_top_eigenvalue(loss, params, iters, generator, tol=1e-5):
    """Top eigenvalue of the Hessian H of `loss` (params): power iteration on Hessian-vector
    products (<= iters steps, to a change < tol); if the largest in magnitude, l, is < 0: H - lI."""
    grad = torch.cat([g.flatten() for g in torch.autograd.grad(loss, params, create_graph=True)])

    def power_iteration(shift):
        v, eigenvalue = torch.randn(len(grad), generator=generator).to(grad), math.inf
        for _ in range(iters):
            v = v / v.norm()
            hv = torch.autograd.grad(grad, params, v, retain_graph=True)
            hv = torch.cat([h.flatten() for h in hv]) - shift * v
            previous, eigenvalue, v = eigenvalue, (hv @ v).item(), hv
            if abs(eigenvalue - previous) <= tol * abs(eigenvalue):
                break
        return eigenvalue + shift

    top = power_iteration(0.0)
    return top if top >= 0 else power_iteration(top)
