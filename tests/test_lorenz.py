import inspect

import numpy as np
import pytest

from pyrolf.data.lorenz import (LORENZ_DEFAULTS, lorenz_dataset, lorenz_trajectory,
                                lorenz_vector_field)


@pytest.fixture(scope="module")
def data():
    return lorenz_dataset(seed=0)


def raw_latents(data):
    """Un-normalised latent of each condition's first trial, ``(conditions, time, 3)``, float64."""
    first = np.unique(data.conditions, return_index=True)[1]
    latents = data.extra["latents"][first].astype(np.float64)
    return latents * data.extra["latent_std"] + data.extra["latent_mean"]


def test_signature_defaults_are_the_documented_defaults():
    for name, parameter in inspect.signature(lorenz_dataset).parameters.items():
        if name != "seed":
            assert parameter.default == LORENZ_DEFAULTS[name]


def test_same_seed_same_data_other_seed_other_data(data):
    again, other = lorenz_dataset(seed=0), lorenz_dataset(seed=1)
    np.testing.assert_array_equal(again.spikes, data.spikes)
    np.testing.assert_array_equal(again.rates, data.rates)
    np.testing.assert_array_equal(again.heldout, data.heldout)
    for split in ("train", "valid", "test"):
        np.testing.assert_array_equal(again.splits[split], data.splits[split])
    assert not np.array_equal(other.rates, data.rates)
    assert not np.array_equal(other.spikes, data.spikes)


def test_shapes_types_and_heldout(data):
    assert data.spikes.shape == data.rates.shape == (65 * 20, 50, 30)
    assert data.spikes.dtype == data.rates.dtype == np.float32
    assert data.conditions.shape == (65 * 20,)
    assert data.heldout.dtype == bool and data.heldout.sum() == 6
    assert data.extra["latents"].shape == (65 * 20, 50, 3)
    small = lorenz_dataset(n_conditions=4, trials_per_condition=5, n_bins=7, n_neurons=9,
                           n_heldout=2)
    assert small.spikes.shape == (20, 7, 9) and small.heldout.sum() == 2


def test_splits_disjoint_covering_sorted_and_stratified(data):
    splits = data.splits
    everything = np.concatenate([splits["train"], splits["valid"], splits["test"]])
    np.testing.assert_array_equal(np.sort(everything), np.arange(data.n_trials))
    for name, expected in zip(("train", "valid", "test"), (14, 3, 3)):
        assert np.all(np.diff(splits[name]) > 0)
        per_condition = np.bincount(data.conditions[splits[name]], minlength=65)
        np.testing.assert_array_equal(per_condition, expected)


def test_mean_rate_is_the_requested_one():
    for mean_rate in (0.3, 2.0):
        data = lorenz_dataset(seed=3, mean_rate=mean_rate, n_conditions=10)
        assert abs(data.rates.mean() / mean_rate - 1) < 0.01


def test_trials_of_a_condition_share_rates_but_not_spikes(data):
    for condition in (0, 17, 64):
        trials = np.flatnonzero(data.conditions == condition)
        assert len(trials) == 20
        np.testing.assert_array_equal(data.rates[trials], np.broadcast_to(
            data.rates[trials[0]], data.rates[trials].shape))
        assert not np.array_equal(data.spikes[trials[0]], data.spikes[trials[1]])
    assert not np.array_equal(data.rates[data.conditions == 0][0],
                              data.rates[data.conditions == 1][0])


def test_spikes_are_poisson_counts_of_the_rates(data):
    assert np.all(data.spikes == np.round(data.spikes)) and np.all(data.spikes >= 0)
    assert abs(data.spikes.mean() / data.rates.mean() - 1) < 0.01
    per_neuron = data.spikes.mean(axis=(0, 1)) / data.rates.mean(axis=(0, 1))
    np.testing.assert_allclose(per_neuron, 1.0, atol=0.05)
    # Poisson: variance around the rate equals the rate
    residual_variance = np.mean((data.spikes - data.rates) ** 2)
    assert abs(residual_variance / data.rates.mean() - 1) < 0.02


def test_rates_are_log_linear_in_the_standardised_latents(data):
    latents = data.extra["latents"].astype(np.float64)
    np.testing.assert_allclose(latents.mean(axis=(0, 1)), 0.0, atol=1e-5)
    np.testing.assert_allclose(latents.std(axis=(0, 1)), 1.0, atol=1e-5)
    log_rates = latents @ data.extra["weights"] + data.extra["bias"]
    np.testing.assert_allclose(np.exp(log_rates), data.rates, rtol=1e-4)


def test_trajectory_follows_the_lorenz_vector_field(data):
    start = raw_latents(data)[:5, 0]
    dt = 1e-4
    path = lorenz_trajectory(start, 200, dt)
    assert path.shape == (5, 201, 3)
    np.testing.assert_array_equal(path[:, 0], start)
    derivative = (path[:, 2:] - path[:, :-2]) / (2 * dt)
    field = lorenz_vector_field(path[:, 1:-1])
    np.testing.assert_allclose(derivative, field, rtol=1e-4, atol=1e-3)


def test_planted_latent_is_a_lorenz_trajectory_on_the_attractor(data):
    raw = raw_latents(data)
    steps = round(data.extra["dt_bin"] / data.extra["dt_step"])
    one_bin_later = lorenz_trajectory(raw[:, :-1], steps, data.extra["dt_step"])[..., -1, :]
    np.testing.assert_allclose(one_bin_later, raw[:, 1:], rtol=1e-4, atol=1e-4)
    # after the burn-in the states lie in the attractor's bounding region, visiting both wings
    assert np.all(raw[..., 2] > 0) and np.all(raw[..., 2] < 50)
    assert np.all(np.abs(raw[..., :2]) < 30)
    assert np.any(raw[..., 0] > 5) and np.any(raw[..., 0] < -5)


def test_invalid_heldout_count_is_refused():
    with pytest.raises(ValueError):
        lorenz_dataset(n_neurons=5, n_heldout=5)
