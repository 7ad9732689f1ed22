"""Posterior diagnostics: the `pyrolf diagnose` files, importance weights, predictive checks."""

import copy
import dataclasses
import json
import os
import subprocess
import sys
import tracemalloc
import warnings
from types import SimpleNamespace

import arviz as az
import h5py
import numpy as np
import pyro
import pytest
import torch

import pyrolf
from pyrolf.config import ConfigError
from pyrolf.data import load_config_data, lorenz_dataset, save_spike_file
from pyrolf.diagnostics import (coverage, elbo, fano_factor, importance_summary, iwelbo,
                                mean_rate, pareto_khat, psth, sample_posterior, select_trials)
from pyrolf.diagnostics.arviz_adapter import (ARVIZ_1, DATATREE, inference_data, with_coords,
                                              with_variable_attrs, write_netcdf)
from pyrolf.diagnostics import report as diagnostics_report
from pyrolf.diagnostics.ppc import ppc_summary, predictive_interval, quantile_ranks
from pyrolf.inference.svi import encoder_inputs, evaluating
from pyrolf.memory import available_memory
from pyrolf.models.langevinflow import MAX_LOG_RATE, MIN_LOG_RATE
from pyrolf.pipeline import diagnose_run

from test_cli import assert_one_line_error, run_cli

SAMPLES = 25
PNGS = ["phase_portraits.png", "coupling_kernel.png", "ppc_mean_rate.png", "rates_vs_truth.png"]


def group_names(data) -> list[str]:
    """Top-level group names of ArviZ data (a DataTree under ArviZ >= 1.0, else
    InferenceData)."""
    return list(data.children) if isinstance(data, DATATREE) else list(data.groups())


@pytest.fixture(scope="module")
def data():
    return lorenz_dataset(seed=3, n_conditions=4, trials_per_condition=6, n_bins=12,
                          n_neurons=10, n_heldout=2, mean_rate=0.5)


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    """A tiny fitted run whose config reloads its data from a spike file."""
    folder = tmp_path_factory.mktemp("diagnose")
    save_spike_file(folder / "lorenz.h5", data)
    config = pyrolf.Config(data=str(folder / "lorenz.h5"), epochs=2, latent_dim=8, batch_size=16,
                           samples=5)
    reloaded = load_config_data(config)
    result = pyrolf.fit(reloaded, config, run_dir=folder / "run", progress=False)
    return SimpleNamespace(path=folder / "run", flow=result.flow, data=reloaded)


def test_diagnose_in_python_writes_into_a_folder_given_as_a_path(run, tmp_path):
    """pyrolf.diagnostics.diagnose with a plain path (it drew every sample, then failed on the
    path: an API walkthrough), a folder it makes."""
    from pyrolf.diagnostics import diagnose

    out = tmp_path / "mine" / "diagnosed"
    test = run.data.splits["test"]
    summary = diagnose(run.flow, run.data, test, SAMPLES, out)
    assert json.loads((out / "diagnostics.json").read_text())["samples"] == SAMPLES
    assert summary["trials"] == [int(trial) for trial in test]
    assert {"posterior.nc", *PNGS[:3]} <= {path.name for path in out.iterdir()}


def trial_tensors(data, trials):
    spikes = torch.as_tensor(data.spikes[trials], dtype=torch.float32)
    inputs = encoder_inputs(spikes, torch.as_tensor(data.heldin), data.n_forward)
    return inputs, spikes


