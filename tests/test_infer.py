"""`pyrolf infer`: every trial's posterior in one netCDF file, new trials, and refusals that leave
the run folder as it was."""

import dataclasses
import hashlib
import json
import math
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pyro
import pytest
import torch
import xarray as xr
from torch import nn

import pyrolf
from pyrolf.data import DataError, SpikeData, load_config_data, lorenz_dataset, save_spike_file
from pyrolf.diagnostics.coords import trial_coords
from pyrolf.diagnostics.export import merged_dataset
from pyrolf.diagnostics.layout import LAYOUT_FORMAT, data_layout, layout_data
from pyrolf.diagnostics.new_trials import new_trials
from pyrolf.diagnostics.summary import inferred_inputs, posterior_summary, reduce_draws
from pyrolf.dynamics import force
from pyrolf.evaluation.report import model_rates, trial_inputs
from pyrolf.inference.svi import posterior_passes
from pyrolf.models import LangevinFlow, build_flow
from pyrolf.pipeline import load_run

from test_cli import assert_one_line_error, run_cli

TINY = dict(latent_dim=8, channels=2, encoder_hidden=16, decoder_width=16,
            decoder_feedforward=32)
VARIABLES = {"z": "latent", "v": "latent", "inputs": "latent", "rates": "neuron"}


