"""Tests of the records, the experiment runner and plot_results.py on small synthetic runs."""

import json
import os
import textwrap
from pathlib import Path

import numpy as np
import pytest

import experiments
import plot_results as pr
import records
import run_experiments as rx

QOS = {"qos_embb": 0.6, "qos_mmtc": 0.8, "qos_urllc": 0.5}


def write_summary(run_dir: Path, summary: dict) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "summary.json").write_text(json.dumps(summary))


def write_run(grid_dir: Path, variant: str, rho: str, scenario: str, seed: int, final: float,
              steps: int = 1000, curve_end: float | None = None, agents: int = 2,
              args_extra: dict | None = None, shift: int | None = None) -> Path:
    """A finished synthetic run: TensorBoard scalars with the scripts' tags and a summary.json."""
    from torch.utils.tensorboard import SummaryWriter

    run_dir = grid_dir / records.run_id(variant, rho, scenario, seed)
    writer = SummaryWriter(str(run_dir))
    end = final if curve_end is None else curve_end
    for step in range(0, steps + 1, 50):
        frac = step / steps
        dip = 5.0 if shift is not None and shift <= step < shift + 200 else 0.0
        writer.add_scalar(pr.TAG_TRAIN_RETURN, -20 + (end + 20) * frac + 0.1 * seed - dip, step)
        if rho != "none":
            writer.add_scalar(pr.TAG_CRITIC_EIG, 5.0 - 3 * frac, step)
            writer.add_scalar(pr.TAG_RHO_ACTOR, 0.05 * (1 - frac), step)
            writer.add_scalar(pr.TAG_RHO_CRITIC, 0.01, step)
            for m in range(agents):
                writer.add_scalar(pr.TAG_TD_VAR.format(m=m), 1.0 + m * frac, step)
                writer.add_scalar(pr.TAG_SAM_ACTIVE.format(m=m), float(m % 2), step)
    writer.close()
    write_summary(run_dir, {
        "status": "finished", "script": "synthetic", "args": {"seed": seed, **(args_extra or {})},
        "global_step": steps, "wall_time_s": 1.0,
        "final_eval": {"episodic_return": final, "episodic_returns": [final, final],
                       "metrics": dict(QOS), "ue_throughput_mbps": [0.5, 1.0 + seed, 2.0]},
        "best_eval_return": final + 1.0,
        "eval_history": [[steps // 2, final + 2.0], [steps, final]]})
    return run_dir


def write_heuristic(grid_dir: Path, name: str, scenario: str, seed: int, final: float) -> Path:
    run_dir = grid_dir / records.run_id(f"heuristic-{name}", "none", scenario, seed)
    write_summary(run_dir, {"status": "finished", "script": f"heuristic:{name}", "args": {},
                            "global_step": 0, "wall_time_s": 0.1,
                            "final_eval": {"episodic_return": final, "episodic_returns": [final],
                                           "metrics": dict(QOS), "ue_throughput_mbps": [0.2, 0.4]},
                            "best_eval_return": final, "eval_history": []})
    return run_dir


def collect(results: Path, records_dir: Path) -> list[str]:
    """Records of the run folders under results/<experiment>/; notes on those that are not runs."""
    notes = []
    for run_dir in sorted(p for p in results.glob("*/*") if p.is_dir()):
        try:
            records.write_record(records_dir, records.record_from_run(run_dir, run_dir.parent.name))
        except (ValueError, KeyError) as e:
            notes.append(f"not recorded {run_dir}: {e}")
    return notes


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
    # worse is negative
    assert pr.relative_gain([-12.0], [-10.0], 1000, rng)[0] == pytest.approx(-0.2)
    assert pr.relative_gain([1.0, 3.0], [1.0, 3.0], 1000, rng)[0] == pytest.approx(0.0)
    assert np.isnan(pr.relative_gain([1.0], [0.0], 1000, rng)[0])


@pytest.mark.slow
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
        return pr.Run("g", "nosam", "none", "paper", 1, Path("."), {},
                      {"x": (np.array(steps), np.array(values, float))})

    # dense: 8 values in [0, 70] with 2 bins -> the mean of each half
    dense = [run(range(0, 80, 10), [0, 1, 2, 3, 10, 11, 12, 13]), run(range(0, 90, 10), [1] * 9)]
    x, y = pr.binned_curves(dense, "x", points=2)
    assert (x.tolist() == [17.5, 52.5] and y[0].tolist() == [1.5, 11.5]
            and y[1].tolist() == [1.0, 1.0])
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
        write_heuristic(paper, "urllc_first", "paper", seed, -12.0)
    # broken runs: no summary, truncated summary, unfinished, finished but empty event file
    (paper / records.run_id("nosam", "none", "paper", 4)).mkdir()
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
                write_run(sweep, variant, f"fixed{rho:g}", "paper", seed, -10 + (rho == 0.02),
                          steps=200)
    # DU sweep
    du = root / "du_sweep"
    for n in (2, 6):
        for seed in (1, 2):
            write_run(du, "ta-sam", "dynamic", f"du{n}", seed, -5.0 - n, steps=200)
            write_heuristic(du, "urllc_first", f"du{n}", seed, -9.0 - n)
    # non-stationary: training return drops at the shift (step 500) and recovers
    ns = root / "nonstationary"
    for seed in (1, 2):
        write_run(ns, "nosam", "none", "nonstationary", seed, -10.0, shift=500,
                  args_extra={"num_envs": 2, "env": {"shift_after_steps": 500}})
    # generalisation: paper-trained models evaluated on light
    gen = root / "generalisation"
    for seed in (1, 2, 3):
        write_heuristic(gen, "urllc_first", "light", seed, -6.0)
        run_dir = gen / records.run_id("ta-sam", "dynamic", "light", seed)
        write_summary(run_dir, {"status": "finished", "script": "transfer:synthetic",
                                "global_step": 0,
                                "final_eval": {"episodic_return": -4.0, "metrics": dict(QOS)}})
    out = root / "out"
    collected = collect(root, root / "records")
    figures, notes = pr.report(pr.Args(records=root / "records", out=out, n_boot=500,
                                       curve_points=20))
    return root, out, figures, collected + notes


@pytest.mark.slow
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
    rows = {line.split(" | ")[0].strip("| "): line for line in md.splitlines()
            if line.startswith("| ")}
    # the broken runs (seed 4) are not counted, the finished ones are
    assert rows["No-SAM"].split(" | ")[1] == "3"
    assert rows["TA-SAM (dynamic)"].split(" | ")[1] == "3"
    assert rows["heuristic: urllc_first"].split(" | ")[1] == "3"
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
        # no, half a, a running summary
        assert f"not recorded {results_root[0] / 'paper' / run}: " in text


def test_special_grid_tables(results_root):
    _, out, _, notes = results_root
    md = (out / "results.md").read_text()
    best = next(line for line in md.splitlines() if line.startswith("| Critic-SAM | best | "))
    final = next(line for line in md.splitlines() if line.startswith("| Critic-SAM | score | "))
    # columns rho = 0, 0.02, 0.06; best return = final + 1, final = -10 + (rho == 0.02)
    assert [c.split(" [")[0] for c in best.rstrip(" |").split(" | ")[2:]] == [
        "-9.000", "-8.000", "-9.000"]
    assert [c.split(" [")[0] for c in final.rstrip(" |").split(" | ")[2:]] == [
        "-10.000", "-9.000", "-10.000"]
    du = next(line for line in md.splitlines() if line.startswith("| heuristic: best |"))
    assert du.split(" | ")[1].startswith("-11.000") and du.split(" | ")[2].startswith("-15.000")
    ns = next(line for line in md.splitlines() if "Non-stationary" in line)
    assert "shift at step 500" in ns
    ns_row = next(line for line in md.splitlines() if line.startswith("| No-SAM | 2 |")
                  and line.count("|") == 9).rstrip(" |").split(" | ")
    # logged every 50 steps, window 250 (5 intervals): pre = mean over 250..450 = -16.5
    # (+ 0.1 seed), after = mean over 500..700 with the dip on 500..650 = -18, drop 1.5; final level
    # -11, target -16.5 - 0.15: the window from 500 averages -18, the one from 550 -16.5: recovery
    # 50 steps
    assert ns_row[2].startswith("-16.350") and ns_row[3].startswith("1.500")
    assert ns_row[4] == "50 (2/2)"
    assert ns_row[-1].startswith("2.000")  # forgetting = peak eval (final + 2) - final eval
    gen = next(line for line in md.splitlines() if line.startswith("| TA-SAM (dynamic) | -8.000"))
    assert "-4.000" in gen  # light column next to the paper column
    assert any("generalisation" in n and "skipped" in n for n in notes) is False
    claims = md.split("## The paper's claims")[1]
    no_sam = next(line for line in claims.splitlines()
                  if line.startswith("| TA-SAM vs SAC without SAM"))
    assert "| paper | 3 vs 3 | +20.0% [+20.0, +20.0] | 1.00 [1.00, 1.00] |" in no_sam
    assert ("| 0.000 | +-0.0% | better (Welch p < 0.05), but smaller than the paper's +22% "
            "(Welch p < 0.001) |") in no_sam
    # a claim whose two methods ran in no scenario of the grids gets one row, with no scenario
    assert ("| the TD-variance selection (TA-SAM vs Both-SAM): +2.35 to +3.5% | - | - | "
            "not run |") in claims
    assert "less forgetting under non-stationary traffic | nonstationary | 0 vs 2" not in claims


def test_forgetting_is_read_from_any_grid_of_the_claims_table_on_nonstationary(tmp_path):
    grid = tmp_path / "results" / "my-grid"
    for variant, rho, drop in (("nosam", "none", 6.0), ("ta-sam", "dynamic", 2.0)):
        for seed in (1, 2):
            write_run(grid, variant, rho, "nonstationary", seed, -10.0 - drop, steps=400,
                      args_extra={"env": {"shift_after_steps": 200}})
    collect(tmp_path / "results", tmp_path / "records")
    grids = {"my-grid": pr.load_grid(tmp_path / "records" / "my-grid", [])}
    lines = pr.claims_table(grids, pr.Args(records=tmp_path / "records", n_boot=200),
                            ("my-grid",))
    row = next(line for line in lines if line.startswith("| less forgetting"))
    assert "| nonstationary | 2 vs 2 |" in row and "forgetting = peak - final" in row
    # and the score claims on that scenario, from the same runs
    assert any(line.startswith("| TA-SAM vs SAC without SAM") and "| nonstationary | 2 vs 2 |"
               in line for line in lines)


def test_absent_inputs_are_skipped_with_a_note(tmp_path):
    grid = tmp_path / "results" / "comp"
    for seed in (1, 2):  # summaries only: no QoS metrics, no per-agent tags, no throughput
        write_summary(grid / records.run_id("nosam", "none", "comp-medium", seed),
                      {"status": "finished", "script": "transfer:x", "global_step": 0,
                       "final_eval": {"episodic_return": 1.0 + seed, "metrics": {"utility": seed}}})
    collect(tmp_path / "results", tmp_path / "records")
    figures, notes = pr.report(pr.Args(records=tmp_path / "records", out=tmp_path / "out",
                                       n_boot=200))
    assert [p.name for p in figures] == ["comp_score_boxplot.png"]
    for fig in ("reward_vs_steps", "qos_per_slice", "ue_throughput_cdf", "critic_sharpness",
                "td_var_sam_active"):
        assert any(n.startswith(f"comp_{fig}: skipped") for n in notes), fig
    md = (tmp_path / "out" / "results.md").read_text()
    assert "| No-SAM | 2 | 2.50 [2.00, 3.00] |" in md and md.count("utility per UE") == 1
    assert "| 1.500 |" in md  # mean utility


# ------------------------------------------------------------------------------------------------
# experiments.py and run_experiments.py
# ------------------------------------------------------------------------------------------------
def test_definitions_spell_their_flags_and_expand_seed_major():
    exps = experiments.EXPERIMENTS
    rb = exps["rb-paper"]
    runs = experiments.training_runs(rb)
    assert len(runs) == 6 * 10 and [seed for _, _, seed in runs[:6]] == [1] * 6  # seed-major
    names = {experiments.run_name(*r) for r in runs}
    assert {"ta-sam__dynamic__paper__s10", "both-sam__dynamic__paper__s1",
            "ta-sam__unequal__paper__s3",
            "l2__none__paper__s2", "nosam__none__paper__s5", "ta-sam__equal__paper__s7"} <= names
    line = experiments.argv(rb, *next(r for r in runs if r[0].rho == "unequal"))
    assert (line[line.index("--rho-actor") + 1] == "0.05"
            and line[line.index("--rho-critic") + 1] == "0.01")
    assert line[line.index("--total-timesteps") + 1] == "20000" and "--eval-episodes" in line
    both = experiments.argv(rb, *next(r for r in runs if r[0].variant == "both-sam"))
    assert "--no-selective" in both
    assert {m.variant for m in exps["rb-hetero"].methods} == {"ta-sam", "nosam"}
    # small's RB-level values and the non-RB actions' temperature and bias are spelled out
    lc = exps["learning-check"]
    small = experiments.argv(lc, lc.methods[0], "small", 1)
    assert (small[small.index("--gamma") + 1] == "0.9"
            and small[small.index("--num-envs") + 1] == "1")
    assert small[small.index("--target-entropy") + 1] == "-0.5" and "--lr-decay-to" in small
    # the main job: defaults
    assert "--gamma" not in experiments.argv(lc, lc.methods[0], "paper", 1)
    comp = exps["comp"]
    line = experiments.argv(comp, comp.methods[0], "comp-medium", 1)
    assert (line[line.index("--env-id") + 1] == "comp"
            and line[line.index("--alpha-init") + 1] == "1.0")
    assert line[line.index("--init-bias") + 1] == "0" and line[line.index("--num-envs") + 1] == "1"
    ppo = exps["ppo-comp"]
    large = experiments.argv(ppo, ppo.methods[0], "comp-large", 2)
    assert (large[:2] == ["--mode", "multi"]
            and large[large.index("--total-timesteps") + 1] == "100000")
    assert "--env-id" not in large and large[large.index("--scenario") + 1] == "large"
    only = experiments.training_runs(exps["learning-check-rerun"])
    assert [experiments.run_name(*r) for r in only] == ["nosam__none__paper__s1",
                                                         "nosam__none__small__s3",
                                                         "ta-sam__dynamic__paper__s4"]
    # configurations run
    assert len(experiments.training_runs(exps["rb-ablation"], seeds=(1,))) == 23
    # every published record folder has its entry
    root = Path(__file__).resolve().parents[1] / "records"
    assert {p.name for p in root.iterdir() if p.is_dir()} <= set(exps)


FAKE_SCRIPT = textwrap.dedent('''
    import dataclasses, json, os, sys
    import tyro

    @dataclasses.dataclass
    class Args:
        seed: int = 1
        scenario: str = "paper"
        total_timesteps: int = 100
        gamma: float = 0.99
        torch_threads: int = 2
        run_dir: str = ""
        resume: bool = False
        fail: bool = False

    def parse_args():
        return tyro.cli(Args)

    if __name__ == "__main__":
        args = parse_args()
        os.makedirs(args.run_dir, exist_ok=True)
        with open(os.path.join(args.run_dir, "argv.json"), "w") as f:
            json.dump({"argv": sys.argv[1:], "threads": os.environ.get("OMP_NUM_THREADS"),
                       "nice": os.nice(0)}, f)
        if args.seed == 3:
            sys.exit(3)  # a crashing run
        summary = {"status": "finished", "script": "fake_train.py",
                   "args": dataclasses.asdict(args),
                   "global_step": args.total_timesteps, "wall_time_s": 0.1,
                   "final_eval": {"episodic_return": -float(args.seed), "metrics": {}},
                   "eval_history": [[args.total_timesteps, -float(args.seed)]]}
        with open(os.path.join(args.run_dir, "summary.json"), "w") as f:
            json.dump(summary, f)
''')

FAKE_ENV = textwrap.dedent('''
    import numpy as np
    from oran_env import evaluate  # the one evaluation function
    class Env:
        def __init__(self, num_envs, seed):
            self.num_envs, self.n_agents, self.act_dim, self.episode_length = num_envs, 2, 3, 4
            self.t = 0
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
                info["episode"] = {
                    "return": np.tile([[4.0, 2.0]], (self.num_envs, 1)) * actions.mean(),
                    "length": np.full(self.num_envs, 4)}
            return reward, reward, np.zeros(self.num_envs, bool), np.full(self.num_envs, done), info
    def make_env(scenario, num_envs=1, seed=None, **overrides):
        return Env(num_envs, seed)
    HEURISTICS = {"half": lambda env: np.full((env.num_envs, 2, 3), 0.5),
                  "zero": lambda env: np.zeros((env.num_envs, 2, 3))}
''')


@pytest.fixture
def fake_experiment(tmp_path, monkeypatch):
    (tmp_path / "fake_train.py").write_text(FAKE_SCRIPT)
    (tmp_path / "fake_env_mod.py").write_text(FAKE_ENV)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(rx.ENV_MODULES, "oran", "fake_env_mod")
    method = experiments.Method("nosam", "none", str(tmp_path / "fake_train.py"),
                                ("--gamma", "0.9"))
    exp = experiments.Experiment("a fake grid", (method,), ("small",), (1, 2, 3, 4), 100,
                                 references=("half",), eval_episodes=3, reuse=("older",))
    monkeypatch.setitem(rx.EXPERIMENTS, "fake", exp)
    return rx.Args(experiment="fake", results_dir=tmp_path / "runs", records=tmp_path / "records",
                   workers=2)


@pytest.mark.slow
def test_runner_skips_finished_records_resumes_and_writes_records(fake_experiment, capsys):
    args = fake_experiment
    runs, recs = args.results_dir / "fake", args.records / "fake"
    interrupted = runs / "nosam__none__small__s2"
    interrupted.mkdir(parents=True)
    (interrupted / "checkpoint.pt").write_bytes(b"x")  # interrupted: resumed
    assert rx.main(rx.Args(**{**vars(args), "dry_run": True})) == 0
    out = capsys.readouterr().out
    assert "5 records | 0 there | 4 runs to train, 1 rows to score" in out
    assert "[resume] nosam__none__small__s2: no finished record" in out and "--resume" in out
    assert not (runs / "nosam__none__small__s1").exists()  # a dry run runs nothing

    assert rx.main(args) == 1  # seed 3 fails
    out = capsys.readouterr().out
    assert "failed   nosam__none__small__s3" in out and "exit code 3" in out and "ETA" in out
    resumed = json.loads((interrupted / "argv.json").read_text())
    assert resumed["argv"][-1] == "--resume" and resumed["threads"] == "1"
    assert resumed["nice"] == min(19, os.nice(0) + 10)  # --nice adds to the runner's own niceness
    record = records.read_record(recs / "nosam__none__small__s1.json")
    assert record["finished"] and record["args"]["gamma"] == 0.9 and record["torch_threads"] == 1
    assert record["args"]["scenario"] == "small" and record["score"] == -1.0
    half = records.read_record(recs / "heuristic-half__none__small__s0.json")
    assert half["final_eval"]["episodic_return"] == pytest.approx(1.5)  # mean over agents of (2, 1)
    assert half["final_eval"]["episodic_returns"] == pytest.approx([1.5] * 3)
    assert half["final_eval"]["metrics"]["qos_embb"] == pytest.approx(0.625)  # mean of t/4, t=1..4
    assert half["args"]["eval_episodes"] == 3 and half["kind"] == "heuristic"

    # a second sitting retries only the failed run, also when the finished runs' folders are gone
    for folder in runs.glob("nosam__none__small__s[124]"):
        __import__("shutil").rmtree(folder)
    assert rx.main(args) == 1
    assert "5 records | 4 there | 1 runs to train, 0 rows to score" in capsys.readouterr().out
    # a record of other arguments is not the requested run: trained again
    stale = json.loads((recs / "nosam__none__small__s4.json").read_text())
    stale["args"]["gamma"] = 0.5
    records.write_record(args.records, stale)
    rx.main(rx.Args(**{**vars(args), "dry_run": True}))
    assert "nosam__none__small__s4: its record has other ['gamma']" in capsys.readouterr().out


def test_runner_reuses_a_record_of_the_same_arguments(fake_experiment, capsys):
    args = rx.Args(**{**vars(fake_experiment), "seeds": (1,), "references": False})
    rx.main(args)
    capsys.readouterr()
    record = records.read_record(args.records / "fake" / "nosam__none__small__s1.json")
    (args.records / "fake" / "nosam__none__small__s1.json").unlink()
    records.write_record(args.records, {**record, "experiment": "older"})
    assert rx.main(args) == 0
    assert "1 records | 1 there | 0 runs to train" in capsys.readouterr().out
    copied = records.read_record(args.records / "fake" / "nosam__none__small__s1.json")
    assert copied["converted"]["reused"] == "records/older/nosam__none__small__s1.json"
    assert copied["experiment"] == "fake" and copied["eval_history"] == record["eval_history"]


@pytest.mark.slow
def test_a_definitions_file_adds_experiments(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(rx, "EXPERIMENTS", dict(rx.EXPERIMENTS))
    defs = tmp_path / "mine.py"
    defs.write_text("from experiments import Experiment, NOSAM\n"
                    "EXPERIMENTS = {'mine': Experiment('my grid', (NOSAM,), ('small',), "
                    "(7,), 300),\n"
                    "               'wrong': Experiment('a budget below the warm-up', (NOSAM,), "
                    "('small',),\n"
                    "                                   (1,), 300, "
                    "('--learning-starts', '1000'))}\n")
    assert rx.main(rx.Args(list=True, definitions=defs)) == 0
    assert "mine                                 my grid" in capsys.readouterr().out
    args = rx.Args(experiment="mine", definitions=defs, records=tmp_path / "r",
                   results_dir=tmp_path / "x", dry_run=True)
    with pytest.raises(ValueError, match="learning-starts"):  # 300 steps: below the default warm-up
        rx.main(args)
    defs.write_text(defs.read_text().replace("(7,), 300)", "(7,), 3000)"))
    assert rx.main(args) == 0
    assert ("sac_marl_baseline.py --scenario small --seed 7 --total-timesteps 3000"
            in capsys.readouterr().out)
    with pytest.raises(ValueError,
                       match=r"--learning-starts \(1000\) must be below --total-timesteps"):
        rx.main(rx.Args(**{**vars(args), "experiment": "wrong"}))  # the script's own check, named
    (tmp_path / "bad.py").write_text("X = 1\n")
    with pytest.raises(ValueError, match="defines no EXPERIMENTS"):
        rx.main(rx.Args(experiment="mine", definitions=tmp_path / "bad.py"))


def test_bad_experiment_names_and_historical_entries_exit_with_a_message(tmp_path, capsys):
    with pytest.raises(SystemExit, match="2"):
        rx.main(rx.Args(experiment="nope", records=tmp_path))
    assert "experiment must be one of comp, comp-dynamic-tuning" in capsys.readouterr().err
    with pytest.raises(ValueError, match="cannot be run again"):
        rx.main(rx.Args(experiment="rb-ablation-5fc924f", records=tmp_path))


def test_reference_rows_use_the_one_evaluation_function(tmp_path):
    import oran_env

    exp = experiments.Experiment("rows", (), ("small",), (), 0, references=(), eval_episodes=2)
    scores = {}
    for name in ("static_equal", "split-0.55-0.12-0.21", "ue_count-1.5-0.3"):
        task = rx.Task("heuristic", "rows", f"heuristic-{name}__none__small__s0", "small", tmp_path)
        record = rx.reference_row(task, exp)
        assert record["finished"] and len(record["final_eval"]["episodic_returns"]) == 2
        scores[name] = record["score"]
    envs = oran_env.make_env("small", num_envs=2, seed=exp.eval_seed)
    returns, _, _ = oran_env.evaluate(lambda obs, env: oran_env.ue_count_split(env, 1.5, 0.3), envs,
                                      exp.eval_seed)
    assert scores["ue_count-1.5-0.3"] == pytest.approx(float(returns.mean()), rel=1e-5)
    envs = oran_env.make_env("small", num_envs=2, seed=exp.eval_seed)
    returns, _, _ = oran_env.evaluate(lambda obs, env: oran_env.HEURISTICS["static_equal"](env),
                                      envs, exp.eval_seed)
    assert scores["static_equal"] == pytest.approx(float(returns.mean()), rel=1e-5)
    with pytest.raises(ValueError, match="unknown reference row"):
        rx.reference_policy(oran_env, "split-0.5")


def test_transfer_evaluates_a_saved_model_on_another_scenario(tmp_path, monkeypatch):
    import dataclasses

    import oran_env
    import sac_marl_baseline as script
    import torch

    source = tmp_path / "paper" / records.run_id("nosam", "none", "paper", 2)
    env = oran_env.make_env("paper", num_envs=1, seed=0)
    torch.manual_seed(0)
    actor = script.Actor(env.n_agents, env.obs_dim, env.act_dim, (16,))
    source.mkdir(parents=True)
    torch.save({"actor": actor.state_dict(), "qf": {}, "hidden_sizes": [16]},
               source / rx.MODEL_FILE)
    env_args = {**dataclasses.asdict(oran_env.make_config("paper")), "reward_zeta": 2.0}
    write_summary(source, {"status": "finished", "script": "sac_marl_baseline.py",
                           "global_step": 300,
                           "args": {"env_id": "oran", "scenario": "paper", "seed": 2,
                                    "env": json.loads(json.dumps(env_args))}})
    configs = []
    make_env = oran_env.make_env
    monkeypatch.setattr(oran_env, "make_env",
                        lambda *a, **kw: configs.append(kw) or make_env(*a, **kw))
    exp = experiments.Experiment("t", (), ("heavy",), (2,), 0, eval_episodes=2)
    task = rx.Task("transfer", "t", "nosam__none__heavy__s2", "heavy", tmp_path / "t",
                   source=source)
    record = rx.transfer_row(task, exp)
    final = record["final_eval"]
    assert len(final["episodic_returns"]) == 2 and record["finished"]
    assert configs[-1]["load"] == 1.5  # the target preset's difference
    assert configs[-1]["reward_zeta"] == 2.0  # the run's own option is kept
    assert configs[-1]["seed"] == exp.eval_seed == script.EVAL_SEED
    assert (record["args"]["trained_steps"] == 300
            and record["script"] == "transfer:sac_marl_baseline.py")
    # the same policy scored as the script scores it (its actor_policy, the env module's evaluate)
    envs = make_env("heavy", **configs[-1])
    returns, _, _ = oran_env.evaluate(script.actor_policy(actor, torch.device("cpu")), envs,
                                      exp.eval_seed)
    assert final["episodic_return"] == pytest.approx(float(np.mean(returns)), rel=1e-5)


@pytest.mark.slow
def test_records_import_no_runner_code():
    import subprocess
    import sys

    code = "import records, sys; assert not {'run_experiments', 'plot_results'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(records.__file__).parent)


@pytest.mark.slow
def test_learning_check_records_convert_with_the_arguments_of_their_flags(tmp_path):
    old = {"script": "sac_marl_baseline.py", "scenario": "small", "seed": 2, "eval_episodes": 32,
           "flags": ["--batch-size", "512"], "partial": False, "total_timesteps": 20000,
           "wall_time_s": 100.0,
           "eval_history": [[10000, 1.0], [16000, 2.0], [20000, 4.0]],
           "eval_sampled_history": [[10000, 1.5], [16000, 2.5], [20000, 3.0]],
           "final_qos": {"qos_embb": 0.5, "qos_mmtc": 0.9, "qos_urllc": 0.8, "rb_overuse": 0.0,
                         "rb_utilisation": 0.7}}
    path = tmp_path / "sac_marl_baseline__small__s2.json"
    path.write_text(json.dumps(old))
    written = records.convert_learning_check([path], "lc", tmp_path / "records")
    record = records.read_record(written[0])
    assert written[0] == tmp_path / "records" / "lc" / "nosam__none__small__s2.json"
    args = record["args"]
    assert args["batch_size"] == 512 and args["seed"] == 2 and args["torch_threads"] == 1
    # small's of the time
    assert (args["gamma"], args["num_envs"], args["lr_decay_to"]) == (0.9, 1, 0.0)
    assert record["score"] == pytest.approx(3.0) and record["finished"]
    assert record["converted"]["from"] == "learning_check"
    path.write_text(json.dumps({**old, "flags": None}))
    with pytest.raises(ValueError, match="keeps no flags"):
        records.convert_learning_check([path], "lc", tmp_path / "records")

@pytest.mark.slow
def test_adding_a_grid_leaves_other_tables_confidence_intervals_unchanged(tmp_path):
    root = tmp_path / "results"
    for variant, base in (("nosam", -10.0), ("ta-sam", -8.0)):
        for seed in (1, 2, 3, 4):
            write_run(root / "paper", variant, "none" if variant == "nosam" else "dynamic", "paper",
                      seed, base + seed, steps=200)

    def paper_table(out):
        md = (out / "results.md").read_text()
        return md.split("### Scenario `paper`")[1].split("##")[0]

    collect(root, tmp_path / "records")
    pr.report(pr.Args(records=tmp_path / "records", out=tmp_path / "alone", n_boot=500,
                      curve_points=5))
    for seed in (1, 2, 3):  # a grid whose name sorts before `paper`, so it is drawn first
        write_run(root / "comp", "nosam", "none", "comp-medium", seed, -5.0 + seed, steps=200)
    collect(root, tmp_path / "records")
    pr.report(pr.Args(records=tmp_path / "records", out=tmp_path / "with_comp", n_boot=500,
                      curve_points=5))
    assert "Experiment `comp`" in (tmp_path / "with_comp" / "results.md").read_text()
    assert paper_table(tmp_path / "with_comp") == paper_table(tmp_path / "alone")


# ------------------------------------------------------------------------------------------------
# run records and the evaluation protocol
# ------------------------------------------------------------------------------------------------
def test_score_is_the_mean_of_the_last_fifth_of_evaluations_and_auc_the_curve_level():

    run = records.make_record("e", "nosam__none__paper__s1", kind="train", script="s.py",
                              args={"seed": 1}, global_step=1000, wall_time_s=1.0,
                              final_eval={"episodic_return": 7.0},
                              eval_history=[[0, 0.0], [200, 2.0], [400, 4.0], [600, 6.0],
                                            [800, 8.0], [1000, 10.0]])
    assert run["score"] == pytest.approx(9.0) and run["finished"]  # evaluations at 800 and 1000
    assert records.eval_auc(run) == pytest.approx(5.0)  # linear 0 -> 10: mean level 5
    row = records.make_record("e", "heuristic-x__none__paper__s0", kind="heuristic",
                              script="heuristic:x",
                              args={}, global_step=0, wall_time_s=0.1, eval_history=[],
                              final_eval={"episodic_return": 3.5})
    assert row["score"] == records.eval_auc(row) == 3.5 and row["finished"]
    # a run without evaluations is no finished run, whatever its script said
    empty = records.make_record("e", "nosam__none__small__s1", kind="train", script="s.py",
                                args={"seed": 1},
                                global_step=1000, wall_time_s=1.0, final_eval={}, eval_history=[])
    assert not empty["finished"] and empty["score"] is None and not records.validate(empty)


def test_record_keeps_what_the_figures_need_and_is_compact(tmp_path):

    run_dir = write_run(tmp_path / "paper", "ta-sam", "dynamic", "paper", 1, 5.0, steps=20_000)
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["final_eval"]["ue_throughput_mbps"] = list(np.linspace(0.0, 10.0, 6400))
    (run_dir / "summary.json").write_text(json.dumps(summary))
    path = records.write_record(tmp_path / "records", records.record_from_run(run_dir, "paper"))
    assert path == tmp_path / "records" / "paper" / "ta-sam__dynamic__paper__s1.json"
    record = records.read_record(path)
    assert record["args"] == {"seed": 1} and record["experiment"] == "paper" and record["finished"]
    final = record["final_eval"]
    assert ("ue_throughput_mbps" not in final
            and final["ue_throughput_mbps_percentiles"][50] == pytest.approx(5.0))
    steps, values = record["curves"][pr.TAG_TRAIN_RETURN]
    assert len(steps) == records.CURVE_POINTS and steps[0] < steps[-1]  # 401 episodes -> 100 bins
    assert pr.TAG_EVAL_RETURN not in record["curves"]  # evaluations come from eval_history
    assert {pr.TAG_TD_VAR.format(m=1), pr.TAG_SAM_ACTIVE.format(m=0),
            pr.TAG_CRITIC_EIG} <= set(record["curves"])
    assert path.stat().st_size < 60_000
    assert (records.read_record(tmp_path) is None
            and records.compact([float("nan"), 1 / 3]) == [None, 0.333333])


@pytest.mark.slow
def test_normalised_scores_probability_of_improvement_and_aggregate(tmp_path):
    root = tmp_path / "results"
    for scenario, (zero, one) in (("paper", (0.0, 10.0)), ("heavy", (-10.0, 0.0))):
        for seed in (1, 2, 3):
            write_heuristic(root / "paper", "static_equal", scenario, seed, zero)
            write_heuristic(root / "paper", "full_info", scenario, seed, one)
            write_run(root / "paper", "nosam", "none", scenario, seed, zero + 2 + 0.1 * seed,
                      steps=200)
            write_run(root / "paper", "ta-sam", "dynamic", scenario, seed, zero + 6 + 0.1 * seed,
                      steps=200)
    collect(root, tmp_path / "records")
    figures, _ = pr.report(pr.Args(records=tmp_path / "records", out=tmp_path / "out", n_boot=300,
                                   curve_points=5))
    md = (tmp_path / "out" / "results.md").read_text()
    paper = md.split("### Scenario `paper`")[1]
    no_sam = next(line for line in paper.splitlines() if line.startswith("| No-SAM |")).split(" | ")
    assert no_sam[4].startswith("0.220 [")  # normalised: (2.2 - 0) / 10
    aggregate = md.split("Normalised score aggregated over")[1]
    row = next(line for line in aggregate.splitlines()
               if line.startswith("| No-SAM |")).split(" | ")
    assert (row[1] == "3 x 2" and row[2].startswith("0.220 [")
            and row[4].startswith("1.00 [1.00, 1.00]"))
    assert "paper_performance_profile.png" in {p.name for p in figures}


def test_welch_test_and_detectable_difference_use_t_quantiles():
    from scipy import stats

    x, y = [10.0, 12.0, 11.0], [9.0, 9.5, 8.0, 9.1]
    assert pr.welch_p(x, y) == pytest.approx(stats.ttest_ind(x, y, equal_var=False).pvalue)
    se, df = pr.welch(x, y)
    assert pr.detectable_difference(x, y) == pytest.approx(
        (stats.t.ppf(0.975, df) + stats.t.ppf(0.8, df)) * se)
    # the normal quantiles were optimistic
    assert pr.detectable_difference(x, y) > (1.96 + 0.84) * se
    assert np.isnan(pr.welch_p([1.0], y)) and np.isnan(pr.detectable_difference([1.0], y))


def test_a_claims_reading_follows_a_welch_test_of_any_gain_and_one_of_the_claimed_gain():
    from scipy import stats

    y = np.array([100.0, 102.0, 98.0, 101.0, 99.0])
    spread = np.array([-1.0, 1.0, 0.5, -0.5, 0.0])
    # +6% with a claim of +5%: better, and the claimed size is not rejected
    assert pr.claim_reading(106 + spread, y, 0.05, 3.0).startswith(
        "reproduced: better (Welch p < 0.05), consistent with the paper's +5% (Welch p = ")
    # +2% with a claim of +22%: better, yet far below the claim; the second test is Welch's
    # against y + 22% of |mean y|
    p_claim = stats.ttest_ind(102 + spread, y + 22, equal_var=False).pvalue
    assert p_claim < 0.001
    assert pr.claim_reading(102 + spread, y, 0.22, 3.0) == (
        "better (Welch p < 0.05), but smaller than the paper's +22% (Welch p < 0.001)")
    # no gain: not reproduced where the claim is rejected, undecided where it is not
    assert pr.claim_reading(100 + spread, y, 0.22, 3.0).startswith("not reproduced: no difference")
    noisy = y + np.array([-8.0, 9.0, -7.0, 8.0, 0.0])
    assert pr.claim_reading(noisy, y, 0.05, 11.0) == (
        "the seeds cannot tell: they detect about +-11.0% or more")
    assert pr.claim_reading(94 + spread, y, 0.05, 3.0) == "contradicted: worse (Welch p < 0.05)"
    assert pr.claim_reading([106.0], y, 0.05, 3.0).startswith("too few seeds")
    # negative returns: the gain is relative to |mean y|, as in the gain column
    assert pr.claim_reading(-94 + spread, -y, 0.05, 3.0).startswith("reproduced: better")


def test_probability_of_improvement_statistic_equals_rliables():
    from rliable import metrics

    rng = np.random.default_rng(3)
    for n, m, tasks in ((10, 7, 1), (5, 10, 2), (4, 4, 3)):
        # with ties
        x, y = np.round(rng.normal(size=(n, tasks)), 1), np.round(rng.normal(size=(m, tasks)), 1)
        assert pr.poi_statistic(x, y) == pytest.approx(metrics.probability_of_improvement(x, y))


@pytest.mark.slow
def test_readme_tables_are_rewritten_from_the_records(tmp_path):
    root = tmp_path / "results"
    for variant, base in (("nosam", -10.0), ("ta-sam", -8.0)):
        for seed in (1, 2, 3):
            write_run(root / "paper", variant, "none" if variant == "nosam" else "dynamic", "paper",
                      seed, base + seed, steps=200)
    collect(root, tmp_path / "records")
    args = pr.Args(records=tmp_path / "records", out=tmp_path / "out", n_boot=300, root=tmp_path)
    pr.report(args)
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- table: paper/paper -->\nstale\n<!-- /table -->\nend\n")
    assert pr.update_readme(readme, args) == 1
    table = readme.read_text().split("<!-- table: paper/paper -->\n")[1].split("<!-- /table -->")[0]
    assert table.strip() in (tmp_path / "out" / "results.md").read_text()  # the same numbers
    assert "| TA-SAM (dynamic) | 3 | -6.00 [" in table and "stale" not in table
    (tmp_path / "docs").mkdir()
    page = tmp_path / "docs" / "results.md"
    page.write_text("# Results\n<!-- table: paper/paper -->\n<!-- /table -->\n")
    assert pr.marked_files(tmp_path) == [readme, page]
    assert pr.update_readme(page, args) == 1 and table in page.read_text()  # docs pages alike
    readme.write_text("<!-- table: paper/heavy -->\n<!-- /table -->\n")
    with pytest.raises(ValueError, match="paper/heavy"):
        pr.update_readme(readme, args)


def test_evaluate_per_episode_values_average_to_its_means():
    import oran_env

    policy = lambda obs, env: oran_env.HEURISTICS["urllc_first"](env)  # noqa: E731
    envs = oran_env.make_env("small", num_envs=3, seed=5)
    returns, metrics, tput = oran_env.evaluate(policy, envs, 5)
    envs = oran_env.make_env("small", num_envs=3, seed=5)
    *again, episodes = oran_env.evaluate(policy, envs, 5, per_episode=True)
    assert np.array_equal(returns, again[0]) and metrics == again[1] and tput == again[2]
    for key, value in metrics.items():
        assert np.mean(episodes["metrics"][key]) == pytest.approx(value, rel=1e-9)
    agent_returns = np.asarray(episodes["agent_returns"])  # (E, N)
    assert np.allclose(agent_returns.mean(1), returns, rtol=1e-6)
    qos = np.asarray(episodes["agent_qos"])  # (E, N, L): the DUs' mean is the metric
    assert np.allclose(qos.mean(1)[:, 0], episodes["metrics"]["qos_embb"], atol=1e-6)


def test_heuristics_tables_tune_on_their_own_records(tmp_path):
    table = experiments.Experiment("heuristics", (), ("small",), (), 0, eval_episodes=3,
                                   eval_seed=0, env_options=experiments.RB_SLICE)
    tuning = experiments.Experiment("heuristics-tuning", (), ("small",), (), 0, eval_episodes=2,
                                    eval_seed=1000, env_options=experiments.RB_SLICE)
    rows = ("static_equal", "pf_no_slicing", "urllc_first-1", "urllc_first-3", "ue_count-1-0.3")
    for exp, names in ((table, rows), (tuning, rows[2:])):
        for name in names:
            task = rx.Task("heuristic", exp.doc, f"heuristic-{name}__none__small__s0", "small",
                           tmp_path)
            records.write_record(tmp_path / "records", rx.reference_row(task, exp))
    notes = []
    runs = pr.load_grid(tmp_path / "records" / "heuristics", notes)
    tuned = pr.load_grid(tmp_path / "records" / "heuristics-tuning", notes)
    best = max((r for r in tuned if "urllc_first" in r.variant), key=lambda r: r.score).variant
    tables = pr.heuristics_tables(runs, tuned, pr.Args(records=tmp_path / "records", n_boot=200))
    labels = [line.split(" | ")[1] for line in tables[""][2:]]
    assert labels == ["static_equal", pr.heuristic_label(best[len("heuristic-"):]),
                      "pf_no_slicing", "ue_count (1, 0.3)"] and not notes
    static = next(r for r in runs if r.variant == "heuristic-static_equal").summary["final_eval"]
    qos = static["metrics"]["qos_embb"]
    assert tables[""][2].startswith(f"| small | static_equal | {qos:.3f} [")
    assert tables["headroom"][2].split(" | ")[2] == "-"  # no full-information row here
    assert "small" not in tables  # the per-DU table only of PER_DU_SCENARIOS
    assert "| small | urllc_first | 2 |" in "\n".join(pr.tuning_rows(tuned))
    marked = pr.readme_tables(pr.Args(records=tmp_path / "records", n_boot=200),
                              ["heuristics", "heuristics/headroom"])
    assert marked["heuristics/headroom"] == "\n".join(tables["headroom"]) + "\n"
    assert marked["heuristics"] == "\n".join(tables[""]) + "\n"


def test_comp_heuristics_table_from_its_records(tmp_path):
    exp = experiments.Experiment("comp-heuristics", (), ("comp-small",), (), 0, eval_episodes=4,
                                 eval_seed=0)
    for name in ("best_cell", "random"):
        task = rx.Task("heuristic", exp.doc, f"heuristic-{name}__none__comp-small__s0",
                       "comp-small", tmp_path)
        records.write_record(tmp_path, rx.reference_row(task, exp))
    runs = pr.load_grid(tmp_path / "comp-heuristics", [])
    lines = pr.comp_heuristics_rows(runs, pr.Args(records=tmp_path, n_boot=200))
    utility = {r.variant: r.summary["final_eval"]["metrics"]["utility"] for r in runs}
    cells = lines[2].split(" | ")
    assert cells[:3] == ["| small", "2", "3 (2+1)"] and cells[-2] == "-"  # no dynamic_comp row
    assert cells[3].startswith(f"{utility['heuristic-best_cell']:.2f} [")


def test_load_tokens_score_the_heuristics_on_the_ppo_load_sweeps_episodes(tmp_path):
    import comp_env
    import ppo_comp

    assert experiments.load_factor("comp-small-x4") == ("comp-small", 4)
    assert experiments.load_factor("comp-small") == ("comp-small", 1)
    assert experiments.load_factor("paper") == ("paper", 1)
    with pytest.raises(ValueError, match="reference rows only"):
        experiments.scenario_flags("ppo_comp.py", "comp-small-x2")
    exp = experiments.Experiment("load", (), ("comp-small", "comp-small-x2"), (), 0,
                                 references=("best_cell", "full_comp"), eval_episodes=3,
                                 eval_seed=0, env_options=(("reward", "multi"),))
    for scenario in exp.scenarios:
        for name in exp.references:
            task = rx.Task("heuristic", exp.doc, f"heuristic-{name}__none__{scenario}__s0",
                           scenario, tmp_path)
            records.write_record(tmp_path, rx.reference_row(task, exp))
    # the episodes ppo_comp.py's --eval-load-factors 2 builds for a policy trained on small
    overrides = ppo_comp.env_overrides(ppo_comp.parse_args(["--scenario", "small"]), 2)
    assert rx.env_family("comp-small-x2") == ("comp_env", "small", overrides)
    sweep_env = comp_env.make_env("small", num_envs=3, seed=0, reward="multi", **overrides)
    direct = comp_env.evaluate(lambda obs, env: comp_env.HEURISTICS["best_cell"](env),
                               sweep_env, 0)
    runs = pr.load_grid(tmp_path / "load", [])
    row = next(r for r in runs if r.scenario == "comp-small-x2" and "best_cell" in r.variant)
    assert row.summary["final_eval"]["metrics"]["utility"] == pytest.approx(
        direct[1]["utility"])
    # the load table puts the heuristics of each load after the PPO policy of that load
    ppo = records.make_record(
        "ppo-comp", "ppo-multi__none__comp-small__s1", kind="train", script="ppo_comp.py",
        args={"scenario": "small", "seed": 1}, global_step=10, wall_time_s=1.0,
        eval_history=[[10, -1.0]], final_eval={"episodic_return": -1.0, "metrics": {}},
        extra={"load_sweep": {str(k): {"num_ues": 3 * k, "connections_per_ue": 1.5,
                                       "utility": -k, "unconnected_fraction": 0.0}
                              for k in (1, 2)}})
    records.write_record(tmp_path, ppo)
    lines = pr.ppo_load_rows(pr.load_grid(tmp_path / "ppo-comp", []), runs)
    assert [line.split(" | ")[1:3] for line in lines[2:]] == [
        [str(n), p] for n in (3, 6)
        for p in ("PPO multi-agent [cleanrl]", "heuristic: best_cell", "heuristic: full_comp")]
    assert lines[6].endswith(f"| {direct[1]['utility']:.2f} | "
                             f"{direct[1]['unconnected_fraction']:.3f} |")


def test_paired_gap_ci_resamples_seeds_and_paired_episodes():
    rng = np.random.default_rng(0)
    reference = rng.normal(0.0, 1.0, 200)
    # a constant gap on every episode: the pairing removes the episodes' spread entirely
    gap, lo, hi = pr.paired_gap_ci(reference[None] + 0.3, reference, 1000, rng)
    assert (gap, lo, hi) == pytest.approx((0.3, 0.3, 0.3))
    # seeds that differ by a constant: the interval is the seeds' spread, not the episodes'
    seeds = reference[None] + np.array([[0.1], [0.2], [0.3], [0.4], [0.5]])
    gap, lo, hi = pr.paired_gap_ci(seeds, reference, 4000, rng)
    assert gap == pytest.approx(0.3) and 0.1 <= lo < 0.3 < hi <= 0.5
    # independent per-episode noise: the CI covers the mean and narrows with more episodes
    noisy = reference + rng.normal(0.2, 1.0, 200)
    gap, lo, hi = pr.paired_gap_ci(noisy, reference, 4000, rng)
    gap2, lo2, hi2 = pr.paired_gap_ci(noisy[:50], reference[:50], 4000, rng)
    assert lo < gap < hi and lo2 < gap2 < hi2 and hi - lo < hi2 - lo2


def test_ppo_verdict_compares_with_the_tuned_dynamic_comp_on_the_same_episodes(tmp_path):
    exp = experiments.Experiment("v", (), ("comp-small",), (), 0, eval_episodes=6, eval_seed=0,
                                 env_options=(("reward", "multi"),))
    for name in ("best_cell", "dynamic_comp", "dynamic_comp-0.6", "full_info"):
        task = rx.Task("heuristic", exp.doc, f"heuristic-{name}__none__comp-small__s0",
                       "comp-small", tmp_path)
        records.write_record(tmp_path, rx.reference_row(task, exp))
    runs = pr.load_grid(tmp_path / "v", [])
    per_episode = {r.variant: np.array(r.summary["final_eval"]["per_episode"]["utility"])
                   for r in runs}
    tuned = per_episode["heuristic-dynamic_comp-0.6"]
    lines = pr.ppo_verdict_rows(runs, pr.Args(records=tmp_path, n_boot=200),
                                np.random.default_rng(0))
    rows = {line.split(" | ")[1]: line.split(" | ") for line in lines[2:]}
    assert list(rows) == ["heuristic: best_cell", "heuristic: dynamic_comp",
                          "heuristic: dynamic_comp-0.6", "heuristic: full_info"]
    assert rows["heuristic: dynamic_comp-0.6"][5] == "-"
    full_gap = per_episode["heuristic-full_info"] - tuned
    assert rows["heuristic: full_info"][5].startswith(f"{full_gap.mean():.2f} [")
    without = [r for r in runs if r.variant != "heuristic-dynamic_comp-0.6"]
    assert pr.tuned_dynamic_comp({r.variant[len("heuristic-"):]: r for r in without}) == \
        "dynamic_comp"