def test_diagnose_writes_arviz_data_json_and_figures(run, monkeypatch, capsys):
    code, out, err = run_cli(["diagnose", run.path, "--samples", SAMPLES, "--rates"],
                             monkeypatch, capsys)
    assert code == 0, err
    assert "elbo=" in out and "ppc_coverage_mean_rate=" in out
    test = run.data.splits["test"]
    n_trials, n_bins, n_neurons = len(test), run.data.n_bins, run.data.n_neurons
    assert f"{n_trials * SAMPLES}/{n_trials * SAMPLES}" in err  # the progress bar, every draw

    idata = az.from_netcdf(run.path / "posterior.nc")
    assert {"posterior", "posterior_predictive", "observed_data",
            "log_likelihood"} <= set(group_names(idata))
    for name in ("z", "v"):
        assert dict(idata["posterior"][name].sizes) == {
            "chain": 1, "draw": SAMPLES, "trial": n_trials, "time": n_bins, "latent": 8}
    assert dict(idata["posterior_predictive"]["spikes"].sizes) == {
        "chain": 1, "draw": SAMPLES, "trial": n_trials, "time": n_bins, "neuron": n_neurons}
    assert dict(idata["observed_data"]["spikes"].sizes) == {
        "trial": n_trials, "time": n_bins, "neuron": n_neurons}
    assert dict(idata["log_likelihood"]["spikes"].sizes) == {
        "chain": 1, "draw": SAMPLES, "trial": n_trials}
    assert idata["posterior"]["z"]["trial"].values.tolist() == test.tolist()
    # --rates: each draw's rates are what its own latents decode to (the run's best weights),
    # in spikes per bin: the means of that draw's predicted counts
    rates = idata["posterior"]["rates"]
    assert dict(rates.sizes) == {"chain": 1, "draw": SAMPLES, "trial": n_trials,
                                 "time": n_bins, "neuron": n_neurons}
    assert rates.dtype == np.float32 and rates.attrs["units"] == "spikes/bin"
    flow = pyrolf.load_run(run.path)[0]
    z, v = (torch.as_tensor(idata["posterior"][name].values[0]) for name in ("z", "v"))
    with evaluating(flow), torch.no_grad():
        decoded = flow.decoder(z.flatten(0, 1), v.flatten(0, 1)).clamp(MIN_LOG_RATE,
                                                                      MAX_LOG_RATE).exp()
    np.testing.assert_allclose(rates.values[0], decoded.unflatten(0, z.shape[:2]).numpy(),
                               rtol=1e-5, atol=1e-7)
    assert rates.values.std(axis=1).mean() > 0  # draws, not their mean repeated
    # README's credible band of each condition's PSTH: per draw, the mean over its trials
    band = rates.groupby("condition").mean("trial").quantile([0.05, 0.95], dim=("chain", "draw"))
    conditions = np.unique(run.data.conditions[test])
    assert band.sizes == {"quantile": 2, "condition": len(conditions), "time": n_bins,
                          "neuron": n_neurons}
    first = rates.values[0][:, run.data.conditions[test] == conditions[0]].mean(1)
    np.testing.assert_allclose(band.values[:, 0], np.quantile(first, [0.05, 0.95], axis=0),
                               rtol=1e-5)
    np.testing.assert_array_equal(idata["observed_data"]["spikes"].values,
                                  run.data.spikes[test])

    report = json.loads((run.path / "diagnostics.json").read_text())
    assert report["trials"] == test.tolist() and report["samples"] == SAMPLES
    assert len(report["pareto_khat"]) == n_trials
    # the importance log-weights posterior.nc keeps give diagnostics.json's numbers again
    log_weights = idata["sample_stats"]["log_weight"].values[0]
    assert log_weights.shape == (SAMPLES, n_trials)
    np.testing.assert_allclose(report["pareto_khat"], pareto_khat(log_weights), rtol=1e-6)
    # and ArviZ's own, called as the README says
    stacked = idata["sample_stats"]["log_weight"].stack(__sample__=("chain", "draw"))
    np.testing.assert_allclose(report["pareto_khat"], az.psislw(stacked)[1], rtol=1e-6)
    assert report["elbo"] == pytest.approx(float(elbo(log_weights).mean()))
    assert report["iwelbo"] == pytest.approx(float(iwelbo(log_weights).mean()))
    assert 0 <= report["share_khat_above_0_7"] <= 1
    assert report["iwelbo"] >= report["elbo"]
    for key in ("ppc_coverage_mean_rate", "ppc_coverage_fano", "ppc_coverage_psth"):
        assert 0 <= report[key] <= 1, key
    for png in PNGS:
        assert (run.path / png).stat().st_size > 0, png


def test_datatree_is_written_as_arviz_1_writes_it(run, tmp_path):
    """ArviZ >= 1.0 builds an xarray DataTree; the adapter writes it, and the file reads back;
    a variable's attributes are given on a DataTree as on legacy data (``rates``')."""
    diagnose_run(run.path, samples=SAMPLES, trials=2)
    assert "rates" not in az.from_netcdf(run.path / "posterior.nc")["posterior"]  # (asked for)
    diagnose_run(run.path, samples=SAMPLES, trials=2, rates=True)
    idata = az.from_netcdf(run.path / "posterior.nc")
    tree = idata if ARVIZ_1 else idata.to_datatree()
    rates = tree["posterior"]["rates"].values
    tree = with_variable_attrs(tree, "posterior", "rates", {"long_name": "rates of each draw"})
    write_netcdf(tree, tmp_path / "tree.nc")
    again = az.from_netcdf(tmp_path / "tree.nc")
    assert set(group_names(again)) == set(group_names(tree))
    for group, name in (("posterior", "z"), ("posterior", "rates"),
                        ("posterior_predictive", "spikes")):
        np.testing.assert_array_equal(again[group][name].values, tree[group][name].values)
    np.testing.assert_array_equal(again["posterior"]["rates"].values, rates)
    assert again["posterior"]["rates"].attrs["long_name"] == "rates of each draw"
    assert again["posterior"]["rates"].attrs["units"] == "spikes/bin"


