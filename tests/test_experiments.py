"""Tests of the experiment runner and plot_results.py on small synthetic run folders."""

import json
import shutil
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import plot_results as pr  # noqa: E402
import records  # noqa: E402
import run_experiments as rx  # noqa: E402

QOS = {"qos_embb": 0.6, "qos_mmtc": 0.8, "qos_urllc": 0.5}


def write_run(grid_dir: Path, variant: str, rho: str, scenario: str, seed: int, final: float,
              steps: int = 1000, curve_end: float | None = None, agents: int = 2,
              args_extra: dict | None = None, shift: int | None = None) -> Path:
    """A finished synthetic run: TensorBoard scalars with the scripts' tags and a summary.json."""
    from torch.utils.tensorboard import SummaryWriter

    run_dir = grid_dir / rx.run_id(variant, rho, scenario, seed)
    writer = SummaryWriter(str(run_dir))
    end = final if curve_end is None else curve_end
    for step in range(0, steps + 1, 50):
        frac = step / steps
        dip = 5.0 if shift is not None and shift <= step < shift + 200 else 0.0
        writer.add_scalar(pr.TAG_TRAIN_RETURN, -20 + (end + 20) * frac + 0.1 * seed - dip, step)
        if step % 250 == 0:
            writer.add_scalar(pr.TAG_EVAL_RETURN, -20 + (end + 20) * frac, step)
        if rho != "none":
            writer.add_scalar(pr.TAG_CRITIC_EIG, 5.0 - 3 * frac, step)
            writer.add_scalar(pr.TAG_RHO_ACTOR, 0.05 * (1 - frac), step)
            writer.add_scalar(pr.TAG_RHO_CRITIC, 0.01, step)
            for m in range(agents):
                writer.add_scalar(pr.TAG_TD_VAR.format(m=m), 1.0 + m * frac, step)
                writer.add_scalar(pr.TAG_SAM_ACTIVE.format(m=m), float(m % 2), step)
    writer.close()
    summary = {"status": "finished", "script": "synthetic", "args": {"seed": seed, **(args_extra or {})},
               "global_step": steps, "wall_time_s": 1.0,
               "final_eval": {"episodic_return": final, "episodic_returns": [final, final],
                              "metrics": dict(QOS), "ue_throughput_mbps": [0.5, 1.0 + seed, 2.0]},
               "best_eval_return": final + 1.0, "eval_history": [[steps // 2, final + 2.0], [steps, final]]}
    (run_dir / "summary.json").write_text(json.dumps(summary))
    return run_dir


def write_heuristic(grid_dir: Path, name: str, scenario: str, seed: int, final: float) -> Path:
    run_dir = grid_dir / rx.run_id(f"heuristic-{name}", "none", scenario, seed)
    rx.write_summary(run_dir, {"status": "finished", "script": f"heuristic:{name}", "args": {},
                               "global_step": 0, "wall_time_s": 0.1,
                               "final_eval": {"episodic_return": final, "episodic_returns": [final],
                                              "metrics": dict(QOS), "ue_throughput_mbps": [0.2, 0.4]},
                               "best_eval_return": final, "eval_history": []})
    return run_dir


# ------------------------------------------------------------------------------------------------
# statistics
# ------------------------------------------------------------------------------------------------
def test_bootstrap_ci_contains_mean_and_shrinks_with_n():
    rng = np.random.default_rng(0)
    small = rng.normal(3.0, 1.0, 5)
    lo, hi = pr.bootstrap_ci(small, 5000, rng)
    assert lo < small.mean() < hi
    large = rng.normal(3.0, 1.0, 500)
    lo2, hi2 = pr.bootstrap_ci(large, 5000, rng)
    assert lo2 < large.mean() < hi2 and hi2 - lo2 < hi - lo
    assert pr.bootstrap_ci([2.0, 2.0, 2.0], 1000, rng) == (pytest.approx(2.0), pytest.approx(2.0))


def test_relative_gain_on_known_numbers_handles_negative_baselines():
    rng = np.random.default_rng(0)
    gain, lo, hi = pr.relative_gain([-8.0, -8.0], [-10.0, -10.0], 1000, rng)
    assert gain == pytest.approx(0.2) and lo == pytest.approx(0.2) and hi == pytest.approx(0.2)
    assert pr.relative_gain([12.0], [10.0], 1000, rng)[0] == pytest.approx(0.2)
    assert pr.relative_gain([-12.0], [-10.0], 1000, rng)[0] == pytest.approx(-0.2)  # worse is negative
    assert pr.relative_gain([1.0, 3.0], [1.0, 3.0], 1000, rng)[0] == pytest.approx(0.0)
    assert np.isnan(pr.relative_gain([1.0], [0.0], 1000, rng)[0])


def test_resumed_run_event_files_are_merged(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    run_dir = tmp_path / "run"
    first = SummaryWriter(str(run_dir))
    for step in (0, 10, 20, 30):  # killed after step 30, last checkpoint at step 10
        first.add_scalar("x", 1.0, step)
    first.add_scalar("x", 3.0, 10)  # two values at one step are averaged
    first.close()
    import time
    time.sleep(1.1)  # event file names carry the second they were created in
    second = SummaryWriter(str(run_dir), purge_step=11)  # as the scripts resume
    for step in (20, 30, 40):
        second.add_scalar("x", 5.0, step)
    second.close()
    steps, values = records.read_scalars(run_dir)["x"]
    assert steps.tolist() == [0, 10, 20, 30, 40]
    assert values.tolist() == [1.0, 2.0, 5.0, 5.0, 5.0]


def test_curves_on_a_common_step_grid():
    def run(steps, values):
        return pr.Run("g", "nosam", "none", "paper", 1, Path("."), {}, {"x": (np.array(steps), np.array(values, float))})

    # dense: 8 values in [0, 70] with 2 bins -> the mean of each half
    dense = [run(range(0, 80, 10), [0, 1, 2, 3, 10, 11, 12, 13]), run(range(0, 90, 10), [1] * 9)]
    x, y = pr.binned_curves(dense, "x", points=2)
    assert x.tolist() == [17.5, 52.5] and y[0].tolist() == [1.5, 11.5] and y[1].tolist() == [1.0, 1.0]
    # sparse: interpolated at the sparsest run's steps inside the common range [100, 300]
    sparse = [run([0, 100, 200, 300], [0, 1, 2, 3]), run([100, 300], [10, 30])]
    x, y = pr.binned_curves(sparse, "x", points=50)
    assert x.tolist() == [100, 300] and y.tolist() == [[1, 3], [10, 30]]
    assert pr.binned_curves(sparse, "missing", points=50) is None


# ------------------------------------------------------------------------------------------------
# plot_results.py end to end
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def results_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    paper = root / "paper"
    finals = {("nosam", "none"): -10.0, ("l2", "none"): -9.0, ("ta-sam", "dynamic"): -8.0,
              ("ta-sam", "equal"): -8.5, ("actor-sam", "equal"): -9.5}
    for (variant, rho), final in finals.items():
        for seed in (1, 2, 3):
            write_run(paper, variant, rho, "paper", seed, final)
    for seed in (1, 2, 3):
        write_heuristic(paper, "static_pf", "paper", seed, -12.0)
    # broken runs: no summary, truncated summary, unfinished, finished but empty event file
    (paper / rx.run_id("nosam", "none", "paper", 4)).mkdir()
    broken = write_run(paper, "ta-sam", "dynamic", "paper", 4, 100.0)
    (broken / "summary.json").write_text('{"status": "finished", "final_ev')
    running = write_run(paper, "l2", "none", "paper", 4, 100.0)
    (running / "summary.json").write_text(json.dumps({"status": "running"}))
    empty = write_run(paper, "ta-sam", "equal", "paper", 4, 100.0)
    for f in empty.glob("events*"):
        f.write_bytes(b"")
    # the rho sweep: best return peaks at rho 0.02 for every variant
    sweep = root / "rho_sweep"
    for variant in ("actor-sam", "critic-sam", "both-sam"):
        for rho in (0.0, 0.02, 0.06):
            for seed in (1, 2):
                write_run(sweep, variant, f"fixed{rho:g}", "paper", seed, -10 + (rho == 0.02), steps=200)
    # DU sweep
    du = root / "du_sweep"
    for n in (2, 6):
        for seed in (1, 2):
            write_run(du, "ta-sam", "dynamic", f"du{n}", seed, -5.0 - n, steps=200)
            write_heuristic(du, "static_pf", f"du{n}", seed, -9.0 - n)
    # non-stationary: training return drops at the shift (step 500) and recovers
    ns = root / "nonstationary"
    for seed in (1, 2):
        write_run(ns, "nosam", "none", "nonstationary", seed, -10.0, shift=500,
                  args_extra={"num_envs": 2, "env": {"shift_after_steps": 500}})
    # generalisation: paper-trained models evaluated on light
    gen = root / "generalisation"
    for seed in (1, 2, 3):
        write_heuristic(gen, "static_pf", "light", seed, -6.0)
        run_dir = gen / rx.run_id("ta-sam", "dynamic", "light", seed)
        rx.write_summary(run_dir, {"status": "finished", "global_step": 0,
                                   "final_eval": {"episodic_return": -4.0, "metrics": dict(QOS)}})
    out = root / "out"
    figures, notes = pr.report(pr.Args(records=root / "records", collect=root, out=out, n_boot=500,
                                       curve_points=20))
    return root, out, figures, notes


def test_report_writes_figures_and_table(results_root):
    root, out, figures, notes = results_root
    names = {p.name for p in figures}
    for expected in ("paper_score_boxplot.png", "paper_reward_vs_steps.png",
                     "paper_eval_return_vs_steps.png", "paper_qos_per_slice.png",
                     "paper_ue_throughput_cdf.png", "paper_critic_sharpness.png",
                     "paper_td_var_sam_active.png", "rho_sweep_best_return_vs_rho.png",
                     "du_sweep_return_vs_dus.png", "nonstationary_shift.png",
                     "generalisation_returns.png"):
        assert expected in names
        assert (out / expected).stat().st_size > 1000
    md = (out / "results.md").read_text()
    rows = {line.split(" | ")[0].strip("| "): line for line in md.splitlines() if line.startswith("| ")}
    # the broken runs (seed 4) are not counted, the finished ones are
    assert rows["No-SAM"].split(" | ")[1] == "3"
    assert rows["TA-SAM (dynamic)"].split(" | ")[1] == "3"
    assert rows["heuristic: static_pf"].split(" | ")[1] == "3"
    # relative gains on known numbers: TA-SAM -8 vs No-SAM -10: +20%; vs L2 -9: +11.1%
    assert "+20.0% [+20.0, +20.0]" in rows["TA-SAM (dynamic)"]
    assert "+11.1% [+11.1, +11.1]" in rows["TA-SAM (dynamic)"]
    # TA-SAM's score beats No-SAM's in every pair of seeds: probability of improvement 1; no spread
    assert "| 1.00 [1.00, 1.00] | 0.00 |" in rows["No-SAM"]
    assert "Gain of M over B = (mean_M - mean_B) / |mean_B| of the score" in md
    assert "![paper_reward_vs_steps](paper_reward_vs_steps.png)" in md


def test_broken_runs_are_reported_and_skipped(results_root):
    _, out, _, notes = results_root
    text = "\n".join(notes)
    for run in ("nosam__none__paper__s4", "ta-sam__dynamic__paper__s4", "l2__none__paper__s4"):
        assert f"not collected {results_root[0] / 'paper' / run}: no finished summary.json" in text
    assert "ta-sam__equal__paper__s4: no scalars in its event files" in text
    assert "ta-sam__equal__paper__s4" in (out / "results.md").read_text()


def test_special_grid_tables(results_root):
    _, out, _, notes = results_root
    md = (out / "results.md").read_text()
    best = next(line for line in md.splitlines() if line.startswith("| Critic-SAM | best | "))
    final = next(line for line in md.splitlines() if line.startswith("| Critic-SAM | score | "))
    # columns rho = 0, 0.02, 0.06; best return = final + 1, final = -10 + (rho == 0.02)
    assert [c.split(" [")[0] for c in best.rstrip(" |").split(" | ")[2:]] == ["-9.000", "-8.000", "-9.000"]
    assert [c.split(" [")[0] for c in final.rstrip(" |").split(" | ")[2:]] == ["-10.000", "-9.000", "-10.000"]
    du = next(line for line in md.splitlines() if line.startswith("| heuristic: best |"))
    assert du.split(" | ")[1].startswith("-11.000") and du.split(" | ")[2].startswith("-15.000")
    ns = next(line for line in md.splitlines() if "Non-stationary" in line)
    assert "shift at step 500" in ns
    ns_row = next(line for line in md.splitlines() if line.startswith("| No-SAM | 2 |")
                  and line.count("|") == 9).rstrip(" |").split(" | ")
    # logged every 50 steps, window 250 (5 intervals): pre = mean over 250..450 = -16.5 (+ 0.1 seed),
    # after = mean over 500..700 with the dip on 500..650 = -18, drop 1.5; final level -11, target
    # -16.5 - 0.15: the window from 500 averages -18, the one from 550 -16.5: recovery 50 steps
    assert ns_row[2].startswith("-16.350") and ns_row[3].startswith("1.500")
    assert ns_row[4] == "50 (2/2)"
    assert ns_row[-1].startswith("2.000")  # forgetting = peak eval (final + 2) - final eval
    gen = next(line for line in md.splitlines() if line.startswith("| TA-SAM (dynamic) | -8.000"))
    assert "-4.000" in gen  # light column next to the paper column
    assert any("generalisation" in n and "skipped" in n for n in notes) is False
    claims = md.split("## The paper's claims")[1]
    no_sam = next(line for line in claims.splitlines() if line.startswith("| TA-SAM vs SAC without SAM"))
    assert "| paper | 3 vs 3 | +20.0% [+20.0, +20.0] | 1.00 [1.00, 1.00] |" in no_sam
    assert "better, the interval excludes 0" in no_sam
    assert "| the TD-variance selection (TA-SAM vs Both-SAM): +2.35 to +3.5% | paper | - | not run |" in claims
    assert "less forgetting under non-stationary traffic | nonstationary | 0 vs 2" not in claims


def test_absent_inputs_are_skipped_with_a_note(tmp_path):
    grid = tmp_path / "comp"
    for seed in (1, 2):  # summaries only: no QoS metrics, no per-agent tags, no throughput
        rx.write_summary(grid / rx.run_id("nosam", "none", "comp-medium", seed),
                         {"status": "finished", "global_step": 0,
                          "final_eval": {"episodic_return": 1.0 + seed, "metrics": {"utility": seed}}})
    figures, notes = pr.report(pr.Args(records=tmp_path / "records", collect=grid, out=tmp_path / "out",
                                       n_boot=200))
    assert [p.name for p in figures] == ["comp_score_boxplot.png"]
    for fig in ("reward_vs_steps", "qos_per_slice", "ue_throughput_cdf", "critic_sharpness",
                "td_var_sam_active"):
        assert any(n.startswith(f"comp_{fig}: skipped") for n in notes), fig
    md = (tmp_path / "out" / "results.md").read_text()
    assert "| No-SAM | 2 | 2.50 [2.00, 3.00] |" in md and md.count("utility per UE") == 1
    assert "| 1.500 |" in md  # mean utility


# ------------------------------------------------------------------------------------------------
# run_experiments.py
# ------------------------------------------------------------------------------------------------
def test_paper_grid_expansion(tmp_path):
    tasks = rx.expand_grid(rx.Args(results_dir=tmp_path, heuristics=False))
    assert len(tasks) == 14 * 2 * 10  # (No-SAM, L2) + 4 SAM variants x 3 rho settings, 2 scenarios, 10 seeds
    assert [t.seed for t in tasks[:28]] == [1] * 28  # seed-major
    assert {t.scenario for t in tasks} == {"paper", "hetero"}
    assert len({t.run_dir for t in tasks}) == len(tasks)
    by_id = {t.run_id: t for t in tasks}
    cmd = list(by_id["ta-sam__unequal__paper__s3"].cmd)
    assert cmd[1] == "tasam_marl_sac.py"
    assert cmd[cmd.index("--rho-actor") + 1] == "0.05" and cmd[cmd.index("--rho-critic") + 1] == "0.01"
    assert cmd[cmd.index("--seed") + 1] == "3" and cmd[cmd.index("--scenario") + 1] == "paper"
    assert cmd[cmd.index("--run-dir") + 1] == str(tmp_path / "paper" / "ta-sam__unequal__paper__s3")
    assert cmd[cmd.index("--total-timesteps") + 1] == str(rx.GRIDS["paper"].steps)
    assert "--no-selective" not in cmd and "--resume" not in cmd
    assert cmd[cmd.index("--action-mode") + 1] == "slice_share" and "--save-model" in cmd  # CPU budget
    plain = rx.expand_grid(rx.Args(results_dir=tmp_path, heuristics=False, cpu_budget=False))[0].cmd
    assert "--action-mode" not in plain and "--batch-size" not in plain
    assert "--no-sam-critic" in by_id["actor-sam__equal__paper__s1"].cmd
    assert "--no-sam-actor" in by_id["critic-sam__dynamic__paper__s1"].cmd
    assert "--no-selective" in by_id["both-sam__dynamic__paper__s1"].cmd
    nosam = by_id["nosam__none__paper__s1"].cmd
    assert nosam[1] == "sac_marl_baseline.py" and not any(f.startswith("--rho") for f in nosam)
    assert by_id["l2__none__paper__s2"].cmd[1] == "sac_marl_l2.py"


def test_grid_filters_scaling_and_other_grids(tmp_path):
    args = rx.Args(results_dir=tmp_path, grid="paper", seeds=2, first_seed=7, steps=300,
                   variants=("nosam", "ta-sam"), rhos=("none", "dynamic"), scenarios=("small",),
                   heuristics=False, extra_args="--batch-size 64")
    tasks = rx.expand_grid(args)
    assert [t.run_id for t in tasks] == ["nosam__none__small__s7", "ta-sam__dynamic__small__s7",
                                         "nosam__none__small__s8", "ta-sam__dynamic__small__s8"]
    cmd = list(tasks[0].cmd)
    assert cmd[-2:] == ["--batch-size", "64"]  # extra args come last, so they win over the budget's
    assert cmd[cmd.index("--total-timesteps") + 1] == "300"
    sweep = rx.expand_grid(rx.Args(results_dir=tmp_path, grid="rho_sweep", seeds=1, heuristics=False))
    assert len(sweep) == 3 * 7
    zero = next(t for t in sweep if t.run_id == "both-sam__fixed0__paper__s1").cmd
    assert zero[zero.index("--rho-actor") + 1] == "0" and "--no-selective" in zero
    du = rx.expand_grid(rx.Args(results_dir=tmp_path, grid="du_sweep", seeds=1, heuristics=False))
    four = next(t for t in du if t.scenario == "du4").cmd
    assert four[four.index("--scenario") + 1] == "du4"
    ns = rx.expand_grid(rx.Args(results_dir=tmp_path, grid="nonstationary", seeds=1, steps=3000,
                                heuristics=False))
    assert all(t.cmd[t.cmd.index("--shift-after-steps") + 1] == "1500" for t in ns)
    comp = rx.expand_grid(rx.Args(results_dir=tmp_path, grid="comp", seeds=1, heuristics=False))
    assert all(t.cmd[t.cmd.index("--env-id") + 1] == "comp" and "--action-mode" not in t.cmd for t in comp)
    rb = rx.expand_grid(rx.Args(results_dir=tmp_path, grid="rb_small", seeds=1))
    assert {t.variant for t in rb if t.kind == "train"} == {"nosam", "l2", "both-sam", "ta-sam"}
    assert all(t.cmd[t.cmd.index("--action-mode") + 1] == "rb_slice" for t in rb if t.kind == "train")
    assert [t.run_id for t in rb if t.kind == "heuristic"][-1] == "heuristic-full_info__none__small__s0"
    gen = rx.expand_grid(rx.Args(results_dir=tmp_path, grid="generalisation", seeds=1, heuristics=False))
    sources = {t.scenario: t.source.name for t in gen if t.variant == "nosam"}
    assert sources == {"light": "nosam__none__paper__s1", "heavy": "nosam__none__paper__s1",
                       "hetero": "nosam__none__paper__s1", "paper": "nosam__none__hetero__s1"}
    for bad in (dict(variants=("nope",)), dict(seeds=0), dict(steps=-5), dict(scenarios=("mars",))):
        with pytest.raises(ValueError):
            rx.expand_grid(rx.Args(results_dir=tmp_path, heuristics=False, **bad))
    with pytest.raises(ValueError, match="takes no rho"):
        rx.rho_flags("nosam", "equal")


def test_run_state_decides_skip_resume_fresh(tmp_path):
    run = tmp_path / "run"
    assert rx.run_state(run) == "fresh"
    run.mkdir()
    (run / "summary.json").write_text('{"status": "fin')  # half-written
    assert rx.run_state(run) == "fresh"
    (run / "checkpoint.pt").write_bytes(b"x")
    assert rx.run_state(run) == "resume"
    (run / "summary.json").write_text('{"status": "finished"}')
    assert rx.run_state(run) == "finished"


FAKE_SCRIPT = textwrap.dedent('''
    import json, os, sys
    argv = sys.argv[1:]
    run_dir = argv[argv.index("--run-dir") + 1]
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, "argv.json"), "w") as f:
        json.dump({"argv": argv, "threads": os.environ.get("OMP_NUM_THREADS")}, f)
    seed = int(argv[argv.index("--seed") + 1])
    if seed == 3:
        sys.exit(3)  # a crashing run
    summary = {"status": "finished", "final_eval": {"episodic_return": -float(seed)}}
    with open(os.path.join(run_dir, "summary.json"), "w") as f:
        json.dump(summary, f)
''')

FAKE_ENV = textwrap.dedent('''
    import numpy as np
    class Env:
        def __init__(self, num_envs, seed):
            self.num_envs, self.n_agents, self.act_dim, self.episode_length = num_envs, 2, 3, 4
            self.t, self.rng = 0, np.random.default_rng(seed)
        def reset(self, seed=None):
            self.t = 0
            return np.zeros((self.num_envs, 2, 5), np.float32), {}
        def step(self, actions):
            assert actions.shape == (self.num_envs, 2, 3)
            self.t += 1
            reward = np.full((self.num_envs, 2), float(actions.mean()), np.float32)
            info = {"metrics": {"qos_embb": np.full(self.num_envs, 0.25 * self.t)},
                    "ue_throughput_mbps": np.full((self.num_envs, 3), 2.0)}
            done = self.t == self.episode_length
            if done:
                info["episode"] = {"return": np.tile([[4.0, 2.0]], (self.num_envs, 1)) * actions.mean(),
                                   "length": np.full(self.num_envs, 4)}
            return reward, reward, np.zeros(self.num_envs, bool), np.full(self.num_envs, done), info
    def make_env(scenario, num_envs=1, seed=None, **overrides):
        return Env(num_envs, seed)
    HEURISTICS = {"half": lambda env: np.full((env.num_envs, 2, 3), 0.5),
                  "zero": lambda env: np.zeros((env.num_envs, 2, 3))}
''')


def test_runner_end_to_end_with_fake_script(tmp_path, monkeypatch, capsys):
    (tmp_path / "fake_train.py").write_text(FAKE_SCRIPT)
    (tmp_path / "fake_env_mod.py").write_text(FAKE_ENV)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(rx.ENV_MODULES, "oran", "fake_env_mod")
    fake = str(tmp_path / "fake_train.py")
    monkeypatch.setattr(rx, "VARIANTS", {k: (fake, flags) for k, (_, flags) in rx.VARIANTS.items()})
    results = tmp_path / "results"
    args = rx.Args(results_dir=results, seeds=4, steps=100, workers=2, variants=("nosam",),
                   scenarios=("small",), eval_episodes=3)
    grid = results / "paper"
    rx.write_summary(grid / "nosam__none__small__s1", {"status": "finished"})  # finished: skipped
    interrupted = grid / "nosam__none__small__s2"
    interrupted.mkdir(parents=True)
    (interrupted / "checkpoint.pt").write_bytes(b"x")  # interrupted: resumed
    stale = grid / "nosam__none__small__s4"
    stale.mkdir()
    (stale / "events.out.tfevents.1.stale").write_bytes(b"x")  # died before its first checkpoint

    assert rx.main(rx.Args(**{**vars(args), "dry_run": True})) == 0
    out = capsys.readouterr().out
    assert "[finished]" in out and "[resume]" in out and "--resume" in out
    assert "(in-process) evaluate heuristic-half on small, seed 0, 3 episodes" in out  # once: same episodes
    assert not (grid / "nosam__none__small__s3").exists()  # a dry run runs nothing

    assert rx.main(args) == 1  # seed 3 fails
    out = capsys.readouterr().out
    assert "1 finished (skipped), 1 to resume, 4 to start" in out
    assert "failed   nosam__none__small__s3" in out and "exit code 3" in out
    assert "ETA" in out
    assert not (grid / "nosam__none__small__s1" / "argv.json").exists()  # skipped, not re-run
    resumed = json.loads((interrupted / "argv.json").read_text())
    assert resumed["argv"][-1] == "--resume" and resumed["threads"] == "1"
    assert "--resume" not in json.loads((stale / "argv.json").read_text())["argv"]
    assert not (stale / "events.out.tfevents.1.stale").exists()
    assert rx.run_state(grid / "nosam__none__small__s4") == "finished"
    # heuristic rows in the summary format, evaluated over 3 episodes
    half = json.loads((grid / "heuristic-half__none__small__s0" / "summary.json").read_text())
    assert half["status"] == "finished"
    assert half["final_eval"]["episodic_return"] == pytest.approx(1.5)  # mean over agents of (2, 1)
    assert half["final_eval"]["episodic_returns"] == pytest.approx([1.5] * 3)
    assert half["final_eval"]["metrics"]["qos_embb"] == pytest.approx(0.625)  # mean of t/4, t=1..4
    assert half["final_eval"]["ue_throughput_mbps"] == pytest.approx([2.0] * 9)
    # a second call only retries the failed run
    assert rx.main(args) == 1
    assert "5 finished (skipped), 0 to resume, 1 to start" in capsys.readouterr().out
    # with --records-dir: every finished run gets its record, and a run whose record exists is skipped
    # even when its run folder is gone (a grid run in slices across sittings)
    with_records = rx.Args(**{**vars(args), "records_dir": tmp_path / "records"})
    rx.main(with_records)
    assert (tmp_path / "records" / "paper" / "heuristic-half__none__small__s0.json").exists()
    assert records.read_record(tmp_path / "records" / "paper" / "nosam__none__small__s4.json") is not None
    shutil.rmtree(grid / "nosam__none__small__s4")
    capsys.readouterr()
    rx.main(with_records)
    assert "5 finished (skipped), 0 to resume, 1 to start" in capsys.readouterr().out  # only seed 3 again
    assert not (grid / "nosam__none__small__s4").exists()  # not re-run


def test_heuristic_rows_on_the_real_simulator(tmp_path):
    pytest.importorskip("oran_env")
    final = rx.evaluate_heuristic("small", "static_equal", seed=3, episodes=2)
    assert len(final["episodic_returns"]) == 2
    assert final["episodic_return"] == pytest.approx(np.mean(final["episodic_returns"]))
    assert all(0.0 <= final["metrics"][k] <= 1.0 for k in pr.QOS_METRICS)
    assert len(final["ue_throughput_mbps"]) == 2 * 30  # 30 UEs in `small`, per episode
    assert final == rx.evaluate_heuristic("small", "static_equal", seed=3, episodes=2)  # seeded


def test_transfer_evaluates_a_saved_model_on_another_scenario(tmp_path, monkeypatch, capsys):
    torch = pytest.importorskip("torch")
    oran_env = pytest.importorskip("oran_env")
    script = pytest.importorskip("sac_marl_baseline")
    import dataclasses

    source = tmp_path / "results" / "paper" / rx.run_id("nosam", "none", "paper", 2)
    env = oran_env.make_env("paper", num_envs=1, seed=0)
    torch.manual_seed(0)
    actor = script.Actor(env.n_agents, env.obs_dim, env.act_dim, (16,))
    source.mkdir(parents=True)
    torch.save({"actor": actor.state_dict(), "qf": {}, "hidden_sizes": [16]}, source / rx.MODEL_FILE)
    env_args = {**dataclasses.asdict(oran_env.make_config("paper")), "reward_zeta": 2.0}
    rx.write_summary(source, {"status": "finished", "script": "sac_marl_baseline.py", "global_step": 300,
                              "args": {"env_id": "oran", "scenario": "paper", "seed": 2,
                                       "env": json.loads(json.dumps(env_args))}})
    configs = []
    make_env = oran_env.make_env
    monkeypatch.setattr(oran_env, "make_env",
                        lambda *a, **kw: configs.append(kw) or make_env(*a, **kw))
    final, _ = rx.evaluate_transfer(source, "heavy", episodes=2)
    assert len(final["episodic_returns"]) == 2 and np.isfinite(final["episodic_return"])
    assert configs[-1]["load"] == 1.5  # the target preset's difference
    assert configs[-1]["reward_zeta"] == 2.0  # the run's own option is kept
    assert configs[-1]["seed"] == rx.EVAL_SEED
    assert 0 <= final["metrics"]["qos_urllc"] <= 1 and len(final["ue_throughput_mbps"]) == 2 * 200

    # through the runner: the generalisation grid evaluates existing sources, reports missing ones
    args = rx.Args(grid="generalisation", results_dir=tmp_path / "results", seeds=2, variants=("nosam",),
                   scenarios=("light",), heuristics=False, eval_episodes=2, workers=1)
    assert rx.main(args) == 1
    out = capsys.readouterr().out
    assert "finished nosam__none__light__s2" in out
    assert "failed   nosam__none__light__s1" in out and "no finished run with model.pt" in out
    row = rx.read_summary(tmp_path / "results" / "generalisation" / "nosam__none__light__s2")
    assert row["global_step"] == 0 and row["args"]["trained_steps"] == 300
    assert row["script"] == "transfer:sac_marl_baseline.py"


def test_adding_a_grid_leaves_other_tables_confidence_intervals_unchanged(tmp_path):
    root = tmp_path / "results"
    for variant, base in (("nosam", -10.0), ("ta-sam", -8.0)):
        for seed in (1, 2, 3, 4):
            write_run(root / "paper", variant, "none" if variant == "nosam" else "dynamic", "paper",
                      seed, base + seed, steps=200)

    def paper_table(out):
        md = (out / "results.md").read_text()
        return md.split("### Scenario `paper`")[1].split("##")[0]

    pr.report(pr.Args(records=tmp_path / "records", collect=root, out=tmp_path / "alone", n_boot=500,
                      curve_points=5))
    for seed in (1, 2, 3):  # a grid whose name sorts before `paper`, so it is drawn first
        write_run(root / "comp", "nosam", "none", "comp-medium", seed, -5.0 + seed, steps=200)
    pr.report(pr.Args(records=tmp_path / "records", collect=root, out=tmp_path / "with_comp", n_boot=500,
                      curve_points=5))
    assert "Grid `comp`" in (tmp_path / "with_comp" / "results.md").read_text()
    assert paper_table(tmp_path / "with_comp") == paper_table(tmp_path / "alone")


# ------------------------------------------------------------------------------------------------
# run records and the evaluation protocol
# ------------------------------------------------------------------------------------------------
def test_score_is_the_mean_of_the_last_fifth_of_evaluations_and_auc_the_curve_level():

    summary = {"global_step": 1000, "final_eval": {"episodic_return": 7.0},
               "eval_history": [[0, 0.0], [200, 2.0], [400, 4.0], [600, 6.0], [800, 8.0], [1000, 10.0]]}
    assert records.run_score(summary) == pytest.approx(9.0)  # evaluations at 800 and 1000
    assert records.eval_auc(summary) == pytest.approx(5.0)  # linear 0 -> 10: mean level 5
    heuristic = {"global_step": 0, "final_eval": {"episodic_return": 3.5}, "eval_history": []}
    assert records.run_score(heuristic) == records.eval_auc(heuristic) == 3.5


def test_record_keeps_what_the_figures_need_and_is_compact(tmp_path):

    run_dir = write_run(tmp_path / "paper", "ta-sam", "dynamic", "paper", 1, 5.0, steps=20_000)
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["final_eval"]["ue_throughput_mbps"] = list(np.linspace(0.0, 10.0, 6400))
    (run_dir / "summary.json").write_text(json.dumps(summary))
    path = records.write_record(run_dir, tmp_path / "records", "paper")
    assert path == tmp_path / "records" / "paper" / "ta-sam__dynamic__paper__s1.json"
    record = records.read_record(path)
    final = record["summary"]["final_eval"]
    assert "ue_throughput_mbps" not in final and final["ue_throughput_mbps_percentiles"][50] == pytest.approx(5.0)
    steps, values = record["curves"][pr.TAG_TRAIN_RETURN]
    assert len(steps) == records.CURVE_POINTS and steps[0] < steps[-1]  # 401 episodes -> 100 bins
    assert pr.TAG_EVAL_RETURN not in record["curves"]  # evaluations come from eval_history
    assert {pr.TAG_TD_VAR.format(m=1), pr.TAG_SAM_ACTIVE.format(m=0), pr.TAG_CRITIC_EIG} <= set(record["curves"])
    assert path.stat().st_size < 40_000
    assert records.read_record(tmp_path) is None and records.compact([float("nan"), 1 / 3]) == [None, 0.333333]


def test_normalised_scores_probability_of_improvement_and_aggregate(tmp_path):
    root = tmp_path / "results"
    for scenario, (zero, one) in (("paper", (0.0, 10.0)), ("heavy", (-10.0, 0.0))):
        for seed in (1, 2, 3):
            write_heuristic(root / "paper", "static_equal", scenario, seed, zero)
            write_heuristic(root / "paper", "full_info", scenario, seed, one)
            write_run(root / "paper", "nosam", "none", scenario, seed, zero + 2 + 0.1 * seed, steps=200)
            write_run(root / "paper", "ta-sam", "dynamic", scenario, seed, zero + 6 + 0.1 * seed, steps=200)
    figures, _ = pr.report(pr.Args(records=tmp_path / "records", collect=root, out=tmp_path / "out",
                                   n_boot=300, curve_points=5))
    md = (tmp_path / "out" / "results.md").read_text()
    paper = md.split("### Scenario `paper`")[1]
    no_sam = next(line for line in paper.splitlines() if line.startswith("| No-SAM |")).split(" | ")
    assert no_sam[4].startswith("0.220 [")  # normalised: (2.2 - 0) / 10
    aggregate = md.split("Normalised score aggregated over")[1]
    row = next(line for line in aggregate.splitlines() if line.startswith("| No-SAM |")).split(" | ")
    assert row[1] == "3 x 2" and row[2].startswith("0.220 [") and row[4].startswith("1.00 [1.00, 1.00]")
    assert "paper_performance_profile.png" in {p.name for p in figures}


def test_probability_of_improvement_statistic_equals_rliables():
    from rliable import metrics

    rng = np.random.default_rng(3)
    for n, m, tasks in ((10, 7, 1), (5, 10, 2), (4, 4, 3)):
        x, y = np.round(rng.normal(size=(n, tasks)), 1), np.round(rng.normal(size=(m, tasks)), 1)  # with ties
        assert pr.poi_statistic(x, y) == pytest.approx(metrics.probability_of_improvement(x, y))


def test_readme_tables_are_rewritten_from_the_records(tmp_path):
    root = tmp_path / "results"
    for variant, base in (("nosam", -10.0), ("ta-sam", -8.0)):
        for seed in (1, 2, 3):
            write_run(root / "paper", variant, "none" if variant == "nosam" else "dynamic", "paper",
                      seed, base + seed, steps=200)
    args = pr.Args(records=tmp_path / "records", collect=root, out=tmp_path / "out", n_boot=300)
    pr.report(args)
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- table: paper/paper -->\nstale\n<!-- /table -->\nend\n")
    assert pr.update_readme(readme, args) == 1
    table = readme.read_text().split("<!-- table: paper/paper -->\n")[1].split("<!-- /table -->")[0]
    assert table.strip() in (tmp_path / "out" / "results.md").read_text()  # the same numbers
    assert "| TA-SAM (dynamic) | 3 | -6.00 [" in table and "stale" not in table
    readme.write_text("<!-- table: paper/heavy -->\n<!-- /table -->\n")
    with pytest.raises(ValueError, match="paper/heavy"):
        pr.update_readme(readme, args)
