"""Counts not recorded (NaN in ``SpikeData.spikes``: a unit's ``obs_intervals`` miss the bin, or a
spike file says so) are unknown, not silence: neither fitted nor scored; the fit's encoder reads
them as hidden (zeros); the scores, diagnose and ``infer`` fill them with what the run infers."""

import json
import warnings

import numpy as np
import pytest
import torch
import xarray as xr

import pyrolf
from pyrolf import Config
from pyrolf.data import DataError, load_config_data, lorenz_dataset, save_spike_file
from pyrolf.data.files import check_data, spikes_fingerprint
from pyrolf.data.recording_synthetic import simulate_recording, write_recording_nwb
from pyrolf.data.recordings import unrecorded_bins
from pyrolf.diagnostics.ppc import fano_factor, mean_rate
from pyrolf.evaluation.metrics import co_bps, psth, psth_r2
from pyrolf.evaluation.report import model_rates
from pyrolf.evaluation.smoothing import fit_poisson_glm, smooth_spikes
from pyrolf.inference.svi import make_batch, split_unrecorded

TINY = dict(latent_dim=8, channels=2, encoder_hidden=16, decoder_width=16,
            decoder_feedforward=32, batch_size=16, samples=3, eval_every=5, threads=1)


def test_unrecorded_bins_by_hand():
    """A bin is recorded when one of the unit's intervals holds it whole; an interval that ends
    on a bin's edge (0.3 s, where three bins of 0.1 s sum to 0.30000000000000004) holds it; a
    unit without an interval recorded nothing (it raised IndexError: found by a walkthrough)."""
    intervals = [np.array([[0.0, 0.3]]), np.array([[0.0, 1.0]]),
                 np.array([[0.05, 0.2], [0.6, 0.9]]), np.zeros((0, 2))]
    unrecorded = unrecorded_bins(intervals, np.array([0.0, 0.5]), 4, 0.1)
    assert unrecorded.shape == (2, 4, 4)
    assert unrecorded[..., 0].tolist() == [[False, False, False, True], [True] * 4]
    assert not unrecorded[..., 1].any()
    assert unrecorded[..., 2].tolist() == [[True, False, True, True], [True, False, False, False]]
    assert unrecorded[..., 3].all()


def test_touching_obs_intervals_record_the_bin_they_meet_in():
    """NWB's obs_intervals often come as segments that touch, [a, b] and [b, c]: a bin holding
    b is recorded (b inside a bin, where not joining them would leave it unknown)."""
    touching = [np.array([[0.0, 0.45], [0.45, 1.0]])]
    assert not unrecorded_bins(touching, np.array([0.0]), 10, 0.1).any()


def test_a_batch_never_scores_a_count_not_recorded_and_hides_it_from_the_encoder():
    torch.manual_seed(0)
    spikes = torch.poisson(torch.full((4, 6, 5), 2.0))
    spikes[0, 2:, 1] = spikes[3, :, 4] = float("nan")
    unrecorded = spikes.isnan()
    counts, recorded = split_unrecorded(spikes)
    heldin = torch.tensor([True, True, True, False, False])
    for cd_rate in (0.0, 0.3):
        batch = make_batch(counts, heldin, 1, cd_rate, recorded)
        assert not batch.mask[unrecorded].any()
        assert torch.isfinite(batch.spikes).all() and torch.isfinite(batch.inputs).all()
        assert (batch.inputs[0, 2:, 1] == 0).all()
    # without coordinated dropout every count recorded is scored; data recorded throughout
    # are as they were
    assert torch.equal(make_batch(counts, heldin, 1, recorded=recorded).mask, ~unrecorded)
    whole = torch.nan_to_num(spikes)
    assert split_unrecorded(whole)[1] is None and split_unrecorded(whole)[0] is whole


def test_smoothing_leaves_out_what_was_not_recorded():
    """A constant series smooths to the constant wherever some of it is missing (the mean of the
    recorded bins near each bin), NaN only where the kernel reaches nothing recorded; a series
    with nothing missing smooths as before."""
    spikes = np.full((2, 60, 2), 3.0)
    spikes[0, 10:20, 0] = np.nan
    spikes[1, :, 1] = np.nan
    smoothed = smooth_spikes(spikes, 2.0)
    np.testing.assert_allclose(smoothed[..., 0], 3.0)
    assert np.isnan(smoothed[1, :, 1]).all() and not np.isnan(smoothed[0]).any()
    counts = np.random.default_rng(0).poisson(2.0, (3, 40, 2))
    np.testing.assert_array_equal(smooth_spikes(counts, 2.0),
                                  smooth_spikes(counts.astype(np.float32), 2.0))


