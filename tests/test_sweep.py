"""pyrolf sweep: search-space values refused before any trial starts, tiny Lorenz trials under
ASHA with the results table and best/, and an interrupted sweep resumed.

The tests that start no Ray come first (pytest keeps this order): once the module's Ray is up,
late lines from its workers may reach stderr, where the one-line errors are checked."""

import csv
import json
import os
import pickle
import re
import shutil
import signal
import sys
import threading
import time

import numpy as np
import pytest
import ray
import torch

from pyrolf.config import Config, ConfigError
from pyrolf.data import load_spike_file, lorenz_dataset, save_spike_file
from pyrolf.runs import RunError, RunFolder
from pyrolf.sweep import search_space
from pyrolf.sweep.settings import sweep_settings
from pyrolf.sweep import tune as sweep_tune
from pyrolf.sweep.tune import BEST_SCORE, SCORE, score_run
from test_cli import assert_one_line_error, run_cli

TINY = {"epochs": 4, "eval_every": 1, "batch_size": 8, "encoder_hidden": 8,
        "decoder_feedforward": 16, "samples": 2, "kl_warmup": 2}
TINY_SPACE = {"latent_dim": [4, 8], "decoder_width": [8, 16]}


@pytest.fixture(scope="module")
def local_ray():
    """One small local Ray for the module: the sweeps find it running and leave it up."""
    ray.init(num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def spike_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "lorenz.h5"
    save_spike_file(path, lorenz_dataset(seed=2, n_conditions=4, trials_per_condition=6,
                                         n_bins=12, n_neurons=10, n_heldout=2))
    return path


def write_json(path, values):
    path.write_text(json.dumps(values))
    return path


def sweep_args(tmp_path, spike_file, trials, **settings):
    return ["sweep", "--data", spike_file, "--trials", trials, "--out", tmp_path / "sweep",
            "--config", write_json(tmp_path / "config.json", {**TINY, **settings}),
            "--space", write_json(tmp_path / "space.json", TINY_SPACE)]


def read_results(folder):
    with open(folder / "results.csv") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("space, fragments", [
    ({"lr": [-0.001, 0.01]}, ["search space lr = -0.001", "lr must be positive"]),
    ({"latent_dim": [10, 16]}, ["latent_dim 10 is not divisible by the 4 lattice channels"]),
    ({"kl_weight": [0.5, 0.2]}, ["kl_weight", "empty"]),
    ({"latent_dim": [16.5]}, ["latent_dim", "whole numbers"]),
    ({"learning_rate": [0.001, 0.01]}, ["unknown search-space entry learning_rate"]),
])
def test_bad_search_space_is_refused_before_any_trial(space, fragments, spike_file, tmp_path,
                                                       monkeypatch, capsys):
    args = ["sweep", "--data", spike_file, "--trials", 2, "--out", tmp_path / "sweep",
            "--space", write_json(tmp_path / "space.json", space)]
    code, _, err = run_cli(args, monkeypatch, capsys)
    assert_one_line_error(code, err, *fragments)
    assert not (tmp_path / "sweep").exists()


def test_other_sweep_refusals_are_one_line(spike_file, tmp_path, monkeypatch, capsys):
    code, _, err = run_cli(["sweep", "--data", spike_file, "--out", tmp_path / "s"], monkeypatch,
                           capsys)
    assert_one_line_error(code, err, "--trials is required")
    code, _, err = run_cli(["sweep", "--resume", tmp_path], monkeypatch, capsys)
    assert_one_line_error(code, err, "holds no sweep to resume")
    code, _, err = run_cli(["sweep", "--resume", tmp_path, "--trials", 3], monkeypatch, capsys)
    assert_one_line_error(code, err, "--resume", "--trials")
    code, _, err = run_cli(["sweep", "--resume", tmp_path, "--data", spike_file], monkeypatch,
                           capsys)
    assert_one_line_error(code, err, "--resume", "--data")
    code, _, err = run_cli(["sweep", "--resume", tmp_path, "--scheduler", "asha",
                            "--cpus-per-trial", 1, "--gpus-per-trial", 0], monkeypatch, capsys)
    assert_one_line_error(code, err, "drop --scheduler, --cpus-per-trial, --gpus-per-trial")
    # without Ray Tune (an optional extra) the sweep says how to install it
    import pyrolf.sweep

    monkeypatch.delitem(sys.modules, "pyrolf.sweep.tune", raising=False)
    monkeypatch.delattr(pyrolf.sweep, "tune", raising=False)
    monkeypatch.setitem(sys.modules, "ray", None)
    code, _, err = run_cli(["sweep", "--resume", tmp_path], monkeypatch, capsys)
    assert_one_line_error(code, err, "needs Ray Tune", "uv sync --extra sweep")
    monkeypatch.undo()
    code, _, err = run_cli(["sweep", "--data", spike_file, "--data", "lorenz", "--trials", 2],
                           monkeypatch, capsys)  # the second --data is a session
    assert_one_line_error(code, err, "sessions are own recordings or spike files")
    config = write_json(tmp_path / "config.json", {"device": "cuda"})
    code, _, err = run_cli(["sweep", "--trials", 2, "--config", config], monkeypatch, capsys)
    assert_one_line_error(code, err, "--gpus-per-trial")
    space = write_json(tmp_path / "space.json", {"lr": 0.003, "kl_weight": 0.3, "cd_rate": 0.3,
                                                 "encoder_dropout": 0.1, "decoder_dropout": 0.0})
    code, _, err = run_cli(["sweep", "--trials", 2, "--scheduler", "pbt", "--space", space],
                           monkeypatch, capsys)
    assert_one_line_error(code, err, "pbt needs")
    space = tmp_path / "broken.json"
    space.write_text("{")
    code, _, err = run_cli(["sweep", "--trials", 2, "--space", space], monkeypatch, capsys)
    assert_one_line_error(code, err, f"search-space file {space} is not valid JSON")
    code, _, err = run_cli(["sweep", "--trials", 2, "--max-concurrent", 0], monkeypatch, capsys)
    assert_one_line_error(code, err, "--max-concurrent")
    with pytest.raises(ConfigError, match="--max-concurrent must be at least 1"):
        sweep_settings(Config(), 2, concurrent=0)


def test_the_config_file_s_settings_are_every_trial_s_even_where_the_space_varies_them(
        spike_file, tmp_path, monkeypatch, capsys):
    """`--config` holds "the settings every trial shares", yet the search space drew latent_dim
    and decoder_width over the file's values without a word (found by a walkthrough)."""
    from pyrolf.sweep import tune as sweep_tune
    from pyrolf.sweep.tune import SweepResult

    given = {}

    def run_sweep(folder, config, trials, scheduler, space, *args, **kwargs):
        given.update(config=config, space=space)
        return SweepResult(folder, [], None, {}, unfinished=1)

    monkeypatch.setattr(sweep_tune, "run_sweep", run_sweep)
    config = write_json(tmp_path / "config.json", {"latent_dim": 8, "lr": 0.002, "samples": 3})
    space = write_json(tmp_path / "space.json", {"lr": [0.001, 0.01]})
    code, _, err = run_cli(["sweep", "--data", spike_file, "--trials", 2, "--config", config,
                            "--space", space], monkeypatch, capsys)
    assert code == 130, err  # (the stub's sweep leaves a trial unfinished, as Ctrl-C does)
    assert given["space"] == {"latent_dim": 8, "lr": [0.001, 0.01]}  # --space's lr comes first
    assert "note: --config fixes latent_dim for every trial" in err
    assert search_space(given["space"], given["config"])["latent_dim"].values == (8,)
    listed = write_json(tmp_path / "list.json", ["lr"])
    code, _, err = run_cli(["sweep", "--data", spike_file, "--trials", 2, "--config", config,
                            "--space", listed], monkeypatch, capsys)
    assert_one_line_error(code, err, "must hold one JSON object")


def test_a_sweep_reads_its_data_with_the_options_a_fit_takes(spike_file, tmp_path, monkeypatch,
                                                              capsys):
    """A sweep of a recording had no --align, --window, ... (found by a hostile walkthrough)."""
    from pyrolf.sweep import tune as sweep_tune
    from pyrolf.sweep.tune import SweepResult

    code, _, err = run_cli(["sweep", "--data", spike_file, "--window", "0,1", "--trials", 2,
                            "--out", tmp_path / "sweep"], monkeypatch, capsys)
    assert_one_line_error(code, err, "holds binned counts, so window cannot apply")
    given = {}

    def run_sweep(folder, config, *args, progress):
        given.update(config=config, progress=progress)
        return SweepResult(folder, [], None, {}, unfinished=1)

    monkeypatch.setattr(sweep_tune, "run_sweep", run_sweep)
    code, _, err = run_cli(["sweep", "--data", "rec.nwb", "--align", "stim_on_time",
                            "--window=-0.2,0.8", "--bin", 20, "--condition", "target",
                            "--trials-where", "outcome=correct", "--units-where",
                            "quality=good", "--units-where", "firing_rate>=1", "--trials", 2,
                            "--quiet"], monkeypatch, capsys)
    assert code == 130, err  # (the stub's sweep leaves a trial unfinished, as Ctrl-C does)
    config = given["config"]
    assert given["progress"] is False  # (--quiet: no bars while best/ is scored)
    assert (config.align, config.window, config.bin_size_ms, config.condition,
            config.trials_where, config.units_where) == (
        "stim_on_time", "-0.2,0.8", 20, "target", ["outcome=correct"],
        ["quality=good", "firing_rate>=1"])
    code, _, err = run_cli(["sweep", "--resume", tmp_path, "--bin", 20], monkeypatch, capsys)
    assert_one_line_error(code, err, "drop --bin")


def test_rays_own_resume_hint_is_left_out_while_a_sweep_runs():
    """After Ctrl-C Ray printed its Tuner.restore(...) above pyrolf's 'pyrolf sweep --resume'
    (found by a hostile walkthrough)."""
    import logging

    from pyrolf.sweep.tune import _rays_log

    seen = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    logger, state = map(logging.getLogger, ("ray.tune.tune", "ray.tune.execution.experiment_state"))
    logger.addHandler(handler)
    state.addHandler(handler)
    try:
        with _rays_log():
            logger.warning("Experiment has been interrupted...\nResume experiment with: X")
            logger.warning("another warning")
            # (Ray Tune's advice on its num_to_keep, which pyrolf sets: trials that report often)
            state.warning("Experiment state snapshotting has been triggered multiple times in the "
                          "last 5.0 seconds and may become a bottleneck. ...")
        logger.warning("Resume experiment with: Y")
    finally:
        logger.removeHandler(handler)
        state.removeHandler(handler)
    assert seen == ["another warning", "Resume experiment with: Y"]


def test_a_new_sweep_takes_only_a_new_or_empty_folder_and_holds_it(spike_file, tmp_path,
                                                                    monkeypatch, capsys):
    """A sweep into a folder of the user's removed its best/ (a hostile test of sweeps); two
    sweeps into one folder at once were both accepted and mixed their trials."""
    from pyrolf.sweep import SweepError
    from pyrolf.sweep.tune import _new_sweep

    def loaded(config):
        raise AssertionError("the data were loaded")

    monkeypatch.setattr(sweep_tune, "load_config_data", loaded)
    project = tmp_path / "project"
    (project / "best").mkdir(parents=True)
    (project / "best" / "notes.txt").write_text("mine\n")
    code, _, err = run_cli(["sweep", "--data", spike_file, "--trials", 2, "--out", project],
                           monkeypatch, capsys)
    assert_one_line_error(code, err, f"{project} is not empty (holding best) and holds no "
                                     "sweep; give --out a new or empty folder")
    assert (project / "best" / "notes.txt").read_text() == "mine\n"
    # refused before the lock, which clears *.partial files and leaves its .lock (a review)
    (project / "draft.partial").write_text("mine\n")
    code, _, err = run_cli(["sweep", "--data", spike_file, "--trials", 2, "--out", project],
                           monkeypatch, capsys)
    assert code == 1 and (project / "draft.partial").read_text() == "mine\n"
    assert sorted(path.name for path in project.iterdir()) == ["best", "draft.partial"]
    with pytest.raises(SweepError, match="is a file, not a folder"):
        with _new_sweep(spike_file):
            pass
    # held: a second sweep there is refused while the first runs
    with _new_sweep(tmp_path / "sweep") as sweep:
        assert sweep.in_use()
        with pytest.raises(RunError, match="in use by another pyrolf process"):
            with _new_sweep(tmp_path / "sweep"):
                pass
    # a sweep stopped before its first trial began (sweep.json alone) is started over
    (tmp_path / "sweep" / "sweep.json").write_text("{}")
    with _new_sweep(tmp_path / "sweep"):
        assert not (tmp_path / "sweep" / "sweep.json").exists()
    assert "holds a sweep that stopped before its first trial began: started over" in (
        capsys.readouterr().err)
    code, _, err = run_cli(["sweep", "--resume", tmp_path / "sweep"], monkeypatch, capsys)
    assert code == 1 and "holds no sweep to resume" in err
    (tmp_path / "sweep" / "sweep.json").write_text("{}")
    code, _, err = run_cli(["sweep", "--resume", tmp_path / "sweep"], monkeypatch, capsys)
    assert_one_line_error(code, err, "sweep stopped before its first trial began, so there is "
                                     "nothing to resume; start it again with the same")
    # a folder it made for data it could not read is not left behind
    with pytest.raises(AssertionError):
        with _new_sweep(tmp_path / "unread"):
            loaded(None)
    assert not (tmp_path / "unread").exists()


def test_best_is_replaced_only_once_its_new_copy_is_whole(tmp_path, monkeypatch, capsys):
    """A full disk while best/ was copied removed the old best/ first and printed Python's list
    of each file's error (a hostile test of sweeps)."""
    from pyrolf.sweep import SweepError
    from pyrolf.sweep.tune import _copy_folder

    (tmp_path / "trial").mkdir()
    (tmp_path / "trial" / "checkpoint.pt").write_bytes(b"new weights")
    (tmp_path / "best").mkdir()
    (tmp_path / "best" / "checkpoint.pt").write_bytes(b"old weights")
    copytree = shutil.copytree

    def file_too_large(source, target, **kwargs):
        copytree(source, target, **kwargs)
        raise shutil.Error([(str(source), str(target),
                             f"[Errno 27] File too large: '{source}' -> '{target}'")])

    monkeypatch.setattr(shutil, "copytree", file_too_large)
    with pytest.raises(SweepError) as refused:
        _copy_folder(tmp_path / "trial", tmp_path / "best", tmp_path)
    assert str(refused.value) == (f"{tmp_path / 'best'} cannot be written (File too large) and "
                                  f"is as it was; free space and run 'pyrolf sweep --resume "
                                  f"{tmp_path}', which writes it")
    assert (tmp_path / "best" / "checkpoint.pt").read_bytes() == b"old weights"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["best", "trial"]
    monkeypatch.setattr(shutil, "copytree", copytree)
    _copy_folder(tmp_path / "trial", tmp_path / "best", tmp_path)
    assert (tmp_path / "best" / "checkpoint.pt").read_bytes() == b"new weights"
    assert capsys.readouterr().err == ""  # (nothing was made in the old best/)

    # what infer and diagnose made in a best/ that another trial replaces is named as it goes
    # (it went unsaid: a hostile test of sweeps)
    for name in ("inferred.nc", "diagnostics.json", "metrics.json", "smoothing.npz"):
        (tmp_path / "best" / name).write_text("made\n")
    (tmp_path / "trial" / "checkpoint.pt").write_bytes(b"newer weights")
    _copy_folder(tmp_path / "trial", tmp_path / "best", tmp_path)
    best = tmp_path / "best"
    assert sorted(path.name for path in best.iterdir()) == ["checkpoint.pt"]
    assert capsys.readouterr().err == (
        f"note: {best} now holds another trial's run, the best: what was made in it from the "
        "old weights went with them (files diagnostics.json, inferred.nc); make them again "
        f"with 'pyrolf infer {best}' or 'pyrolf diagnose {best}'\n")


def test_best_is_taken_for_trained_on_since_only_when_its_checkpoint_is_no_trials(tmp_path):
    """After 'pyrolf evaluate best/' (its metrics.json without the trial), a resumed sweep whose
    best trial had become another kept the old best/ as 'trained on since' (a review)."""
    from pyrolf.sweep.tune import _copy_of

    trials = tmp_path / "trials"
    for trial, weights in (("a", b"a's weights"), ("b", b"b's weights")):
        (trials / trial).mkdir(parents=True)
        (trials / trial / "checkpoint.pt").write_bytes(weights)
    best = RunFolder(tmp_path / "best")
    best.path.mkdir()
    assert _copy_of(best, tmp_path, trials / "b") is None  # (no checkpoint: nothing trained there)
    (best.path / "checkpoint.pt").write_bytes(b"a's weights")
    (best.path / "metrics.json").write_text('{"co_bps": 0.2}')  # evaluate's: no trial
    assert _copy_of(best, tmp_path, trials / "b") == trials / "a"  # (a copy: not trained on)
    (best.path / "checkpoint.pt").write_bytes(b"a's weights, trained on")
    assert _copy_of(best, tmp_path, trials / "b") is None  # (no trial's: trained on since)
    # the best trial's run folder gone: one line, not the whole sweep folder copied as best/
    from pyrolf.sweep import SweepError
    from pyrolf.sweep.tune import _write_best

    with pytest.raises(SweepError, match="the best trial c's run folder is not in"):
        _write_best(tmp_path, {"trial": "c", "run_folder": ""}, None, False)
    # best/ in use (an infer there): refused before it is replaced, not replaced under it (a
    # review: the lock was let go before the copy)
    (best.path / "checkpoint.pt").write_bytes(b"a's weights")
    with best.locked():
        with pytest.raises(RunError, match="in use by another pyrolf process"):
            _write_best(tmp_path, {"trial": "b", "run_folder": "trials/b"}, None, False)
    assert (best.path / "checkpoint.pt").read_bytes() == b"a's weights"
    held = []
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(sweep_tune, "_copy_folder", lambda *args: held.append(best.in_use()))
        patched.setattr(sweep_tune, "evaluate_run", lambda *args, **kwargs: {})
        patched.setattr(sweep_tune, "score_run", lambda *args: 0.1)
        _write_best(tmp_path, {"trial": "b", "run_folder": "trials/b"}, None, False)
    assert held == [True]  # (no other process could start there while it was replaced)


def test_a_sweep_stopped_before_ray_tune_made_a_trial_is_started_over(tmp_path, monkeypatch,
                                                                       capsys):
    """Stopped once Ray Tune was set up (tuner.pkl) but before its first trial, or with a record
    of no trial, the folder was taken for a sweep to resume: the same command was refused and
    --resume trained a trial of none of the searched settings (a review)."""
    from pyrolf.sweep import SweepError
    from pyrolf.sweep.tune import _check_new, _restorable, resume_sweep

    folder = tmp_path / "sweep"
    (folder / "tune").mkdir(parents=True)
    (folder / "sweep.json").write_text("{}")
    (folder / "tune" / "tuner.pkl").write_bytes(b"set up")
    assert not _restorable(folder)
    state = folder / "tune" / "experiment_state-2026-12-08_01-00-00.json"
    for record, began in (('{"trial_data": []}', False), ('{"trial_data": ["t"]}', True),
                          ('{"trial_data": ["t"', True)):  # (cut short: _check_state says so)
        state.write_text(record)
        assert _restorable(folder) is began
    state.write_text('{"trial_data": []}')
    with pytest.raises(SweepError, match="stopped before its first trial began"):
        resume_sweep(folder)
    _check_new(RunFolder(folder))
    assert "started over" in capsys.readouterr().err
    assert sorted(path.name for path in folder.iterdir()) == [".lock"]  # (resume_sweep's)
    # stopped as Ray Tune began: its record of no trial is said so (an IndexError traceback),
    # and no results.csv is written
    from pyrolf.runs import RunInterrupted
    from pyrolf.sweep.tune import _summarise

    with monkeypatch.context() as patched:
        patched.setattr(sweep_tune.tune, "ExperimentAnalysis",
                        lambda path: type("Analysis", (), {"trials": []}))
        with pytest.raises(RunInterrupted, match="before the sweep's first trial began; the same "
                                                 "'pyrolf sweep' command starts it over"):
            _summarise(folder, {}, None, False)
    assert not (folder / "results.csv").exists()


def test_the_handlers_of_ctrl_c_and_sigterm_are_put_back_after_rays_own():
    """Ray's start put in its own SIGTERM handler, which aborted the process with a stack dump,
    and Ray Tune's fit left its own Ctrl-C handler, which swallowed a Ctrl-C while best/ was
    scored (a hostile test of sweeps)."""
    from pyrolf.sweep.tune import _handlers_kept

    def ours(number, frame):
        raise KeyboardInterrupt

    before = {number: signal.signal(number, ours) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        with _handlers_kept():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        assert signal.getsignal(signal.SIGINT) is ours and signal.getsignal(signal.SIGTERM) is ours
    finally:
        for number, handler in before.items():
            signal.signal(number, handler)


def test_a_record_of_ray_tunes_cut_by_a_full_disk_is_one_line_before_ray_starts_again(tmp_path):
    """After a full disk, --resume let Ray Tune start the sweep over from nothing with a trial
    of none of the searched settings, and then failed (KeyError); Ray Tune's empty error file
    of a failed trial ended the sweep in an EOFError (a hostile test of sweeps)."""
    from pyrolf.sweep import SweepError
    from pyrolf.sweep.tune import _check_state, _tuning

    tune_folder = tmp_path / "tune"
    tune_folder.mkdir()
    (tune_folder / "experiment_state-2026-12-07_23-40-00.json").write_text('{"trials": []}')
    _check_state(tmp_path)  # whole: no word
    (tune_folder / "experiment_state-2026-12-07_23-46-22.json").write_text('{"trials": [{"a')
    with pytest.raises(SweepError, match=r"experiment_state-2026-12-07_23-46-22.json, Ray Tune's "
                                         r"record of the sweep, is damaged .*; remove it, and "
                                         r"--resume goes on from the record before it"):
        _check_state(tmp_path)
    (tune_folder / "experiment_state-2026-12-07_23-40-00.json").unlink()
    with pytest.raises(SweepError, match="start a new sweep with another --out$"):
        _check_state(tmp_path)
    for cut in (EOFError("Ran out of input"), pickle.UnpicklingError("pickle data was truncated")):
        with pytest.raises(SweepError, match=r"cannot read back what a failed trial wrote .* "
                                             r"free space and run 'pyrolf sweep --resume"):
            with _tuning(tmp_path):
                raise cut


def test_a_write_that_failed_in_a_sweep_is_one_line_in_rays_log(tmp_path):
    """A full disk in a sweep printed a page of traceback for each failed trial and for each of
    Ray Tune's own failed writes (a hostile test of sweeps): each is one line, as is a trial's
    error the user can mend; other errors keep their traceback."""
    import errno
    import logging

    from pyrolf.runs import unwritten
    from pyrolf.sweep.tune import RAYS_FAILURES, _rays_log

    class TrialError(Exception):  # (as Ray's error of a trial: the trial's is its cause)
        def __init__(self, cause):
            super().__init__("ray::ImplicitFunc.train()")
            self.cause = cause

    def failed(error):
        try:
            raise error
        except Exception:
            return sys.exc_info()

    full = OSError(errno.ENOSPC, "No space left on device")
    checkpoint = tmp_path / "trials" / "a" / "checkpoint.pt"
    trace = ("Traceback (most recent call last):\n  File \"x.py\", line 1, in f\n"
             "OSError: [Errno 28] Error writing bytes to file. Detail: No space left on device\n")
    seen = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(logging.Formatter().format(record))
    controller, state, syncer = map(logging.getLogger, RAYS_FAILURES)
    for logger in (controller, state, syncer):
        logger.addHandler(handler)
    try:
        with _rays_log():
            controller.error("Trial task failed for trial t1",
                             exc_info=failed(TrialError(unwritten(checkpoint, full))))
            state.error("Saving experiment state to storage at 'tune' failed with exception: ",
                        exc_info=failed(OSError(errno.ENOSPC, "Error writing bytes to file")))
            syncer.warning(f"Last sync command failed with the following error:\n{trace}")
            controller.error("Trial task failed for trial t2",
                             exc_info=failed(TrialError(ValueError("a bug"))))
            controller.error("Trial task failed for trial t4",
                             exc_info=failed(TrialError(RunError(f"{checkpoint} is in use"))))
        controller.error("Trial task failed for trial t3",
                         exc_info=failed(TrialError(unwritten(checkpoint, full))))
    finally:
        for logger in (controller, state, syncer):
            logger.removeHandler(handler)
    assert seen[:3] == [
        f"Trial task failed for trial t1: {checkpoint} cannot be written (No space left on "
        "device)",
        "Saving experiment state to storage at 'tune' failed with exception: [Errno 28] Error "
        "writing bytes to file",
        "Last sync command failed with the following error: OSError: [Errno 28] Error writing "
        "bytes to file. Detail: No space left on device"]
    assert seen[3].startswith("Trial task failed for trial t2\nTraceback")  # (a bug: kept)
    assert seen[4] == f"Trial task failed for trial t4: {checkpoint} is in use"
    assert seen[5].startswith("Trial task failed for trial t3\nTraceback")  # (outside: as was)


@pytest.mark.slow
def test_sigterm_stops_a_sweep_that_started_ray_itself_as_ctrl_c_does(spike_file, tmp_path):
    """Ray's start put in its own SIGTERM handler, which aborted the sweep with a stack dump
    (status 134, no word; a hostile test of sweeps): here Ray is started by the command, as it
    is for a user, not by this module (whose tests start it before the command's handlers)."""
    import subprocess

    folder = tmp_path / "sweep"
    args = sweep_args(tmp_path, spike_file, 2, epochs=400, eval_every=5)
    sweep = subprocess.Popen([sys.executable, "-c", "from pyrolf.cli.main import main; main()",
                              *map(str, args), "--quiet"], text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 300
    while not list((folder / "trials").glob("*/checkpoint.pt")) and sweep.poll() is None:
        assert time.monotonic() < deadline, "no trial saved a checkpoint"
        time.sleep(0.5)
    sweep.send_signal(signal.SIGTERM)
    _, err = sweep.communicate(timeout=300)
    assert sweep.returncode == 143, err
    assert "SIGTERM received" not in err
    assert re.search(rf"interrupted: [12] trials did not finish; continue with: pyrolf sweep "
                     rf"--resume {re.escape(str(folder))}", err), err


def test_search_space_overrides():
    space = search_space({"lr": [1e-4, 1e-2], "latent_dim": [8, 12], "damping": 0.3},
                         Config(channels=4))
    assert space["lr"].kind == "loguniform" and space["lr"].values == (1e-4, 1e-2)
    assert space["latent_dim"].values == (8, 12)
    assert space["damping"].kind == "choice" and space["damping"].values == (0.3,)
    assert space["cd_rate"].clip(0.9) == 0.5 and space["lr"].clip(1e-6) == 1e-4
    with pytest.raises(ConfigError, match="latent_dim 12 is not divisible"):
        search_space({"latent_dim": [8, 12]}, Config(latent_dim=8, channels=8))


def in_process_trial(monkeypatch, config, folder, trial="trial0"):
    """One trial of a sweep run in this process, Ray's calls stood in for; its run folder."""
    from types import SimpleNamespace

    from pyrolf.data import load_config_data
    from pyrolf.sweep import tune as sweep_tune

    monkeypatch.setattr(sweep_tune.tune, "get_context",
                        lambda: SimpleNamespace(get_trial_id=lambda: trial))
    monkeypatch.setattr(sweep_tune.tune, "get_checkpoint", lambda: None)
    monkeypatch.setattr(sweep_tune.tune, "report", lambda *args, **kwargs: None)
    sweep_tune.train_trial({}, base=config.to_dict(), data=load_config_data(config),
                           folder=str(folder), threads=1)
    return folder / "trials" / trial


def test_a_trials_folder_records_its_data_and_refuses_a_changed_file(
        spike_file, tmp_path, monkeypatch, capsys):
    """Trial folders (and so best/) kept no source.json or fitted.json: a data file changed
    after the sweep was scored and trained on without a word (found by a hostile walkthrough)."""
    data = tmp_path / "day.h5"
    data.write_bytes(spike_file.read_bytes())
    config = Config(data=str(data), **{**TINY, "epochs": 1})
    held = []  # whether the trial's folder is locked while it trains, as a fit's is
    monkeypatch.setattr(sweep_tune.Trainer, "epoch", lambda self, check: held.append(
        RunFolder(tmp_path / "sweep" / "trials" / "trial0").in_use()) or 0.0)
    run = in_process_trial(monkeypatch, config, tmp_path / "sweep")
    assert held == [True] and not RunFolder(run).in_use()
    monkeypatch.undo()
    run = in_process_trial(monkeypatch, config, tmp_path / "sweep")
    source = json.loads((run / "source.json").read_text())
    assert source["path"] == str(data) and source["bytes"] == data.stat().st_size
    assert json.loads((run / "fitted.json").read_text())["data"]["shapes"] == [[24, 12, 10]]
    code, out, err = run_cli(["evaluate", run], monkeypatch, capsys)
    assert code == 0 and "co_bps=" in out, err

    save_spike_file(data, lorenz_dataset(seed=3, n_conditions=4, trials_per_condition=6,
                                         n_bins=12, n_neurons=10, n_heldout=2))
    metrics = (run / "metrics.json").read_text()
    for command in (["evaluate", run], ["fit", "--resume", run, "--epochs", 2]):
        code, _, err = run_cli(command, monkeypatch, capsys)
        assert_one_line_error(code, err, f"{data} has changed since {run} was fitted on it")
    assert (run / "metrics.json").read_text() == metrics


def test_a_trial_mends_a_layout_of_no_use_and_names_what_infer_made_before(
        spike_file, tmp_path, monkeypatch, capsys):
    """A trial kept a damaged layout.pt found in its folder (new trials could not be laid out
    by it), and said nothing of an inferred.nc that ``pyrolf infer`` had made there from
    weights it then trained past (a fit --resume names both; sessions' hostile test)."""
    import h5py

    from pyrolf.pipeline.records import _layout

    config = Config(data=str(spike_file), **{**TINY, "epochs": 2})
    run = in_process_trial(monkeypatch, config, tmp_path / "sweep")
    (run / "layout.pt").write_bytes(b"damaged")
    with h5py.File(run / "inferred.nc", "w") as made:  # infer's record of the weights it read
        made.attrs.update(weights="best.pt", weights_epoch=99)
    capsys.readouterr()
    in_process_trial(monkeypatch, config.replace(epochs=3), tmp_path / "sweep")
    err = capsys.readouterr().err
    assert f"{run / 'layout.pt'} cannot be read (damaged?): written again" in err, err
    layout, wrong = _layout(RunFolder(run))
    assert layout is not None and wrong is None
    assert re.search(r"made from other weights than the run's now, epoch \d of best\.pt: "
                     r"inferred\.nc \(epoch 99 of best\.pt\)", err), err
    assert f"'pyrolf infer {run}'" in err


def test_a_checkpoint_saved_again_is_registered_once(tmp_path):
    """Ray 2.60's PBT registers a trial's last checkpoint a second time when it asks the trial
    to save; the manager then deleted it twice and logged a traceback at every report after
    (pyrolf/sweep/ray_compat.py)."""
    from ray.train import Checkpoint, CheckpointConfig
    from ray.train._internal.checkpoint_manager import _CheckpointManager
    from ray.train._internal.session import _TrainingResult

    from pyrolf.sweep.ray_compat import checkpoints_registered_once

    def reports(folder):
        """Each checkpoint reported, then handed back by a save: two results, one path."""
        for index in range(4):
            (folder / str(index)).mkdir(parents=True)
            for _ in range(2):
                yield _TrainingResult(Checkpoint.from_directory(folder / str(index)), {})

    manager = _CheckpointManager(CheckpointConfig(num_to_keep=2))
    with pytest.raises(FileNotFoundError):  # Ray as it is
        for result in reports(tmp_path / "ray"):
            manager.register_checkpoint(result)
    manager = _CheckpointManager(CheckpointConfig(num_to_keep=2))
    with checkpoints_registered_once():
        for result in reports(tmp_path / "shim"):
            manager.register_checkpoint(result)
    assert sorted(path.name for path in (tmp_path / "shim").iterdir()) == ["2", "3"]
    assert _CheckpointManager.register_checkpoint.__name__ == "register_checkpoint"


@pytest.mark.slow
def test_a_pbt_sweep_exploits_without_ray_s_checkpoint_errors(local_ray, spike_file, tmp_path,
                                                             monkeypatch, capsys, caplog):
    # Whether a trial of the bottom quarter reports while one of the top quarter has a
    # checkpoint depends on the trials' timing: a second sweep where the first did not exploit
    # (once in a full suite on an idle machine)
    for attempt in range(2):
        caplog.clear()
        folder = tmp_path / f"sweep{attempt}"
        code, out, err = run_cli(sweep_args(tmp_path, spike_file, 4, eval_every=2) + [
            "--scheduler", "pbt", "--epochs", 12, "--max-concurrent", 2, "--out", folder],
            monkeypatch, capsys)
        assert code == 0, err
        rows = read_results(folder)
        assert len(rows) == 4 and {row["status"] for row in rows} == {"TERMINATED"}
        said = out + err + caplog.text
        if "[Exploit]" in said:
            break
    assert "[Exploit]" in said  # a trial took another's weights
    assert "Error handling checkpoint" not in said
    # (a worker PBT stops may print, as it exits, a traceback of Python's weak sets: not ours)
    tracebacks = re.split(r"(?=Traceback \(most recent call last\))", said)[1:]
    assert all("_weakrefset.py" in traceback for traceback in tracebacks), tracebacks


@pytest.mark.slow
def test_asha_sweep_writes_the_table_and_a_best_run_with_its_score(
        local_ray, spike_file, tmp_path, monkeypatch, capsys):
    code, out, err = run_cli(sweep_args(tmp_path, spike_file, 4) + [
        "--scheduler", "asha", "--max-concurrent", 1], monkeypatch, capsys)
    assert code == 0, err
    folder = tmp_path / "sweep"
    rows = read_results(folder)
    assert len(rows) == 4 and {row["status"] for row in rows} == {"TERMINATED"}
    # one trial at a time (Ray sees 2 CPUs): each starts (config.json) after the last one's
    # last checkpoint
    spans = sorted((os.stat(trial / "config.json").st_mtime, os.stat(trial / "checkpoint.pt")
                    .st_mtime) for trial in (folder / "trials").iterdir())
    assert all(start >= end for (_, end), (start, _) in zip(spans, spans[1:])), spans
    assert {int(row["latent_dim"]) for row in rows} <= {4, 8}
    best = max(rows, key=lambda row: float(row[BEST_SCORE]))
    assert best == rows[0]  # best first
    metrics = json.loads((folder / "best" / "metrics.json").read_text())
    assert metrics["trial"] == best["trial"]
    # its training record, as the trial's table row says (ASHA may have stopped it early)
    assert metrics["epochs"] == int(best["epochs"])
    assert metrics["best_epoch"] == torch.load(folder / "best" / "best.pt")["epoch"]
    # the same number, up to the order of float sums (the trial may use other thread counts)
    assert metrics[SCORE] == pytest.approx(float(best[BEST_SCORE]), rel=1e-6)
    assert score_run(folder / "best") == pytest.approx(float(best[BEST_SCORE]), rel=1e-6)
    assert f"best trial {best['trial']}" in out
    assert "smoothing baseline" in err  # the bars of best/'s scoring (none under --quiet)

    code, out, err = run_cli(["evaluate", folder / "best"], monkeypatch, capsys)
    assert code == 0 and "co_bps=" in out, err
    # the sweep's folder given where a run folder is wanted points to best/ (it said the folder's
    # fit had stopped before saving its settings, and to fit into it: a review)
    for command in (["evaluate", folder], ["infer", folder], ["fit", "--resume", folder]):
        code, _, err = run_cli(command, monkeypatch, capsys)
        assert code == 1 and err.strip() == (
            f"error: {folder} is a sweep's folder, not a run folder; its best trial's run folder "
            f"is {folder / 'best'} (written once every trial has finished: 'pyrolf sweep "
            f"--resume {folder}' finishes an interrupted sweep)"), err
    before = sorted(path.name for path in folder.iterdir())
    code, _, err = run_cli(["fit", "--data", spike_file, "--out", folder], monkeypatch, capsys)
    assert code == 1 and err.strip() == (f"error: {folder} holds a sweep (its sweep.json); "
                                         "choose another folder (--out)"), err
    assert sorted(path.name for path in folder.iterdir()) == before
    # new trials are laid out by the trials' layout.pt, which best/ copies: the file the sweep
    # read need not be there (it was: a review)
    assert all((trial / "layout.pt").exists() for trial in (folder / "trials").iterdir())
    new = tmp_path / "new.npz"
    np.savez(new, spikes=load_spike_file(spike_file).spikes[:5])
    away = spike_file.with_name("away" + spike_file.suffix)
    spike_file.rename(away)
    try:
        code, _, err = run_cli(["infer", folder / "best", "--data", new, "--samples", 2, "--out",
                                tmp_path / "new.nc", "--quiet"], monkeypatch, capsys)
    finally:
        away.rename(spike_file)
    assert code == 0, err

    # a finished sweep resumed keeps best/ with what was made in it (it was copied again, and
    # evaluate's metrics.json, without the trial, read as trained on since: a hostile test)
    (folder / "best" / "notes.txt").write_text("mine\n")
    code, _, err = run_cli(["evaluate", folder / "best", "--quiet"], monkeypatch, capsys)
    assert code == 0 and "trial" not in json.loads((folder / "best" / "metrics.json").read_text())
    # (stopped while best/ is scored: it says how to finish; Ray Tune's handler swallowed it)
    with monkeypatch.context() as stop:
        stop.setattr(sweep_tune, "evaluate_run", lambda *args, **kwargs: os.kill(os.getpid(),
                                                                                 signal.SIGINT))
        code, _, err = run_cli(["sweep", "--resume", folder, "--quiet"], monkeypatch, capsys)
    assert code == 130 and err.strip().splitlines()[-1] == (
        f"interrupted while {folder / 'best'} was written; every trial has finished: 'pyrolf "
        f"sweep --resume {folder}' writes it"), err
    code, out, err = run_cli(["sweep", "--resume", folder, "--quiet"], monkeypatch, capsys)
    assert code == 0 and "trained on since" not in err, err
    assert (folder / "best" / "notes.txt").read_text() == "mine\n"
    rescored = json.loads((folder / "best" / "metrics.json").read_text())
    assert rescored["trial"] == best["trial"] and rescored[SCORE] == pytest.approx(metrics[SCORE])

    # best/ trained on since the sweep wrote it is not written over by a resumed sweep
    done = json.loads((folder / "best" / "metrics.json").read_text())["epochs"]
    code, _, err = run_cli(["fit", "--resume", folder / "best", "--epochs", done + 1, "--quiet"],
                           monkeypatch, capsys)
    assert code == 0, err
    continued = (folder / "best" / "history.csv").read_text()
    code, out, err = run_cli(["sweep", "--resume", folder], monkeypatch, capsys)
    assert code == 0, err
    assert "was trained on since the sweep wrote it: left as it is" in err
    assert (folder / "best" / "history.csv").read_text() == continued

    # tune/ removed once the sweep finished (the README allows it): --resume says so (it said
    # the sweep had stopped before its first trial and to start it over, which is refused)
    shutil.rmtree(folder / "tune")
    code, _, err = run_cli(["sweep", "--resume", folder], monkeypatch, capsys)
    assert code == 1 and err.strip() == (
        f"error: {folder / 'tune'}, Ray Tune's record of the sweep, is gone, so the sweep cannot "
        "be resumed; what it found stays in results.csv, trials/ and best/"), err
    code, _, err = run_cli(sweep_args(tmp_path, spike_file, 4), monkeypatch, capsys)
    assert_one_line_error(code, err, f"{folder} already holds a sweep; its tune/ is gone, so it "
                                     "cannot go on: choose another --out")


def stopped_sweep(tmp_path, spike_file, signum, status, monkeypatch, capsys):
    """The folder of a sweep of 2 trials sent ``signum`` once a trial has a checkpoint: it
    exits with ``status`` and says how to go on."""
    folder = tmp_path / "sweep"

    def stop_after_the_first_checkpoint():
        while not list((folder / "trials").glob("*/checkpoint.pt")):
            time.sleep(0.2)
        os.kill(os.getpid(), signum)

    threading.Thread(target=stop_after_the_first_checkpoint, daemon=True).start()
    code, _, err = run_cli(sweep_args(tmp_path, spike_file, 2, epochs=10), monkeypatch, capsys)
    assert code == status, err
    assert re.search(rf"interrupted: [12] trials did not finish; continue with: pyrolf sweep "
                     rf"--resume {re.escape(str(folder))}", err), err
    return folder


@pytest.mark.slow
def test_a_sweep_stopped_by_sigterm_is_left_as_after_ctrl_c(local_ray, spike_file, tmp_path,
                                                            monkeypatch, capsys):
    """SIGTERM (a batch system's time limit) reaches Ray Tune as Ctrl-C does, so it saves its
    state and the sweep says how to go on, status 143 (it raised through Ray's loop: no
    results.csv, no word of --resume; a review)."""
    folder = stopped_sweep(tmp_path, spike_file, signal.SIGTERM, 143, monkeypatch, capsys)
    assert (folder / "results.csv").exists() and not (folder / "best").exists()


@pytest.mark.slow
def test_an_interrupted_sweep_resumes(local_ray, spike_file, tmp_path, monkeypatch, capsys):
    # Ctrl-C: Ray Tune saves its state and returns; the status says it was stopped, as a fit's
    # does (it exited 0, and `sweep && evaluate best/` went on; a review)
    folder = stopped_sweep(tmp_path, spike_file, signal.SIGINT, 130, monkeypatch, capsys)
    assert (folder / "results.csv").exists() and not (folder / "best").exists()
    # a trial stopped part-way and scored there (pyrolf evaluate): its metrics are of an epoch
    # it trains past once resumed, and go then (they stayed, stale: a review)
    stopped = [folder / row["run_folder"] for row in read_results(folder)
               if row["status"] != "TERMINATED" and row["run_folder"]]
    # said so (Ray Tune's PENDING, of a trial that had trained: a hostile test of sweeps)
    assert {row["status"] for row in read_results(folder)} <= {"TERMINATED", "unfinished"}
    assert stopped and all(row["status"] == "unfinished" for row in read_results(folder)
                           if folder / row["run_folder"] in stopped)
    for trial in stopped:
        (trial / "metrics.json").write_text('{"epochs": 1}')
    assert all(row["run_folder"] == "" or (folder / row["run_folder"]).is_dir()
               for row in read_results(folder))

    # a damaged sweep.json is one line (a traceback: a hostile test of sweeps)
    settings = (folder / "sweep.json").read_text()
    for damaged in (settings[:300], json.dumps({"config": {}})):
        (folder / "sweep.json").write_text(damaged)
        code, _, err = run_cli(["sweep", "--resume", folder], monkeypatch, capsys)
        assert code == 1 and "Traceback" not in err
        assert re.search(r"sweep.json (is not valid JSON|is not what a sweep writes)", err), err
    (folder / "sweep.json").write_text(settings)

    # the data changed meanwhile: refused, as a run folder's are, until they are put back
    original = spike_file.read_bytes()
    try:
        save_spike_file(spike_file, lorenz_dataset(seed=3, n_conditions=4, trials_per_condition=6,
                                                   n_bins=12, n_neurons=10, n_heldout=2))
        code, _, err = run_cli(["sweep", "--resume", folder], monkeypatch, capsys)
        # the module's Ray, still up, may print late lines of the interrupted trials
        assert code == 1 and "Traceback" not in err
        assert (f"error: {spike_file} has changed since the sweep {folder} was fitted on it"
                in err and "start a new sweep" in err)
    finally:
        spike_file.write_bytes(original)

    code, out, err = run_cli(["sweep", "--resume", folder, "--quiet"], monkeypatch, capsys)
    assert code == 0, err
    assert "did not finish" not in out + err and (folder / "best" / "metrics.json").exists()
    assert "smoothing baseline" not in err  # best/ scored without its bars (--quiet)
    assert stopped and not any((trial / "metrics.json").exists() for trial in stopped)
    rows = read_results(folder)
    assert len(rows) == 2 and {row["status"] for row in rows} == {"TERMINATED"}
    assert max(int(row["epochs"]) for row in rows) == 10
