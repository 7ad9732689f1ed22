"""Several sessions, their own neurons each, one shared dynamics: gathering, the batches, a
session's view of the flow, pooled scores, and the run folder end to end."""

import json
import math
import shutil

import numpy as np
import pyro
import pytest
import torch
import xarray as xr
from pyro.infer import Trace_ELBO

import pyrolf
from pyrolf.config import Config, ConfigError
from pyrolf.data import load_config_data, save_spike_file
from pyrolf.data.recording_synthetic import simulate_recording, write_spike_times_npz
from pyrolf.data.sessions import (Sessions, gather_sessions, session_data, session_list,
                                  session_names, shared_bin_size)
from pyrolf.data.spikes import DataError, SpikeData
from pyrolf.evaluation.metrics import co_bps
from pyrolf.evaluation.collapse import kl_per_dimension
from pyrolf.evaluation.report import model_rates
from pyrolf.evaluation.sessions import heldout_spikes, pooled, pooled_metrics
from pyrolf.inference.capture import GraphSVI
from pyrolf.inference.svi import Trainer, make_batch, predict_rates
from pyrolf.models import LangevinFlow, build_flow, session_flow
from pyrolf.pipeline import infer_run
from test_cli import assert_one_line_error, run_cli

SMALL = dict(latent_dim=8, channels=2, encoder_hidden=16, decoder_width=16,
             decoder_feedforward=32, samples=3)
CUT = ["--align", "stim_on_time", "--window=-0.2,0.8"]


def counts(seed, trials, neurons, bins=12, heldout=(-2, -1), valid=2, **fields):
    rng = np.random.default_rng(seed)
    flags = np.zeros(neurons, bool)
    flags[list(heldout)] = True
    order = rng.permutation(trials)
    splits = {"train": order[: trials - valid - 2], "valid": order[trials - valid - 2: -2],
              "test": order[-2:]}
    return SpikeData(spikes=rng.poisson(1.0, (trials, bins, neurons)).astype(np.float32),
                     heldout=flags, splits=splits, **fields)


@pytest.fixture
def two():
    return gather_sessions({"a": counts(0, 10, 5, valid=4),
                            "b": counts(1, 8, 7, heldout=(1, 4, 6))})


def laid_out(two, name, values, fill=0.0):
    """``values`` ``(trials, T, session neurons)`` of session ``name`` laid out at its columns
    among all sessions' neurons, ``fill`` elsewhere: what a flow of all sessions takes."""
    wide = np.full(values.shape[:-1] + (two.n_neurons,), fill, dtype=values.dtype)
    wide[..., two.neurons(name)] = values
    return wide


def test_sessions_keep_their_own_counts_and_lay_their_neurons_side_by_side(two):
    a, b = session_data(two, "a"), session_data(two, "b")
    assert a is two.sessions["a"] and b is two.sessions["b"]  # no copy, nothing widened
    assert two.neurons("a") == slice(0, 5) and two.neurons("b") == slice(5, 12)
    assert two.inputs("a") == slice(0, 3) and two.inputs("b") == slice(3, 7)
    assert two.n_neurons == 12 and two.n_heldin == 3 + 4
    np.testing.assert_array_equal(two.heldout, np.concatenate([a.heldout, b.heldout]))
    assert two.name == "a + b"
    with pytest.raises(DataError, match="no session 'c'; the run's sessions are a, b"):
        two.neurons("c")


def test_a_unit_to_leave_out_of_one_session_is_said_to_leave_every_session():
    """--units-where applies to every session: following the advice dropped a healthy unit of
    the same id from the other session without a word (found by a walkthrough)."""
    ids = {"extra": {"unit_ids": np.arange(100, 106)}}
    a, b = counts(0, 10, 6, **ids), counts(1, 10, 6, **ids)
    b.spikes[:, :, 1] = np.nan  # unit 101 of b recorded in no trial
    with pytest.raises(DataError, match=r"the data \(spikes\): unit 101 has no count recorded .* "
                                        r"--units-where id!=101 \(which leaves it out of every "
                                        r"session: where another session has a unit of this id, "
                                        r"leave it out of this session's file instead\)"):
        pyrolf.fit(gather_sessions({"a": a, "b": b}), Config(epochs=1), progress=False)
    with pytest.raises(DataError, match=r"--units-where id!=101$"):  # one session: as it was
        pyrolf.fit(b, Config(epochs=1), progress=False)