def test_labels_are_given_to_every_group_that_has_the_dim_without_copying_the_draws():
    draws, observed = np.zeros((1, 1000, 3, 2000), np.float32), np.ones((3, 4), np.int32)
    idata = inference_data({"posterior": {"z": draws}, "observed_data": {"spikes": observed}},
                           {"z": ["trial", "latent"], "spikes": ["trial", "neuron"]})
    tracemalloc.start()  # numpy reports its arrays' memory to tracemalloc
    idata = with_coords(idata, {"trial": ("trial", [7, 9, 12], {"long_name": "trial id"}),
                                "heldout": ("neuron", [False, False, True, True])})
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < draws.nbytes / 10  # not even for a moment a copy of the draws
    posterior, data = idata["posterior"], idata["observed_data"]
    assert posterior["trial"].values.tolist() == data["trial"].values.tolist() == [7, 9, 12]
    assert posterior["trial"].attrs["long_name"] == "trial id"
    assert data["heldout"].values.tolist() == [False, False, True, True]
    assert "heldout" not in posterior.coords  # the posterior has no neuron dim
    assert np.shares_memory(posterior["z"].values, draws)  # the draws, not a copy


def test_posterior_files_compress_the_counts_and_leave_the_draws_of_latents_as_they_are(run,
                                                                                        tmp_path):
    """Counts (integers) are byte-shuffled and zlib-compressed, latent draws (floats, which
    hardly compress) are not, whichever ArviZ data is written."""
    diagnose_run(run.path, samples=SAMPLES, trials=2)
    idata = az.from_netcdf(run.path / "posterior.nc")
    write_netcdf(idata if ARVIZ_1 else idata.to_datatree(), tmp_path / "tree.nc")
    for path in (run.path / "posterior.nc", tmp_path / "tree.nc"):
        with h5py.File(path) as file:
            for counts in ("posterior_predictive/spikes", "observed_data/spikes"):
                assert file[counts].compression == "gzip" and file[counts].shuffle, counts
            for draws in ("posterior/z", "posterior/v", "log_likelihood/spikes"):
                assert file[draws].compression is None, draws


def test_diagnose_chosen_trials(run, monkeypatch, capsys):
    code, _, err = run_cli(["diagnose", run.path, "--samples", SAMPLES, "--trials", "0,5,",
                            "--quiet"], monkeypatch, capsys)
    assert code == 0 and err == "", err  # --quiet: no progress bar
    assert json.loads((run.path / "diagnostics.json").read_text())["trials"] == [0, 5]
    report = diagnose_run(run.path, samples=SAMPLES, trials=2)
    assert report["trials"] == run.data.splits["test"][:2].tolist()


def test_draws_that_would_not_fit_in_memory_are_refused_in_one_line(run, monkeypatch, capsys):
    """The draws' size is what sample_posterior holds; more than the memory available is one
    line, and the files of an earlier diagnosis stay as they were."""
    data, trials = run.data, run.data.splits["test"]
    inputs, spikes = trial_tensors(data, trials)
    everything = torch.ones_like(spikes, dtype=torch.bool)
    flow64 = copy.deepcopy(run.flow).double()
    for rates in (False, True):
        draws = sample_posterior(run.flow.model, run.flow.guide, inputs, spikes, everything,
                                 data.n_bins, SAMPLES, rates=rates)
        draws64 = sample_posterior(flow64.model, flow64.guide, inputs.double(), spikes.double(),
                                   everything, data.n_bins, SAMPLES, rates=rates)
        assert draws.predictive_spikes.dtype == np.int16  # (these counts are below 32768)
        kept = ("z", "v", "predictive_spikes", *(("rate_draws",) if rates else ()))
        for drawn, float_bytes in ((draws, 4), (draws64, 8)):
            # (float64 rates are written through a float32 copy)
            written = len(trials) * SAMPLES * data.n_bins * data.n_neurons * 4 * (
                rates and float_bytes == 8)
            assert sum(getattr(drawn, name).nbytes for name in kept) + written == (
                diagnostics_report.draws_bytes(len(trials), SAMPLES, data.n_bins, 8,
                                               data.n_neurons, float_bytes, 2, rates))
    held = diagnostics_report.draws_bytes(len(trials), SAMPLES, data.n_bins, 8, data.n_neurons)
    if sys.platform == "linux":  # MemAvailable: less than the machine has
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        assert 0 < available_memory() < physical

    diagnose_run(run.path, samples=SAMPLES, trials=2)
    before = {name: (run.path / name).read_bytes() for name in ("posterior.nc", "diagnostics.json")}
    capsys.readouterr()
    monkeypatch.setattr("pyrolf.memory.available_memory", lambda: held - 1.0)
    code, _, err = run_cli(["diagnose", run.path, "--samples", SAMPLES], monkeypatch, capsys)
    assert_one_line_error(code, err, f"{len(trials)} trials x {SAMPLES} samples", "GiB",
                          "--trials N")
    assert before == {name: (run.path / name).read_bytes() for name in before}
    monkeypatch.setattr("pyrolf.memory.available_memory", lambda: float(held))
    code, _, err = run_cli(["diagnose", run.path, "--samples", SAMPLES, "--rates"], monkeypatch,
                           capsys)  # (the rates too: more than there is)
    assert_one_line_error(code, err, f"{len(trials)} trials x {SAMPLES} samples", "GiB")
    code, _, err = run_cli(["diagnose", run.path, "--samples", SAMPLES], monkeypatch, capsys)
    assert code == 0, err


