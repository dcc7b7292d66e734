"""Every experiment the project publishes, one entry of EXPERIMENTS each:

    python run_experiments.py <experiment> [--seeds 1 2 3]      # runs what its records lack

An entry names its methods (a run-name variant and rho setting, a training script and the
script's flags), scenarios, seeds, budget (environment steps), the flags of every run, the flags
per scenario, and its reference rows (heuristics scored on the runs' evaluation episodes). Every
flag that decides what a run computes is spelled here, also where it equals a script's default
today (`small`'s RB-level values, the non-RB actions' temperature and action-head bias), so a
record stays the run its entry asks for when a default changes; only `paper`'s RB-level job (the
main job) runs with the scripts' defaults. The runner adds only the run machinery's flags
(--seed, --total-timesteps, --run-dir, --torch-threads, --resume).

Records land in records/<experiment>/<variant>__<rho>__<scenario>__s<seed>.json (records.py);
scenario tokens are oran_env's presets, comp-<preset> for comp_env's, and comp-<preset>-x<k> for
comp_env's preset with k times its slow and fast UEs (reference rows only: the PPO load sweep's
episodes, ppo_comp.py --eval-load-factors).
"""

from __future__ import annotations

from dataclasses import dataclass

from records import EVAL_SEED


@dataclass(frozen=True)
class Method:
    """One trained configuration: run names start with <variant>__<rho>."""

    variant: str
    rho: str
    script: str
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Experiment:
    doc: str
    methods: tuple[Method, ...]
    scenarios: tuple[str, ...]
    seeds: tuple[int, ...]
    steps: int  # environment steps of every run (--total-timesteps) unless per_scenario_steps
    flags: tuple[str, ...] = ()  # flags of every run, after the method's
    per_scenario: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (scenario, flags), after `flags`
    per_scenario_steps: tuple[tuple[str, int], ...] = ()
    only: tuple[str, ...] = ()  # run names, or prefixes <variant>__<rho>__<scenario>; () = all
    references: tuple[str, ...] = ()  # reference rows (REFERENCE_ROWS names), once per scenario
    env_options: tuple[tuple[str, object], ...] = ()  # environment options of the reference rows
    eval_episodes: int = 32  # episodes of the reference rows (= the runs' --eval-episodes)
    eval_seed: int = EVAL_SEED  # seed of the evaluation episodes (the SAC scripts')
    transfer_from: tuple[str, tuple[tuple[str, str], ...]] | None = None  # (experiment,
    # ((target, source scenario), ...)): evaluate that experiment's saved models, no training
    reuse: tuple[str, ...] = ()  # experiments whose records of the same arguments count here
    posthoc: str = ""  # "decodings": score the final actor's RB-level decodings (the ablation);
    # "training-reward": a PPO run's policy and the heuristics under its training reward
    historical: str = ""  # why the entry cannot be run again (its records are kept as they are)
    variants: tuple[str, ...] = ()  # run-name variants of records that no method declares

    def steps_of(self, scenario: str) -> int:
        return dict(self.per_scenario_steps).get(scenario, self.steps)

    def flags_of(self, scenario: str) -> tuple[str, ...]:
        return self.flags + dict(self.per_scenario).get(scenario, ())


SAC, L2, TASAM = "sac_marl_baseline.py", "sac_marl_l2.py", "tasam_marl_sac.py"
RHO_FLAGS = {  # rho setting -> tasam_marl_sac.py flags (docs/training.md#sam-and-the-rho-schedule)
    "dynamic": ("--rho-schedule", "dynamic"),
    "equal": ("--rho-schedule", "fixed", "--rho-actor", "0.01", "--rho-critic", "0.01"),
    "unequal": ("--rho-schedule", "fixed", "--rho-actor", "0.05", "--rho-critic", "0.01"),
}
SAM_VARIANTS = {"actor-sam": ("--no-sam-critic",), "critic-sam": ("--no-sam-actor",),
                "both-sam": ("--no-selective",), "ta-sam": ()}  # docs/training.md#the-variants