def test_session_names_are_file_stems_made_unique():
    assert session_names(["x/a.nwb", "y/a.npz", "b.h5", "z/a.nwb"]) == ["a", "a-2", "b", "a-3"]


@pytest.mark.parametrize("sessions, fragment", [
    ({"a": counts(0, 6, 4)}, "at least two"),
    ({"a": counts(0, 6, 4), "b": counts(1, 6, 4, bins=10)}, "session b has 10 bins per trial "
                                                            "but a has 12"),
    ({"a": counts(0, 6, 4), "b": counts(1, 6, 4, n_forward=2)}, "forward bins"),
    ({"a": counts(0, 6, 4, bin_size=0.01, extra={"unit_ids": np.arange(4)}),
      "b": counts(1, 6, 4, bin_size=0.02, extra={"unit_ids": np.arange(4)})},
     "session b has bins of 20 ms but a of 10 ms"),
    ({"a": counts(0, 6, 4), "b": counts(1, 6, 4, extra={"nlb": None})}, "NLB data"),
    ({"a": counts(0, 6, 4), "b": counts(1, 6, 5), "c": counts(0, 6, 4)},
     "sessions a and c hold the same counts"),
])
def test_sessions_that_cannot_share_a_model_are_refused_in_one_line(sessions, fragment):
    with pytest.raises(DataError, match=fragment) as error:
        gather_sessions(sessions)
    assert "\n" not in str(error.value)


def test_a_spike_file_joins_a_recording_of_any_bin_size(capsys):
    """A spike file that says no bin size (its 0.01 s is nominal) takes the recording's, with a
    note: its time is then in seconds, as the recording's."""
    recording = counts(0, 6, 4, bin_size=0.02, extra={"unit_ids": np.arange(4)})
    file = counts(1, 6, 4)
    both = gather_sessions({"file": file, "recording": recording})
    assert shared_bin_size(session_list(both)) == 0.02
    assert session_data(both, "file").bin_size == 0.02
    assert file.bin_size is None  # the data given are left as they were
    assert ("session file says no bin size: taken to be the others' 20 ms"
            in capsys.readouterr().err)
    gather_sessions({"file": file, "other": counts(2, 6, 4)})  # no bin known: nothing to say
    # 10 ms kept as float32 (0.0099999998) is 10 ms (it was refused as "10 ms but 10 ms")
    gather_sessions({"a": counts(0, 6, 4, bin_size=0.01),
                     "b": counts(1, 6, 4, bin_size=float(np.float32(0.01)))})
    assert "bin size" not in capsys.readouterr().err
    assert shared_bin_size([counts(1, 6, 4)]) is None
    # one that says its bin width (bin_size_s) must say the recording's
    said = counts(1, 6, 4, bin_size=0.01)
    with pytest.raises(DataError, match="session file has bins of 10 ms but recording of 20 ms"):
        gather_sessions({"recording": recording, "file": said})


def test_an_epoch_steps_on_each_sessions_own_trials_one_session_a_batch(two):
    config = Config(**SMALL, batch_size=3)
    trainer = Trainer(build_flow(config, two.n_neurons, two.n_heldin), two, config)
    for part, name in zip(trainer.parts, ("a", "b")):  # each session at its own width
        own = session_data(two, name)
        assert part.data is own and part.train.shape == (len(own.splits["train"]), 12,
                                                         own.n_neurons)
        np.testing.assert_array_equal(part.train.numpy(), own.spikes[own.splits["train"]])
    orders = []
    for seed in range(10):
        torch.manual_seed(seed)
        batches = trainer.batches()
        assert len(batches) == trainer.steps_per_epoch == 2 + 2  # 4 training trials each
        for part in trainer.parts:  # each training trial once
            ids = [idx for other, idx in batches if other is part]
            assert sorted(torch.cat(ids).tolist()) == list(range(len(part.train)))
            assert all(len(idx) <= 3 for idx in ids)
        orders.append(tuple(trainer.parts.index(part) for part, _ in batches))
    assert len(set(orders)) > 1  # the sessions' batches come in a random order