def test_guide_equal_to_prior_gives_zero_log_weights(run):
    """q = p(z) and nothing observed: log p(x, z) - log q(z) = log p(z) - log p(z) = 0."""
    flow, data = run.flow, run.data
    inputs, spikes = trial_tensors(data, data.splits["test"])

    def prior_guide(inputs, spikes=None, mask=None, n_bins=None, kl_weight=1.0, draws=1):
        with pyro.plate("trials", inputs.shape[0] * draws):
            return flow.prior(inputs.shape[0] * draws, n_bins)

    nothing = torch.zeros_like(spikes, dtype=torch.bool)
    pyro.set_rng_seed(1)
    draws = sample_posterior(flow.model, prior_guide, inputs, spikes, nothing, data.n_bins, 30)
    assert np.abs(draws.log_weights).max() <= 1e-5
    assert np.all(draws.log_likelihood == 0) and np.all(draws.log_prior < 0)
    # ArviZ has no k-hat for equal weights (0.23: inf, no tail beyond the cut-off; >= 1.0
    # raises); pyrolf reports NaN, which does not count as a warning.
    if not ARVIZ_1:
        assert np.all(np.isinf(az.psislw(draws.log_weights.T)[1]))
    assert np.all(np.isnan(pareto_khat(draws.log_weights)))
    summary = importance_summary(draws.log_weights)
    assert summary["share_khat_above_0_7"] == summary["share_khat_above_threshold"] == 0
    assert summary["elbo"] == pytest.approx(0, abs=1e-5)
    assert summary["iwelbo"] == pytest.approx(0, abs=1e-5)


def test_khat_threshold_falls_with_fewer_draws_as_arviz_s_loo_says(monkeypatch):
    """min(1 - 1 / log10 S, 0.7): 0.5 at 100 draws (k-hat 0.6 there already warns), 0.7 only
    from 10^(1/0.3) ~ 2154 draws; ArviZ's loo reports the same ``good_k``, and the summary
    counts the trials above it (NaN: uniform weights, reliable) beside those above 0.7."""
    from pyrolf.diagnostics.importance import khat_threshold

    assert khat_threshold(100) == pytest.approx(0.5)
    assert khat_threshold(25) == pytest.approx(1 - 1 / np.log10(25))
    assert khat_threshold(2000) < 0.7 == khat_threshold(2200) == khat_threshold(10**6)
    generator = np.random.default_rng(0)
    for samples in (25, 100, 3000):
        draws = inference_data({"posterior": {"u": generator.normal(size=(1, samples))},
                                "log_likelihood": {"x": generator.normal(size=(1, samples, 3))}},
                               dims={})
        with warnings.catch_warnings():  # (of the k-hats of these made-up draws)
            warnings.simplefilter("ignore")
            loo = az.loo(draws)
        assert loo.good_k == pytest.approx(khat_threshold(samples))
    import pyrolf.diagnostics.importance as importance

    monkeypatch.setattr(importance, "pareto_khat", lambda log_weights: np.array(
        [0.3, 0.6, 0.8, np.nan]))
    summary = importance.importance_summary(np.zeros((100, 4)))
    assert summary["khat_threshold"] == pytest.approx(0.5)
    assert summary["share_khat_above_threshold"] == 0.5
    assert summary["share_khat_above_0_7"] == 0.25


