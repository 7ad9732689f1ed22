import warnings

import numpy as np
import pytest
from scipy.special import gammaln

from pyrolf.data.spikes import SpikeData
from pyrolf.evaluation.metrics import (behavior_r2, co_bps, co_bps_per_neuron, interval_coverage,
                                       latents_r2, psth, psth_r2, rates_r2)
from pyrolf.evaluation.report import behavior_metrics, psth_metrics, score_rates, truth_metrics
from pyrolf.evaluation.smoothing import smooth_spikes


def poisson_log_likelihood(rates, spikes):
    return np.sum(spikes * np.log(rates) - rates - gammaln(spikes + 1))


def test_rates_r2_is_one_for_a_perfect_prediction():
    true = np.random.default_rng(0).gamma(2.0, size=(4, 5, 3))
    assert rates_r2(true.copy(), true) == pytest.approx(1.0)


def test_rates_r2_is_zero_for_the_per_neuron_mean():
    true = np.random.default_rng(1).gamma(2.0, size=(4, 5, 3))
    mean = np.broadcast_to(true.mean(axis=(0, 1)), true.shape)
    assert rates_r2(mean, true) == pytest.approx(0.0, abs=1e-12)


def test_rates_r2_hand_computed():
    # neuron 0: true 1,2,3,4 (SS_tot 5), prediction off by 1 once (SS_res 1) -> 0.8
    # neuron 1: true 0,0,2,2 (SS_tot 4), prediction off by 2 once (SS_res 4) -> 0.0
    true = np.array([[1, 0], [2, 0], [3, 2], [4, 2]], dtype=float).reshape(2, 2, 2)
    predicted = np.array([[1, 0], [2, 0], [3, 2], [5, 0]], dtype=float).reshape(2, 2, 2)
    assert rates_r2(predicted, true) == pytest.approx(0.4)


def test_rates_r2_leaves_out_neurons_of_constant_truth():
    true = np.stack([np.arange(8.0), np.full(8, 3.0)], axis=-1).reshape(2, 4, 2)
    predicted = true.copy()
    predicted[..., 1] = 0.0
    assert rates_r2(predicted, true) == pytest.approx(1.0)
    assert np.isnan(rates_r2(predicted[..., 1:], true[..., 1:]))


def test_co_bps_of_the_null_model_is_zero():
    spikes = np.random.default_rng(2).poisson(1.5, size=(6, 10, 4)).astype(float)
    null = np.broadcast_to(spikes.mean(axis=(0, 1)), spikes.shape)
    assert co_bps(null, spikes) == pytest.approx(0.0, abs=1e-12)


def test_co_bps_is_positive_for_the_true_rates_of_varying_poisson_data():
    rng = np.random.default_rng(3)
    rates = np.exp(2.0 * np.sin(np.linspace(0, 6, 40))[None, :, None] + rng.normal(size=(1, 1, 5)))
    rates = np.broadcast_to(rates, (30, 40, 5))
    spikes = rng.poisson(rates).astype(float)
    assert co_bps(rates, spikes) > 0.5


def test_co_bps_hand_computed():
    spikes = np.array([[[0, 2], [1, 0]], [[3, 1], [0, 1]]], dtype=float)  # (2, 2, 2)
    rates = np.array([[[0.5, 1.5], [1.0, 0.2]], [[2.5, 1.0], [0.1, 0.8]]])
    null = np.broadcast_to(spikes.mean(axis=(0, 1)), spikes.shape)
    expected = ((poisson_log_likelihood(rates, spikes) - poisson_log_likelihood(null, spikes))
                / spikes.sum() / np.log(2))
    assert co_bps(rates, spikes) == pytest.approx(expected, rel=1e-12)


def test_co_bps_leaves_the_callers_rates_untouched():
    spikes = np.ones((2, 2, 1))
    rates = np.array([0.0, 1.0, 2.0, 3.0]).reshape(2, 2, 1)
    co_bps(rates, spikes)
    assert rates[0, 0, 0] == 0.0


