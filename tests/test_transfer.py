"""A fit started from another run's weights: all of them but each neuron's read-in and read-out."""

import json

import numpy as np
import pyro
import pytest
import torch

import pyrolf
from pyrolf.config import Config, ConfigError
from pyrolf.data import lorenz_dataset, save_spike_file
from pyrolf.models import build_flow, per_neuron
from pyrolf.pipeline.training import start_from_run
from test_cli import assert_one_line_error, run_cli

SMALL = dict(latent_dim=8, channels=2, encoder_hidden=16, decoder_width=16,
             decoder_feedforward=32, samples=2, batch_size=16)


@pytest.mark.parametrize("guide", ["langevin", "meanfield"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_the_per_neuron_weights_are_the_encoders_read_in_and_the_decoders_read_out(
        guide, bidirectional):
    read_in = {"posterior.encoder.gru.weight_ih_l0"} | (
        {"posterior.encoder.gru.weight_ih_l0_reverse"} if bidirectional else set())
    assert per_neuron(Config(guide=guide, bidirectional=bidirectional, **SMALL)) == read_in | {
        "decoder.readout.weight", "decoder.readout.bias"}


@pytest.fixture(scope="module")
def source_run(spike_file, tmp_path_factory):
    run = tmp_path_factory.mktemp("source") / "run"
    config = Config(data=str(spike_file), epochs=2, eval_every=1, **SMALL)
    pyrolf.fit(pyrolf.data.load_config_data(config), config, run_dir=run, progress=False)
    return run


def test_a_fit_from_a_run_starts_with_its_weights_and_fresh_ones_per_neuron(source_run):
    config = Config(init_from=str(source_run), **SMALL)
    source = torch.load(source_run / "best.pt", weights_only=False)["flow"]
    pyro.set_rng_seed(4)
    fresh = build_flow(config, 13, 9).state_dict()  # other neurons, and more of them
    pyro.set_rng_seed(4)
    flow = build_flow(config, 13, 9)
    start_from_run(flow, config)
    started = flow.state_dict()
    own = per_neuron(config)
    for name, value in started.items():
        expected = fresh[name] if name in own else source[name]
        torch.testing.assert_close(value, expected, rtol=0, atol=0, msg=name)
    assert not torch.equal(started["prior.dynamics.potential.weight"],
                           fresh["prior.dynamics.potential.weight"])  # learned, not fresh


def test_a_run_of_other_bins_is_named_in_a_note(source_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(source_run, run)
    fitted = json.loads((run / "fitted.json").read_text())
    assert fitted["bin_size_s"] is None  # a spike file says nothing of its bins
    config = Config(init_from=str(run), **SMALL)
    # (0.1 kept as float32 is 0.1: 1.5e-9 s off, which an absolute 1e-9 called other bins)
    for theirs, ours, noted in [(None, 0.01, False), (0.02, 0.02, False), (0.02, 0.01, True),
                                (0.1, float(np.float32(0.1)), False)]:
        (run / "fitted.json").write_text(json.dumps({**fitted, "bin_size_s": theirs}))
        start_from_run(build_flow(config, 13, 9), config, ours)
        err = capsys.readouterr().err
        assert ("fitted on bins of 20 ms, these data have 10 ms" in err) == noted


def test_fit_takes_the_runs_network_settings_and_refuses_others_in_one_line(
        source_run, tmp_path, monkeypatch, capsys):
    other = tmp_path / "other.h5"
    save_spike_file(other, lorenz_dataset(seed=5, n_conditions=4, trials_per_condition=6,
                                          n_bins=12, n_neurons=13, n_heldout=3))
    run = tmp_path / "run"
    code, _, err = run_cli(["fit", "--data", other, "--init-from", source_run, "--epochs", "1",
                            "--out", run, "--quiet"], monkeypatch, capsys)
    assert code == 0, err
    saved = json.loads((run / "config.json").read_text())
    assert saved["init_from"] == str(source_run)
    assert {key: saved[key] for key in ("latent_dim", "channels", "decoder_width")} == {
        "latent_dim": 8, "channels": 2, "decoder_width": 16}  # the run's, not the preset's
    code, _, err = run_cli(["fit", "--data", other, "--init-from", source_run, "--latent-dim",
                            "16", "--out", tmp_path / "refused", "--quiet"], monkeypatch, capsys)
    assert_one_line_error(code, err, f"--init-from {source_run} was fitted with latent_dim 8 "
                          "but this fit has latent_dim 16")
    assert not (tmp_path / "refused").exists()
    code, _, err = run_cli(["fit", "--data", other, "--init-from", tmp_path / "nothing", "--out",
                            tmp_path / "refused", "--quiet"], monkeypatch, capsys)
    assert_one_line_error(code, err, "no run folder at")
    assert not (tmp_path / "refused").exists()
    with pytest.raises(ConfigError, match="fitted with latent_dim 8"):
        start_from_run(build_flow(Config(**{**SMALL, "latent_dim": 4}), 13, 10),
                       Config(init_from=str(source_run), **{**SMALL, "latent_dim": 4}))


def test_a_sweep_from_a_run_must_keep_its_network_settings(source_run, spike_file, tmp_path,
                                                           monkeypatch, capsys):
    from pyrolf.sweep.settings import sweep_settings

    args = ["sweep", "--data", spike_file, "--trials", 2, "--out", tmp_path / "sweep",
            "--config", tmp_path / "from.json"]
    (tmp_path / "from.json").write_text(json.dumps({"init_from": str(source_run)}))
    code, _, err = run_cli(args, monkeypatch, capsys)  # the default space varies latent_dim
    assert_one_line_error(code, err, "--init-from fixes the network settings", "latent_dim",
                          '"latent_dim": 8')
    assert not (tmp_path / "sweep").exists()
    monkeypatch.chdir(source_run.parent)  # a relative path, made absolute for the trials
    config = Config(data=str(spike_file), init_from=source_run.name, **SMALL)
    # the run's weights bring their step and damping: drawing others would be overwritten
    with pytest.raises(ConfigError, match="takes the run's step and damping, but the search "
                                          "space varies damping, step"):
        sweep_settings(config, 2, space={"latent_dim": 8, "decoder_width": 16})
    settings = sweep_settings(config, 2, space={"latent_dim": 8, "decoder_width": 16,
                                                "damping": 0.2, "step": 0.05})
    assert settings["config"]["init_from"] == str(source_run)


def test_a_sweeps_trial_starts_from_the_runs_weights_as_a_fit_does(source_run, spike_file,
                                                                    tmp_path, monkeypatch):
    """A trial of a sweep with init_from trained from fresh weights (found by a hostile
    walkthrough); here one trial runs in this process (Ray's calls stood in for), with a
    learning rate too small to move the weights."""
    from test_sweep import in_process_trial

    config = Config(data=str(spike_file), init_from=str(source_run), epochs=1, eval_every=1,
                    lr=1e-12, lr_final=1e-12, **SMALL)
    trial = in_process_trial(monkeypatch, config, tmp_path)
    trained = torch.load(trial / "checkpoint.pt", weights_only=False)["flow"]
    source = torch.load(source_run / "best.pt", weights_only=False)["flow"]
    own = per_neuron(config)
    for name, value in trained.items():
        if name not in own:
            torch.testing.assert_close(value, source[name], rtol=0, atol=1e-6, msg=name)


def test_a_sweep_from_a_run_of_other_network_settings_is_refused_before_ray(source_run,
                                                                             spike_file):
    from pyrolf.sweep.settings import sweep_settings

    config = Config(data=str(spike_file), init_from=str(source_run), **{**SMALL, "latent_dim": 12})
    with pytest.raises(ConfigError, match="was fitted with latent_dim 8 but this fit has "
                                          "latent_dim 12"):
        sweep_settings(config, 2, space={"latent_dim": 12})


def test_the_start_says_which_weights_it_took_and_whether_their_run_is_busy(source_run, capsys):
    from pyrolf.runs import RunFolder

    config = Config(init_from=str(source_run), **SMALL)
    epoch = torch.load(source_run / "best.pt", weights_only=False)["epoch"]
    start_from_run(build_flow(config, 13, 9), config)
    said = capsys.readouterr().err
    assert f"starting from {source_run}: epoch {epoch} of best.pt, all but the per-neuron " \
           "weights, which start fresh (decoder.readout.bias, decoder.readout.weight, " in said
    with RunFolder(source_run).locked():  # as a fit still training there holds it
        start_from_run(build_flow(config, 13, 9), config)
    assert "a process holds that run" in capsys.readouterr().err