LABELS = {"nosam": "No-SAM", "l2": "L2", "actor-sam": "Actor-SAM", "critic-sam": "Critic-SAM",
          "both-sam": "Both-SAM", "ta-sam": "TA-SAM", "ppo-multi": "PPO multi-agent",
          "ppo-central": "PPO central", "sac": "SAC (sac_marl_baseline.py)",
          "ppo-multi-sum": "PPO multi-agent, sum reward",
          "ppo-multi-avg": "PPO multi-agent, avg reward",
          "ppo-central-sum": "PPO central, sum reward",
          "ppo-central-avg": "PPO central, avg reward",
          # ppo-comp-sweep's points: one change from the rllib preset
          "ppo-multi-sum-epochs10": "PPO multi-agent, sum reward, 10 epochs",
          "ppo-multi-sum-rows512": "PPO multi-agent, sum reward, 512-row minibatches",
          "ppo-multi-sum-lambda0.95": "PPO multi-agent, sum reward, GAE lambda 0.95",
          "ppo-multi-sum-ent0.01": "PPO multi-agent, sum reward, entropy 0.01",
          "ppo-multi-sum-lr2e-4": "PPO multi-agent, sum reward, lr 2e-4",
          "ppo-multi-sum-cleanrl": "PPO multi-agent, sum reward"}
NOSAM, L2_METHOD = Method("nosam", "none", SAC), Method("l2", "none", L2)


def sam(variant: str, rho: str, *flags: str) -> Method:
    return Method(variant, rho, TASAM, SAM_VARIANTS[variant] + RHO_FLAGS[rho] + flags)


def fixed_rho(variant: str, rho: float) -> Method:
    value = f"{rho:g}"
    return Method(variant, f"fixed{value}", TASAM, SAM_VARIANTS[variant] + (
        "--rho-schedule", "fixed", "--rho-actor", value, "--rho-critic", value))


TASAM_DYNAMIC = sam("ta-sam", "dynamic")
PAPER_METHODS = (NOSAM, L2_METHOD) + tuple(sam(v, r) for r in ("equal", "unequal", "dynamic")
                                           for v in SAM_VARIANTS)
# Non-RB actions (slice_share, comp_env): CleanRL's temperature 1 and action head, one env copy
NON_RB = ("--num-envs", "1", "--alpha-init", "1.0", "--init-bias", "0")
# The CPU budget of the slice_share grids: the compact action (3 numbers per DU), batch 128,
# 1,000 warm-up steps, an evaluation every 500 steps, models saved for the transfer rows
BUDGET = ("--batch-size", "128", "--learning-starts", "1000", "--eval-interval", "500",
          "--save-model")
CPU_BUDGET = ("--action-mode", "slice_share", *NON_RB, *BUDGET)


def rb_values(num_envs, gamma, target_entropy, lr_decay_to) -> tuple[str, ...]:
    """The four flags in which the RB-level jobs of `small` and `paper` differ."""
    return ("--num-envs", f"{num_envs}", "--gamma", f"{gamma}", "--target-entropy",
            f"{target_entropy}", "--lr-decay-to", f"{lr_decay_to}")


# `small`'s RB-level values [ours]: a shorter horizon, a higher entropy target, decaying rates
RB_SMALL = rb_values(1, 0.9, -0.5, 0)
PAPER_VALUES = rb_values(2, 0.99, -1, 1)  # `paper`'s RB-level values, spelled for `small`
HEURISTIC_ROWS = ("static_equal", "urllc_first", "ue_count", "pf_no_slicing", "random")
ALL_ORAN_ROWS = HEURISTIC_ROWS + ("demand_proportional", "full_info")
SPLITS = tuple(f"split-{1 - m - u:.2f}-{m:g}-{u:g}" for m in (0.04, 0.08, 0.12)
               for u in (0.08, 0.12, 0.16, 0.2, 0.24))  # constant RB shares eMBB-mMTC-URLLC
UE_COUNT_RULES = tuple(f"ue_count-{u:g}-{m:g}" for u in (0.5, 1, 1.5, 2)
                       for m in (0.1, 0.2, 0.3, 0.5))  # RBs per URLLC UE, per mMTC UE
FIVE, TEN = (1, 2, 3, 4, 5), tuple(range(1, 11))
# The grids the heuristics table tunes per scenario on its own episodes (docs/model.md#heuristics):
# urllc_first's margin, ue_count's RBs per URLLC UE x RBs per mMTC UE
TUNING_GRID = tuple(f"urllc_first-{m:g}" for m in (1, 1.25, 1.5, 2, 3)) + tuple(
    f"ue_count-{u:g}-{m:g}" for u in (1, 1.5, 2) for m in (0.2, 0.3, 0.5))