def test_co_bps_per_neuron_is_each_column_alone_and_weighted_by_spikes_gives_co_bps():
    rng = np.random.default_rng(4)
    rates = rng.gamma(2.0, 0.3, size=(5, 12, 4))
    spikes = rng.poisson(rates).astype(float)
    spikes[0, 0, 1] = np.nan  # ignored, as co_bps ignores it
    per_neuron = co_bps_per_neuron(rates, spikes)
    assert per_neuron.shape == (4,)
    for n in range(4):
        alone = spikes[..., n]
        null = np.full(alone.shape, np.nanmean(alone))
        kept = ~np.isnan(alone)
        expected = ((poisson_log_likelihood(rates[..., n][kept], alone[kept])
                     - poisson_log_likelihood(null[kept], alone[kept])) / alone[kept].sum()
                    / np.log(2))
        assert per_neuron[n] == pytest.approx(expected, rel=1e-12)
    counts = np.nansum(spikes, axis=(0, 1))
    assert np.sum(per_neuron * counts) / counts.sum() == pytest.approx(co_bps(rates, spikes),
                                                                       rel=1e-12)


def test_co_bps_per_neuron_is_nan_for_a_silent_neuron_only():
    rng = np.random.default_rng(5)
    rates = rng.gamma(2.0, 0.3, size=(3, 8, 3))
    spikes = rng.poisson(rates).astype(float) + np.array([1.0, 0.0, 1.0])
    spikes[..., 1] = 0.0
    per_neuron = co_bps_per_neuron(rates, spikes)
    assert np.isnan(per_neuron[1]) and np.isfinite(per_neuron[[0, 2]]).all()
    np.testing.assert_allclose(per_neuron[[0, 2]], co_bps_per_neuron(rates[..., [0, 2]],
                                                                     spikes[..., [0, 2]]))
    # no spike at all: no bits per spike, and no division by zero warned about
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(co_bps(rates, np.zeros_like(spikes)))


def test_psth_r2_is_one_where_each_trial_predicts_its_condition_s_psth():
    rng = np.random.default_rng(6)
    smoothed = rng.gamma(2.0, 0.5, size=(9, 7, 3))
    conditions = np.array([2, 5, 2, 9, 5, 9, 2, 5, 9])
    scored = np.array([1, 3, 6])
    target = psth(smoothed, conditions)  # conditions 2, 5, 9 in that order
    rates = target[np.searchsorted([2, 5, 9], conditions[scored])]
    assert psth_r2(rates, smoothed, conditions, scored) == pytest.approx(1.0, abs=1e-12)


def test_psth_r2_hand_computed_against_the_psth_of_all_trials():
    smoothed = np.array([[[1.0], [3.0]], [[3.0], [5.0]], [[0.0], [2.0]], [[4.0], [0.0]]])
    conditions = np.array([0, 0, 1, 1])  # PSTHs: [2, 4] and [2, 1]
    rates = np.array([[[1.0], [5.0]], [[3.0], [2.0]]])  # the scored trials 1 and 3
    residual = (2 - 1) ** 2 + (4 - 5) ** 2 + (2 - 3) ** 2 + (1 - 2) ** 2
    total = sum((x - 2.25) ** 2 for x in (2, 4, 2, 1))
    assert psth_r2(rates, smoothed, conditions, np.array([1, 3])) == pytest.approx(
        1 - residual / total, rel=1e-12)


def test_behavior_r2_decodes_a_linear_map_of_the_rates_and_not_noise():
    rng = np.random.default_rng(7)
    rates = rng.gamma(2.0, 0.5, size=(40, 20, 6))
    mapped = rates @ rng.standard_normal((6, 2)) + np.array([3.0, -1.0])
    assert behavior_r2(rates[:30], mapped[:30], rates[30:], mapped[30:]) > 0.999
    noise = rng.standard_normal((40, 20, 2))
    assert behavior_r2(rates[:30], noise[:30], rates[30:], noise[30:]) < 0.05
    # a constant series leaves nothing to explain: no score (scikit-learn's R² would say 1)
    still = np.ones((40, 20, 1))
    assert np.isnan(behavior_r2(rates[:30], still[:30], rates[30:], still[30:]))
    one_still = np.concatenate([mapped[..., :1], still], axis=-1)
    assert np.isnan(behavior_r2(rates[:30], one_still[:30], rates[30:], one_still[30:]))


