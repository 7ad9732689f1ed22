"""Forward bins on any data (``--forward-bins``): hidden from the encoder, scored by fp-bps, beside
the true rates' fp-bps and the persistence baseline's, and exported by ``pyrolf infer``."""

import dataclasses
import json

import numpy as np
import pyro
import pytest
import xarray as xr
from nlb_tools.evaluation import bits_per_spike

import pyrolf
from pyrolf.config import ConfigError
from pyrolf.data import SpikeData, load_config_data, save_spike_file
from pyrolf.evaluation.metrics import co_bps, persistence_rates
from pyrolf.evaluation.report import forward_metrics, model_rates, trial_inputs
from pyrolf.models import build_flow

from test_cli import TINY, assert_one_line_error, run_cli

K = 4  # forward bins of the 12-bin spike file
SMALL = dict(latent_dim=8, channels=2, encoder_hidden=16, decoder_width=16,
             decoder_feedforward=32)


def rates_of_fresh_flow(config, data, trials):
    """Posterior-mean rates ``(trials, time, neurons)`` of an untrained flow, seeded."""
    pyro.set_rng_seed(0)
    flow = build_flow(config, data.n_neurons, data.n_heldin)
    pyro.set_rng_seed(1)
    return model_rates(flow, data, trials, samples=3)


def with_other_forward_spikes(data, n_last):
    """``data`` with the spikes of the last ``n_last`` bins of each trial changed."""
    spikes = data.spikes.copy()
    spikes[:, -n_last:] = spikes[:, -n_last:] * 3 + 2
    return dataclasses.replace(data, spikes=spikes)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_forward_bins_are_hidden_from_the_encoder(spike_file, bidirectional):
    config = pyrolf.Config(data=str(spike_file), forward_bins=K, bidirectional=bidirectional,
                           **SMALL)
    data = load_config_data(config)
    assert (data.n_forward, data.n_bins, data.n_observed) == (K, 12, 12 - K)
    trials = np.arange(data.n_trials)
    assert trial_inputs(data, trials).shape == (data.n_trials, 12 - K, data.n_heldin)

    rates = rates_of_fresh_flow(config, data, trials)
    assert rates.shape == (data.n_trials, 12, data.n_neurons)
    changed = with_other_forward_spikes(data, K)
    assert np.array_equal(rates_of_fresh_flow(config, changed, trials), rates)

    # without forward bins the same change reaches the posterior of the bins before
    shown = load_config_data(config.replace(forward_bins=0))
    seen = rates_of_fresh_flow(config, shown, trials)
    other = rates_of_fresh_flow(config, with_other_forward_spikes(shown, K), trials)
    observed = slice(0, 12 - K)
    if bidirectional:  # a forward-only GRU reads the last bins after the earlier ones
        assert not np.allclose(seen[:, observed], other[:, observed])
    assert not np.allclose(seen[:, -1], other[:, -1])


def test_fp_bps_and_true_fp_bps_are_nlb_tools_bits_per_spike(spike_file):
    data = load_config_data(pyrolf.Config(data=str(spike_file), forward_bins=K))
    test = data.splits["test"]
    rates = np.random.default_rng(0).uniform(0.1, 2.0, (len(test), 12, data.n_neurons))
    metrics = forward_metrics(rates, data, test)
    spikes = data.spikes[test][:, -K:].astype(np.float64)
    assert metrics["true_fp_bps"] == bits_per_spike(data.rates[test][:, -K:].astype(np.float64),
                                                    spikes)
    assert metrics["fp_bps"] == bits_per_spike(rates[:, -K:].copy(), spikes)
    persistence = np.repeat(rates[:, 12 - K - 1:12 - K], K, axis=1)
    assert metrics["persistence_fp_bps"] == bits_per_spike(persistence, spikes)
    assert metrics["true_fp_bps"] > metrics["fp_bps"]  # the truth beats random rates
    assert forward_metrics(rates, load_config_data(pyrolf.Config(data=str(spike_file))),
                           test) == {}


def constant_rate_data(rate, n_trials=40, n_bins=15, seed=0):
    """A spike file's data whose every neuron fires at its constant ``rate`` ``(neurons,)``."""
    rates = np.broadcast_to(np.asarray(rate, np.float32), (n_trials, n_bins, len(rate))).copy()
    spikes = np.random.default_rng(seed).poisson(rates).astype(np.float32)
    return SpikeData(spikes=spikes, heldout=np.arange(len(rate)) >= len(rate) - 1, rates=rates,
                     splits={"train": np.arange(0), "valid": np.arange(0),
                             "test": np.arange(n_trials)}, n_forward=5)