class ShiftedDraws:
    """Model and guide in LangevinFlow's signature, one latent ``u`` ``(rows, 1)`` per row: the
    guide draws it from Normal(a trial's mean input, 1), the prior is Normal(0, 1) and each
    neuron counts Poisson(exp(u)) in every bin; ``z = v = u`` in every bin."""

    @staticmethod
    def guide(inputs, spikes=None, mask=None, n_bins=None, kl_weight=1.0, draws=1):
        level = inputs.mean((1, 2)).repeat_interleave(draws)[:, None]
        with pyro.plate("trials", len(inputs) * draws):
            u = pyro.sample("u", pyro.distributions.Normal(level, 1.0).to_event(1))
        return u[:, None].expand(-1, n_bins, 1), u[:, None].expand(-1, n_bins, 1)

    @staticmethod
    def model(inputs, spikes=None, mask=None, n_bins=None, kl_weight=1.0, draws=1):
        rows = len(inputs) * draws
        with pyro.plate("trials", rows):
            u = pyro.sample("u", pyro.distributions.Normal(torch.zeros(rows, 1), 1.0).to_event(1))
            log_rates = u[:, None].expand(-1, n_bins, spikes.shape[-1])
            rates = pyro.distributions.Poisson(log_rates.exp()).mask(mask)
            pyro.sample("spikes", rates.to_event(2), obs=spikes)
        return log_rates


@pytest.mark.parametrize("draws_per_pass", [1, 7, 70, 10_000])
def test_each_posterior_draw_is_scored_with_its_own_trial(draws_per_pass):
    """However the draws of several trials share a pass, draw ``d`` of trial ``i`` is drawn from
    trial ``i``'s guide and scored on trial ``i``'s own spikes and mask: its log-densities equal
    those computed by hand from its value, and its rates are its own (the trial's posterior mean
    rates the mean of its draws')."""
    pyro.set_rng_seed(0)
    n_trials, n_bins, samples = 5, 3, 30
    levels = torch.arange(n_trials, dtype=torch.float32) - 2
    inputs = levels[:, None, None].expand(n_trials, n_bins, 4)
    scale = (torch.arange(n_trials) + 1.0)[:, None, None]
    spikes = torch.poisson(torch.rand(n_trials, n_bins, 2) * scale)
    mask = torch.rand(n_trials, n_bins, 2) > 0.3
    draws = sample_posterior(ShiftedDraws.model, ShiftedDraws.guide, inputs, spikes, mask, n_bins,
                             samples, draws_per_pass=draws_per_pass, rates=True)
    assert draws.z.shape == (samples, n_trials, n_bins, 1)
    assert draws.predictive_spikes.shape == (samples, n_trials, n_bins, 2)
    u = torch.as_tensor(draws.z[:, :, 0, 0])                                 # (draws, trials)
    normal = torch.distributions.Normal
    torch.testing.assert_close(torch.as_tensor(draws.log_guide),
                               normal(levels, 1.0).log_prob(u).double())
    torch.testing.assert_close(torch.as_tensor(draws.log_prior),
                               normal(0.0, 1.0).log_prob(u).double())
    by_hand = torch.distributions.Poisson(u.exp()[..., None, None]).log_prob(spikes) * mask
    torch.testing.assert_close(torch.as_tensor(draws.log_likelihood), by_hand.sum((2, 3)).double())
    np.testing.assert_allclose(draws.rate_draws,
                               u.exp()[..., None, None].expand(-1, -1, n_bins, 2), rtol=1e-5)
    np.testing.assert_allclose(draws.rates,
                               u.exp().mean(0)[:, None, None].expand(-1, n_bins, 2), rtol=1e-5)
    assert torch.all((u.mean(0) - levels).abs() < 4 / samples ** 0.5)


def test_predicted_counts_are_held_in_the_fewest_bytes_that_hold_every_one():
    """int16 where each count is below 32768, half of int32's memory (a profile: 2.8 GB of
    diagnose's 8.7 GB), signed as ArviZ's plot_ppc wants them, not int8, in which a user's
    arithmetic wraps (a review: 12 squared); where a later pass draws a larger count, the
    earlier ones are kept in a wider type, none wrapped."""
    from pyrolf.diagnostics.posterior import count_type

    assert [count_type(n) for n in (0, 127, 32_767, 32_768)] == [np.int16, np.int16,
                                                                 np.int16, np.int32]
    pyro.set_rng_seed(0)
    n_trials, n_bins = 3, 4
    levels = torch.tensor([0.0, 0.0, 14.0])  # the last trial (drawn last): about e^14 = 1.2e6
    inputs = levels[:, None, None].expand(n_trials, n_bins, 4)
    spikes = torch.zeros(n_trials, n_bins, 2)
    draws = sample_posterior(ShiftedDraws.model, ShiftedDraws.guide, inputs, spikes,
                             torch.ones_like(spikes, dtype=torch.bool), n_bins, 5,
                             draws_per_pass=5)
    counts = draws.predictive_spikes
    assert counts.dtype == count_type(counts.max()) == np.int32 and counts[:, 2].min() > 32767
    assert counts[:, :2].max() < 100  # the first passes' counts as drawn, in the wider type
    u = torch.as_tensor(draws.z[:, :, 0, 0])
    assert np.all(np.abs(np.log(counts[:, 2].mean((1, 2))) - u[:, 2].numpy()) < 0.2)


