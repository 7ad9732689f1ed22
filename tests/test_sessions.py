"""Several sessions, their own neurons each, one shared dynamics: stacking, the training mask, a
session's view of the flow, pooled scores, and the run folder end to end."""

import json
import shutil

import numpy as np
import pyro
import pytest
import torch
import xarray as xr
from pyro.infer import Trace_ELBO

import pyrolf
from pyrolf.config import Config, ConfigError
from pyrolf.data import load_config_data
from pyrolf.data.recording_synthetic import simulate_recording, write_spike_times_npz
from pyrolf.data.sessions import session_data, session_names, stack_sessions
from pyrolf.data.spikes import DataError, SpikeData
from pyrolf.evaluation.metrics import co_bps
from pyrolf.evaluation.sessions import heldout_test_spikes, pooled_metrics
from pyrolf.inference.svi import make_batch, predict_rates
from pyrolf.models import build_flow, session_flow
from pyrolf.models.langevinflow import guide_and_model_traces
from test_cli import assert_one_line_error, run_cli

SMALL = dict(latent_dim=8, channels=2, encoder_hidden=16, decoder_width=16,
             decoder_feedforward=32, samples=3)
CUT = ["--align", "stim_on_time", "--window=-0.2,0.8"]


def counts(seed, trials, neurons, bins=12, heldout=2, **fields):
    rng = np.random.default_rng(seed)
    flags = np.zeros(neurons, bool)
    flags[-heldout:] = True
    order = rng.permutation(trials)
    splits = {"train": order[: trials - 4], "valid": order[trials - 4: trials - 2],
              "test": order[trials - 2:]}
    return SpikeData(spikes=rng.poisson(1.0, (trials, bins, neurons)).astype(np.float32),
                     heldout=flags, splits=splits, **fields)


@pytest.fixture
def stacked():
    return stack_sessions({"a": counts(0, 10, 5), "b": counts(1, 8, 7, heldout=3)})


def test_sessions_are_stacked_block_by_block_with_their_own_splits(stacked):
    a, b = session_data(stacked, "a"), session_data(stacked, "b")
    assert stacked.spikes.shape == (18, 12, 12)
    np.testing.assert_array_equal(stacked.spikes[:10, :, :5], a.spikes)
    np.testing.assert_array_equal(stacked.spikes[10:, :, 5:], b.spikes)
    assert stacked.spikes[:10, :, 5:].sum() == 0 and stacked.spikes[10:, :, :5].sum() == 0
    np.testing.assert_array_equal(stacked.heldout, np.concatenate([a.heldout, b.heldout]))
    for split in ("train", "valid", "test"):
        np.testing.assert_array_equal(stacked.splits[split],
                                      np.concatenate([a.splits[split], 10 + b.splits[split]]))
    recorded = stacked.recorded
    assert recorded[:10, :5].all() and recorded[10:, 5:].all()
    assert recorded.sum() == 10 * 5 + 8 * 7
    assert counts(0, 10, 5).recorded is None


def test_session_names_are_file_stems_made_unique():
    assert session_names(["x/a.nwb", "y/a.npz", "b.h5", "z/a.nwb"]) == ["a", "a-2", "b", "a-3"]


@pytest.mark.parametrize("sessions, fragment", [
    ({"a": counts(0, 6, 4)}, "at least two"),
    ({"a": counts(0, 6, 4), "b": counts(1, 6, 4, bins=10)}, "session b has 10 bins per trial "
                                                            "but a has 12"),
    ({"a": counts(0, 6, 4), "b": counts(1, 6, 4, n_forward=2)}, "forward bins"),
    ({"a": counts(0, 6, 4), "b": counts(1, 6, 4, bin_size=0.02)}, "bin size"),
    ({"a": counts(0, 6, 4), "b": counts(1, 6, 4, extra={"nlb": None})}, "NLB data"),
])
def test_sessions_that_cannot_share_a_model_are_refused_in_one_line(sessions, fragment):
    with pytest.raises(DataError, match=fragment) as error:
        stack_sessions(sessions)
    assert "\n" not in str(error.value)