TABLE_SCENARIOS = ("paper", "hetero", "light", "heavy")
RB_SLICE = (("action_mode", "rb_slice"),)


def learning_check(doc, *, small=None, paper=(), methods=(NOSAM, TASAM_DYNAMIC),
                   **kw) -> Experiment:
    """A learning-check entry: the scripts on the RB-level action (20k steps, 5 seeds) with
    `small`'s and `paper`'s flags (None: not on that scenario)."""
    flags = {s: tuple(f) for s, f in (("small", small), ("paper", paper)) if f is not None}
    scenarios, per = tuple(flags), tuple(flags.items())
    return Experiment(doc, tuple(methods), scenarios, kw.pop("seeds", FIVE),
                      kw.pop("steps", 20_000), ("--eval-episodes", "32"), per_scenario=per, **kw)


# The RB-level ablation of sac_marl_baseline.py: the defaults it started from (SAC's entropy
# target, one env copy, gamma 0.99, constant learning rates), then one configuration each
ABLATION_BASE = ("--target-entropy", "-1", "--num-envs", "1", "--gamma", "0.99",
                 "--lr-decay-to", "1", "--checkpoint-interval", "0", "--eval-interval", "2000")
ABLATION = {
    "cleanrl": ("--alpha-init", "1", "--init-bias", "0"),
    "bias1": ("--alpha-init", "1", "--init-bias", "1"),
    "alpha1e-2": ("--alpha-init", "1e-2", "--init-bias", "0"),
    "alpha1e-2+bias1": ("--alpha-init", "1e-2", "--init-bias", "1"),
    "alpha1e-3+bias1": ("--alpha-init", "1e-3", "--init-bias", "1"),
    "alpha1e-2+bias1+lr3e-4": ("--alpha-init", "1e-2", "--init-bias", "1", "--policy-lr", "3e-4",
                               "--q-lr", "3e-4"),
    "gamma0.9": ("--gamma", "0.9"),
    "lr3e-4": ("--policy-lr", "3e-4", "--q-lr", "3e-4"),
    "qlr1e-3": ("--q-lr", "1e-3"),
    "batch1024": ("--batch-size", "1024"),
    "tau0.02": ("--tau", "0.02"),
    "bias0": ("--init-bias", "0"),
    "te-0.5": ("--target-entropy", "-0.5"),
    "utd2": ("--updates-per-step", "2"),
    "utd0.5": ("--num-envs", "2"),
    "utd0.25": ("--num-envs", "4"),
    "utd0.5+batch512": ("--num-envs", "2", "--batch-size", "512"),
    "utd0.5+bias0.3": ("--num-envs", "2", "--init-bias", "0.3"),
    "gamma0.9+te-0.5": ("--gamma", "0.9", "--target-entropy", "-0.5"),
    "anneal": ("--lr-decay-to", "0"),
    "gamma0.9+te-0.5+anneal": ("--gamma", "0.9", "--target-entropy", "-0.5", "--lr-decay-to", "0"),
}
# the runs made of each configuration: (scenario, steps) -> {configuration: seeds}
ABLATION_RUNS = {
    ("paper", 20_000): {"alpha1e-3+bias1": 3, "anneal": 3, "gamma0.9": 1, "te-0.5": 3,
                        "utd0.25": 3, "utd0.5": 3, "utd0.5+batch512": 2, "utd0.5+bias0.3": 2,
                        "gamma0.9+te-0.5": 3, "gamma0.9+te-0.5+anneal": 3},
    ("small", 20_000): {"alpha1e-3+bias1": 3, "anneal": 3, "batch1024": 3, "bias0": 3,
                        "gamma0.9": 3, "lr3e-4": 3, "qlr1e-3": 3, "te-0.5": 3, "utd0.25": 3,
                        "utd0.5": 3, "utd2": 3, "gamma0.9+te-0.5": 4, "gamma0.9+te-0.5+anneal": 5},
    ("paper", 6_000): {"alpha1e-3+bias1": 3, "bias0": 3, "gamma0.9": 3, "qlr1e-3": 3,
                       "te-0.5": 3, "utd2": 3},
}