def test_a_sessions_view_steps_as_the_flow_of_all_sessions_on_its_laid_out_trials(two):
    pyro.set_rng_seed(0)  # no dropout: the two read counts of other shapes
    flow = build_flow(Config(**SMALL), two.n_neurons, two.n_heldin).eval()
    b = session_data(two, "b")
    view = session_flow(flow, two, "b")
    spikes = torch.as_tensor(b.spikes)
    batch = make_batch(spikes, torch.as_tensor(b.heldin), 0)
    wide_spikes = torch.as_tensor(laid_out(two, "b", b.spikes))
    scored = torch.as_tensor(laid_out(two, "b", np.ones(b.spikes.shape, bool), fill=False))
    wide = make_batch(wide_spikes, torch.as_tensor(two.heldin), 0)

    def loss_and_grads(model, guide, batch, mask):
        flow.zero_grad()
        pyro.set_rng_seed(1)
        loss = Trace_ELBO().differentiable_loss(model, guide, batch.inputs, batch.spikes, mask)
        loss.backward()
        return loss.detach(), {name: param.grad.clone() for name, param in flow.named_parameters()}

    loss, grads = loss_and_grads(view.model, view.guide, batch, batch.mask)
    wide_loss, wide_grads = loss_and_grads(flow.model, flow.guide, wide, scored)
    torch.testing.assert_close(loss, wide_loss, rtol=1e-5, atol=0)
    for name, grad in grads.items():
        torch.testing.assert_close(grad, wide_grads[name], rtol=1e-4, atol=1e-6, msg=name)
    # session b's steps teach nothing to session a's read-out rows and read-in columns
    assert (grads["decoder.readout.weight"][two.neurons("a")] == 0).all()
    assert (grads["decoder.readout.weight"][two.neurons("b")].abs().sum(1) > 0).all()
    for direction in ("", "_reverse"):
        read_in = grads[f"posterior.encoder.gru.weight_ih_l0{direction}"]
        assert (read_in[:, two.inputs("a")] == 0).all()
        assert (read_in[:, two.inputs("b")].abs().sum(0) > 0).all()