def test_a_training_batch_scores_only_the_neurons_of_each_trials_session(stacked):
    spikes = torch.as_tensor(stacked.spikes)
    recorded = torch.as_tensor(stacked.recorded)
    heldin = torch.as_tensor(stacked.heldin)
    batch = make_batch(spikes, heldin, 0, cd_rate=0.0, recorded=recorded)
    np.testing.assert_array_equal(batch.mask.numpy(),
                                  np.broadcast_to(stacked.recorded[:, None], spikes.shape))
    torch.manual_seed(0)
    dropped = make_batch(spikes, heldin, 0, cd_rate=0.5, recorded=recorded)
    assert not dropped.mask[~np.broadcast_to(stacked.recorded[:, None], spikes.shape)].any()
    assert dropped.mask[:, :, ~stacked.heldin].float().mean() < 0.5  # dropout still picks


def test_trials_of_one_session_teach_nothing_to_the_other_sessions_read_out(stacked):
    pyro.set_rng_seed(0)
    flow = build_flow(Config(**SMALL), stacked.n_neurons, stacked.n_heldin)
    only_a = torch.as_tensor(stacked.spikes[:10])
    readout = flow.decoder.readout.weight

    def gradient(recorded):
        batch = make_batch(only_a, torch.as_tensor(stacked.heldin), 0, recorded=recorded)
        flow.zero_grad()
        pyro.set_rng_seed(1)
        Trace_ELBO().differentiable_loss(flow.model, flow.guide, batch.inputs, batch.spikes,
                                         batch.mask).backward()
        return readout.grad.abs().sum(1)

    masked = gradient(torch.as_tensor(stacked.recorded[:10]))
    assert (masked[5:] == 0).all() and (masked[:5] > 0).all()
    assert (gradient(None)[5:] > 0).all()  # unmasked, the zeros would be scored as silence


def test_a_sessions_view_gives_the_stacked_flows_rates_and_likelihood(stacked):
    pyro.set_rng_seed(0)
    flow = build_flow(Config(**SMALL), stacked.n_neurons, stacked.n_heldin).eval()
    b = session_data(stacked, "b")
    view = session_flow(flow, stacked, "b")
    trials, neurons = stacked.extra["sessions"]["b"]["trials"], slice(5, 12)
    stacked_inputs = torch.as_tensor(stacked.spikes[trials][..., stacked.heldin])
    own_inputs = torch.as_tensor(b.spikes[..., b.heldin])
    pyro.set_rng_seed(3)
    expected = predict_rates(flow, stacked_inputs, 12, samples=4)[..., neurons]
    pyro.set_rng_seed(3)
    torch.testing.assert_close(predict_rates(view, own_inputs, 12, samples=4), expected,
                               rtol=0, atol=0)

    def log_likelihood(model, guide, inputs, spikes, mask):
        pyro.set_rng_seed(5)
        _, trace = guide_and_model_traces(model, guide, inputs, spikes, mask)
        trace.compute_log_prob()
        return trace.nodes["spikes"]["log_prob_sum"]

    recorded = torch.as_tensor(np.broadcast_to(stacked.recorded[trials][:, None],
                                               (len(trials), 12, 12)).copy())
    torch.testing.assert_close(
        log_likelihood(view.model, view.guide, own_inputs, torch.as_tensor(b.spikes), None),
        log_likelihood(flow.model, flow.guide, stacked_inputs,
                       torch.as_tensor(stacked.spikes[trials]), recorded))


def test_pooled_co_bps_is_that_of_all_sessions_held_out_neurons_together(stacked):
    rng = np.random.default_rng(2)
    rates = rng.uniform(0.5, 1.5, stacked.spikes.shape)
    test = stacked.splits["test"]
    heldout = stacked.heldout
    # every session's held-out neurons at once: the counts a trial's session lacks are NaN
    spikes = np.where(stacked.recorded[:, None], stacked.spikes, np.nan)
    expected = co_bps(rates[test][..., heldout], spikes[test][..., heldout])
    by_session = {}
    for name, session in stacked.extra["sessions"].items():
        own = session["data"]
        mine = rates[session["trials"]][..., session["neurons"]][own.splits["test"]]
        score = co_bps(mine[..., own.heldout], own.spikes[own.splits["test"]][..., own.heldout])
        by_session[name] = {"co_bps": score, "smoothing_co_bps": 2 * score}
    pooled = pooled_metrics(by_session, stacked)
    assert pooled["co_bps"] == pytest.approx(expected, rel=1e-9)
    assert pooled["smoothing_co_bps"] == pytest.approx(2 * expected, rel=1e-9)
    assert pooled["sessions"] is by_session
    assert heldout_test_spikes(session_data(stacked, "a")) > 0