def ablation_runs(steps: int) -> tuple[str, ...]:
    return tuple(f"{name}__none__{scenario}__s{seed}"
                 for (scenario, budget), runs in ABLATION_RUNS.items() if budget == steps
                 for name, n in runs.items() for seed in range(1, n + 1))


ABLATION_METHODS = tuple(Method(name, "none", SAC, ABLATION_BASE + flags)
                         for name, flags in ABLATION.items())


def ppo(mode: str, *flags: str) -> Method:
    return Method(f"ppo-{mode}", "none", "ppo_comp.py", ("--mode", mode) + flags)


def ppo_reward(mode: str, aggregate: str, *flags: str, name: str = "",
               preset: str = "rllib") -> Method:
    """PPO on a training reward with an optimiser preset (ppo_comp.py --preset; rllib: DeepCoMP's
    settings); `name` tells a sweep point's changed flags apart."""
    return Method(f"ppo-{mode}-{aggregate}{name}", "none", "ppo_comp.py",
                  ("--mode", mode, "--reward-aggregate", aggregate, "--preset", preset) + flags)


# dynamic_comp-0.6: dynamic CoMP with the epsilon tuned on validation episodes (comp-dynamic-tuning)
COMP_REFERENCES = ("best_cell", "dynamic_comp", "dynamic_comp-0.6", "full_comp", "random",
                   "full_info")
# the heuristics scored under a PPO run's training reward (posthoc="training-reward")
TRAINING_REWARD_ROWS = ("best_cell", "dynamic_comp", "dynamic_comp-0.6", "full_comp", "full_info")
# the sweep's validation episodes: another seed than the 100 test episodes (--eval-seed 0)
COMP_VALIDATION_SEED = 1
# one change at a time from the rllib preset (ppo_comp.py PRESETS): epochs, minibatch, lambda,
# entropy, lr; "-cleanrl" is CleanRL's settings (with the sweep's reward and rows) for reference
PPO_SWEEP = (ppo_reward("multi", "sum"),
             ppo_reward("multi", "sum", "--update-epochs", "10", name="-epochs10"),
             ppo_reward("multi", "sum", "--minibatch-rows", "512", name="-rows512"),
             ppo_reward("multi", "sum", "--gae-lambda", "0.95", name="-lambda0.95"),
             ppo_reward("multi", "sum", "--ent-coef", "0.01", name="-ent0.01"),
             ppo_reward("multi", "sum", "--learning-rate", "2e-4", name="-lr2e-4"),
             ppo_reward("multi", "sum", name="-cleanrl", preset="cleanrl"))
# the sweep's pick, the best mean utility over its 3 seeds on the validation episodes: CleanRL's
# settings (docs/comp.md; tests/test_readme_results.py checks it against the sweep's records)
COMP_PRESET = "cleanrl"


def load_token(scenario: str, k: int) -> str:
    """The scenario token of comp-<preset> at k times its UEs (the token itself at k = 1)."""
    return scenario if k == 1 else f"{scenario}-x{k}"


def load_factor(scenario: str) -> tuple[str, int]:
    """(the scenario token without its load, k) of comp-<preset>-x<k>; (scenario, 1) otherwise."""
    base, sep, k = scenario.rpartition("-x")
    if scenario.startswith("comp-") and sep and k.isdigit() and int(k) >= 1:
        return base, int(k)
    return scenario, 1