@pytest.fixture(scope="module")
def lorenz_run(tmp_path_factory):
    """A one-epoch run on the embedded Lorenz data (1300 trials, 50 bins, 30 neurons)."""
    folder = tmp_path_factory.mktemp("lorenz") / "run"
    config = pyrolf.Config(epochs=1, batch_size=128, samples=2, **TINY)
    pyrolf.fit(load_config_data(config), config, run_dir=folder, progress=False)
    return folder


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A short run on a small spike file whose trials the encoder tells apart (high rates)."""
    folder = tmp_path_factory.mktemp("small")
    data = lorenz_dataset(seed=3, n_conditions=4, trials_per_condition=6, n_bins=12,
                          n_neurons=10, n_heldout=2, mean_rate=3.0)
    save_spike_file(folder / "data.h5", data)
    config = pyrolf.Config(data=str(folder / "data.h5"), epochs=30, batch_size=16, samples=5,
                           kl_warmup=5, eval_every=10, **TINY)
    pyrolf.fit(load_config_data(config), config, run_dir=folder / "run", progress=False)
    return SimpleNamespace(path=folder / "run", folder=folder, data=load_config_data(config))


def folder_state(path):
    """Every file of a folder with the hash of its bytes."""
    return {item.name: hashlib.sha256(item.read_bytes()).hexdigest()
            for item in sorted(path.iterdir())}


def test_summaries_that_would_not_fit_in_memory_are_refused_before_any_draw(
        small_run, monkeypatch, capsys):
    """What ``infer`` holds is the summaries (as many bytes as :func:`summary_bytes` counts,
    half for the file written from them); where the memory available holds less, one line
    before any draw (it was killed for memory minutes later), and the run folder as it was."""
    from pyrolf.diagnostics import export
    from pyrolf.diagnostics import summary as reduction

    data = small_run.data
    flow, config, _ = load_run(small_run.path)
    summary = posterior_summary(flow, trial_inputs(data, np.arange(data.n_trials), "cpu"),
                                data.n_bins, 3)
    held = sum(values.nbytes for values in summary.values())
    needed = export.summary_bytes(data.n_trials, data.n_bins, config.latent_dim, data.n_neurons)
    assert needed == 2 * held
    before = folder_state(small_run.path)
    monkeypatch.setattr("pyrolf.memory.available_memory", lambda: needed - 1.0)

    def drawn(*args, **kwargs):
        raise AssertionError("drew before the check")

    monkeypatch.setattr(reduction, "posterior_passes", drawn)
    code, _, err = run_cli(["infer", small_run.path, "--samples", 3], monkeypatch, capsys)
    assert_one_line_error(code, err, f"the posterior summaries of {data.n_trials} trials of "
                          f"{data.n_bins} bins, with the file written from them, take",
                          "--trials-where")
    assert folder_state(small_run.path) == before


def test_infer_writes_every_trial_with_its_coordinates(lorenz_run, monkeypatch, capsys):
    code, out, err = run_cli(["infer", lorenz_run, "--samples", 10], monkeypatch, capsys)
    assert code == 0, err
    assert "inferred 1300 trials" in out
    assert "infer: 100%" in err and "13000/13000" in err  # the progress bar, every draw
    flow, config, data = load_run(lorenz_run)
    n, t, d = data.n_trials, data.n_bins, config.latent_dim
    inferred = xr.open_dataset(lorenz_run / "inferred.nc")
    assert dict(inferred.sizes) == {"trial": n, "time": t, "latent": d, "neuron": data.n_neurons}
    for name, last in VARIABLES.items():
        for key in (name, f"{name}_lower", f"{name}_upper"):
            assert inferred[key].dims == ("trial", "time", last), key
        # every interval encloses its mean
        assert (inferred[f"{name}_lower"] <= inferred[name]).all(), name
        assert (inferred[name] <= inferred[f"{name}_upper"]).all(), name
    np.testing.assert_array_equal(inferred["trial"], np.arange(n))
    for split, indices in data.splits.items():
        assert set(inferred["split"].values[indices]) == {split}
    np.testing.assert_array_equal(inferred["condition"], data.conditions)
    np.testing.assert_array_equal(inferred["time"], np.arange(t))  # bin size unknown: bin index
    np.testing.assert_array_equal(inferred["neuron"], np.arange(data.n_neurons))
    np.testing.assert_array_equal(inferred["heldout"], data.heldout)
    assert json.loads(inferred.attrs["config"]) == config.to_dict()
    assert inferred.attrs["samples"] == 10 and math.isnan(inferred.attrs["bin_size_s"])
    assert inferred.attrs["pyrolf_version"] == pyrolf.__version__
    assert (inferred["inputs"].isel(time=0) == 0).all()
    # trial i holds trial i's rates: what pyrolf evaluate's predictor gives i from the same draws
    pyro.set_rng_seed(config.seed)
    predicted = model_rates(flow, data, np.arange(n), samples=10)
    np.testing.assert_allclose(inferred["rates"].values, predicted, rtol=1e-5, atol=1e-7)
    # and, from other draws (the test trials alone, as evaluate draws them), to sampling noise
    test = data.splits["test"]
    pyro.set_rng_seed(config.seed)
    evaluated = model_rates(flow, data, test, samples=10)
    spread = (inferred["rates_upper"] - inferred["rates_lower"]).values[test] / 3.29
    assert np.median(np.abs(evaluated - predicted[test]) / (spread * math.sqrt(2 / 10))) < 1
    with h5py.File(lorenz_run / "inferred.nc", "r") as file:  # netCDF4 is HDF5
        np.testing.assert_array_equal(file["rates"][()], inferred["rates"].values)
        assert file["z_upper"].shape == (n, t, d)
        assert all(file[name].compression == "gzip" and file[name].shuffle
                   for name in inferred.data_vars)  # byte-shuffled, then zlib
    report = json.loads((lorenz_run / "dynamics.json").read_text())
    assert len(report["modes"]) == 2 * d and report["time_unit"] == "bins"
    # springs: U ≥ 0 is a quadratic form, so its one fixed point, in closed form, is a minimum
    (point,) = report["fixed_points"]["points"]
    assert point["kind"] == "minimum" and point["position"] == [0.0] * d
    assert f"fixed points: 1 minimum ({int(point['stability'] == 'stable')} stable" in out
    assert (lorenz_run / "spectrum.png").stat().st_size > 0
    # the embedded Lorenz data carry true latents and rates: metrics.json scores against them
    metrics = json.loads((lorenz_run / "metrics.json").read_text())
    assert metrics["latents_r2"] <= 1 and 0 <= metrics["rates_coverage_90"] <= 1


class PriorGuide(nn.Module):
    """The prior as guide: ``q(z, v | x) = p(z, v)``, whatever the data."""

    def __init__(self, prior):
        super().__init__()
        self.prior = prior

    def forward(self, dynamics, inputs, n_bins, stepwise=False, draws=1):
        return self.prior(inputs.shape[0] * draws, n_bins, stepwise)


def test_with_the_prior_as_guide_the_inputs_are_the_innovations_mean_zero(float64):
    """Draws from the prior: every inferred input is an innovation ``Normal(0, σ²)``, so its
    posterior mean is 0 to within ``σ / sqrt(S)`` and its 90 % interval is ``±1.645 σ``."""
    torch.manual_seed(0)
    config = pyrolf.Config(step=0.1, damping=0.3, **TINY)
    built = build_flow(config, 6, 4)
    flow = LangevinFlow(built.prior, built.decoder, PriorGuide(built.prior))
    pyro.set_rng_seed(1)
    samples, no_data = 400, torch.zeros(30, 10, 4)
    summary = posterior_summary(flow, no_data, 10, samples)
    sigma = float(flow.prior.dynamics.noise_scale.detach())
    means = summary["inputs"][:, 1:]
    assert np.all(summary["inputs"][:, 0] == 0)
    assert abs(means.mean()) < 4 * sigma / math.sqrt(samples * means.size)
    assert np.sqrt(np.mean(means ** 2)) == pytest.approx(sigma / math.sqrt(samples), rel=0.1)
    assert summary["inputs_lower"][:, 1:].mean() == pytest.approx(-1.645 * sigma, rel=0.03)
    assert summary["inputs_upper"][:, 1:].mean() == pytest.approx(1.645 * sigma, rel=0.03)


def test_a_nonlinear_potential_s_fixed_points_are_searched_from_the_inferred_states(small_run,
                                                                                     tmp_path):
    config = pyrolf.Config(data=str(small_run.folder / "data.h5"), epochs=1, batch_size=16,
                           samples=2, potential="anharmonic", **TINY)
    pyrolf.fit(load_config_data(config), config, run_dir=tmp_path / "run", progress=False)
    report = pyrolf.pipeline.infer_run(tmp_path / "run", samples=2, progress=False)
    found = report["fixed_points"]
    # the origin and 255 of the 24 trials × 12 bins of posterior-mean positions
    assert found["method"].startswith("search") and found["starts"] == 256
    assert found["reached"] == sum(point["searches"] for point in found["points"]) > 0
    potential = load_run(tmp_path / "run")[0].prior.dynamics.potential.double()
    for point in found["points"]:  # each is where the learned force vanishes
        at = torch.tensor(point["position"], dtype=torch.float64)
        assert force(potential, at).norm() <= found["tolerance"]
    on_disk = json.loads((tmp_path / "run" / "dynamics.json").read_text())["fixed_points"]
    assert on_disk == found
    # the modes are of the step at a minimum of the potential, whose position is given
    at = torch.tensor(report["linearised_position"], dtype=torch.float64)
    assert at.shape == (config.latent_dim,) and force(potential, at).norm() < 1e-4
    # new trials leave the run's description of its dynamics as it is
    written = {name: (tmp_path / "run" / name).read_bytes()
               for name in ("dynamics.json", "spectrum.png")}
    again = pyrolf.pipeline.infer_run(tmp_path / "run", data=str(small_run.folder / "data.h5"),
                                      samples=2, out=tmp_path / "new.nc", progress=False)
    assert not again["dynamics"] and "fixed_points" not in again
    assert (tmp_path / "new.nc").exists()
    for name, content in written.items():
        assert (tmp_path / "run" / name).read_bytes() == content, name


@pytest.mark.parametrize("draws_per_pass", [7, 64])
def test_the_group_by_group_reduction_is_that_of_all_draws_at_once(small_run, draws_per_pass):
    """Several passes per trial (7 rows a pass) or several trials per pass (64): the summary is
    the mean and the quantiles of each trial's draws held all at once."""
    flow, _, data = load_run(small_run.path)
    inputs, samples = trial_inputs(data, np.arange(9)), 20
    pyro.set_rng_seed(5)
    summary = posterior_summary(flow, inputs, data.n_bins, samples, draws_per_pass)
    pyro.set_rng_seed(5)
    draws = {name: [[] for _ in range(9)] for name in ("z", "v", "rates")}
    for trials, (z, v), log_rates in posterior_passes(flow, inputs, data.n_bins, samples,
                                                      draws_per_pass):
        for row, trial in enumerate(range(9)[trials]):
            for name, value in zip(draws, (z, v, log_rates.exp())):
                draws[name][trial].append(value[row])
    held = {name: torch.stack([torch.cat(d) for d in per_trial]).detach().numpy()
            for name, per_trial in draws.items()}
    assert held["z"].shape == (9, samples, data.n_bins, 8)
    dynamics = flow.prior.dynamics
    z, v = (torch.as_tensor(held[name]) for name in ("z", "v"))
    keep, step = 1 - float(dynamics.damping.detach()), float(dynamics.step.detach())
    with torch.no_grad():
        pull = force(dynamics.potential, z[:, :, :-1])
    held["inputs"] = torch.cat([torch.zeros_like(v[:, :, :1]),
                                v[:, :, 1:] - keep * (v[:, :, :-1] + step * pull)], 2).numpy()
    for name, values in held.items():
        np.testing.assert_allclose(summary[name], values.mean(1), rtol=1e-4, atol=1e-5)
        lower, upper = np.quantile(values, [0.05, 0.95], axis=1)
        np.testing.assert_allclose(summary[f"{name}_lower"], lower, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(summary[f"{name}_upper"], upper, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("n_draws", [1, 2, 20, 101])
def test_draws_reduced_where_they_lie_equal_the_hosts_reduction(n_draws):
    """Sorted and interpolated by torch (as on a GPU, here on the CPU) the mean and bounds are
    numpy's to float32 rounding; with a NaN draw the host's reduction (which skips it) runs."""
    draws = torch.distributions.Gamma(0.5, 1.0).sample((3, n_draws, 4, 5))
    for on_device, host in zip(reduce_draws(draws, on_device=True), reduce_draws(draws)):
        np.testing.assert_allclose(on_device, host, rtol=1e-6, atol=1e-7)
    draws[0, 0, 0, 0] = float("nan")
    for on_device, host in zip(reduce_draws(draws, on_device=True), reduce_draws(draws)):
        np.testing.assert_array_equal(on_device, host)
    assert n_draws == 1 or not np.isnan(reduce_draws(draws)[1][0, 0, 0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_on_a_gpu_draws_are_reduced_there_as_on_the_host():
    draws = torch.distributions.Gamma(0.5, 1.0).sample((3, 100, 45, 16))
    for gpu, host in zip(reduce_draws(draws.cuda()), reduce_draws(draws)):
        np.testing.assert_allclose(gpu, host, rtol=1e-5, atol=1e-6)


def test_inferred_inputs_follow_the_drift():
    """``v_t - mean(z_{t-1}, v_{t-1})``: zero along the deterministic flow, the innovation
    otherwise."""
    torch.manual_seed(2)
    dynamics = build_flow(pyrolf.Config(**TINY), 4, 3).prior.dynamics
    z0, v0, kicks = torch.randn(3, 8), torch.randn(3, 8), torch.randn(3, 6, 8)
    with torch.no_grad():
        z, v = dynamics.integrate(z0, v0, kicks)
        inputs = inferred_inputs(dynamics, z, v)
    torch.testing.assert_close(inputs[:, 1:], kicks, rtol=1e-4, atol=1e-5)
    assert (inputs[:, 0] == 0).all()


def test_a_file_of_some_trials_gets_the_rates_the_run_gives_them(small_run, tmp_path,
                                                                  monkeypatch, capsys):
    """The trials of a file holding some of the training file's trials, with all neurons or only
    the held-in ones, get the rates (all neurons) that inferring the run's own data gives them."""
    samples, picked = 200, [5, 20, 17, 9]  # conditions 0, 3, 2, 1
    data = small_run.data
    own = pyrolf.infer(small_run.path, samples=samples, progress=False)
    assert own.attrs["weights_epoch"] == json.loads(
        (small_run.path / "metrics.json").read_text())["weights_epoch"]
    files = {"all": tmp_path / "some.npz", "held_in": tmp_path / "some_heldin.h5"}
    save_spike_file(files["all"], dataclasses.replace(
        data, spikes=data.spikes[picked], rates=data.rates[picked],
        conditions=data.conditions[picked], extra={}))
    with h5py.File(files["held_in"], "w") as file:
        file.create_dataset("spikes", data=data.spikes[picked][..., data.heldin].astype(np.int64))
    spread = (own["rates_upper"] - own["rates_lower"]).values[picked] / 3.29
    noise = spread * math.sqrt(2 / samples)
    for kind, path in files.items():
        out = tmp_path / f"{kind}.nc"
        code, _, err = run_cli(["infer", small_run.path, "--data", path, "--samples", samples,
                                "--out", out, "--quiet"], monkeypatch, capsys)
        assert code == 0, err
        # --quiet: no progress bar; the reading of the held-in neurons noted
        assert err == ("" if kind == "all" else "note: the data's 8 neurons are read as the run's "
                       "8 held-in ones (in the run order); the held-out ones' rates are inferred "
                       "from them\n"), err
        new = xr.open_dataset(out)
        assert new.attrs["source"] == str(path)
        np.testing.assert_array_equal(new["trial"], np.arange(4))
        assert set(new["split"].values) == {"new"}
        np.testing.assert_array_equal(new["heldout"], data.heldout)
        rates = new["rates"].values
        assert rates.shape == (4, data.n_bins, data.n_neurons)
        assert np.all(np.abs(rates - own["rates"].values[picked]) <= 6 * noise), kind
        # trial by trial: each is nearer its own trial's rates than any other picked trial's (one
        # trial per condition: trials of a condition share their true rates)
        distance = np.abs(rates[:, None] - own["rates"].values[picked][None]).mean((2, 3))
        np.testing.assert_array_equal(distance.argmin(1), np.arange(4))


def test_new_trials_that_flag_other_neurons_held_out_are_read_with_the_run_s_and_told(
        small_run, capsys):
    """The run's held-out flags decide what the encoder reads; new trials flagging others were
    read so without a word (an API walkthrough)."""
    data = small_run.data
    trials = dataclasses.replace(data, splits={"test": np.arange(4)})
    pyrolf.infer(small_run.path, data=trials, samples=2, progress=False)
    assert "held out than the run" not in capsys.readouterr().err
    flipped = dataclasses.replace(trials, heldout=~data.heldout)
    inferred = pyrolf.infer(small_run.path, data=flipped, samples=2, progress=False)
    assert (f"flags other neurons as held out than the run: the run's {int(data.heldout.sum())} "
            "are held out") in capsys.readouterr().err
    np.testing.assert_array_equal(inferred["heldout"], data.heldout)


def test_new_trials_lacking_held_in_neurons_are_named_and_refused_past_half(small_run, capsys):
    """Neurons NaN throughout new trials (given by position, no unit ids) are ones the data
    lack: named in a note and filled; lacking more than half the held-in ones is refused in one
    line naming them."""
    data = small_run.data
    heldin, heldout = np.flatnonzero(data.heldin), np.flatnonzero(data.heldout)
    lost = data.spikes[:6].copy()
    lost[..., [heldin[1], heldout[0]]] = np.nan
    with pytest.raises(DataError, match="`conditions` has shape \\(24,\\) but there are 6 "
                                        "trials; give one label per trial"):
        pyrolf.infer(small_run.path, data=dataclasses.replace(data, spikes=lost, rates=None),
                     samples=2, progress=False)
    data = dataclasses.replace(data, rates=None, conditions=None)
    capsys.readouterr()
    inferred = pyrolf.infer(small_run.path, data=dataclasses.replace(data, spikes=lost),
                            samples=2, progress=False)
    err = capsys.readouterr().err
    assert (f"the data lack 1 of the run's 8 held-in units (neurons (from 0) {heldin[1]}): what "
            "the encoder reads of them is filled") in err
    assert f"they lack held-out neurons (from 0) {heldout[0]} too" in err
    assert not inferred["in_data"].values[[heldin[1], heldout[0]]].any()
    # data of the held-in neurons alone are named by their own columns, not the run's numbers
    columns = lost[..., heldin]
    pyrolf.infer(small_run.path, data=dataclasses.replace(
        data, spikes=columns, heldout=np.zeros(len(heldin), bool)), samples=2, progress=False)
    assert ("the data lack 1 of the run's 8 held-in units (the data's columns (from 0) 1)"
            in capsys.readouterr().err)
    lost[..., heldin[:5]] = np.nan
    with pytest.raises(DataError, match=f"the data hold 3 of the run's 8 held-in units \\(they "
                                        f"lack neurons \\(from 0\\) {heldin[0]}, {heldin[1]}"):
        pyrolf.infer(small_run.path, data=dataclasses.replace(data, spikes=lost), samples=2,
                     progress=False)


def run_folder_untouched(run, args, fragments, monkeypatch, capsys):
    before = folder_state(run)
    code, _, err = run_cli(["infer", run, *args], monkeypatch, capsys)
    assert_one_line_error(code, err, *fragments)
    assert folder_state(run) == before


def test_refusals_are_one_line_and_leave_the_run_folder_as_it_was(small_run, tmp_path,
                                                                   monkeypatch, capsys):
    run = small_run.path
    seven = tmp_path / "seven.npz"
    np.savez(seven, spikes=small_run.data.spikes[..., :7].astype(int))
    (tmp_path / "a_file").write_text("")
    cases = [
        ([], ["no run folder"], tmp_path / "nothing"),
        (["--data", seven], ["7 neurons", "10", "8 held in"], run),
        (["--samples", "0"], ["--samples", "at least 1"], run),
        (["--out", tmp_path / "missing" / "x.nc"], ["--out", "does not exist"], run),
        (["--out", tmp_path / "a_file" / "x.nc"], ["--out", "does not exist"], run),
        (["--out", tmp_path], ["--out", "is a folder"], run),
        (["--out", tmp_path / ("a" * 300 + ".nc")],
         ["--out", "a name of 303 bytes is longer than a file system takes (255)"], run),
    ]
    for args, fragments, folder in cases:
        if folder.exists():
            run_folder_untouched(folder, args, fragments, monkeypatch, capsys)
        else:
            code, _, err = run_cli(["infer", folder, *args], monkeypatch, capsys)
            assert_one_line_error(code, err, *fragments)
            assert not folder.exists()
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    run_folder_untouched(run, ["--device", "cuda"], ["no GPU"], monkeypatch, capsys)


def test_a_write_that_fails_leaves_the_run_folder_as_it_was(small_run, monkeypatch, capsys):
    def disk_full(path, data):
        with open(path, "wb") as handle:
            handle.write(bytes(data)[:100])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", disk_full)
    run_folder_untouched(small_run.path, ["--samples", "2", "--quiet"],
                         ["inferred.nc: cannot be written (No space left on device)"],
                         monkeypatch, capsys)


def test_the_kicked_rotation_is_autonomous_but_at_its_pulse():
    from pyrolf.data.pulses import kicked_rotation_dataset

    data = kicked_rotation_dataset(seed=1, n_trials=20, period=8.0, decay=0.9, kick=2.0)
    x, pulses = data.extra["latents"].astype(np.float64), data.extra["pulse_bins"]
    turn = 2 * np.pi / 8
    step = 0.9 * np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    jumps = np.linalg.norm(x[:, 1:] - x[:, :-1] @ step.T, axis=-1)
    np.testing.assert_allclose(jumps[np.arange(20), pulses - 1], 2.0, rtol=1e-5)
    jumps[np.arange(20), pulses - 1] = 0
    assert jumps.max() < 1e-5


def test_pulse_hit_share_by_hand():
    from pyrolf.data.pulses import pulse_hit_share

    inputs = np.zeros((3, 10, 2))
    inputs[0, 4, 1], inputs[1, 9, 0], inputs[2, 1, 0] = 1.0, -3.0, 2.0  # peaks at 4, 9, 1
    assert pulse_hit_share(inputs, np.array([6, 6, 1])) == pytest.approx(2 / 3)


def test_inferred_inputs_peak_at_unobserved_pulses():
    """A short fit of a kicked rotation: the largest inferred input of most test trials lies
    within 2 bins of the kick (a fixed bin would hit about 1 trial in 8). The full-size case,
    benchmarks/input_pulses.py, hits 0.95 (README)."""
    from pyrolf.data.pulses import kicked_rotation_dataset, pulse_hit_share

    data = kicked_rotation_dataset(seed=0, n_trials=200, n_bins=40)
    config = pyrolf.Config(epochs=30, latent_dim=8, encoder_hidden=32, decoder_width=32,
                           decoder_feedforward=64, batch_size=32, kl_warmup=10, eval_every=10)
    result = pyrolf.fit(data, config, progress=False)
    inferred = pyrolf.infer(result, samples=20)
    assert inferred.attrs["weights"] == "best.pt"  # the weights a fit without a folder scored
    assert inferred.attrs["weights_epoch"] == result.state.best_epoch > 0
    test = data.splits["test"]
    assert pulse_hit_share(inferred["inputs"].values[test], data.extra["pulse_bins"][test]) > 0.4


def test_trials_table_columns_become_trial_coordinates_netcdf_can_hold():
    """Numbers and flags as they are, durations in seconds, text (a missing value and bytes
    included) as text; a column of lists and one named like a coordinate of the Dataset are left
    out."""
    data = lorenz_dataset(seed=0, n_conditions=2, trials_per_condition=2)
    table = {"rt": np.array([0.3, np.nan, 0.5, 0.4]), "correct": np.array([True, False] * 2),
             "onset": np.array([250, 300, 275, 260], dtype="timedelta64[ms]"),
             "target": np.array(["left", None, "up", "left"], dtype=object),
             "path": np.array([[1, 2], [3], [4], [5, 6]], dtype=object),
             "split": np.array(["a", "b", "c", "d"]), "z": np.zeros(4),
             "cue": np.array([b"go", b"stop", b"go", b"\xc3\xa9"])}  # (as h5py, MATLAB save)
    coords = trial_coords(dataclasses.replace(data, extra={**data.extra, "trial_table": table}))
    np.testing.assert_array_equal(coords["rt"][1], table["rt"])
    np.testing.assert_array_equal(coords["correct"][1], table["correct"])
    np.testing.assert_allclose(coords["onset"][1], [0.25, 0.3, 0.275, 0.26])
    np.testing.assert_array_equal(coords["target"][1], ["left", "", "up", "left"])  # (no "None")
    np.testing.assert_array_equal(coords["cue"][1], ["go", "stop", "go", "é"])  # (no "b'go'")
    assert "path" not in coords and "z" not in coords
    assert list(coords["split"][1]) != list(table["split"])  # the data's own splits


def test_a_file_size_limit_met_in_inferred_nc_is_one_line_and_no_crash(small_run, tmp_path):
    """HDF5 writing past the limit (a full disk alike) failed in its close, and the process
    crashed at exit, a segmentation fault after the error line."""
    run = shutil.copytree(small_run.path, tmp_path / "run")

    def limited():
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    done = subprocess.run([sys.executable, "-c", "from pyrolf.cli.main import main; main()",
                           "infer", str(run), "--samples", "20", "--quiet"], capture_output=True,
                          text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                          preexec_fn=limited)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        f"error: {run / 'inferred.nc'}: cannot be written (File too large) and is as it was "
        "(no file is left half written); free space or mend the folder and run the command "
        "again"]
    assert not (run / "inferred.nc").exists() and not list(run.glob("*.partial"))


def test_a_folder_where_inferred_nc_goes_is_named_as_such(small_run, tmp_path, monkeypatch,
                                                          capsys):
    run = shutil.copytree(small_run.path, tmp_path / "run")
    (run / "inferred.nc").mkdir()
    code, _, err = run_cli(["infer", run, "--quiet"], monkeypatch, capsys)
    assert_one_line_error(code, err, f"{run / 'inferred.nc'}, where infer writes, is a folder; "
                                     "move it away or give --out FILE")
    assert not (run / "dynamics.json").exists()
    (run / "inferred.nc").rmdir()
    monkeypatch.setattr("os.access", lambda path, mode: not mode & os.W_OK)  # (as not root)
    code, _, err = run_cli(["infer", run, "--quiet"], monkeypatch, capsys)
    assert_one_line_error(code, err, f"the run folder {run}, where infer writes inferred.nc, is "
                                     "not writable; give --out FILE")


@pytest.mark.parametrize("command, name, advice", [
    ("evaluate", "metrics.json", "evaluate the copy"),
    ("diagnose", "diagnostics.json", "diagnose the copy")])
def test_a_read_only_run_folder_is_said_before_the_data_are_read(command, name, advice,
                                                                 small_run, tmp_path,
                                                                 monkeypatch, capsys):
    run = shutil.copytree(small_run.path, tmp_path / "run")
    before = {path.name: path.read_bytes() for path in run.iterdir() if path.is_file()}
    monkeypatch.setattr("os.access", lambda path, mode: not mode & os.W_OK)  # (as not root)
    for step in ("inferred", "diagnosis", "training"):  # (infer, diagnose, evaluate)
        monkeypatch.setattr(f"pyrolf.pipeline.{step}._load_run",
                            lambda *args: pytest.fail("data read"))
    code, _, err = run_cli([command, run, "--quiet"], monkeypatch, capsys)
    assert_one_line_error(code, err, f"the run folder {run}, where {command} writes {name}, is "
                                     f"not writable; copy the run folder somewhere writable and "
                                     f"{advice}")
    assert {path.name: path.read_bytes() for path in run.iterdir() if path.is_file()} == before


def test_an_out_file_named_as_no_netcdf_is_noted(small_run, tmp_path, monkeypatch, capsys):
    run = shutil.copytree(small_run.path, tmp_path / "run")  # (infer writes dynamics.json)
    code, _, err = run_cli(["infer", run, "--samples", 2, "--out", tmp_path / "x.txt",
                            "--quiet"], monkeypatch, capsys)
    assert code == 0, err
    assert f"note: --out {tmp_path / 'x.txt'} is written as netCDF" in err
    assert xr.load_dataset(tmp_path / "x.txt").sizes["trial"] == small_run.data.n_trials
    code, _, err = run_cli(["infer", run, "--samples", 2, "--out", tmp_path / "x.nc",
                            "--quiet"], monkeypatch, capsys)
    assert code == 0 and "written as netCDF" not in err, err


def test_a_read_only_copy_without_its_lock_file_infers_new_trials(small_run, tmp_path,
                                                                  monkeypatch, capsys):
    """A run folder copied without hidden files, read-only (an archive): infer of new trials
    reads it unlocked, where it stopped, unable to make .lock (found by a walkthrough);
    commands that write into it still say the folder is not writable."""
    import errno

    run = shutil.copytree(small_run.path, tmp_path / "run", ignore=shutil.ignore_patterns(".*"))
    run = run.resolve()
    assert not (run / ".lock").exists()
    new = tmp_path / "new.npz"
    np.savez(new, spikes=small_run.data.spikes.astype(int))
    opened = os.open

    def read_only(path, flags, *args):
        if flags & os.O_CREAT:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return opened(path, flags, *args)

    accessed = os.access

    def run_read_only(path, mode):  # (as not root)
        return accessed(path, mode) and not (mode & os.W_OK and Path(path).resolve() == run)

    monkeypatch.setattr("pyrolf.runs.os.open", read_only)
    monkeypatch.setattr("os.access", run_read_only)
    code, _, err = run_cli(["infer", run, "--samples", 2, "--data", new, "--out",
                            tmp_path / "new.nc"], monkeypatch, capsys)
    assert code == 0, err
    assert xr.load_dataset(tmp_path / "new.nc").sizes["trial"] == small_run.data.n_trials
    # into the folder itself: nothing is read unlocked, the folder is said to be read-only
    code, _, err = run_cli(["infer", run, "--samples", 2, "--data", new], monkeypatch, capsys)
    assert_one_line_error(code, err, f"the run folder {run}, where infer writes inferred.nc, is "
                                     "not writable")
    code, _, err = run_cli(["evaluate", run, "--quiet"], monkeypatch, capsys)
    assert_one_line_error(code, err, f"the run folder {run}, where evaluate writes metrics.json, "
                                     "is not writable")
    # its own trials to --out elsewhere: the dynamics would go into it, said before any work
    code, _, err = run_cli(["infer", run, "--samples", 2, "--out", tmp_path / "own.nc"],
                           monkeypatch, capsys)
    assert_one_line_error(code, err, f"the run folder {run}, where infer writes dynamics.json, "
                                     "is not writable; infer into a copy of the run folder, "
                                     "or give --data (which write no dynamics)")  # (one session)
    assert not (tmp_path / "own.nc").exists()
    assert not (run / ".lock").exists()


def test_diagnose_whose_draws_cannot_be_written_leaves_no_figure_of_them(small_run, tmp_path,
                                                                         monkeypatch, capsys):
    run = shutil.copytree(small_run.path, tmp_path / "run")
    figures = {path.name: path.read_bytes() for path in run.glob("*.png")}

    def disk_full(data, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("pyrolf.diagnostics.report.write_netcdf", disk_full)
    code, _, err = run_cli(["diagnose", run, "--samples", "25", "--quiet"], monkeypatch, capsys)
    assert_one_line_error(code, err, "posterior.nc: cannot be written (No space left on device)")
    assert {path.name: path.read_bytes() for path in run.glob("*.png")} == figures


def test_a_spike_file_that_gives_its_bin_width_is_scored_and_inferred_in_seconds(
        tmp_path, monkeypatch, capsys):
    """A binned spike file with `bin_size_s` (and conditions) gets psth_r2, which needs the bin
    width to smooth its PSTHs, and inferred.nc's time in seconds; without it neither."""
    data = lorenz_dataset(seed=3, n_conditions=4, trials_per_condition=6, n_bins=12, n_neurons=10,
                          n_heldout=2, mean_rate=0.5)
    for name, bin_size in (("plain", None), ("binned", 0.02)):
        save_spike_file(tmp_path / f"{name}.h5", dataclasses.replace(data, bin_size=bin_size))
        run = tmp_path / name
        code, _, err = run_cli(["fit", "--data", tmp_path / f"{name}.h5", "--out", run,
                                "--epochs", "2", "--latent-dim", "8", "--batch-size", "32",
                                "--quiet"], monkeypatch, capsys)
        assert code == 0, err
        code, _, err = run_cli(["infer", run, "--samples", "2", "--quiet"], monkeypatch, capsys)
        assert code == 0, err
        metrics = json.loads((run / "metrics.json").read_text())
        inferred = xr.open_dataset(run / "inferred.nc")
        if bin_size:
            assert math.isfinite(metrics["psth_r2"]) and metrics["psth_r2"] <= 1
            assert inferred["time"].attrs["units"] == "s" and inferred.attrs["bin_size_s"] == 0.02
            np.testing.assert_allclose(inferred["time"], 0.02 * np.arange(12))
        else:
            assert "psth_r2" not in metrics and inferred["time"].attrs["units"] == "bin"
            assert math.isnan(inferred.attrs["bin_size_s"])


def test_windows_of_a_recording_fitted_with_forward_bins_are_merged_by_their_observed_bins(
        monkeypatch):
    """Windows of 4 bins, 3 observed, at 0, 2 and 4 of an 8-bin recording: each bin is taken
    from the window whose observed part's centre is nearest (cuts 0, 2, 4, 8), never from a
    window's forward bins where another saw it (window j, bin b drawn as 1 + j + 10 b)."""
    from pyrolf.data.chop import merge
    from pyrolf.diagnostics import summary
    from pyrolf.dynamics.langevin import LangevinDynamics
    from pyrolf.dynamics.potentials import FreeParticle

    values = 1.0 + np.arange(3)[:, None] + 10.0 * np.arange(4)[None, :]
    log_rates = torch.log(torch.as_tensor(values)).reshape(3, 1, 4, 1).expand(3, 2, 4, 1)
    z = torch.zeros(3, 2, 4, 2)
    monkeypatch.setattr(summary, "posterior_passes",
                        lambda *args, **kwargs: iter([(slice(0, 3), (z, z), log_rates)]))
    flow = SimpleNamespace(prior=SimpleNamespace(
        dynamics=LangevinDynamics(FreeParticle()).double()))
    chop = {"starts": np.array([0, 2, 4]), "n_time": 8, "observed": 3}
    merged = summary.posterior_summary(flow, torch.zeros(3, 3, 1), 4, 2, chop=chop)
    np.testing.assert_allclose(merged["rates"][:, 0], [1, 11, 2, 12, 3, 13, 23, 33])
    np.testing.assert_allclose(merged["rates"], merge(values[..., None], chop["starts"], 8, 3))


def test_merged_windows_with_forward_bins_flag_only_the_forward_bins_no_window_observes():
    """By hand: the window and bin each merged bin comes from, and `forward` only where no
    window observes the bin (`>` for `>=` went unseen: a mutation audit)."""
    # 3 windows of 6 bins (4 observed + 2 forward) starting at bins 0, 3, 6 of a 12-bin series:
    # the cuts fall at the middles of the observed centres, (0 + 3 + 4) // 2 = 3 and
    # (3 + 6 + 4) // 2 = 6, so windows 0, 1, 2 give bins 0-2, 3-5 and 6-11, and only the last
    # window's forward bins (its bins 4 and 5: series bins 10 and 11) are forward.
    starts, width, observed = np.array([0, 3, 6]), 6, 4
    data = SpikeData(spikes=np.zeros((3, width, 2), np.float32), heldout=np.array([False, True]),
                     splits={"train": np.array([0, 2]), "test": np.array([1])},
                     n_forward=width - observed, bin_size=0.01,
                     extra={"chop": {"starts": starts, "n_time": 12, "start_time": 5.0,
                                     "bin_size": 0.01}})
    code = 100 * np.arange(3)[:, None] + np.arange(width)[None]        # window * 100 + bin
    windows = xr.Dataset({"x": (("trial", "time", "neuron"),
                                np.repeat(code[..., None], 2, axis=2).astype(float))},
                         coords={"split": ("trial", np.array(["train", "test", "train"])),
                                 "latent": ("latent", np.arange(1))})
    merged = merged_dataset(windows, data)
    window = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2])
    in_window = np.arange(12) - starts[window]
    np.testing.assert_array_equal(merged["window"].values, window)
    np.testing.assert_array_equal(merged["x"].values[:, 0], 100 * window + in_window)
    np.testing.assert_array_equal(merged["forward"].values, in_window >= observed)
    assert merged["forward"].values.sum() == 2
    np.testing.assert_array_equal(merged["split"].values,
                                  np.array(["train", "test", "train"])[window])
    np.testing.assert_allclose(merged["time"].values, 5.0 + 0.01 * np.arange(12))
    np.testing.assert_allclose(merged.attrs["window_start_s"], 5.0 + 0.01 * starts)


def test_a_unit_recorded_in_some_bins_is_in_the_data_and_one_recorded_in_none_is_not():
    """New trials' `in_data`: only a unit recorded in no bin is one the data lack (a unit
    missing some bins read as absent went unseen: a mutation audit)."""
    spikes = np.ones((2, 4, 4), np.float32)
    spikes[0, :2, 1] = np.nan  # held-in unit 1: not recorded in a few bins only
    spikes[..., 3] = np.nan  # held-out unit 3: recorded in no bin at all
    heldout = np.array([False, False, False, True])
    laid = new_trials(SpikeData(spikes, heldout, {"train": np.arange(2)}), heldout)
    np.testing.assert_array_equal(laid.extra["in_data"], [True, True, True, False])
    assert laid.splits.keys() == {"new"}
    np.testing.assert_array_equal(laid.spikes, spikes)  # (all the run's neurons: as they are)


def test_new_trials_from_a_file_whose_name_is_no_utf_8_are_inferred(small_run, tmp_path,
                                                                    monkeypatch, capsys):
    """A data file named under another locale (a byte that is no UTF-8) made infer end in a
    UnicodeEncodeError traceback as it wrote the file's name into inferred.nc (a file-system
    hostile test): the name is kept with that byte as \\xNN."""
    named = Path(os.fsdecode(bytes(tmp_path) + b"/day\xff.h5"))
    shutil.copy(small_run.folder / "data.h5", named)
    out = tmp_path / "new.nc"
    code, _, err = run_cli(["infer", small_run.path, "--data", named, "--out", out,
                            "--samples", "2", "--quiet"], monkeypatch, capsys)
    assert code == 0, err
    with xr.open_dataset(out) as inferred:
        assert inferred.attrs["source"] == str(tmp_path / "day") + "\\xff.h5"


def test_pulses_fall_within_the_margins_and_cover_them():
    """(A mutation audit.) Kicked at a bin drawn from ``margin .. n_bins - margin - 1``: with
    400 trials over the 16 possible bins, every one of them is drawn and none outside."""
    from pyrolf.data.pulses import kicked_rotation_dataset

    data = kicked_rotation_dataset(seed=3, n_trials=400, n_bins=26, n_neurons=6, n_heldout=2,
                                   margin=5)
    pulses = data.extra["pulse_bins"]
    assert pulses.min() >= 5 and pulses.max() <= 26 - 5 - 1
    assert set(pulses.tolist()) == set(range(5, 21))


def test_exactly_n_heldout_neurons_are_held_out():
    from pyrolf.data.pulses import kicked_rotation_dataset

    for seed in range(5):
        data = kicked_rotation_dataset(seed=seed, n_trials=10, n_bins=20, n_neurons=10,
                                       n_heldout=8, margin=3)
        assert data.heldout.dtype == bool and data.heldout.shape == (10,)
        assert data.heldout.sum() == 8


def _layout():
    spikes = np.arange(4 * 5 * 3, dtype=np.float32).reshape(4, 5, 3) % 4
    data = SpikeData(spikes, np.array([False, False, True]),
                     {"train": np.arange(2), "valid": np.array([2]), "test": np.array([3])},
                     name="one")
    return data_layout(data, {"data": "fingerprint"})


def test_a_layout_read_back_has_the_run_s_neurons():
    laid = layout_data(_layout())
    assert laid.spikes.shape == (1, 5, 3)
    assert laid.heldout.tolist() == [False, False, True]


def test_a_layout_of_another_format_is_refused():
    layout = _layout()
    layout["format"] = LAYOUT_FORMAT + 1
    with pytest.raises(ValueError, match="format"):
        layout_data(layout)


def test_a_layout_whose_flags_and_means_do_not_agree_is_refused():
    layout = _layout()
    layout["sessions"]["one"]["heldout"] = np.array([False, True])  # 2 flags, 3 neurons' means
    with pytest.raises(ValueError, match="do not agree"):
        layout_data(layout)