@pytest.mark.parametrize("settings, fragment", [
    (dict(sessions="b.npz"), "sessions must be a list of strings"),
    (dict(sessions=["lorenz"]), "'lorenz' is not one"),
    (dict(data="mc_maze", sessions=["b.npz"]), "'mc_maze' is not one"),
    (dict(sessions=["b.npz", "b.npz"]), "session b.npz is given twice"),
])
def test_bad_sessions_settings_are_one_line(settings, fragment):
    with pytest.raises(ConfigError, match=fragment):
        Config(**{"data": "a.npz", **settings})
    assert Config.from_dict(Config(data="a.npz", sessions=("b.npz",)).to_dict()).sessions == [
        "b.npz"]


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sessions")
    return {"a": write_spike_times_npz(folder / "a.npz", simulate_recording(40, 12, seed=1)),
            "b": write_spike_times_npz(folder / "b.npz", simulate_recording(30, 9, seed=2))}


def test_stacked_recordings_are_each_read_as_alone(recordings):
    config = Config(data=str(recordings["a"]), sessions=[str(recordings["b"])],
                    align="stim_on_time", window="-0.2,0.8")
    stacked = load_config_data(config)
    for name in ("a", "b"):
        alone = load_config_data(config.replace(data=str(recordings[name]), sessions=[]))
        own = session_data(stacked, name)
        np.testing.assert_array_equal(own.spikes, alone.spikes)
        np.testing.assert_array_equal(own.heldout, alone.heldout)
        np.testing.assert_array_equal(own.splits["test"], alone.splits["test"])
        assert own.extra["trial_table"].keys() == alone.extra["trial_table"].keys()
        np.testing.assert_array_equal(own.extra["trial_table"]["outcome"],
                                      alone.extra["trial_table"]["outcome"])