def test_predictive_intervals_cover_the_true_mean_rates_of_data_the_model_simulated(run):
    """The fitted model simulates spikes for the data's trials (rates of one posterior draw, then
    Poisson counts); diagnosed with the same model, the 90 % posterior predictive intervals of
    the per-neuron mean rate cover the true mean rate (of the simulating rates) for at least
    75 % of the neurons of 10 simulated data sets (one data set of 10 neurons swings from 60 to
    100 %)."""
    flow, data = run.flow, run.data
    flow.eval()
    pyro.set_rng_seed(2)
    inputs, spikes = trial_tensors(data, np.arange(data.n_trials))
    everything = torch.ones_like(spikes, dtype=torch.bool)
    covered = []
    for _ in range(10):
        truth = sample_posterior(flow.model, flow.guide, inputs, spikes, everything, data.n_bins, 1)
        simulated = torch.as_tensor(truth.predictive_spikes[0], dtype=torch.float32)
        seen = encoder_inputs(simulated, torch.as_tensor(data.heldin), data.n_forward)
        draws = sample_posterior(flow.model, flow.guide, seen, simulated, everything,
                                 data.n_bins, 50)
        covered.append(coverage(mean_rate(truth.rates),
                                mean_rate(draws.predictive_spikes)))
    assert np.mean(covered) >= 0.75


def test_iwelbo_bounds_elbo_per_trial(run):
    data = run.data
    inputs, spikes = trial_tensors(data, data.splits["test"])
    run.flow.eval()
    draws = sample_posterior(run.flow.model, run.flow.guide, inputs, spikes,
                             torch.ones_like(spikes, dtype=torch.bool), data.n_bins, SAMPLES)
    assert np.all(iwelbo(draws.log_weights) >= elbo(draws.log_weights))
    spread = np.random.default_rng(0).normal(scale=[0.1, 1.0, 10.0], size=(SAMPLES, 3))
    assert np.all(iwelbo(spread) >= elbo(spread))
    assert iwelbo(np.full((4, 1), -3.0)) == pytest.approx(elbo(np.full((4, 1), -3.0)))


def test_coverage_by_hand():
    draws = np.repeat(np.arange(101.0)[:, None], 3, axis=1)  # 5 % and 95 % quantiles: 5, 95
    assert coverage(np.array([50.0, 96.0, 5.0]), draws) == pytest.approx(2 / 3)
    assert coverage(np.array([np.nan, 4.0, 95.0]), draws) == pytest.approx(1 / 2)
    spikes = np.array([[[1, 0]], [[3, 0]]])  # 2 trials, 1 bin, 2 neurons
    np.testing.assert_allclose(mean_rate(spikes), [2.0, 0.0])
    np.testing.assert_allclose(fano_factor(spikes), [1.0, np.nan])  # variance 2 / mean 2
    np.testing.assert_allclose(psth(spikes, np.array([7, 4])), [[[3, 0]], [[1, 0]]])
    # one trial has no variance over trials: NaN, and no check to report, without a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(fano_factor(spikes[:1]), [np.nan, np.nan])
        one = ppc_summary(spikes[:1], np.stack([spikes[:1]] * 5))
    assert one["ppc_coverage_fano"] is None and one["ppc_coverage_mean_rate"] == 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_an_observed_statistic_on_a_bound_is_covered_whatever_the_counts_type(dtype):
    """Diagnose's observed counts are float32, the draws integers: three trials of one condition
    with one spike make a PSTH and a mean rate of 1/3, which half the draws give too; the
    interval's upper bound is that 1/3, and the observed 1/3 lies on it (float32 means made
    0.33333334, just outside)."""
    observed = np.zeros((3, 1, 1), dtype)
    observed[0, 0, 0] = 1
    draws = np.zeros((100, 3, 1, 1), np.int32)
    draws[:50, 0, 0, 0] = 1
    summary = ppc_summary(observed, draws, np.zeros(3, int))
    assert summary["ppc_coverage_psth"] == summary["ppc_coverage_mean_rate"] == 1.0


