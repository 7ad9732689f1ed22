"""The sparse event-locked session generator plants exactly the system its docstring describes."""

import numpy as np
import pytest

from pyrolf.data.event_locked import EVENT_LOCKED_DEFAULTS, event_locked_dataset


@pytest.fixture(scope="module")
def data():
    return event_locked_dataset(seed=4, n_conditions=6, trials_per_condition=5, n_bins=60,
                                onset_bin=15, n_neurons=20, n_heldout=4)


def test_same_seed_same_session_other_seed_other_session(data):
    again = event_locked_dataset(seed=4, n_conditions=6, trials_per_condition=5, n_bins=60,
                                 onset_bin=15, n_neurons=20, n_heldout=4)
    other = event_locked_dataset(seed=5, n_conditions=6, trials_per_condition=5, n_bins=60,
                                 onset_bin=15, n_neurons=20, n_heldout=4)
    assert np.array_equal(data.spikes, again.spikes)
    assert not np.array_equal(data.spikes, other.spikes)


def test_shapes_splits_and_the_requested_mean_rate(data):
    assert data.spikes.shape == data.rates.shape == (30, 60, 20)
    assert data.extra["latents"].shape == (30, 60, 4)
    assert data.heldout.sum() == 4 and data.bin_size == EVENT_LOCKED_DEFAULTS["bin_size"]
    covered = np.sort(np.concatenate(list(data.splits.values())))
    assert np.array_equal(covered, np.arange(30))
    assert data.rates.mean() == pytest.approx(EVENT_LOCKED_DEFAULTS["mean_rate"], rel=1e-5)


def test_the_baseline_is_at_rest_and_rates_are_log_linear_in_the_latents(data):
    latents, onset = data.extra["latents"], data.extra["onset_bin"]
    assert np.all(latents[:, :onset] == 0)
    baseline = np.exp(data.extra["bias"])
    assert np.allclose(data.rates[:, :onset], baseline, rtol=1e-5)
    expected = np.exp(latents @ data.extra["weights"] + data.extra["bias"])
    assert np.allclose(data.rates, expected, rtol=1e-4)


def test_after_onset_each_plane_rotates_at_its_frequency_and_decays(data):
    p = EVENT_LOCKED_DEFAULTS
    latents, onset = data.extra["latents"].astype(np.float64), data.extra["onset_bin"]
    elapsed = np.arange(60 - onset) * p["bin_size"]
    for plane, frequency in enumerate(p["frequencies"]):
        x = latents[:, onset:, 2 * plane] + 1j * latents[:, onset:, 2 * plane + 1]
        envelope = p["amplitude"] * np.exp(-elapsed / p["decay"])
        assert np.allclose(np.abs(x), envelope, rtol=1e-5)
        advance = np.angle(x[:, 1:] / x[:, :-1])
        assert np.allclose(advance, 2 * np.pi * frequency * p["bin_size"], atol=1e-5)
    # the first plane's phase at onset is spread evenly over the conditions
    start = np.angle(latents[::5, onset, 0] + 1j * latents[::5, onset, 1]) % (2 * np.pi)
    assert np.allclose(np.sort(start), 2 * np.pi * np.arange(6) / 6, atol=1e-5)


def test_trials_of_a_condition_share_rates_not_spikes(data):
    first = data.conditions == 0
    assert np.all(data.rates[first] == data.rates[first][0])
    assert not np.all(data.spikes[first] == data.spikes[first][0])


def test_unknown_or_impossible_settings_are_refused():
    with pytest.raises(ValueError, match="unknown setting"):
        event_locked_dataset(rate=0.1)
    with pytest.raises(ValueError, match="onset_bin"):
        event_locked_dataset(n_bins=10, onset_bin=10)