def test_behavior_r2_leaves_out_the_bins_without_behaviour():
    rng = np.random.default_rng(8)
    rates = rng.gamma(2.0, 0.5, size=(1, 300, 4))
    behavior = rates @ rng.standard_normal((4, 2)) + rng.normal(0, 0.3, (1, 300, 2))
    missing = rng.random(300) < 0.2
    gappy = behavior.copy()
    gappy[0, missing] = np.nan
    train, test = slice(0, 200), slice(200, None)
    kept = ~missing
    expected = behavior_r2(rates[:, :200][:, kept[train]], behavior[:, :200][:, kept[train]],
                           rates[:, 200:][:, kept[test]], behavior[:, 200:][:, kept[test]])
    assert behavior_r2(rates[:, train], gappy[:, train], rates[:, test], gappy[:, test]) == \
        pytest.approx(expected, rel=1e-12)
    assert np.isnan(behavior_r2(rates[:, train], gappy[:, train], rates[:, test],
                                np.full_like(gappy[:, test], np.nan)))


def test_behavior_is_decoded_the_lag_after_the_rates():
    """Behaviour that follows the rates 3 bins later is decoded exactly at a lag of 3 bins,
    worse without one; a negative lag pairs each bin with earlier behaviour."""
    rng = np.random.default_rng(9)
    rates = rng.gamma(2.0, 0.5, size=(30, 25, 5))
    follows = np.full((30, 25, 2), np.nan)
    follows[:, 3:] = rates[:, :-3] @ rng.standard_normal((5, 2))   # bin t + 3 from rates at t
    leads = np.full((30, 25, 2), np.nan)
    leads[:, :-6] = follows[:, 6:]                                   # bin t - 3 from rates at t
    splits = {"train": np.arange(20), "valid": np.arange(20, 25), "test": np.arange(25, 30)}

    def decoded(behavior, lag):
        data = SpikeData(spikes=np.zeros((30, 25, 5), np.float32), heldout=np.zeros(5, bool),
                         splits=splits, extra={"behavior": behavior, "behavior_lag_bins": lag})
        return behavior_metrics({"": (rates[:20], rates[25:])}, data)["behavior_r2"]

    assert decoded(follows, 3) > 0.999 and decoded(follows, 0) < 0.5
    assert decoded(leads, -3) > 0.999 and decoded(leads, 0) < 0.5


def test_behaviour_that_cannot_be_scored_is_null_with_a_note_saying_why(capsys):
    """No train trial with behaviour to fit the decoder on: behavior_r2 null, and a note says
    so (it came out NaN without a word: a review); scorable behaviour gives no note."""
    rng = np.random.default_rng(10)
    rates = rng.gamma(2.0, 0.5, size=(30, 25, 5))
    behavior = rates[..., :2] @ rng.standard_normal((2, 2))
    splits = {"train": np.arange(20), "valid": np.arange(20, 25), "test": np.arange(25, 30)}

    def decoded(behavior):
        data = SpikeData(spikes=np.zeros((30, 25, 5), np.float32), heldout=np.zeros(5, bool),
                         splits=splits, extra={"behavior": behavior, "behavior_lag_bins": 0})
        return behavior_metrics({"": (rates[:20], rates[25:])}, data)["behavior_r2"]

    assert decoded(behavior) > 0.99 and "behavior_r2" not in capsys.readouterr().err
    untrained = behavior.copy()
    untrained[:20] = np.nan
    assert np.isnan(decoded(untrained))
    assert "behavior_r2 is null: no train trial's bin has behaviour" in capsys.readouterr().err
    unscored = behavior.copy()
    unscored[25:] = np.nan
    assert np.isnan(decoded(unscored))
    assert "no test trial's bin has behaviour" in capsys.readouterr().err
    still = behavior.copy()
    still[25:, :, 1] = 3.0
    assert np.isnan(decoded(still))
    assert ("a dimension of the test trials' behaviour is constant"
            in capsys.readouterr().err)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError):
        rates_r2(np.ones((2, 3, 4)), np.ones((2, 3, 5)))
    with pytest.raises(ValueError):
        co_bps(np.ones((2, 3, 4)), np.ones((2, 4, 4)))
    with pytest.raises(ValueError):
        co_bps_per_neuron(np.ones((2, 3, 4)), np.ones((2, 3, 5)))


