"""comp_env's reward aggregations (DeepCoMP's sum and avg) and its full-information reference."""
import numpy as np
import pytest

import comp_env


def hand_case():
    """One copy, 4 UEs, 2 BSs. UE0 at BS0; UE1 at BS0 and BS1 (CoMP); UE2 at BS1; UE3 unconnected.
    In range: UE0 both BSs, UE1 both, UE2 only BS1, UE3 only BS0."""
    connected = np.array([[[1, 0], [1, 1], [0, 1], [0, 0]]], dtype=bool)
    in_range = np.array([[[1, 1], [1, 1], [0, 1], [1, 0]]], dtype=bool)
    ue_reward = np.array([[0.5, -0.25, 1.0, -1.0]])
    return connected, in_range, ue_reward


def test_avg_reward_matches_a_hand_computed_case():
    connected, in_range, r = hand_case()
    # BS0 holds UE0, UE1 (total 0.25, 2 UEs); BS1 holds UE1, UE2 (total 0.75, 2 UEs)
    expected = [(0.25 + 0.75) / 4,  # UE0: both BSs in range, itself counted at BS0
                (0.25 + 0.75) / 4,  # UE1: counted at both BSs, as upstream does
                0.75 / 2,  # UE2: only BS1 in range
                (0.25 - 1.0) / 3]  # UE3: unconnected, its own reward added once
    got = comp_env.neighbourhood_average_reward(connected, in_range, r)
    np.testing.assert_allclose(got, [expected])
    assert comp_env.team_reward(connected, in_range, r, "multi", "avg") == pytest.approx(got)


def test_avg_reward_is_own_reward_without_neighbours():
    connected = np.zeros((1, 2, 2), dtype=bool)
    in_range = np.array([[[1, 0], [0, 0]]], dtype=bool)  # UE0 in range of an idle BS, UE1 of none
    r = np.array([[-0.3, 0.7]])
    np.testing.assert_allclose(comp_env.neighbourhood_average_reward(connected, in_range, r), r)


def test_sum_and_central_aggregations():
    connected, in_range, r = hand_case()
    # competing sets: UE0 {0, 1}, UE1 {0, 1, 2}, UE2 {1, 2}, UE3 only itself
    def reward(kind, aggregate):
        return comp_env.team_reward(connected, in_range, r, kind, aggregate)

    np.testing.assert_allclose(reward("multi", "sum"), [[0.25, 1.25, 0.75, -1.0]])
    np.testing.assert_allclose(reward("central", "sum"), [[0.25] * 4])
    np.testing.assert_allclose(reward("central", "avg"), [[0.0625] * 4])


def test_the_env_pays_the_configured_aggregation():
    """The step's reward is team_reward of the reward-time state (after the actions, before the
    move)."""
    for reward_kind in ("multi", "central"):
        for aggregate in ("sum", "avg"):
            env = comp_env.make_env("medium", num_envs=3, seed=4, reward=reward_kind,
                                    reward_aggregate=aggregate)
            for _ in range(6):
                in_range = env.in_range.copy()
                _, reward, _, _, info = env.step(comp_env.HEURISTICS["dynamic_comp"](env))
                expected = comp_env.team_reward(info["connected"], in_range,
                                                info["ue_utility"] / 20, reward_kind, aggregate)
                np.testing.assert_allclose(reward, expected, rtol=1e-6, atol=1e-7)


def test_bad_reward_aggregate_names_the_field():
    with pytest.raises(ValueError, match="reward_aggregate"):
        comp_env.make_config("medium", reward_aggregate="max")


def test_full_information_reference_never_loses_to_doing_nothing():
    env = comp_env.make_env("medium", num_envs=8, seed=2)
    for _ in range(20):
        scores = comp_env.full_information_reference(env)
        assert scores.shape == (8, env.n_agents, env.act_dim) and np.abs(scores).max() <= 1
        rate = comp_env.shared_rate(env.connected, env.rate_unshared, env.ewma, env.bs_models)
        noop = comp_env.utility(rate.sum(axis=2)).mean(axis=1)
        _, _, _, _, info = env.step(scores)
        assert np.all(info["metrics"]["utility"] >= noop - 1e-12)


def test_full_information_reference_scores_above_the_heuristics():
    """On the same fixed episodes, the reference's mean utility per UE-step exceeds every
    heuristic's (the room above them that the comparison tables report)."""
    utility = {}
    policies = {**comp_env.HEURISTICS, "reference": comp_env.full_information_reference}
    for name, policy in policies.items():
        env = comp_env.make_env("medium", num_envs=6, seed=0)
        utility[name] = comp_env.evaluate(lambda obs, env: policy(env), env, 99)[1]["utility"]
    assert utility["reference"] > max(v for k, v in utility.items() if k != "reference")
