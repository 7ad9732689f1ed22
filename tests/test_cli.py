"""Every CLI failure a user can cause ends in one clear line and a non-zero exit, no traceback."""

import json
import os
import signal
import warnings

import numpy as np
import pandas as pd
import pytest

from pyrolf.cli.main import main
from pyrolf.runs import RunFolder

TINY = ["--epochs", "2", "--latent-dim", "8", "--batch-size", "16", "--quiet"]


def run_cli(args, monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["pyrolf", *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:
        main()
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def assert_one_line_error(code, err, *fragments):
    assert code not in (0, None)
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("case, fragment", [
    ("unknown", "unknown dataset"),
    ("missing", "file not found"),
    ("corrupt", "not"),
    ("shape", "3-D"),
    ("negative", "negative"),
    ("nan", "NaN"),
    ("huge", "count of 1e+12 in one bin"),
    ("directory", "is a directory"),
])
def test_bad_data_is_one_line(case, fragment, tmp_path, monkeypatch, capsys):
    good = np.ones((4, 5, 3))
    (tmp_path / "recordings.h5").mkdir()
    data = {
        "unknown": "mc_mazee",
        "missing": tmp_path / "nowhere.h5",
        "corrupt": tmp_path / "corrupt.h5",
        "shape": write_npz(tmp_path / "flat.npz", spikes=np.ones((4, 5))),
        "negative": write_npz(tmp_path / "neg.npz", spikes=-good),
        "nan": write_npz(tmp_path / "nan.npz", spikes=np.where(good > 0, np.nan, 0)),
        "huge": write_npz(tmp_path / "huge.npz", spikes=np.where(good > 0, 1e12, 0)),
        "directory": tmp_path / "recordings.h5",
    }[case]
    (tmp_path / "corrupt.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"garbage" * 10)
    code, _, err = run_cli(["fit", "--data", data, "--out", tmp_path / "run", *TINY],
                           monkeypatch, capsys)
    assert_one_line_error(code, err, fragment)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


@pytest.mark.parametrize("args, fragment", [
    (["fit", "--device", "tpu"], "Invalid value for '--device'"),
    (["fit", "--epochs", "-3"], "Invalid value for '--epochs'"),
    (["fit", "--bogus"], "No such option '--bogus'"),
    (["fitt"], "No such command 'fitt'"),
])
def test_bad_command_line_is_one_line(args, fragment, monkeypatch, capsys, tmp_path):
    code, _, err = run_cli([*args, "--out", tmp_path / "r"] if args[0] == "fit" else args,
                           monkeypatch, capsys)
    assert code == 2
    assert_one_line_error(code, err, fragment, "--help")
    assert not (tmp_path / "r").exists()


def test_bad_setting_in_config_file(tmp_path, monkeypatch, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"latent_dim": 10, "channels": 4}))
    code, _, err = run_cli(["fit", "--config", config, "--out", tmp_path / "r"], monkeypatch,
                           capsys)
    assert_one_line_error(code, err, "not divisible")
    config.write_text("{not json")
    code, _, err = run_cli(["fit", "--config", config, "--out", tmp_path / "r"], monkeypatch,
                           capsys)
    assert_one_line_error(code, err, "not valid JSON")


def test_cuda_without_a_gpu_is_one_line(spike_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    code, _, err = run_cli(["fit", "--data", spike_file, "--device", "cuda",
                            "--out", tmp_path / "r", *TINY], monkeypatch, capsys)
    assert_one_line_error(code, err, "no GPU")


def test_a_fit_that_diverges_is_one_line_and_leaves_a_run_folder_to_resume(
        spike_file, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    code, _, err = run_cli(["fit", "--data", spike_file, "--out", run, *TINY, "--lr", "1e8"],
                           monkeypatch, capsys)
    assert_one_line_error(code, err, "the ELBO became", f"the last good checkpoint is in {run}",
                          "fit again with a lower learning rate (--lr and another --out")
    assert RunFolder(run).has(RunFolder.CHECKPOINT)  # as --resume reads it
    assert json.loads((run / "config.json").read_text())["lr"] == 1e8
    # --kl-weight, as the collapse warning advises it, reaches the settings
    code, _, err = run_cli(["fit", "--data", spike_file, "--out", tmp_path / "kl", *TINY,
                            "--kl-weight", "0.01"], monkeypatch, capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "kl" / "config.json").read_text())["kl_weight"] == 0.01
    code, _, err = run_cli(["fit", "--data", spike_file, "--out", tmp_path / "k0", *TINY,
                            "--kl-weight", "0"], monkeypatch, capsys)
    assert code == 2 and "--kl-weight" in err and not (tmp_path / "k0").exists()


def test_fit_evaluate_resume_and_refusals(spike_file, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    code, out, err = run_cli(["fit", "--data", spike_file, "--out", run, *TINY],
                             monkeypatch, capsys)
    assert code == 0, err
    metrics = json.loads((run / "metrics.json").read_text())
    assert "rates_r2" in out and np.isfinite(metrics["co_bps"])
    checkpoint = (run / "checkpoint.pt").read_bytes()

    # an existing run is never overwritten
    code, _, err = run_cli(["fit", "--data", spike_file, "--out", run, *TINY], monkeypatch, capsys)
    assert_one_line_error(code, err, "already holds a run", "--resume")
    assert (run / "checkpoint.pt").read_bytes() == checkpoint

    # evaluate recomputes the same metrics from the checkpoint, the training record kept
    (run / "metrics.json").unlink()
    code, _, err = run_cli(["evaluate", run], monkeypatch, capsys)
    assert code == 0, err
    assert "score: 100%" in err  # the progress bar of the scored trial-draws
    evaluated = json.loads((run / "metrics.json").read_text())
    assert evaluated["co_bps"] == pytest.approx(metrics["co_bps"])
    training = ("elbo", "epochs", "best_epoch", "valid_co_bps", "seconds", "seconds_per_epoch",
                "device")
    assert {key: evaluated[key] for key in training} == {key: metrics[key] for key in training}
    history = pd.read_csv(run / "history.csv")
    assert metrics["seconds"] == pytest.approx(history.seconds.sum())

    # resume continues to more epochs; its seconds are those of all epochs, before and after
    code, _, err = run_cli(["fit", "--resume", run, "--epochs", "3", "--quiet"], monkeypatch,
                           capsys)
    assert code == 0, err
    resumed = json.loads((run / "metrics.json").read_text())
    assert resumed["epochs"] == 3
    # the rate had decayed to lr_final by the end of the 2 epochs planned: it stays there, as
    # a note says (a walkthrough's short test fit resumed longer trained at it unawares)
    lr_final = json.loads((run / "config.json").read_text())["lr_final"]
    np.testing.assert_allclose(pd.read_csv(run / "history.csv").lr[1:], lr_final, rtol=1e-6)
    assert (f"note: {run}'s learning rate reached lr_final ({lr_final:g}) at epoch 2, where its "
            "decay was planned to end: its 1 more epochs train at it (a new fit with --epochs 3"
            ) in err
    assert resumed["seconds"] == pytest.approx(pd.read_csv(run / "history.csv").seconds.sum())
    assert resumed["seconds"] > metrics["seconds"]

    # a damaged checkpoint is reported, not traced back
    (run / "checkpoint.pt").write_bytes(b"not a checkpoint")
    code, _, err = run_cli(["fit", "--resume", run, "--epochs", "4", "--quiet"], monkeypatch,
                           capsys)
    assert_one_line_error(code, err, "damaged")


def test_paths_the_system_refuses_are_one_line_before_any_work(spike_file, tmp_path,
                                                               monkeypatch, capsys):
    afile = tmp_path / "afile"
    afile.write_text("")
    long = tmp_path / ("x" * 300)  # a name longer than a file system takes
    for args, fragments in [
            (["--out", afile / "run"], ["cannot make a run folder", "afile is a file"]),
            (["--out", long], ["cannot make a run folder", "File name too long"]),
            (["--out", tmp_path / "run", "--data", f"{long}.h5"], ["File name too long"])]:
        code, _, err = run_cli(["fit", "--data", spike_file, *args, *TINY], monkeypatch, capsys)
        assert_one_line_error(code, err, *fragments)
    assert not (tmp_path / "run").exists()
    monkeypatch.setattr("os.access", lambda path, mode: False)  # as for anyone but root
    code, _, err = run_cli(["fit", "--data", spike_file, "--out", tmp_path / "new" / "run",
                            *TINY], monkeypatch, capsys)
    assert_one_line_error(code, err, "cannot make a run folder", "is not writable")


def test_missing_run_folders(tmp_path, monkeypatch, capsys):
    code, _, err = run_cli(["evaluate", tmp_path / "nothing"], monkeypatch, capsys)
    assert_one_line_error(code, err, "no run folder")
    code, _, err = run_cli(["fit", "--resume", tmp_path], monkeypatch, capsys)
    assert_one_line_error(code, err, "not a pyrolf run folder")


@pytest.mark.parametrize("how", ["nan_loss", "nan_weights"])
def test_nan_in_training_stops_with_one_line_and_keeps_the_checkpoint(
        how, spike_file, tmp_path, monkeypatch, capsys):
    """A NaN loss, or weights gone NaN (a NaN ELBO, or Pyro's check on a fit's first step refusing
    a distribution's parameters), ends the fit with one line and keeps the last good checkpoint."""
    import pyro.infer
    import torch

    run = tmp_path / "run"
    calls = {"n": 0}
    step = pyro.infer.SVI.step

    def step_that_breaks_in_epoch_3(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] <= 2 * steps_per_epoch:
            return step(self, *args, **kwargs)
        if how == "nan_loss":
            return float("nan")
        self.guide.__self__.posterior.initial.weight.data.fill_(float("nan"))
        return step(self, *args, **kwargs)

    steps_per_epoch = 1  # 16 training trials, batch 16
    monkeypatch.setattr(pyro.infer.SVI, "step", step_that_breaks_in_epoch_3)
    with warnings.catch_warnings(record=True) as caught:  # what a terminal would print too
        warnings.simplefilter("always")
        code, _, err = run_cli(["fit", "--data", spike_file, "--out", run, "--epochs", "4",
                                "--latent-dim", "8", "--batch-size", "32", "--quiet",
                                "--config", write_config(tmp_path, eval_every=1)],
                               monkeypatch, capsys)
    assert_one_line_error(code, err, "NaN", "checkpoint", "--lr")
    assert not [w for w in caught if "NaN" in str(w.message)]
    assert torch.load(run / "checkpoint.pt", weights_only=False)["state"]["epoch"] == 2


@pytest.mark.parametrize("how", ["ctrl_c", "sigterm"])
def test_ctrl_c_in_training_is_one_line_and_keeps_the_checkpoint(
        how, spike_file, tmp_path, monkeypatch, capsys):
    import pyro.infer
    import torch

    before = signal.getsignal(signal.SIGTERM)  # SIG_DFL, or Ray's where a sweep ran before
    run = tmp_path / "run"
    calls = {"n": 0}
    step = pyro.infer.SVI.step

    def step_interrupted_in_epoch_3(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 2:  # one step per epoch
            if how == "ctrl_c":
                raise KeyboardInterrupt
            os.kill(os.getpid(), signal.SIGTERM)  # as kill, or a batch system's time limit
        return step(self, *args, **kwargs)

    monkeypatch.setattr(pyro.infer.SVI, "step", step_interrupted_in_epoch_3)
    code, _, err = run_cli(["fit", "--data", spike_file, "--out", run, "--epochs", "4",
                            "--latent-dim", "8", "--batch-size", "32", "--quiet",
                            "--config", write_config(tmp_path, eval_every=1)], monkeypatch, capsys)
    assert code == {"ctrl_c": 130, "sigterm": 143}[how]  # 128 + the signal, as shells say
    assert_one_line_error(code, err, "interrupted", "--resume")
    assert err.startswith("interrupted")  # not after a blank line (click's at Ctrl-C)
    assert torch.load(run / "checkpoint.pt", weights_only=False)["state"]["epoch"] == 2
    assert signal.getsignal(signal.SIGTERM) is before  # as it was before the command


def write_config(tmp_path, **values):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(values))
    return path


def test_overdamped_prior_in_an_unbounded_potential_is_refused(tmp_path, monkeypatch, capsys):
    code, _, err = run_cli(["fit", "--prior", "overdamped", "--potential", "oscillators",
                            "--out", tmp_path / "r", *TINY],
                           monkeypatch, capsys)
    assert_one_line_error(code, err, "bounded below", "--potential free")
    assert not (tmp_path / "r").exists()


def test_progress_in_a_log_is_plain_lines_and_on_a_terminal_one_redrawn_bar(
        spike_file, tmp_path, monkeypatch, capsys):
    import io
    import sys

    from pyrolf import messages

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    for stream, every in ((Terminal(), 30.0), (io.StringIO(), 30.0), (io.StringIO(), 0.0)):
        monkeypatch.setattr(sys, "stderr", stream)
        monkeypatch.setattr(messages, "LOG_EVERY_S", every)
        with messages.progress_bar(total=4, desc="fit", unit="epoch") as bar:
            for _ in range(4):
                bar.update()
        written = stream.getvalue()
        if isinstance(stream, Terminal):
            assert written.count("\r") >= 2 and written.count("\n") == 1  # redrawn in place
            continue
        lines = written.splitlines()
        assert "\r" not in written and all(line.startswith("fit: ") for line in lines)
        assert "4/4" in lines[-1] and "100%" in lines[-1]
        # the first frame and the last (once), and between them one per interval
        assert len(lines) == (2 if every else 5), lines
    monkeypatch.undo()
    # a whole fit's bars, as a batch system's log file gets them
    code, _, err = run_cli(["fit", "--data", spike_file, "--out", tmp_path / "run", "--epochs",
                            "4", "--latent-dim", "8", "--batch-size", "32"], monkeypatch, capsys)
    assert code == 0, err
    assert "\r" not in err
    labels = [line.split(":")[0] for line in err.splitlines() if line]
    assert {"fit", "smoothing baseline", "score"} <= set(labels), labels
    # the fit's first line and its last (in well under 30 s), not one per epoch
    assert labels.count("fit") == 2, err


def test_held_out_units_without_a_test_spike_are_noted_as_unscored(tmp_path, monkeypatch,
                                                                    capsys):
    from pyrolf.data import lorenz_dataset, save_spike_file

    data = lorenz_dataset(seed=3, n_conditions=4, trials_per_condition=6, n_bins=12,
                          n_neurons=10, n_heldout=2, mean_rate=0.5)
    silent = np.flatnonzero(data.heldout)[0]
    data.spikes[..., silent] = 0  # a held-out unit that never fires
    path = tmp_path / "silent.h5"
    save_spike_file(path, data)
    code, _, err = run_cli(["fit", "--data", path, "--out", tmp_path / "run", "--epochs", "2",
                            "--latent-dim", "8", "--batch-size", "32", "--quiet"],
                           monkeypatch, capsys)
    assert code == 0, err
    assert (f"note: silent: 1 of the 2 held-out units has no spike in the 3 test "
            f"trials (ids {silent}): "
            "their co_bps_per_neuron is null") in err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["co_bps_per_neuron"][str(silent)] is None


def test_a_run_fitted_on_data_given_in_python_is_refused_by_the_command_line_in_its_words(
        tmp_path, monkeypatch, capsys):
    """The command line reloads a run's data from config.json, whose "data" a fit in Python
    never set: one line says the data were given in Python and how to reopen the run (it
    listed three causes it could not tell apart: an API walkthrough)."""
    import dataclasses

    from pyrolf import Config, fit
    from pyrolf.data import lorenz_dataset

    data = lorenz_dataset(seed=3, n_conditions=4, trials_per_condition=6, n_bins=12,
                          n_neurons=10, n_heldout=2)
    fit(dataclasses.replace(data, name="my_session"),
        Config(epochs=1, latent_dim=8, batch_size=16, threads=1), run_dir=tmp_path / "run",
        progress=False)
    capsys.readouterr()  # (the fit's notes)
    for command in (["evaluate", tmp_path / "run"], ["infer", tmp_path / "run", "--samples", "2"]):
        code, _, err = run_cli(command, monkeypatch, capsys)
        assert_one_line_error(code, err, "was fitted on data given in Python (my_session: "
                              "24x12x10), not on its config.json's \"data\" (lorenz)",
                              "data= of load_run")
    # a run of before fitted.json kept the data's names: the message of old, naming the causes
    fitted = RunFolder(tmp_path / "run").read_json(RunFolder.FITTED)
    del fitted["names"]
    RunFolder(tmp_path / "run").write_json(RunFolder.FITTED, fitted)
    code, _, err = run_cli(["evaluate", tmp_path / "run"], monkeypatch, capsys)
    assert_one_line_error(code, err, "was fitted on other data (24x12x10)")


@pytest.mark.parametrize("ctrl_c", [signal.default_int_handler, signal.SIG_IGN])
def test_sigterm_stops_a_block_that_hands_it_on_as_ctrl_c_even_where_ctrl_c_is_ignored(ctrl_c):
    """A sweep started in the background of a batch script (Ctrl-C ignored) went on after
    SIGTERM outside Ray Tune's loop, and was killed later without a word (a review)."""
    from pyrolf.cli.main import TERMINATED, terminating_as_interrupted

    kept = signal.signal(signal.SIGINT, ctrl_c)
    try:
        with pytest.raises(KeyboardInterrupt):
            with terminating_as_interrupted(as_signal=True):
                os.kill(os.getpid(), signal.SIGTERM)
                for _ in range(1000):  # (the handler runs between bytecodes)
                    pass
        assert TERMINATED.is_set()
    finally:
        signal.signal(signal.SIGINT, kept)
        TERMINATED.clear()