def states_and_latents(seed, trials=40, bins=25, features=6, k=3):
    rng = np.random.default_rng(seed)
    states = rng.normal(size=(trials, bins, features))
    latents = states @ rng.normal(size=(features, k)) + rng.normal(size=k)
    return states, latents


def test_latents_r2_is_one_for_an_exact_linear_map_with_intercept():
    states, latents = states_and_latents(4)
    assert latents_r2(states[:30], latents[:30], states[30:], latents[30:]) == pytest.approx(1.0)


def test_latents_r2_is_near_zero_for_latents_shuffled_against_the_states():
    states, latents = states_and_latents(5)
    flat = latents.reshape(-1, latents.shape[-1])
    shuffled = np.random.default_rng(6).permutation(flat).reshape(latents.shape)
    r2 = latents_r2(states[:30], shuffled[:30], states[30:], shuffled[30:])
    assert abs(r2) < 0.05


def test_latents_r2_scores_the_test_trials_with_the_train_map():
    """A map fitted where latent 0 is +state 0 and scored where it is -state 0: R² 1 - 4 = -3
    on that dim (SS_res = (2 s)², SS_tot = s² about a zero mean), 1 on the others."""
    states, latents = states_and_latents(7, k=1)
    train_latents = np.concatenate([states[..., :1], latents], -1)
    test_latents = np.concatenate([-states[..., :1], latents], -1)
    r2 = latents_r2(states[:30], train_latents[:30], states[30:], test_latents[30:])
    first = rates_r2(states[30:, :, :1], -states[30:, :, :1])
    assert r2 == pytest.approx((first + 1.0) / 2)
    assert first == pytest.approx(-3.0, abs=0.3)


def test_interval_coverage_by_hand():
    true = np.array([0.0, 1.0, 2.0, 3.0, np.nan])
    lower = np.array([0.0, 1.5, 1.0, 3.5, 0.0])
    upper = np.array([1.0, 2.0, 2.0, 4.0, 1.0])
    assert interval_coverage(true, lower, upper) == pytest.approx(2 / 4)
    assert np.isnan(interval_coverage(np.full(2, np.nan), lower[:2], upper[:2]))


# How the run's metrics are put together of the functions above: which neurons, trials and bins
# (each case small enough to say the answer; a mutation test found each one unchecked)

def test_rates_r2_of_a_run_is_over_all_neurons_held_in_and_held_out():
    """Held-in neuron predicted exactly (R² 1), held-out one by its mean (R² 0): 0.5."""
    truth = np.array([[[1, 0], [2, 0]], [[3, 2], [4, 2]]], np.float32)
    predicted = truth.copy()
    predicted[..., 1] = 1.0
    data = SpikeData(spikes=np.ones((2, 2, 2), np.float32), heldout=np.array([False, True]),
                     splits={"train": np.arange(0), "valid": np.arange(0), "test": np.arange(2)},
                     rates=truth)
    assert score_rates(predicted, data, np.arange(2))["rates_r2"] == pytest.approx(0.5)


def truth_data():
    """3 trials (2 train, 1 test) of 3 bins, 2 neurons, with true rates and latents."""
    rates = np.arange(1, 19, dtype=np.float32).reshape(3, 3, 2)
    latents = np.random.default_rng(0).normal(size=(3, 3, 1)).astype(np.float32)
    return SpikeData(spikes=np.ones((3, 3, 2), np.float32), heldout=np.array([False, True]),
                     splits={"train": np.array([0, 1]), "valid": np.arange(0),
                             "test": np.array([2])}, rates=rates, extra={"latents": latents})