EXPERIMENTS: dict[str, Experiment] = {
    # --- the method grids on the compact slice_share action (docs/results.md) ---
    "paper": Experiment(
        "No-SAM, L2 and the four SAM variants x three rho settings on `paper` and `hetero`",
        PAPER_METHODS, ("paper", "hetero"), TEN, 5_000, CPU_BUDGET, references=ALL_ORAN_ROWS,
        env_options=(("action_mode", "slice_share"),)),
    "generalisation": Experiment(
        "the `paper` grid's saved models evaluated on `light`, `heavy` and `hetero`, its `hetero` "
        "models on `paper`", PAPER_METHODS, ("light", "heavy", "hetero", "paper"), TEN, 0,
        references=ALL_ORAN_ROWS, env_options=(("action_mode", "slice_share"),),
        transfer_from=("paper", (("light", "paper"), ("heavy", "paper"), ("hetero", "paper"),
                                 ("paper", "hetero")))),
    "rb_small": Experiment(
        "No-SAM, L2, Both-SAM and TA-SAM with the paper's RB-level action on `small` (CPU budget)",
        (NOSAM, L2_METHOD, sam("both-sam", "dynamic"), TASAM_DYNAMIC), ("small",), TEN, 10_000,
        ("--action-mode", "rb_slice", *RB_SMALL, "--batch-size", "128", "--learning-starts", "1000",
         "--eval-interval", "1000", "--save-model"), references=ALL_ORAN_ROWS,
        env_options=(("action_mode", "rb_slice"),)),
    "rho_sweep": Experiment(
        "Actor/Critic/Both-SAM with a fixed rho in 0..0.06 (actor = critic rho)",
        tuple(fixed_rho(v, r) for v in ("actor-sam", "critic-sam", "both-sam")
              for r in (0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06)),
        ("paper",), TEN, 5_000, CPU_BUDGET),
    "du_sweep": Experiment(
        "No-SAM and TA-SAM with 2..10 DUs and 200 UEs", (NOSAM, TASAM_DYNAMIC),
        tuple(f"du{n}" for n in (2, 4, 6, 8, 10)), TEN, 5_000, CPU_BUDGET),
    "nonstationary": Experiment(
        "No-SAM, L2 and TA-SAM; the traffic shifts half-way through training",
        (NOSAM, L2_METHOD, TASAM_DYNAMIC), ("nonstationary",), TEN, 10_000,
        CPU_BUDGET + ("--shift-after-steps", "5000")),
    "comp": Experiment(
        "multi-agent SAC and TA-SAM on DeepCoMP's medium scenario", (NOSAM, TASAM_DYNAMIC),
        ("comp-medium",), TEN, 5_000, NON_RB + BUDGET),
    # --- the paper's claims on the paper's own RB-level action, main-job defaults ---
    "rb-paper": Experiment(
        "TA-SAM (dynamic rho), No-SAM, Both-SAM, L2 and TA-SAM with fixed rho (equal 0.01/0.01, "
        "unequal 0.05/0.01) on `paper`, RB-level action, the main job's defaults",
        (TASAM_DYNAMIC, NOSAM, sam("both-sam", "dynamic"), L2_METHOD, sam("ta-sam", "equal"),
         sam("ta-sam", "unequal")), ("paper",), TEN, 20_000, ("--eval-episodes", "32"),
        references=ALL_ORAN_ROWS + SPLITS + UE_COUNT_RULES,
        reuse=("learning-check", "learning-check-rho-fixed", "learning-check-rho-fixed-unequal")),
    "rb-hetero": Experiment(
        "TA-SAM (dynamic rho) and No-SAM on `hetero`, RB-level action, the main job's defaults",
        (TASAM_DYNAMIC, NOSAM), ("hetero",), TEN, 20_000, ("--eval-episodes", "32"),
        references=ALL_ORAN_ROWS + SPLITS + UE_COUNT_RULES),
    "rb-nonstationary": Experiment(
        "TA-SAM (dynamic rho) and No-SAM on `nonstationary` (the traffic shifts at 10,000 env "
        "steps; every evaluation replays the pre-shift episodes), RB-level action, the main job's "
        "defaults: the paper's 'less forgetting'",
        (TASAM_DYNAMIC, NOSAM), ("nonstationary",), TEN, 20_000, ("--eval-episodes", "32"),
        references=ALL_ORAN_ROWS),
    # --- the learning check: the scripts' RB-level jobs against the heuristics ---
    "learning-check": learning_check(
        "the scripts' defaults (the main job on `paper`) and `small`'s RB-level values",
        small=RB_SMALL, references=HEURISTIC_ROWS),
    "learning-check-small-flags": learning_check(
        "`small`'s RB-level values spelled as flags (they reproduce the default runs)",
        small=RB_SMALL, paper=None),
    "learning-check-small-paper-defaults": learning_check(
        "`paper`'s values on `small` (the defaults there up to 240b555)", small=PAPER_VALUES,
        paper=None),
    "learning-check-num-envs1": learning_check(
        "one update per env step (--num-envs 1), the RB-level default of the time",
        small=rb_values(1, 0.99, -1, 1),
        paper=("--num-envs", "1"), only=("nosam__none__small", "nosam__none__paper",
                                        "ta-sam__dynamic__paper")),
    "learning-check-te-0.5": learning_check(
        "a higher entropy target (-0.5 act_dim), with one env copy",
        small=rb_values(1, 0.99, -0.5, 1),
        paper=("--num-envs", "1", "--target-entropy", "-0.5"),
        only=("nosam__none__small", "nosam__none__paper", "ta-sam__dynamic__paper")),
    "learning-check-lr-decay0": learning_check(
        "learning rates decaying to 0 at the budget, with one env copy",
        small=rb_values(1, 0.99, -1, 0),
        paper=("--num-envs", "1", "--lr-decay-to", "0"),
        only=("nosam__none__small", "nosam__none__paper", "ta-sam__dynamic__paper")),
    "learning-check-bias0.3": learning_check("a smaller action-head bias",
                                             paper=("--init-bias", "0.3")),
    "learning-check-batch512": learning_check("batch 512", paper=("--batch-size", "512")),
    "learning-check-batch512-small": learning_check(
        "batch 512 with `paper`'s values on `small`", small=PAPER_VALUES + ("--batch-size", "512"),
        paper=None,
        only=("nosam__none__small", "ta-sam__dynamic__small")),
    "learning-check-budget40k": learning_check(
        "the main job at twice the budget", methods=(TASAM_DYNAMIC,), steps=40_000, seeds=(1, 4)),
    "learning-check-rho-fixed": learning_check(
        "TA-SAM with the paper's equal fixed radii (0.01/0.01) on the main job",
        methods=(sam("ta-sam", "equal"),)),
    "learning-check-rho-fixed-unequal": learning_check(
        "TA-SAM with the paper's unequal fixed radii (0.05/0.01) on the main job",
        methods=(sam("ta-sam", "unequal"),)),
    "learning-check-rerun": learning_check(
        "single seeds trained again on another machine (the same code and flags)", small=RB_SMALL,
        only=("nosam__none__paper__s1", "nosam__none__small__s3", "ta-sam__dynamic__paper__s4")),
    # --- what one constant RB split or one UE-count rule scores (no training) ---
    "fixed-splits": Experiment(
        "constant RB splits and UE-count rules on the learning check's evaluation episodes",
        (), ("small", "paper"), (), 0, references=("static_equal", "pf_no_slicing") + SPLITS
        + ("split-0.55-0.12-0.21", "split-0.67-0.12-0.21") + UE_COUNT_RULES),
    # --- the heuristics table: every heuristic, tuned on disjoint episodes (docs/results.md) ---
    "heuristics": Experiment(
        "oran_env's heuristics, the tuning grid's points and the full-information reference "
        "(12 episodes, seed 0)", (), TABLE_SCENARIOS, (), 0,
        references=("static_equal", "demand_proportional", "pf_no_slicing", "random", "full_info")
        + TUNING_GRID, env_options=RB_SLICE, eval_episodes=12, eval_seed=0),
    "heuristics-tuning": Experiment(
        "the tuning grid's points on the tuning episodes (6 episodes, seed 1000, disjoint from "
        "the table's)", (), TABLE_SCENARIOS, (), 0, references=TUNING_GRID, env_options=RB_SLICE,
        eval_episodes=6, eval_seed=1000),
    # --- the RB-level ablation of sac_marl_baseline.py (docs/results.md) ---
    "rb-ablation": Experiment(
        "one change each from the ablation's base, 20k steps", ABLATION_METHODS, ("small", "paper"),
        FIVE, 20_000, ("--eval-episodes", "32"), only=ablation_runs(20_000), posthoc="decodings"),
    "rb-ablation-6k": Experiment(
        "the ablation's short runs on `paper`, 6k steps", ABLATION_METHODS, ("paper",), (1, 2, 3),
        6_000,
        ("--eval-episodes", "32"), only=ablation_runs(6_000), posthoc="decodings"),
    "rb-ablation-5fc924f": Experiment(
        "the ablation's first runs, on the simulator before the work-conserving scheduler",
        (), ("small", "paper"), (1, 2, 3), 6_000,
        historical="trained by the experimental script of e552927 on oran_env of 5fc924f",
        variants=(*ABLATION, "alpha1e-2+bias1+te0.5*")),
    # --- PPO on comp_env (docs/comp.md) ---
    "ppo-comp": Experiment(
        "multi-agent and central PPO on DeepCoMP's medium and large scenarios",
        (ppo("multi", "--eval-load-factors", "1", "2", "4"), ppo("central")),
        ("comp-medium", "comp-large"), FIVE, 200_000,
        ("--eval-episodes", "100", "--eval-seed", "0"),
        per_scenario=(("comp-medium", ("--eval-interval", "10000")),
                      ("comp-large", ("--eval-interval", "5000"))),
        per_scenario_steps=(("comp-large", 100_000),),
        references=("best_cell", "dynamic_comp", "full_comp", "random"), eval_episodes=100,
        eval_seed=0, env_options=(("reward", "multi"),)),
    "ppo-comp-long": Experiment(
        "PPO on `medium` at 500k steps", (ppo("multi", "--eval-load-factors", "1", "2", "4"),
                                          ppo("central")),
        ("comp-medium",), (1,), 500_000, ("--eval-episodes", "100", "--eval-seed", "0",
                                          "--eval-interval", "25000")),
    "ppo-comp-20ues": Experiment(
        "multi-agent PPO on `medium` with 20 UEs (12 slow, 8 fast)",
        (ppo("multi", "--num-slow-ues", "12", "--num-fast-ues", "8"),), ("comp-medium",), (1, 2),
        200_000, ("--eval-episodes", "100", "--eval-seed", "0", "--eval-interval", "20000")),
    # --- DeepCoMP's training reward (sum, avg) and optimiser settings (docs/comp.md) ---
    "ppo-comp-rewards": Experiment(
        f"multi-agent and central PPO with the sweep's settings (--preset {COMP_PRESET}) and the "
        "sum or the avg reward on `medium` and `large`, 500k steps",
        (ppo_reward("multi", "sum", "--eval-load-factors", "1", "2", "4", preset=COMP_PRESET),
         ppo_reward("multi", "avg", "--eval-load-factors", "1", "2", "4", preset=COMP_PRESET),
         ppo_reward("central", "sum", preset=COMP_PRESET),
         ppo_reward("central", "avg", preset=COMP_PRESET)),
        ("comp-medium", "comp-large"), FIVE, 500_000,
        ("--eval-episodes", "100", "--eval-seed", "0", "--eval-interval", "25000"),
        references=COMP_REFERENCES, eval_episodes=100, eval_seed=0,
        env_options=(("reward", "multi"),), posthoc="training-reward"),
    "ppo-comp-sweep": Experiment(
        "multi-agent PPO (sum reward) on `medium`: the rllib preset and one change each (epochs, "
        "minibatch rows, lambda, entropy, lr), chosen on validation episodes (--eval-seed 1)",
        PPO_SWEEP, ("comp-medium",), (1, 2, 3), 200_000,
        ("--eval-episodes", "100", "--eval-seed", str(COMP_VALIDATION_SEED),
         "--eval-interval", "20000"),
        references=COMP_REFERENCES, eval_episodes=100, eval_seed=COMP_VALIDATION_SEED,
        env_options=(("reward", "multi"),)),
    "ppo-comp-rewards-20ues": Experiment(
        f"multi-agent PPO (the sweep's settings, --preset {COMP_PRESET}) trained at high load, "
        "`medium` with 20 UEs (12 slow, 8 fast), under each reward: does it keep one BS or "
        "disconnect",
        (ppo_reward("multi", "sum", "--num-slow-ues", "12", "--num-fast-ues", "8",
                    preset=COMP_PRESET),
         ppo_reward("multi", "avg", "--num-slow-ues", "12", "--num-fast-ues", "8",
                    preset=COMP_PRESET)),
        ("comp-medium",), FIVE, 200_000,
        ("--eval-episodes", "100", "--eval-seed", "0", "--eval-interval", "20000"),
        references=COMP_REFERENCES, eval_episodes=100, eval_seed=0,
        env_options=(("reward", "multi"), ("num_slow_ues", 12), ("num_fast_ues", 8)),
        posthoc="training-reward"),
    "comp-heuristics-load": Experiment(
        "DeepCoMP's heuristics at 1x, 2x and 4x the UEs of medium and large: the episodes of the "
        "PPO runs' load sweep (100 episodes, seed 0)", (),
        tuple(load_token(f"comp-{preset}", k) for preset in ("medium", "large")
              for k in (1, 2, 4)), (), 0,
        references=TRAINING_REWARD_ROWS, eval_episodes=100, eval_seed=0,
        env_options=(("reward", "multi"),)),
    "comp-dynamic-tuning": Experiment(
        "dynamic CoMP's epsilon on validation episodes (100 episodes, seed 1, not the test "
        "episodes): the best one per scenario is the tuned row of comp-heuristics", (),
        ("comp-medium", "comp-large"), (), 0,
        references=tuple(f"dynamic_comp-{eps}" for eps in (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)),
        eval_episodes=100, eval_seed=COMP_VALIDATION_SEED),
    "comp-heuristics": Experiment(
        "DeepCoMP's heuristics on comp_env's scenarios (100 episodes, seed 0)", (),
        ("comp-small", "comp-medium", "comp-large"), (), 0,
        references=("best_cell", "dynamic_comp", "full_comp", "random",
                    # tuned on comp-dynamic-tuning's validation episodes: the best utility per
                    # UE-step on medium (0.457, 0.5: 0.456) and large (0.542) is eps = 0.6
                    "dynamic_comp-0.6", "full_info"), eval_episodes=100,
        eval_seed=0),
}