def test_predictive_interval_by_hand_skips_nan_draws():
    """Draws 0..10 along axis 1: the 5 % and 95 % quantiles interpolate to 0.5 and 9.5; with the
    draws past 4 NaN, the interval is that of 0..4 (0.2, 3.8); with all NaN it is NaN."""
    draws = np.tile(np.arange(11.0), (3, 1))
    draws[1, 5:] = np.nan
    draws[2] = np.nan
    lower, upper = predictive_interval(draws, axis=1)
    np.testing.assert_allclose(lower, [0.5, 0.2, np.nan])
    np.testing.assert_allclose(upper, [9.5, 3.8, np.nan])


def test_quantile_ranks_by_hand():
    """11 values: the 5 % quantile lies halfway between the first two, the 95 % halfway between
    the last two; one value (or none) is its own quantile; of 101 the 5 % is the sixth (weight
    0); counts per slice give arrays."""
    assert quantile_ranks(11, 0.05) == (0, 1, pytest.approx(0.5))
    assert quantile_ranks(11, 0.95) == (9, 10, pytest.approx(0.5))
    assert quantile_ranks(1, 0.95) == (0, 0, 0) and quantile_ranks(0, 0.05) == (0, 0, 0)
    below, above, weight = quantile_ranks(np.array([5, 101]), 0.05)
    np.testing.assert_array_equal(below, [0, 5])
    np.testing.assert_array_equal(above, [1, 6])
    np.testing.assert_allclose(weight, [0.2, 0.0], atol=1e-12)


@pytest.mark.parametrize("axis", [0, 1, 3])
@pytest.mark.parametrize("dtype,rtol", [(np.float32, 1e-6), (np.float64, 1e-12)])
def test_predictive_interval_equals_numpys_quantiles(axis, dtype, rtol):
    """np.quantile's numbers without NaN, np.nanquantile's with NaN, over any axis, for draw
    counts whose quantile positions fall on a draw (101) and between draws (2, 20)."""
    rng = np.random.default_rng(axis)
    for n_draws in (1, 2, 20, 101):
        shape = [3, 4, 5, 2]
        shape[axis] = n_draws
        draws = rng.standard_gamma(0.5, shape).astype(dtype)
        for expected, bound in zip(np.quantile(draws, [0.05, 0.95], axis=axis),
                                   predictive_interval(draws, axis=axis)):
            np.testing.assert_allclose(bound, expected, rtol=rtol, atol=0)
        draws[rng.random(shape) < 0.3] = np.nan
        with warnings.catch_warnings():  # numpy's "All-NaN slice": those slices give NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            expected = np.nanquantile(draws, [0.05, 0.95], axis=axis)
        for expected_bound, bound in zip(expected, predictive_interval(draws, axis=axis)):
            np.testing.assert_allclose(bound, expected_bound, rtol=rtol, atol=0)


def test_trials_default_to_valid_on_nlb_data_and_refuse_evaluation_trials(data):
    ids = np.r_[100:110, 120:134]  # nlb_tools' trial_id of each trial
    nlb = dataclasses.replace(data, extra={"nlb": SimpleNamespace(n_train=20, trial_ids=ids)},
                              splits={"train": np.arange(15), "valid": np.arange(15, 20),
                                      "test": np.arange(20, 24)})
    np.testing.assert_array_equal(select_trials(nlb), np.arange(15, 20))
    np.testing.assert_array_equal(select_trials(nlb, 2), [15, 16])
    # trials named by their ids, as inferred.nc names them
    np.testing.assert_array_equal(select_trials(nlb, [121, 103]), [11, 3])
    with pytest.raises(ConfigError, match="trial 131 is an NLB evaluation trial.*"
                                          "100..109, 120..129$"):
        select_trials(nlb, [103, 131])
    with pytest.raises(ConfigError, match="no trial 110 in the data.*100..109, 120..133$"):
        select_trials(nlb, [110])


@pytest.mark.parametrize("args, fragment", [
    (["--trials", "abc"], "--trials must be"),
    (["--trials", "0"], "count from 1"),
    (["--trials", "159"], "(one trial: --trials 159,)"),
    (["--trials", "3,99"], "no trial 99"),
    (["--trials", "3,3"], "twice"),
    (["--samples", "many"], "not a valid integer"),
    (["--samples", "3"], "at least 25"),
])
def test_bad_options_are_one_line(args, fragment, run, monkeypatch, capsys):
    code, _, err = run_cli(["diagnose", run.path, *args], monkeypatch, capsys)
    assert_one_line_error(code, err, fragment)