def test_rates_coverage_reads_the_test_trials_intervals(monkeypatch):
    """The train trials' intervals miss the truth, the test trial's hold it: coverage 1."""
    from pyrolf.diagnostics import summary

    data = truth_data()
    truth = data.rates.astype(np.float64)  # (train then test, as truth_metrics draws them)
    inside = np.array([False, False, True])[:, None, None]
    latents = data.extra["latents"].astype(np.float64)
    monkeypatch.setattr(summary, "posterior_summary", lambda *args, **kwargs: {
        "z": latents, "v": latents, "rates_lower": np.where(inside, truth - 1, truth + 1),
        "rates_upper": np.where(inside, truth + 1, truth + 2)})
    assert truth_metrics(None, data)["rates_coverage_90"] == 1.0


def test_latents_r2_maps_on_the_train_trials_and_scores_the_test_trials(monkeypatch):
    """States equal to the latents in the train trials and to their negative in the test one:
    the map learned on the train trials (the identity) scores 1 - Σ(2s)² / Σ(s - s̄)² on the test
    trial; fitted on the test trial itself it would score 1."""
    from pyrolf.diagnostics import summary

    data = truth_data()
    latents = data.extra["latents"].astype(np.float64)
    states = np.concatenate([latents[:2], -latents[2:]])
    states -= states[2:].mean()
    data.extra["latents"] = (states * np.array([1, 1, -1])[:, None, None]).astype(np.float32)
    monkeypatch.setattr(summary, "posterior_summary", lambda *args, **kwargs: {
        "z": states, "v": states, "rates_lower": np.zeros((3, 3, 2)),
        "rates_upper": np.zeros((3, 3, 2))})
    test_truth = -states[2]
    expected = 1 - ((2 * test_truth) ** 2).sum() / ((test_truth - test_truth.mean()) ** 2).sum()
    assert truth_metrics(None, data)["latents_r2"] == pytest.approx(expected, rel=1e-5)


def test_a_behaviour_lag_pairs_every_bin_pair_the_trials_hold(monkeypatch):
    """5 observed bins, lag 2: the rates of bins 0-2 with the behaviour of bins 2-4."""
    from pyrolf.evaluation import report

    seen = []
    monkeypatch.setattr(report, "behavior_r2", lambda *args: seen.append(args) or 0.0)
    behavior = np.arange(20, dtype=float).reshape(4, 5, 1)
    data = SpikeData(spikes=np.zeros((4, 5, 2), np.float32), heldout=np.array([False, True]),
                     splits={"train": np.array([0, 1]), "valid": np.array([2]),
                             "test": np.array([3])},
                     extra={"behavior": behavior, "behavior_lag_bins": 2})
    rates = np.arange(40, dtype=float).reshape(4, 5, 2)
    report.behavior_metrics({"": (rates[:2], rates[3:])}, data)
    train_rates, train_behavior, test_rates, test_behavior = seen[0]
    np.testing.assert_array_equal(train_rates, rates[:2, 0:3])
    np.testing.assert_array_equal(test_rates, rates[3:, 0:3])
    np.testing.assert_array_equal(train_behavior, behavior[:2, 2:5])
    np.testing.assert_array_equal(test_behavior, behavior[3:, 2:5])


def test_psth_targets_are_the_spikes_smoothed_by_70_ms_in_bins():
    """10 ms bins: the PSTH targets are smoothed by 7 bins (0.07 s / 0.01 s)."""
    rng = np.random.default_rng(0)
    spikes = rng.poisson(1.0, (6, 30, 2)).astype(np.float32)
    data = SpikeData(spikes=spikes, heldout=np.array([False, True]),
                     splits={"train": np.arange(3), "valid": np.array([3]),
                             "test": np.array([4, 5])},
                     conditions=np.array([0, 1, 0, 1, 0, 1]), bin_size=0.01)
    rates = rng.gamma(2.0, 0.5, (2, 30, 2))
    expected = psth_r2(rates, smooth_spikes(spikes, 7.0), data.conditions, np.array([4, 5]))
    assert psth_metrics(rates, data, np.array([4, 5]))["psth_r2"] == pytest.approx(expected)