def scenario_flags(script: str, scenario: str) -> tuple[str, ...]:
    """A scenario token as a script's flags: comp-<preset> is comp_env's preset."""
    if load_factor(scenario)[0] != scenario:
        raise ValueError(f"scenario {scenario!r}: a load token (comp-<preset>-x<k>) is for "
                         "reference rows only; a training run sets --num-slow-ues and "
                         "--num-fast-ues")
    if not scenario.startswith("comp-"):
        return ("--scenario", scenario)
    preset = scenario[len("comp-"):]
    if script == "ppo_comp.py":
        return ("--scenario", preset)
    return ("--env-id", "comp", "--scenario", preset)


def run_name(method: Method, scenario: str, seed: int) -> str:
    return f"{method.variant}__{method.rho}__{scenario}__s{seed}"


def training_runs(exp: Experiment,
                  seeds: tuple[int, ...] | None = None) -> list[tuple[Method, str, int]]:
    """(method, scenario, seed) of every training run of an entry, seed-major (a grid cut short
    holds complete seeds of every method), each once; `seeds` replaces the entry's."""
    runs = [(m, s, seed) for seed in (seeds or exp.seeds) for s in exp.scenarios
            for m in exp.methods]
    unique: dict[str, tuple[Method, str, int]] = {}  # each run folder once (seeds, scenarios)
    for run in runs:
        if unique.setdefault(run_name(*run), run) != run:
            raise ValueError(f"two methods of the entry have the run name {run_name(*run)} (one "
                             "run folder): give them other variant or rho names")
    runs = list(unique.values())
    return [r for r in runs if not exp.only or any(
        run_name(*r) == p or run_name(*r).startswith(p + "__") for p in exp.only)]


def argv(exp: Experiment, method: Method, scenario: str, seed: int) -> list[str]:
    """The script's flags of one run, without the run machinery's (run folder, threads, resume)."""
    return [*method.flags, *scenario_flags(method.script, scenario), "--seed", str(seed),
            "--total-timesteps", str(exp.steps_of(scenario)), *exp.flags_of(scenario)]


def known_method(variant: str, rho: str) -> bool:
    """Whether records may name a run <variant>__<rho>__...: a method of an entry, a variant
    without rho that LABELS names or an entry's `variants` lists, or heuristic-<row> (rho none)
    for a reference row an entry declares, a parameterised row with any values
    (ue_count-<a>-<b>, split-<e>-<m>-<u>)."""
    if variant.startswith("heuristic-"):
        row = variant[len("heuristic-"):]
        rows = {r for exp in EXPERIMENTS.values() for r in exp.references}
        return rho == "none" and (row in rows or "-" in row and row.split("-")[0] in {
            r.split("-")[0] for r in rows})
    return any((variant, rho) in {(m.variant, m.rho) for m in exp.methods} or rho == "none" and (
        variant in LABELS or variant in exp.variants) for exp in EXPERIMENTS.values())