def test_missing_run_folder_is_one_line(tmp_path, monkeypatch, capsys):
    code, _, err = run_cli(["diagnose", tmp_path / "nothing"], monkeypatch, capsys)
    assert_one_line_error(code, err, "no run folder")


def test_too_few_samples_are_refused_before_the_data_are_read(run, monkeypatch):
    """The refusal came after the data were loaded and their notes printed (found by a
    walkthrough)."""
    from pyrolf.pipeline import diagnosis

    def read(*args, **kwargs):
        raise AssertionError("the run's data were read")

    monkeypatch.setattr(diagnosis, "_load_run", read)
    with pytest.raises(ConfigError,
                       match=r"samples \(--samples\) must be at least 25 for Pareto k-hat, got 3"):
        diagnose_run(run.path, samples=3)
    # NumPy's whole numbers are taken, as Python ints (diagnostics.json could not hold them)
    from pyrolf.diagnostics.report import check_samples

    assert type(check_samples(np.int64(30))) is int and check_samples(np.int64(30)) == 30


class PerBinSites:
    """As :class:`ShiftedDraws`, but the trials plate is at dim -2 and the spikes site
    is scored per bin (batch shape ``(rows, bins)``, event ``(neurons,)``): its log-density per
    trial is the SUM over the bins (what ``_per_trial``'s reshape(n_trials, -1) is for)."""

    @staticmethod
    def guide(inputs, spikes=None, mask=None, n_bins=None, kl_weight=1.0, draws=1):
        level = inputs.mean((1, 2)).repeat_interleave(draws)[:, None, None]
        with pyro.plate("trials", len(inputs) * draws, dim=-2):
            u = pyro.sample("u", pyro.distributions.Normal(level, 1.0).to_event(1))
        return u.expand(-1, n_bins, 1), u.expand(-1, n_bins, 1)

    @staticmethod
    def model(inputs, spikes=None, mask=None, n_bins=None, kl_weight=1.0, draws=1):
        rows = len(inputs) * draws
        with pyro.plate("trials", rows, dim=-2):
            u = pyro.sample("u", pyro.distributions.Normal(torch.zeros(rows, 1, 1), 1.0)
                            .to_event(1))
            log_rates = u.expand(-1, n_bins, spikes.shape[-1])
            rates = pyro.distributions.Poisson(log_rates.exp()).mask(mask)
            pyro.sample("spikes", rates.to_event(1), obs=spikes)
        return log_rates


def test_log_likelihood_sums_a_site_s_per_bin_terms_per_trial():
    """A site scored per bin gives each trial the sum of its bins' terms (their mean went
    unseen: a mutation audit)."""
    pyro.set_rng_seed(0)
    n_trials, n_bins, samples = 3, 4, 6
    levels = torch.tensor([-1.0, 0.0, 1.0])
    inputs = levels[:, None, None].expand(n_trials, n_bins, 2)
    spikes = torch.poisson(torch.full((n_trials, n_bins, 2), 2.0))
    mask = torch.rand(n_trials, n_bins, 2) > 0.3
    draws = sample_posterior(PerBinSites.model, PerBinSites.guide, inputs, spikes, mask, n_bins,
                             samples, draws_per_pass=4)
    u = torch.as_tensor(draws.z[:, :, 0, 0])                                 # (draws, trials)
    by_hand = torch.distributions.Poisson(u.exp()[..., None, None]).log_prob(spikes) * mask
    torch.testing.assert_close(torch.as_tensor(draws.log_likelihood), by_hand.sum((2, 3)).double(),
                               rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.as_tensor(draws.log_prior),
                               torch.distributions.Normal(0.0, 1.0).log_prob(u).double())


def test_arviz_is_imported_where_its_cache_folder_cannot_be_made(tmp_path):
    """Legacy ArviZ makes a cache folder as it is imported: under a read-only home every pyrolf
    command failed with that folder's OSError (a file-system hostile test). A cache home under a
    file stands in for it (root may write a read-only folder)."""
    (tmp_path / "file").write_text("")
    (tmp_path / "tmp").mkdir()
    done = subprocess.run(
        [sys.executable, "-c", "from pyrolf.diagnostics.arviz_adapter import az; print('read')"],
        capture_output=True, text=True, cwd=tmp_path,
        env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "file" / "cache"),
             "MPLCONFIGDIR": str(tmp_path), "OMP_NUM_THREADS": "1",
             "TMPDIR": str(tmp_path / "tmp")})
    assert done.returncode == 0 and done.stdout == "read\n", done.stderr
    assert not list((tmp_path / "tmp").iterdir())  # its stand-in cache went as it ended (one
    # was left in /tmp by each command: a review)