def test_a_run_of_two_sessions_fits_resumes_scores_infers_and_diagnoses_each(
        recordings, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    config = tmp_path / "small.json"
    config.write_text(json.dumps({**SMALL, "eval_every": 1}))
    code, out, err = run_cli(["fit", "--data", recordings["a"], "--data", recordings["b"], *CUT,
                              "--epochs", "2", "--config", config, "--out", run, "--quiet"],
                             monkeypatch, capsys)
    assert code == 0, err
    assert "session a: co_bps=" in out and "session b: co_bps=" in out
    saved = json.loads((run / "config.json").read_text())
    assert saved["sessions"] == [str(recordings["b"])]
    assert [entry["path"] for entry in json.loads((run / "source.json").read_text())[
        "sessions"]] == [str(recordings["b"])]
    code, _, err = run_cli(["fit", "--resume", run, "--epochs", "3", "--quiet"], monkeypatch,
                           capsys)
    assert code == 0, err
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"] == 3 and set(metrics["sessions"]) == {"a", "b"}
    stacked = load_config_data(Config.from_dict(saved))
    spikes = {name: heldout_test_spikes(session_data(stacked, name)) for name in ("a", "b")}
    assert metrics["co_bps"] == pytest.approx(sum(
        spikes[name] * metrics["sessions"][name]["co_bps"] for name in spikes) / sum(
        spikes.values()))
    assert len(metrics["sessions"]["b"]["co_bps_per_neuron"]) == session_data(
        stacked, "b").heldout.sum()

    code, out, err = run_cli(["infer", run, "--samples", "4", "--quiet"], monkeypatch, capsys)
    assert code == 0, err
    assert "inferred 70 trials of 2 sessions" in out
    own = {name: xr.open_dataset(run / f"inferred-{name}.nc") for name in ("a", "b")}
    assert own["a"].sizes["neuron"] == 12 and own["b"].sizes["neuron"] == 9
    assert own["b"].sizes["trial"] == 30 and "outcome" in own["b"].coords
    assert own["b"].attrs["session"] == "b"
    assert not (run / "inferred.nc").exists()

    code, _, err = run_cli(["infer", run, "--data", recordings["b"], "--quiet"], monkeypatch,
                           capsys)
    assert_one_line_error(code, err, "fitted to the sessions a, b; give --session NAME")
    again = tmp_path / "b-again.nc"
    code, _, err = run_cli(["infer", run, "--data", recordings["b"], "--session", "b",
                            "--samples", "4", "--out", again, "--quiet"], monkeypatch, capsys)
    assert code == 0, err
    with xr.open_dataset(again) as anew:  # the session's own file, read anew: the same posterior
        np.testing.assert_array_equal(anew["rates"].values, own["b"]["rates"].values)
    for dataset in own.values():
        dataset.close()

    code, _, err = run_cli(["diagnose", run, "--samples", "25", "--quiet"], monkeypatch, capsys)
    assert_one_line_error(code, err, "give --session NAME")
    code, _, err = run_cli(["diagnose", run, "--session", "c", "--quiet"], monkeypatch, capsys)
    assert_one_line_error(code, err, "no session 'c'; the run's sessions are a, b")
    code, _, err = run_cli(["diagnose", run, "--session", "b", "--samples", "25", "--trials",
                            "3", "--quiet"], monkeypatch, capsys)
    assert code == 0, err
    diagnostics = json.loads((run / "diagnostics.json").read_text())
    assert diagnostics["session"] == "b"
    with xr.open_dataset(run / "posterior.nc", group="posterior_predictive") as predictive:
        assert predictive.sizes["neuron"] == 9

    moved = tmp_path / "moved.npz"
    shutil.move(recordings["b"], moved)
    try:
        code, _, err = run_cli(["evaluate", run], monkeypatch, capsys)
        assert_one_line_error(code, err, f"{recordings['b']}, a data file of {run}, is missing",
                              '"sessions"')
    finally:
        shutil.move(moved, recordings["b"])


def test_a_run_of_one_session_refuses_a_session_name(spike_file, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    code, _, err = run_cli(["fit", "--data", spike_file, "--epochs", "1", "--latent-dim", "8",
                            "--out", run, "--quiet"], monkeypatch, capsys)
    assert code == 0, err
    code, _, err = run_cli(["infer", run, "--session", "a", "--quiet"], monkeypatch, capsys)
    assert_one_line_error(code, err, "fitted as one session; leave out --session")



def test_a_sweep_of_sessions_gives_its_trials_absolute_paths(recordings, monkeypatch):
    from pyrolf.sweep.settings import sweep_settings

    monkeypatch.chdir(recordings["b"].parent)  # trials run in folders of their own
    settings = sweep_settings(Config(data="a.npz", sessions=["b.npz"]), 2)
    assert settings["config"]["sessions"] == [str(recordings["b"])]
    assert settings["config"]["data"] == str(recordings["a"])


def test_continuous_sessions_are_each_merged_back_into_their_own_series(tmp_path):
    files = [write_spike_times_npz(tmp_path / f"{name}.npz", simulate_recording(
        None, units, seed=seed, duration_s=seconds))
        for name, units, seed, seconds in (("x", 10, 3, 24.0), ("y", 7, 4, 18.0))]
    config = Config(data=str(files[0]), sessions=[str(files[1])], epochs=1, **SMALL)
    stacked = load_config_data(config)
    result = pyrolf.fit(stacked, config, progress=False)
    inferred = pyrolf.infer(result, samples=2, progress=False)
    assert set(inferred) == {"x", "y"}
    for name, seconds, units in (("x", 24.0, 10), ("y", 18.0, 7)):
        plan = session_data(stacked, name).extra["chop"]
        assert inferred[name].sizes["time"] == plan["n_time"]
        assert abs(plan["n_time"] * plan["bin_size"] - seconds) < 0.05  # the whole recording
        assert inferred[name].sizes["neuron"] == units
        assert inferred[name].attrs["session"] == name