def test_a_glm_is_fitted_on_the_bins_its_neuron_was_recorded_in():
    """Its weights are those of a fit on the recorded bins alone; zeros in their place (read as
    silence) pull its intercept down."""
    rng = np.random.default_rng(1)
    inputs = rng.normal(size=(20, 30, 2))
    targets = rng.poisson(np.exp(0.5 + inputs @ np.array([[0.4], [-0.3]]))).astype(float)
    train = np.arange(20)
    hidden = targets.copy()
    hidden[:8, :, 0] = np.nan
    weights = fit_poisson_glm(inputs, hidden, train, alpha=0.0)
    alone = fit_poisson_glm(inputs[8:], targets[8:], np.arange(12), alpha=0.0)
    np.testing.assert_allclose(weights, alone, atol=1e-6)
    silent = fit_poisson_glm(inputs, np.where(np.isnan(hidden), 0.0, hidden), train, alpha=0.0)
    assert silent[-1, 0] < weights[-1, 0] - 0.3


def test_checks_of_counts_leave_out_what_was_not_recorded():
    """The mean rate and PSTH average the recorded counts; the Fano factor leaves out the
    trials in which its neuron was not recorded throughout."""
    rng = np.random.default_rng(2)
    counts = rng.poisson(3.0, (8, 5, 2)).astype(float)
    holed = counts.copy()
    holed[1, 2, 0] = np.nan
    np.testing.assert_allclose(mean_rate(holed), [np.nanmean(holed[..., 0]),
                                                  counts[..., 1].mean()])
    np.testing.assert_allclose(fano_factor(holed)[0], fano_factor(np.delete(counts, 1, 0))[0])
    np.testing.assert_allclose(fano_factor(holed)[1], fano_factor(counts)[1])
    conditions = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    by_condition = psth(holed, conditions)
    assert by_condition[0, 2, 0] == pytest.approx(np.mean(counts[[0, 2, 3], 2, 0]))
    np.testing.assert_array_equal(by_condition[1], psth(counts, conditions)[1])