@pytest.mark.parametrize("seed", range(4))
def test_persistence_of_a_constant_rate_scores_zero_against_its_own_mean(seed):
    """fp-bps compares with each neuron's mean count over the scored forward bins, the best
    constant there: the persistence forecast of a constant-rate file scores exactly 0 when the
    held rate is that mean, and below 0 for any other constant (the true rate included)."""
    rng = np.random.default_rng(seed)
    data = constant_rate_data(rng.uniform(0.2, 3.0, 6), seed=seed)
    test, forward = data.splits["test"], slice(data.n_observed, None)
    own_mean = data.spikes[test][:, forward].mean(axis=(0, 1))
    rates = np.broadcast_to(own_mean, data.spikes.shape).copy()
    assert forward_metrics(rates, data, test)["persistence_fp_bps"] == pytest.approx(0, abs=1e-12)

    truth = forward_metrics(data.rates, data, test)
    assert truth["persistence_fp_bps"] == truth["true_fp_bps"]  # constant: the truth persists
    assert -0.02 < truth["true_fp_bps"] < 0
    for _ in range(5):
        other = own_mean * rng.uniform(0.8, 1.25, own_mean.shape)
        held = np.broadcast_to(other, data.spikes.shape).copy()
        assert forward_metrics(held, data, test)["persistence_fp_bps"] < 0


def test_persistence_rates_hold_the_last_observed_bin():
    rates = np.arange(2 * 6 * 3, dtype=float).reshape(2, 6, 3)
    held = persistence_rates(rates, 2)
    assert held.shape == (2, 2, 3)
    assert np.array_equal(held, np.stack([rates[:, 3], rates[:, 3]], axis=1))
    for bad in (0, 6):
        with pytest.raises(ValueError):
            persistence_rates(rates, bad)
    assert co_bps(held, rates[:, 4:]) == bits_per_spike(held.copy(), rates[:, 4:])


def test_fit_reports_forward_metrics_and_infer_marks_the_forward_bins(spike_file, tmp_path,
                                                                      monkeypatch, capsys):
    run = tmp_path / "run"
    code, out, err = run_cli(["fit", "--data", spike_file, "--forward-bins", K, "--out", run,
                              *TINY], monkeypatch, capsys)
    assert code == 0, err
    metrics = json.loads((run / "metrics.json").read_text())
    for name in ("fp_bps", "true_fp_bps", "persistence_fp_bps", "co_bps"):
        assert np.isfinite(metrics[name]), name
    assert "fp_bps=" in out
    assert json.loads((run / "config.json").read_text())["forward_bins"] == K

    (run / "metrics.json").unlink()  # evaluate rebuilds the same forward bins from the config
    code, _, err = run_cli(["evaluate", run], monkeypatch, capsys)
    assert code == 0, err
    again = json.loads((run / "metrics.json").read_text())
    assert again["true_fp_bps"] == metrics["true_fp_bps"]

    code, _, err = run_cli(["infer", run, "--samples", 3], monkeypatch, capsys)
    assert code == 0, err
    inferred = xr.open_dataset(run / "inferred.nc")
    assert inferred.sizes["time"] == 12
    assert inferred["forward"].dims == ("time",)
    assert inferred["forward"].values.tolist() == [False] * (12 - K) + [True] * K

    # new trials no longer than the run's forward bins: infer says what the run needs of them
    short = tmp_path / "short.h5"
    own = load_config_data(pyrolf.Config(data=str(spike_file)))
    save_spike_file(short, dataclasses.replace(own, spikes=own.spikes[:, :K], rates=None,
                                               extra={}))
    code, _, err = run_cli(["infer", run, "--data", short, "--samples", 3], monkeypatch, capsys)
    assert_one_line_error(code, err, f"fitted with --forward-bins {K}", f"have {K} bins",
                          f"longer than {K} bins")
    assert "give fewer" not in err


@pytest.mark.parametrize("args, fragments", [
    (["--forward-bins", 12], ["--forward-bins 12 leaves no observed bin", "12 bins"]),
    (["--forward-bins", -1], ["forward_bins must not be negative"]),
])
def test_bad_forward_bins_are_one_line(args, fragments, spike_file, tmp_path, monkeypatch,
                                       capsys):
    code, _, err = run_cli(["fit", "--data", spike_file, *args, "--out", tmp_path / "run",
                            *TINY], monkeypatch, capsys)
    assert_one_line_error(code, err, *fragments)


def test_nlb_data_keep_their_own_forward_window(tmp_path, monkeypatch, capsys):
    with pytest.raises(ConfigError, match="own forward window"):
        pyrolf.Config(data="mc_maze", forward_bins=3)
    code, _, err = run_cli(["fit", "--data", "mc_maze", "--forward-bins", 3, "--out",
                            tmp_path / "run", *TINY], monkeypatch, capsys)
    assert_one_line_error(code, err, "own forward window")