class Swapped(torch.nn.Module):
    """A guide or decoder of a user's own: not one of pyrolf's, the same computation."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, *args):
        return self.inner(*args)


def test_a_sessions_view_gives_the_flows_rates_of_its_laid_out_trials_own_networks_or_not(two):
    pyro.set_rng_seed(0)
    flow = build_flow(Config(**SMALL), two.n_neurons, two.n_heldin).eval()
    swapped = LangevinFlow(flow.prior, Swapped(flow.decoder), Swapped(flow.posterior))
    b = session_data(two, "b")
    own_inputs = torch.as_tensor(b.spikes[..., b.heldin])
    wide_inputs = torch.as_tensor(laid_out(two, "b", b.spikes)[..., two.heldin])
    pyro.set_rng_seed(3)
    expected = predict_rates(flow, wide_inputs, 12, samples=4)[..., two.neurons("b")]
    for whole, tolerance in ((flow, dict(rtol=1e-5, atol=1e-7)), (swapped, dict(rtol=0, atol=0))):
        pyro.set_rng_seed(3)  # pyrolf's networks read the session's columns and rows alone;
        # others are handed the laid-out counts, their rates picked: the very same numbers
        view = session_flow(whole, two, "b")
        torch.testing.assert_close(predict_rates(view, own_inputs, 12, samples=4), expected,
                                   **tolerance)


def test_pooled_co_bps_is_that_of_all_sessions_held_out_neurons_together(two):
    rng = np.random.default_rng(2)
    by_session, rates, spikes = {}, [], []
    for name, own in two.sessions.items():
        test = own.splits["test"]
        mine = rng.uniform(0.5, 1.5, own.spikes[test].shape)
        score = co_bps(mine[..., own.heldout], own.spikes[test][..., own.heldout])
        by_session[name] = {"co_bps": score, "smoothing_co_bps": 2 * score}
        # every session's held-out neurons at once: the counts a trial's session lacks are NaN
        rates.append(laid_out(two, name, mine, fill=1.0))
        spikes.append(laid_out(two, name, own.spikes[test].astype(float), fill=np.nan))
    heldout = two.heldout
    expected = co_bps(np.concatenate(rates)[..., heldout], np.concatenate(spikes)[..., heldout])
    pooled_scores = pooled_metrics(by_session, two)
    assert pooled_scores["co_bps"] == pytest.approx(expected, rel=1e-9)
    assert pooled_scores["smoothing_co_bps"] == pytest.approx(2 * expected, rel=1e-9)
    assert pooled_scores["sessions"] is by_session
    assert heldout_spikes(session_data(two, "a"), [0]) > 0


def test_pooling_gives_one_sessions_score_as_it_is_and_leaves_out_sessions_without_spikes():
    assert pooled({"a": 0.1234567891}, {"a": 37.0}) == 0.1234567891  # bit for bit
    assert pooled({"a": 0.2, "b": math.nan}, {"a": 10.0, "b": 0.0}) == 0.2
    assert pooled({"a": 0.2, "b": 0.4}, {"a": 10.0, "b": 30.0}) == pytest.approx(0.35)
    assert math.isnan(pooled({"a": math.nan}, {"a": 0.0}))


@pytest.fixture
def untrained(two):
    """A Trainer of the two sessions, its flow untrained."""
    config = Config(**SMALL)
    pyro.set_rng_seed(0)
    return Trainer(build_flow(config, two.n_neurons, two.n_heldin), two, config)


def test_the_validation_score_of_sessions_pools_each_sessions_own(two, untrained):
    pyro.set_rng_seed(4)
    score = untrained.validation_score()
    pyro.set_rng_seed(4)
    scores, spikes = {}, {}
    for name, own in two.sessions.items():
        valid = own.splits["valid"]
        rates = model_rates(session_flow(untrained.flow, two, name), own, valid,
                            untrained.config.samples)
        scores[name] = co_bps(rates[..., own.heldout], own.spikes[valid][..., own.heldout])
        spikes[name] = heldout_spikes(own, valid)
    assert score == pytest.approx(pooled(scores, spikes), rel=1e-12)


def test_the_validation_kl_of_sessions_is_the_mean_over_all_their_validation_trials(
        two, untrained):
    pyro.set_rng_seed(4)
    kl = untrained.validation_kl()
    pyro.set_rng_seed(4)
    total, trials = 0.0, 0
    for name, own in two.sessions.items():
        view, valid = session_flow(untrained.flow, two, name).eval(), own.splits["valid"]
        inputs = torch.as_tensor(own.spikes[valid][..., own.heldin])
        total += float(kl_per_dimension(view.model, view.guide, inputs, 12, samples=1).sum()
                       ) * len(valid)
        trials += len(valid)
    assert kl == pytest.approx(total / trials, rel=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_on_a_gpu_a_sessions_view_leaves_the_encoders_weights_where_they_are(two):
    flow = build_flow(Config(**SMALL), two.n_neurons, two.n_heldin).cuda()
    gru = flow.posterior.encoder.gru
    places = {name: value.data_ptr() for name, value in gru.named_parameters()}
    b = session_data(two, "b")
    view = session_flow(flow, two, "b")
    view.guide(torch.as_tensor(b.spikes[..., b.heldin], device="cuda"), n_bins=12)
    assert {name: value.data_ptr() for name, value in gru.named_parameters()} == places


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_on_a_gpu_sessions_train_through_their_views_with_graphs_as_without(two):
    scores, weights = [], []
    for graphs in (False, True):
        config = Config(**SMALL, epochs=4, batch_size=3, eval_every=4, device="cuda",
                        cuda_graphs=graphs)
        pyro.set_rng_seed(0)
        trainer = Trainer(build_flow(config, two.n_neurons, two.n_heldin), two,
                          config)
        start = trainer.flow.posterior.encoder.gru.weight_hh_l0.detach().clone()
        scores.append(trainer.fit(progress=False).best_score)
        weights.append({name: value.detach().cpu() for name, value in
                        trainer.flow.state_dict().items()})
    assert all(isinstance(part.svi, GraphSVI) and part.svi.recordings and not part.svi.failed
               for part in trainer.parts)
    assert scores[1] == pytest.approx(scores[0], abs=1e-3)
    assert not torch.equal(weights[1]["posterior.encoder.gru.weight_hh_l0"], start.cpu())
    for name, value in weights[0].items():  # the replayed steps trained what the eager ones did
        torch.testing.assert_close(weights[1][name], value, rtol=1e-3, atol=1e-5, msg=name)


@pytest.mark.parametrize("settings, fragment", [
    (dict(sessions="b.npz"), "sessions must be a list of strings"),
    (dict(sessions=["lorenz"]), "'lorenz' is not one"),
    (dict(data="mc_maze", sessions=["b.npz"]), "'mc_maze' is not one"),
    (dict(sessions=["b.npz", "b.npz"]), "session b.npz is given twice"),
    (dict(sessions=["b.npz", "./a.npz"]), r"session ./a.npz is given twice \(a.npz is that"),
    (dict(sessions=["b.npz"], session_names=["a", "a"]), "session_names must give 2 different"),
    (dict(sessions=["b.npz"], session_names=["a"]), "session_names must give 2 different"),
    (dict(session_names=["a"]), "give sessions too"),
])
def test_bad_sessions_settings_are_one_line(settings, fragment):
    with pytest.raises(ConfigError, match=fragment):
        Config(**{"data": "a.npz", **settings})
    assert Config.from_dict(Config(data="a.npz", sessions=("b.npz",)).to_dict()).sessions == [
        "b.npz"]


def test_one_recording_given_twice_through_a_link_is_refused(tmp_path):
    """A link (or a copy, refused by its counts) made one recording two sessions (found by a
    hostile walkthrough)."""
    (tmp_path / "a.npz").write_bytes(b"")
    (tmp_path / "link.npz").symlink_to(tmp_path / "a.npz")
    with pytest.raises(ConfigError, match="link.npz is given twice"):
        Config(data=str(tmp_path / "a.npz"), sessions=[str(tmp_path / "link.npz")])


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sessions")
    return {"a": write_spike_times_npz(folder / "a.npz", simulate_recording(40, 12, seed=1)),
            "b": write_spike_times_npz(folder / "b.npz", simulate_recording(30, 9, seed=2))}


def test_recordings_of_several_sessions_are_each_read_as_alone(recordings):
    config = Config(data=str(recordings["a"]), sessions=[str(recordings["b"])],
                    align="stim_on_time", window="-0.2,0.8")
    two = load_config_data(config)
    for name in ("a", "b"):
        alone = load_config_data(config.replace(data=str(recordings[name]), sessions=[]))
        own = session_data(two, name)
        np.testing.assert_array_equal(own.spikes, alone.spikes)
        np.testing.assert_array_equal(own.heldout, alone.heldout)
        np.testing.assert_array_equal(own.splits["test"], alone.splits["test"])
        assert own.extra["trial_table"].keys() == alone.extra["trial_table"].keys()
        np.testing.assert_array_equal(own.extra["trial_table"]["outcome"],
                                      alone.extra["trial_table"]["outcome"])


def test_among_recordings_a_spike_file_takes_none_of_the_settings_that_cut_them(
        recordings, tmp_path):
    """A spike file beside recordings refused every window and bin (found by a hostile
    walkthrough): they cut the recordings, and the file keeps its own bins."""
    binned = tmp_path / "binned.h5"
    save_spike_file(binned, counts(3, 20, 6, bins=50))
    config = Config(data=str(recordings["a"]), sessions=[str(binned)], align="stim_on_time",
                    window="-0.2,0.8", bin_size_ms=20)
    both = load_config_data(config)
    np.testing.assert_array_equal(session_data(both, "binned").spikes,
                                  load_config_data(Config(data=str(binned))).spikes)
    assert session_data(both, "a").n_bins == 50 and shared_bin_size(session_list(both)) == 0.02
    with pytest.raises(DataError, match="session binned has 50 bins per trial but a has 100"):
        load_config_data(config.replace(bin_size_ms=None))


def test_heldout_applies_to_the_sessions_that_do_not_flag_their_own(recordings, tmp_path,
                                                                     capsys):
    """--heldout beside a spike file that flags its own held-out neurons was refused, though
    it was meant for the recording (a review): it applies to the recording, the file keeps its
    flags, a note says so; where every session flags its own it applies to none, one line."""
    binned = tmp_path / "binned.h5"
    save_spike_file(binned, counts(3, 20, 6, bins=50))
    config = Config(data=str(recordings["a"]), sessions=[str(binned)], align="stim_on_time",
                    window="-0.2,0.8", bin_size_ms=20, heldout_fraction=0.5)
    both = load_config_data(config)
    alone = load_config_data(config.replace(sessions=[]))
    np.testing.assert_array_equal(session_data(both, "a").heldout, alone.heldout)
    assert alone.heldout.sum() == round(0.5 * alone.n_neurons)
    np.testing.assert_array_equal(session_data(both, "binned").heldout,
                                  load_config_data(Config(data=str(binned))).heldout)
    assert ("note: binned flags its own held-out neurons (`heldout`): --heldout 0.5 applies to "
            "the other sessions") in capsys.readouterr().err
    other = tmp_path / "other.h5"
    save_spike_file(other, counts(4, 20, 6, bins=50))
    with pytest.raises(DataError, match="every session flags its own held-out neurons"):
        load_config_data(Config(data=str(binned), sessions=[str(other)], heldout_fraction=0.5))


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
    assert saved["sessions"] == [str(recordings["b"])] and saved["session_names"] == ["a", "b"]
    assert [entry["path"] for entry in json.loads((run / "source.json").read_text())[
        "sessions"]] == [str(recordings["b"])]
    code, _, err = run_cli(["fit", "--resume", run, "--epochs", "3", "--quiet"], monkeypatch,
                           capsys)
    assert code == 0, err
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"] == 3 and set(metrics["sessions"]) == {"a", "b"}
    two = load_config_data(Config.from_dict(saved))
    spikes = {name: heldout_spikes(own, own.splits["test"])
              for name, own in two.sessions.items()}
    assert metrics["co_bps"] == pytest.approx(sum(
        spikes[name] * metrics["sessions"][name]["co_bps"] for name in spikes) / sum(
        spikes.values()))
    assert len(metrics["sessions"]["b"]["co_bps_per_neuron"]) == session_data(
        two, "b").heldout.sum()

    code, out, err = run_cli(["infer", run, "--samples", "4", "--quiet"], monkeypatch, capsys)
    assert code == 0, err
    assert "inferred 70 trials of 2 sessions" in out
    own = {name: xr.open_dataset(run / f"inferred-{name}.nc") for name in ("a", "b")}
    assert own["a"].sizes["neuron"] == 12 and own["b"].sizes["neuron"] == 9
    assert own["b"].sizes["trial"] == 30 and "outcome" in own["b"].coords
    assert own["b"].attrs["session"] == "b" and own["b"].attrs["source"] == str(recordings["b"])
    assert not (run / "inferred.nc").exists()

    code, _, err = run_cli(["infer", run, "--data", recordings["b"], "--quiet"], monkeypatch,
                           capsys)
    assert_one_line_error(code, err, "fitted to the sessions a, b; give session (--session NAME)")
    again = tmp_path / "b-again.nc"
    code, _, err = run_cli(["infer", run, "--data", recordings["b"], "--session", "b",
                            "--samples", "4", "--out", again, "--quiet"], monkeypatch, capsys)
    assert code == 0, err
    with xr.open_dataset(again) as anew:  # the session's own file, read anew: the same posterior
        np.testing.assert_array_equal(anew["rates"].values, own["b"]["rates"].values)
    for dataset in own.values():
        dataset.close()
    # another session's file is not read as b's (its units matched to b's by id)
    code, _, err = run_cli(["infer", run, "--data", recordings["a"], "--session", "b",
                            "--out", tmp_path / "a-as-b.nc", "--quiet"], monkeypatch, capsys)
    assert_one_line_error(code, err, f"{recordings['a']} is the file of the run's session a, "
                                     "not of b: its units would be read as b's; give --session a")
    copy = tmp_path / f"copy-of-a{recordings['a'].suffix}"
    shutil.copyfile(recordings["a"], copy)
    code, _, err = run_cli(["infer", run, "--data", copy, "--session", "b", "--out",
                            tmp_path / "a-as-b.nc", "--quiet"], monkeypatch, capsys)
    assert_one_line_error(code, err, "is the file of the run's session a (a copy of it), not of "
                                     "b")

    code, _, err = run_cli(["diagnose", run, "--samples", "25", "--quiet"], monkeypatch, capsys)
    assert_one_line_error(code, err, "give session (--session NAME)")
    code, _, err = run_cli(["diagnose", run, "--session", "c", "--quiet"], monkeypatch, capsys)
    assert_one_line_error(code, err, "no session 'c'; the run's sessions are a, b")
    for session in ("b", "a"):  # each session's diagnostics in a folder of its own, kept
        code, out, err = run_cli(["diagnose", run, "--session", session, "--samples", "25",
                                  "--trials", "3", "--quiet"], monkeypatch, capsys)
        assert code == 0, err
        assert f"run folder: {run / f'diagnose-{session}'}" in out
    for session in ("b", "a"):
        diagnostics = json.loads((run / f"diagnose-{session}" / "diagnostics.json").read_text())
        assert diagnostics["session"] == session
    with xr.open_dataset(run / "diagnose-b" / "posterior.nc",
                         group="posterior_predictive") as predictive:
        assert predictive.sizes["neuron"] == 9
    assert not (run / "diagnostics.json").exists()

    moved = tmp_path / "moved.npz"
    shutil.move(recordings["b"], moved)
    try:
        code, _, err = run_cli(["evaluate", run], monkeypatch, capsys)
        assert_one_line_error(code, err, f"{recordings['b']}, a data file of {run}, is missing",
                              '"sessions"')
        # followed with a file of another name: the session keeps its name (it took the stem's)
        (run / "config.json").write_text(json.dumps({**saved, "sessions": [str(moved)]}))
        code, out, err = run_cli(["evaluate", run], monkeypatch, capsys)
        assert code == 0 and "session b: co_bps=" in out, err
        assert set(json.loads((run / "metrics.json").read_text())["sessions"]) == {"a", "b"}
    finally:
        shutil.move(moved, recordings["b"])


def test_a_run_of_one_session_refuses_a_session_name(spike_file, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    code, _, err = run_cli(["fit", "--data", spike_file, "--epochs", "1", "--latent-dim", "8",
                            "--out", run, "--quiet"], monkeypatch, capsys)
    assert code == 0, err
    code, _, err = run_cli(["infer", run, "--session", "a", "--quiet"], monkeypatch, capsys)
    assert_one_line_error(code, err,
                          "the run was fitted to one session (lorenz); leave out session "
                          "(--session)")



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
    two = load_config_data(config)
    pyrolf.fit(two, config, run_dir=tmp_path / "run", progress=False)
    report = infer_run(tmp_path / "run", samples=2, progress=False)
    inferred = {name: xr.open_dataset(tmp_path / "run" / f"inferred-{name}.nc")
                for name in ("x", "y")}
    plans = [session_data(two, name).extra["chop"] for name in ("x", "y")]
    # what infer reports counts both sessions' windows and merged bins
    assert report["windows"] == report["trials"] == sum(len(plan["starts"]) for plan in plans)
    assert report["bins"] == sum(plan["n_time"] for plan in plans)
    for name, seconds, units in (("x", 24.0, 10), ("y", 18.0, 7)):
        plan = session_data(two, name).extra["chop"]
        assert inferred[name].sizes["time"] == plan["n_time"]
        assert abs(plan["n_time"] * plan["bin_size"] - seconds) < 0.05  # the whole recording
        assert inferred[name].sizes["neuron"] == units
        assert inferred[name].attrs["session"] == name


def zeros_session(neurons, heldout):
    flags = np.zeros(neurons, bool)
    flags[list(heldout)] = True
    return SpikeData(spikes=np.zeros((4, 3, neurons), np.float32), heldout=flags,
                     splits={"train": np.arange(2), "valid": np.array([2]),
                             "test": np.array([3])})


def test_each_of_three_sessions_spans_the_neurons_after_all_sessions_before_it():
    """A third session's neurons follow both before it (counting only the first went unseen:
    a mutation audit)."""
    three = Sessions({"a": zeros_session(5, [4]), "b": zeros_session(7, [0, 1]),
                      "c": zeros_session(4, [3])})
    assert [three.neurons(name) for name in "abc"] == [slice(0, 5), slice(5, 12), slice(12, 16)]
    assert [three.inputs(name) for name in "abc"] == [slice(0, 4), slice(4, 9), slice(9, 12)]
    for name, own in three.sessions.items():  # the concatenated flags put back in place
        np.testing.assert_array_equal(three.heldout[three.neurons(name)], own.heldout)


def test_heldout_spikes_count_the_observed_bins_of_the_held_out_neurons_alone():
    """What pools sessions' co-bps counts the scored spikes alone (the forward bins' counted
    went unseen: a mutation audit)."""
    spikes = np.zeros((3, 5, 3), np.float32)      # 3 trials, 4 observed + 1 forward bin
    spikes[:, :, 2] = 1.0                         # held-out neuron: 1 spike in every bin
    spikes[:, 4, 2] = 100.0                       # ... but the forward bin is never scored
    spikes[:, :, 0] = 7.0                         # held-in neuron: not counted
    spikes[1, 0, 2] = np.nan                      # an unrecorded count adds nothing
    data = SpikeData(spikes=spikes, heldout=np.array([False, False, True]),
                     splits={"train": np.array([0]), "valid": np.array([1]),
                             "test": np.array([2])}, n_forward=1)
    assert heldout_spikes(data, [0]) == 4.0
    assert heldout_spikes(data, [0, 1]) == 4.0 + 3.0


def test_infer_of_one_session_gives_its_dataset_and_writes_no_dynamics_of_the_whole_run(
        two, tmp_path):
    """(A mutation audit.) infer of one session of a run of several gives that session's
    Dataset, not a dict of one; infer_run of one session without data writes that session's
    file only, and leaves the dynamics (of every session's positions) as they are."""
    run = tmp_path / "run"
    result = pyrolf.fit(two, Config(**SMALL, epochs=1, batch_size=4, eval_every=1, kl_warmup=1),
                        progress=False, run_dir=run)
    both = pyrolf.infer(result, samples=2, progress=False)
    assert isinstance(both, dict) and set(both) == {"a", "b"}
    one = pyrolf.infer(result, samples=2, progress=False, session="b")
    assert isinstance(one, xr.Dataset) and one.attrs["session"] == "b"
    assert one.sizes["neuron"] == 7 and one.sizes["trial"] == 8
    done = infer_run(run, samples=2, progress=False, session="b", fitted_on=two)
    assert done["dynamics"] is False and "modes" not in done
    assert not (run / "dynamics.json").exists() and not (run / "inferred-a.nc").exists()
    with xr.open_dataset(run / "inferred-b.nc") as inferred:
        assert inferred.attrs["session"] == "b"