def test_co_bps_leaves_out_a_neuron_not_recorded_and_says_nothing_of_it():
    rng = np.random.default_rng(4)
    spikes = rng.poisson(1.0, (6, 8, 3)).astype(float)
    rates = rng.gamma(2.0, 0.5, size=spikes.shape)
    holed = spikes.copy()
    holed[..., 1] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (nlb_tools' mean of the empty column warned, twice)
        assert co_bps(rates, holed) == pytest.approx(co_bps(rates[..., [0, 2]],
                                                            spikes[..., [0, 2]]))


def test_psth_r2_leaves_out_a_neuron_whose_psth_is_unknown():
    rng = np.random.default_rng(3)
    smoothed = rng.gamma(2.0, size=(6, 10, 3))
    conditions = np.array([0, 0, 0, 1, 1, 1])
    rates = smoothed[[0, 3]] + rng.normal(scale=0.1, size=(2, 10, 3))
    holed = smoothed.copy()
    holed[3:, 4, 2] = np.nan  # condition 1 never recorded neuron 2 in bin 4
    expected = psth_r2(rates[..., :2], smoothed[..., :2], conditions, np.array([0, 3]))
    assert psth_r2(rates, holed, conditions, np.array([0, 3])) == pytest.approx(expected)


@pytest.fixture(scope="module")
def holed_data():
    """Lorenz trials in which held-out neuron 11 (well above silence) was not recorded in the
    first half of the trials, and held-in neuron 0 not in the last bins of a few."""
    data = lorenz_dataset(seed=1, n_conditions=6, trials_per_condition=8, n_bins=20,
                          n_neurons=12, n_heldout=3, mean_rate=1.0)
    holed = data.spikes.copy()
    holed[: data.n_trials // 2, :, 11] = np.nan
    holed[:5, 15:, 0] = np.nan
    return data, holed


def test_a_unit_not_recorded_in_half_the_trials_is_fitted_as_unknown_not_as_silent(holed_data):
    """Planted truth: a fit that reads the unrecorded counts as unknown predicts the unit's true
    rates in the trials it missed; one that reads them as silence predicts far fewer."""
    data, holed = holed_data
    missed = np.arange(data.n_trials // 2)
    ratios = {}
    for name, spikes in (("unknown", holed), ("silent", np.nan_to_num(holed))):
        trained = data.__class__(**{**data.__dict__, "spikes": spikes})
        result = pyrolf.fit(trained, Config(epochs=40, kl_warmup=0, lr=5e-3, **TINY),
                            progress=False)
        rates = model_rates(result.flow, trained, missed, 10)
        ratios[name] = rates[..., 11].mean() / data.rates[missed][..., 11].mean()
        if name == "unknown":
            assert np.isfinite(result.metrics["co_bps"])
            assert np.isfinite(result.metrics["smoothing_co_bps"])
    assert 0.8 < ratios["unknown"] < 1.25, ratios
    assert ratios["silent"] < 0.75, ratios


def test_a_spike_file_with_counts_not_recorded_is_fitted_scored_and_diagnosed(holed_data,
                                                                             tmp_path, capsys):
    """NaN in a spike file's counts are unknown counts: the fit's scores are numbers, the
    posterior draws' likelihood of a trial with nothing recorded is 0 (nothing scored; diagnose
    leaves such a trial out unless it is named), and posterior.nc keeps the NaN where they
    were."""
    data, holed = holed_data
    path = tmp_path / "holed.h5"
    config = Config(data=str(path), epochs=2, **TINY)
    save_spike_file(path, data)
    test = list(load_config_data(config).splits["test"])  # (the file's own split, seeded)
    holed = holed.copy()
    blank = test[0]
    holed[blank] = np.nan
    save_spike_file(path, data.__class__(**{**data.__dict__, "spikes": holed}))
    capsys.readouterr()
    loaded = load_config_data(config)
    np.testing.assert_array_equal(loaded.spikes, holed)  # NaN where they were, and said
    assert (f"holed.h5: {int(np.isnan(holed).sum())} of its {holed.size} counts are NaN, not "
            "recorded, in neurons (from 0) 0, 1, 2, 3, 4 (and 7 more)") in capsys.readouterr().err
    result = pyrolf.fit(loaded, config, run_dir=tmp_path / "run", progress=False)
    assert np.isfinite(result.metrics["co_bps"])
    summary = pyrolf.diagnose_run(tmp_path / "run", samples=25, progress=False)
    assert summary["trials"] == test[1:]  # the blank one left out, and said
    assert f"1 of the {len(test)} test trials hold no count recorded" in capsys.readouterr().err
    for key in ("ppc_coverage_mean_rate", "ppc_coverage_fano", "ppc_coverage_psth"):
        assert 0 <= summary[key] <= 1, key
    # ArviZ's plot_ppc, of the neurons recorded throughout the trials drawn, as README says
    import arviz as az

    idata = az.from_netcdf(tmp_path / "run" / "posterior.nc")
    obs = idata.observed_data["spikes"]
    complete = obs.neuron[~obs.isnull().any(("trial", "time")).values]
    assert 0 < len(complete) < obs.sizes["neuron"]
    az.plot_ppc(idata.sel(neuron=complete), num_pp_samples=5)
    named = [blank, *test[1:4]]
    pyrolf.diagnose_run(tmp_path / "run", samples=25, trials=named, progress=False)
    posterior = xr.open_dataset(tmp_path / "run" / "posterior.nc", group="log_likelihood")
    likelihood = posterior["spikes"].values[0]  # (draw, trial)
    assert (likelihood[:, 0] == 0).all() and (likelihood[:, 1:] < 0).all()
    observed = xr.open_dataset(tmp_path / "run" / "posterior.nc", group="observed_data")
    np.testing.assert_array_equal(np.isnan(observed["spikes"].values), np.isnan(holed[named]))
    assert "NaN where the unit was not recorded" in observed["spikes"].attrs["description"]

    assert json.loads((tmp_path / "run" / "diagnostics.json").read_text())["elbo"] is not None
    # the blank trial alone: nothing for the checks to compare, and said (a null without a word)
    alone = pyrolf.diagnose_run(tmp_path / "run", samples=25, trials=[blank], progress=False)
    assert "the trials drawn hold no count recorded" in " ".join(alone["notes"])
    # inferred.nc says which rates stand where counts were recorded
    inferred = pyrolf.infer(tmp_path / "run", samples=3, progress=False)
    np.testing.assert_array_equal(inferred["recorded"].values,
                                  ~np.isnan(holed[inferred["trial"].values]))
    assert np.isfinite(inferred["rates"].values).all()
    assert inferred.attrs["source"] == str(path)  # the file, as where all were recorded


def test_a_unit_recorded_in_no_training_trial_is_refused_in_one_line_naming_it(holed_data):
    """Nothing fits it (its smoothing GLM, its read-out): scored, it dragged co-bps and the
    baseline to nonsense (-6.8; found by a walkthrough). A recording's unit is named by id with
    the --units-where that leaves it out."""
    data, holed = holed_data
    holed = holed.copy()
    holed[data.splits["train"], :, 4] = np.nan
    unseen = data.__class__(**{**data.__dict__, "spikes": holed})
    with pytest.raises(DataError, match=r"^the data \(lorenz\): neuron 4 has no count recorded "
                                        r"in the \d+ training trials .*leave it out of the "
                                        r"file$"):
        check_data(unseen, "the data (lorenz)")
    named = data.__class__(**{**unseen.__dict__,
                              "extra": {"unit_ids": 100 + 7 * np.arange(data.n_neurons)}})
    with pytest.raises(DataError, match=r"unit 128 has .*; --units-where id!=128$"):
        check_data(named, "the data")


def test_a_run_fitted_when_unrecorded_counts_were_zeros_still_reloads(tmp_path, capsys):
    """A run fitted before pyrolf read a unit's counts outside its obs_intervals as unknown
    recorded the fingerprint of zeros there: it reloads them as zeros, with a note, not with
    "fitted on other data"."""
    session = simulate_recording(n_trials=40, n_units=8, seed=1).lose_units(np.array([0]), 20.0)
    path = write_recording_nwb(tmp_path / "gap.nwb", session)
    config = Config(data=str(path), align="stim_on_time", window="-0.2,0.3", epochs=1, **TINY)
    data = load_config_data(config)
    assert np.isnan(data.spikes).any()
    pyrolf.fit(data, config, run_dir=tmp_path / "run", progress=False)
    fitted = json.loads((tmp_path / "run" / "fitted.json").read_text())
    as_then = data.__class__(**{**data.__dict__, "spikes": np.nan_to_num(data.spikes)})
    fitted["data"] = spikes_fingerprint([as_then])  # what the fit recorded then
    (tmp_path / "run" / "fitted.json").write_text(json.dumps(fitted))
    capsys.readouterr()
    _, _, reloaded = pyrolf.load_run(tmp_path / "run")
    np.testing.assert_array_equal(reloaded.spikes, as_then.spikes)
    assert "as zeros, silence; they are read so for it" in capsys.readouterr().err


def test_a_held_out_unit_not_recorded_in_the_test_trials_is_said_so_not_called_silent(
        holed_data, capsys):
    data, _ = holed_data
    unit = int(np.flatnonzero(data.heldout)[0])
    holed = data.spikes.copy()
    holed[data.splits["test"], :, unit] = np.nan
    pyrolf.fit(data.__class__(**{**data.__dict__, "spikes": holed}),
               Config(epochs=1, **TINY), progress=False)
    err = capsys.readouterr().err
    assert (f"1 of the 3 held-out units was not recorded in the {len(data.splits['test'])} test "
            f"trials (ids {unit}): their co_bps_per_neuron is null, and co_bps leaves them "
            "out") in err
    assert "no spike" not in err


def test_evaluate_and_diagnose_read_a_held_in_count_not_recorded_as_infer_fills_it(
        holed_data, tmp_path, monkeypatch, capsys):
    """metrics.json and posterior.nc are of the rates inferred.nc holds: what the encoder reads
    of a held-in count not recorded is the count the run expects there (infer's fill, its
    passes shown by a bar), not a zero; the counts recorded it reads as they are."""
    import pyrolf.diagnostics.report as diagnose_module
    import pyrolf.evaluation.report as evaluate_module

    data, _ = holed_data
    test = data.splits["test"]
    holed = data.spikes.copy()
    unit = int(np.flatnonzero(data.heldin)[0])
    holed[test, 10:, unit] = np.nan  # a held-in unit lost late in every test trial
    holed_run = data.__class__(**{**data.__dict__, "spikes": holed})
    result = pyrolf.fit(holed_run, Config(epochs=2, **TINY), run_dir=tmp_path / "run",
                        progress=False)
    recorded = torch.as_tensor(holed[test][:, :data.n_observed][..., data.heldin])

    def check(inputs):
        assert inputs.shape == recorded.shape
        unknown = recorded.isnan()
        assert (inputs[unknown] > 0).all() and unknown[:, 10:, 0].all()
        torch.testing.assert_close(inputs[~unknown], recorded[~unknown])

    read = []
    predict_rates = evaluate_module.predict_rates
    monkeypatch.setattr(evaluate_module, "predict_rates", lambda flow, inputs, *rest, **kw: (
        read.append(inputs), predict_rates(flow, inputs, *rest, **kw))[1])
    capsys.readouterr()
    pyrolf.evaluate_run(tmp_path / "run", holed_run, progress=True)
    check(read[-1])  # the test trials' rates scored
    labels = [line.split(":")[0] for line in capsys.readouterr().err.splitlines()]
    assert labels.index("fill") < labels.index("score"), labels
    sample_posterior = diagnose_module.sample_posterior
    drawn = []
    monkeypatch.setattr(diagnose_module, "sample_posterior", lambda model, guide, inputs, *rest,
                        **kw: (drawn.append(inputs),
                               sample_posterior(model, guide, inputs, *rest, **kw))[1])
    pyrolf.diagnose_run(tmp_path / "run", data=holed_run, samples=25, trials=list(test),
                        progress=False)
    check(drawn[0])
    assert np.isfinite(result.metrics["co_bps"])
