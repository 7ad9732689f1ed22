"""The NLB path end to end on generated NLB-format NWB files: fit -> submission.h5 -> nlb_tools."""

import hashlib
import json
import logging
import os
import resource
import subprocess
import sys

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from nlb_tools import nwb_interface
from nlb_tools.evaluation import bits_per_spike, evaluate
from nlb_tools.nwb_interface import NWBDataset
from test_cli import assert_one_line_error, run_cli, write_config

from pyrolf.data import load_data
from pyrolf.data.dandi import DANDISETS, nwb_files
from pyrolf.data.nlb_compat import (check_pandas, nlb_tools_context, resample,
                                    quiet_test_file_nans)
from pyrolf.data.nlb_synthetic import write_nlb_files
from pyrolf.data.spikes import DataError
from pyrolf.evaluation.smoothing import smoothing_baseline

SMALL = {"latent_dim": 8, "encoder_hidden": 16, "decoder_width": 16, "decoder_feedforward": 32,
         "samples": 2, "eval_every": 1, "batch_size": 16, "kl_warmup": 1}
#: the official metrics each layout has (nlb_tools' evaluate)
METRICS = {"mc_maze": {"co_bps", "vel_r2", "psth_r2", "fp_bps"},
           # (a scaling set: nlb_tools scores it under mc_maze_scaling; its fit was scored as
           # nothing, "nlb_tools returned no scores", after training: a review)
           "mc_maze_small": {"co_bps", "vel_r2", "psth_r2", "fp_bps"},
           "mc_rtt": {"co_bps", "vel_r2", "fp_bps"},
           "area2_bump": {"co_bps", "vel_r2", "psth_r2", "fp_bps"},
           "dmfc_rsg": {"co_bps", "tp_corr", "psth_r2", "fp_bps"}}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dandi")
    for name in METRICS:
        write_nlb_files(folder, name, seed=1)
    return folder


@pytest.mark.parametrize("name", list(METRICS))
def test_fit_writes_an_official_submission_and_scores_it(name, data_dir, tmp_path, monkeypatch,
                                                          capsys):
    run = tmp_path / "run"
    code, out, err = run_cli(["fit", "--data", name, "--data-dir", data_dir, "--out", run,
                              "--epochs", "2", "--quiet",
                              "--config", write_config(tmp_path, **SMALL)], monkeypatch, capsys)
    assert code == 0, err
    metrics = json.loads((run / "metrics.json").read_text())
    assert METRICS[name] <= set(metrics)
    for key in METRICS[name] | {"smoothing_co_bps"}:
        assert np.isfinite(metrics[key]), key
    data = load_data(name, data_dir=data_dir)
    with h5py.File(run / "submission.h5", "r") as file:
        assert list(file) == [f"{name}_20"]
        group = file[f"{name}_20"]
        n_eval = len(data.splits["test"])
        assert group["eval_rates_heldout"].shape == (n_eval, data.n_observed, data.heldout.sum())
        assert group["eval_rates_heldin_forward"].shape == (n_eval, data.n_forward, data.n_heldin)
        assert group["train_rates_heldin"].shape[0] == data.extra["nlb"].n_train
        assert (group["eval_rates_heldout"][()] > 0).all()
    # the file on disk, read back by nlb_tools, gives the co-bps metrics.json holds
    targets = _targets(data)
    split = "mc_maze_scaling_20_split" if name == "mc_maze_small" else f"{name}_20_split"
    [scores] = [entry[split] for entry in evaluate(targets, str(run / "submission.h5"))
                if split in entry]
    assert scores["[100] co-bps" if name == "mc_maze_small" else "co-bps"] == pytest.approx(
        metrics["co_bps"])
    # each held-out unit's co-bps on the evaluation trials, by nlb_tools' unit id
    spikes = targets[f"{name}_20"]["eval_spikes_heldout"].astype(np.float64)
    with h5py.File(run / "submission.h5", "r") as file:
        submitted = file[f"{name}_20"]["eval_rates_heldout"][()]
    ids = data.extra["nlb"].unit_ids[data.heldout]
    assert list(metrics["co_bps_per_neuron"]) == [str(unit) for unit in ids]
    for n, unit in enumerate(ids):
        assert metrics["co_bps_per_neuron"][str(unit)] == pytest.approx(
            bits_per_spike(submitted[..., [n]].astype(np.float64), spikes[..., [n]]), rel=1e-6)
    assert set(metrics["smoothing_co_bps_per_neuron"]) == set(metrics["co_bps_per_neuron"])
    # the smoothing baseline's, of its rates of the evaluation trials (a mutation test scored
    # other trials' rates unseen)
    from pyrolf.evaluation.smoothing import smoothing_baseline

    smoothed = smoothing_baseline(data, kept=run / "smoothing.npz")["rates"]
    assert metrics["smoothing_co_bps"] == pytest.approx(bits_per_spike(
        smoothed[data.extra["nlb"].n_train:][..., data.heldout].astype(np.float64), spikes),
        rel=1e-6)
    # the persistence baseline: the submission's last evaluation bin held over the forward window
    key = f"{name}_20"
    with h5py.File(run / "submission.h5", "r") as file:
        last = np.concatenate([file[key]["eval_rates_heldin"][:, -1:],
                               file[key]["eval_rates_heldout"][:, -1:]], 2)
    forward = np.concatenate([targets[key]["eval_spikes_heldin_forward"],
                              targets[key]["eval_spikes_heldout_forward"]], 2).astype(np.float64)
    held = np.repeat(last.astype(np.float64), forward.shape[1], axis=1)  # float32 on disk
    assert metrics["persistence_fp_bps"] == pytest.approx(bits_per_spike(held, forward), rel=1e-9)


def _targets(data):
    from pyrolf.data.nlb import eval_targets
    return eval_targets(data.extra["nlb"])


def test_psth_targets_are_nlb_tools_own_made_without_a_process_pool(data_dir, monkeypatch):
    from nlb_tools.make_tensors import make_eval_target_tensors

    data = load_data("mc_maze", data_dir=data_dir)
    split = data.extra["nlb"]
    pooled = make_eval_target_tensors(split.dataset, "mc_maze", "train", "val", save_file=False,
                                      include_psth=True)["mc_maze_20"]

    def no_pool(*args, **kwargs):
        raise AssertionError("nlb_tools smoothed in a process pool")

    monkeypatch.setattr("multiprocessing.Pool", no_pool)
    made = split.targets()["mc_maze_20"]
    assert set(made) == set(pooled)
    for key in pooled:
        np.testing.assert_equal(made[key], pooled[key], err_msg=key)  # the same numbers


def test_a_bad_targets_file_stops_the_fit_before_training(data_dir, tmp_path, monkeypatch, capsys):
    bogus = tmp_path / "eval_data_test.h5"
    bogus.write_text("not hdf5")
    run = tmp_path / "run"
    code, _, err = run_cli(["fit", "--data", "mc_maze", "--data-dir", data_dir, "--phase", "test",
                            "--targets", bogus, "--out", run, "--epochs", "1", "--quiet",
                            "--config", write_config(tmp_path, **SMALL)], monkeypatch, capsys)
    assert_one_line_error(code, err, "eval_data_test.h5", "HDF5")
    assert not run.exists()
    with h5py.File(bogus, "w") as file:  # another dataset's targets: one evaluation trial
        file.create_dataset("mc_maze_20/eval_spikes_heldout", data=np.zeros((1, 35, 4)))
    code, _, err = run_cli(["fit", "--data", "mc_maze", "--data-dir", data_dir, "--phase", "test",
                            "--targets", bogus, "--out", run, "--epochs", "1", "--quiet",
                            "--config", write_config(tmp_path, **SMALL)], monkeypatch, capsys)
    assert_one_line_error(code, err, "holds 1 evaluation trials of mc_maze_20 but the data have")
    assert not run.exists()


def test_tensors_put_held_in_neurons_first_and_eval_trials_last(data_dir):
    data = load_data("mc_maze", data_dir=data_dir, bin_size_ms=20)
    split = data.extra["nlb"]
    dataset = NWBDataset(str(nwb_files("mc_maze", data_dir)[0]))
    resample(dataset, 20)
    trials = dataset.trial_info
    assert split.n_train == (trials.split == "train").sum()
    assert len(data.splits["test"]) == (trials.split == "val").sum()
    assert data.n_forward == 10 and data.n_observed == 35  # 200 ms forward, 700 ms aligned window
    assert not data.heldout[:data.n_heldin].any() and data.heldout[data.n_heldin:].all()
    # the model never sees what it must predict: eval trials hold zeros there
    evaluation = data.spikes[data.splits["test"]]
    assert (evaluation[..., data.heldout] == 0).all()
    assert (evaluation[:, data.n_observed:] == 0).all()
    assert evaluation[:, :data.n_observed, :data.n_heldin].sum() > 0
    train, valid = set(data.splits["train"]), set(data.splits["valid"])
    assert not train & valid and train | valid == set(range(split.n_train))


def test_dmfc_rsg_scores_set_to_go_of_the_training_trials_as_nlb_does(data_dir):
    """NLB's DMFC_RSG co-bps counts the bins from set to go only, in jittered windows; the
    training trials' scored bins are exactly those, in the windows their tensors hold: each
    trial's held-out spikes in them are the NWB file's between set_time and go_time."""
    data = load_data("dmfc_rsg", data_dir=data_dir)
    split = data.extra["nlb"]
    scored = data.scored_bins(np.arange(split.n_train))
    assert scored.shape == (split.n_train, data.n_observed) and 0 < scored.mean() < 1
    dataset = NWBDataset(str(nwb_files("dmfc_rsg", data_dir)[0]))
    resample(dataset, 20)
    times, held = dataset.data.index, dataset.data["heldout_spikes"].to_numpy()
    info = dataset.trial_info.set_index("trial_id").loc[split.trial_ids[:split.n_train]]
    spikes = data.spikes[:split.n_train, :data.n_observed][..., data.heldout]
    for trial, (set_time, go_time) in enumerate(zip(info.set_time, info.go_time)):
        between = held[(times >= set_time) & (times < go_time)].sum(0)
        np.testing.assert_array_equal(spikes[trial][scored[trial]].sum(0), between)
        assert np.ptp(np.flatnonzero(scored[trial])) + 1 == scored[trial].sum()  # one stretch
    assert load_data("mc_maze", data_dir=data_dir).scored_bins(np.arange(3)) is None  # all


def test_dmfc_rsg_s_scored_bins_are_cut_once_when_first_asked_not_at_every_load(data_dir,
                                                                                monkeypatch):
    """Cutting the scored bins is a second pass of nlb_tools over the training trials (3.5 s of
    8.4 s of a 1000-trial load): infer and diagnose, which never ask, do not pay it."""
    from pyrolf.data import nlb

    cuts = []
    cut = nlb.make_eval_target_tensors
    monkeypatch.setattr(nlb, "make_eval_target_tensors",
                        lambda *args, **kwargs: cuts.append(args) or cut(*args, **kwargs))
    data = load_data("dmfc_rsg", data_dir=data_dir)
    assert not cuts
    first = data.scored_bins(data.splits["valid"])
    np.testing.assert_array_equal(data.scored_bins(data.splits["valid"]), first)
    assert len(cuts) == 1 and 0 < first.mean() < 1
    # what scoring will need is made before a fit (or a sweep ships the data to its trials)
    from pyrolf.evaluation.report import prepare_scoring

    again = load_data("dmfc_rsg", data_dir=data_dir)
    prepare_scoring(again)
    assert len(cuts) == 3  # (its targets' cut and the scored bins')
    np.testing.assert_array_equal(again.scored_bins(data.splits["valid"]), first)
    assert len(cuts) == 3


def test_validation_and_the_smoothing_width_score_dmfc_rsg_bins_as_nlb_does(data_dir,
                                                                             monkeypatch):
    """The validation co-bps (which picks the kept epoch) and the smoothing baseline's choice of
    width count the validation trials' scored bins only."""
    from pyrolf import Config
    from pyrolf.evaluation import smoothing
    from pyrolf.evaluation.metrics import co_bps
    from pyrolf.inference import svi
    from pyrolf.models import build_flow
    data = load_data("dmfc_rsg", data_dir=data_dir)
    valid = data.splits["valid"]
    held = data.spikes[valid][:, :data.n_observed][..., data.heldout]
    scored = data.scored_bins(valid)
    rates = np.broadcast_to(held.mean((0, 1)), held.shape) + 0.01  # a rate a bin cannot tell
    config = Config(epochs=1, **{key: value for key, value in SMALL.items()
                                 if key not in ("eval_every", "kl_warmup")})
    trainer = svi.Trainer(build_flow(config, data.n_neurons, data.n_heldin), data, config)
    full = np.zeros((len(valid), data.n_bins, data.n_neurons), np.float32)
    full[:, :data.n_observed, data.heldout] = rates
    monkeypatch.setattr(svi, "predict_rates", lambda *args, **kwargs: torch.as_tensor(full))
    masked = np.where(scored[..., None], held, np.nan)
    assert trainer.validation_score() == pytest.approx(co_bps(rates, masked), abs=1e-6)
    assert co_bps(rates, masked) != pytest.approx(co_bps(rates, held), abs=1e-3)

    targets = []
    monkeypatch.setattr(smoothing, "co_bps", lambda rates, spikes: targets.append(spikes) or 0.0)
    smoothing.fit_smoothing(data, (0.05, 0.1), alpha=0.01)
    assert len(targets) == 2
    for target in targets:
        np.testing.assert_array_equal(np.isnan(target), ~scored[..., None] | np.isnan(held))


def test_trial_and_unit_ids_are_nlb_tools_own(data_dir):
    """The ids name the rows they stand for: nlb_tools' tensors of the trials picked by id hold
    the spikes of those rows."""
    from nlb_tools.make_tensors import make_eval_input_tensors, make_train_input_tensors

    data = load_data("mc_maze", data_dir=data_dir, bin_size_ms=20)
    split = data.extra["nlb"]
    trial_info = split.dataset.trial_info
    assert len(split.trial_ids) == data.n_trials
    assert len(set(split.trial_ids)) == data.n_trials
    rows = [3, 1, split.n_train + 2]  # two training trials and an evaluation trial
    for row in rows:
        picked = (trial_info.trial_id == split.trial_ids[row]).to_numpy()
        with nlb_tools_context():
            if row < split.n_train:
                spikes = make_train_input_tensors(split.dataset, "mc_maze", picked,
                                                  save_file=False)["train_spikes_heldin"]
            else:
                spikes = make_eval_input_tensors(split.dataset, "mc_maze", picked,
                                                 save_file=False)["eval_spikes_heldin"]
        np.testing.assert_array_equal(spikes[0], data.spikes[row, :data.n_observed,
                                                              :data.n_heldin])
    units = split.dataset.data
    np.testing.assert_array_equal(split.unit_ids, [*units["spikes"].columns,
                                                   *units["heldout_spikes"].columns])
    assert len(split.unit_ids) == data.n_neurons


def test_infer_names_nlb_trials_units_and_times(data_dir, tmp_path, monkeypatch, capsys):
    import xarray as xr

    run = tmp_path / "run"
    code, _, err = run_cli(["fit", "--data", "mc_maze", "--data-dir", data_dir, "--out", run,
                            "--epochs", "1", "--quiet",
                            "--config", write_config(tmp_path, **SMALL)], monkeypatch, capsys)
    assert code == 0, err
    code, _, err = run_cli(["infer", run, "--samples", "2"], monkeypatch, capsys)
    assert code == 0, err
    data = load_data("mc_maze", data_dir=data_dir)
    split = data.extra["nlb"]
    inferred = xr.open_dataset(run / "inferred.nc")
    np.testing.assert_array_equal(inferred["trial"], split.trial_ids)
    for name, label in (("train", "train"), ("valid", "valid"), ("test", "eval")):
        assert set(inferred["split"].values[data.splits[name]]) == {label}
    # NLB's own split beside pyrolf's (it had the same name; pyrolf's valid was "val"): the
    # evaluation trials are NLB's val trials, pyrolf's valid trials some of NLB's train trials
    assert set(inferred["nlb_split"].values[data.splits["test"]]) == {"val"}
    assert set(inferred["nlb_split"].values[data.splits["valid"]]) == {"train"}
    assert "valid (picks the best epoch)" in inferred["split"].attrs["description"]
    # time from the event nlb_tools aligns MC_Maze's trials to: each training trial's counts
    # are the session's 20 ms bins at move onset + time
    assert "move_onset_time" in inferred["time"].attrs["long_name"]
    clock = pd.to_timedelta(split.dataset.data.index).total_seconds().to_numpy()
    session = split.dataset.data["spikes"].to_numpy()
    info = split.dataset.trial_info.set_index("trial_id")
    observed = inferred["time"].values[:data.n_observed]
    for position, trial_id in enumerate(split.trial_ids[:split.n_train]):
        onset = info.loc[trial_id, "move_onset_time"].total_seconds()
        rows = np.searchsorted(clock, onset + observed - 1e-9)
        np.testing.assert_array_equal(session[rows],
                                      data.spikes[position, :data.n_observed, :session.shape[1]])
    np.testing.assert_allclose(np.diff(inferred["time"]), 0.02)
    assert inferred.attrs["bin_size_s"] == 0.02
    np.testing.assert_array_equal(inferred["neuron"], split.unit_ids)
    np.testing.assert_array_equal(inferred["heldout"], data.heldout)
    assert json.loads((run / "dynamics.json").read_text())["frequency_unit"] == "Hz"
    # each trial's trial_info, by its trial_id: conditions as they are, times in seconds
    info = split.dataset.trial_info.set_index("trial_id").loc[split.trial_ids]
    np.testing.assert_array_equal(inferred["trial_type"], info.trial_type)
    np.testing.assert_allclose(inferred["move_onset_time"], info.move_onset_time.dt.total_seconds())
    assert inferred["move_onset_time"].attrs["units"] == "s"
    assert set(inferred["split"].values) == {"train", "valid", "eval"}
    # the hand velocity nlb_tools cuts (100 ms after each bin): training trials from the train
    # tensors, evaluation trials from the targets; nothing in the forward bins
    from nlb_tools.make_tensors import make_train_input_tensors

    with nlb_tools_context():
        train = make_train_input_tensors(split.dataset, "mc_maze", "train", save_file=False,
                                         include_behavior=True)["train_behavior"]
    behavior = inferred["behavior"].values
    assert inferred["behavior"].dims == ("trial", "time", "behavior_dim")
    assert "hand_vel" in inferred["behavior"].attrs["long_name"]
    assert inferred["behavior"].attrs["units"] == "mm/s"  # the TimeSeries' unit in the file
    observed = slice(0, data.n_observed)
    np.testing.assert_allclose(behavior[:split.n_train, observed], train, rtol=1e-6)
    np.testing.assert_allclose(behavior[split.n_train:, observed],
                               _targets(data)["mc_maze_20"]["eval_behavior"], rtol=1e-6)
    assert np.isfinite(behavior[:, observed]).all()
    assert np.isnan(behavior[:, data.n_observed:]).all()
    # another NLB set, though with as many neurons (the generated ones all have 16): another
    # monkey's neurons, not the run's (a review)
    code, _, err = run_cli(["infer", run, "--data", "mc_rtt", "--samples", "2",
                            "--out", tmp_path / "rtt.nc"], monkeypatch, capsys)
    assert_one_line_error(code, err, "mc_rtt is an NLB dataset, but the run was fitted on "
                                     "mc_maze: the neurons of mc_rtt are not the run's")


def test_test_phase_trains_on_train_and_val_and_predicts_test(data_dir, tmp_path, monkeypatch,
                                                               capsys, caplog):
    with caplog.at_level(logging.WARNING):
        data = load_data("mc_maze", data_dir=data_dir, phase="test")
    # the test file holds no held-out spikes by design: nlb_tools' NaN warning is not shown
    assert not [r for r in caplog.records if "NaNs found" in r.getMessage()]
    dataset = NWBDataset(str(nwb_files("mc_maze", data_dir)[0].parent))
    assert data.extra["nlb"].n_train == dataset.trial_info.split.isin(["train", "val"]).sum()
    assert len(data.splits["test"]) == (dataset.trial_info.split == "test").sum()
    run = tmp_path / "run"
    code, _, err = run_cli(["fit", "--data", "mc_maze", "--data-dir", data_dir, "--phase", "test",
                            "--out", run, "--epochs", "1", "--quiet",
                            "--config", write_config(tmp_path, **SMALL)], monkeypatch, capsys)
    assert code == 0, err
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["phase"] == "test" and "co_bps" not in metrics  # no targets given: not scored
    assert (run / "submission.h5").exists()
    # unscored, the collapse check compares the fit's validation co-bps with the baseline's on
    # the same validation trials: one epoch learns nothing the smoothing does
    baseline = smoothing_baseline(data)
    best = max(baseline["valid_co_bps"].values())
    assert metrics["smoothing_valid_co_bps"] == pytest.approx(best)
    assert metrics["smoothing_valid_co_bps"] > 0.02 and metrics["valid_co_bps"] < 0.01
    assert metrics["collapsed"] and ("smoothing baseline" in metrics["collapse"]
                                     or "worse than each neuron's mean rate" in metrics[
                                         "collapse"])  # (one epoch: below the mean rates too)


def test_targets_nlb_tools_scores_nothing_of_are_a_data_error(monkeypatch):
    """Targets of another dataset (nlb_tools scores none of the submission): one line a user
    can act on, no traceback (it was a ValueError)."""
    from pyrolf.evaluation import nlb
    monkeypatch.setattr(nlb, "evaluate", lambda targets, submitted: [{"mc_rtt_20_split": {}}])
    with pytest.raises(DataError, match="targets file .* of this dataset and bin size"):
        nlb.score({}, {}, "mc_maze_20")


def test_nan_warnings_are_dropped_for_the_test_file_only(caplog):
    logger = logging.getLogger(nwb_interface.__name__)
    with caplog.at_level(logging.WARNING, logger=logger.name):
        with quiet_test_file_nans():
            logger.warning("NaNs found in 100.00% of `trial_data`.")
            logger.warning("Dropping hand_vel due to timestamp mismatch.")
        logger.warning("NaNs found in 3.00% of `trial_data`.")
    assert [r.getMessage() for r in caplog.records] == [
        "Dropping hand_vel due to timestamp mismatch.", "NaNs found in 3.00% of `trial_data`."]


def test_compat_refuses_pandas_3_and_resamples_with_copy_on_write_on(data_dir, monkeypatch):
    with pytest.raises(DataError, match="pandas 2"):
        check_pandas("3.0.0")
    check_pandas("2.3.3")
    train = str(nwb_files("mc_maze", data_dir)[0])
    counts = NWBDataset(train).data["spikes"].to_numpy().sum()
    with pd.option_context("mode.copy_on_write", True):
        raw = NWBDataset(train)
        with pytest.raises(ValueError, match="read-only"):  # why the shim exists
            raw.resample(20)
        dataset = NWBDataset(train)
        resample(dataset, 20)
    assert dataset.bin_width == 20
    assert np.nansum(dataset.data["spikes"].to_numpy()) == counts


@pytest.mark.parametrize("free_copies", [3.0, None, 1024])
def test_compat_smooths_on_threads_where_memory_allows(free_copies, data_dir, monkeypatch):
    """nlb_tools' smoothing for PSTHs never starts its process pool: with the memory (free
    copies of the session) it runs on threads, without it (or where the free memory is unknown)
    one column after another; both give nlb_tools' serial numbers, and nlb_tools is restored
    afterwards."""
    from nlb_tools import nwb_interface

    from pyrolf.data import nlb_compat

    train = str(nwb_files("mc_maze", data_dir)[0])
    serial = NWBDataset(train)
    serial.smooth_spk(50, overwrite=True, ignore_nans=True, parallelized=False)
    originals = nwb_interface._poolmap, NWBDataset.smooth_spk
    thread_map, threaded = nlb_compat.thread_map, []

    def no_processes(*args, **kwargs):
        raise AssertionError("a process pool was started")

    def counting_map(*args, **kwargs):
        threaded.append(True)
        return thread_map(*args, **kwargs)

    monkeypatch.setattr(nwb_interface.multiprocessing, "Pool", no_processes)
    monkeypatch.setattr(nlb_compat, "thread_map", counting_map)
    dataset = NWBDataset(train)
    copy = dataset.data.size * 8
    monkeypatch.setattr(nlb_compat, "available_memory",
                        lambda: free_copies and free_copies * copy)
    with nlb_tools_context():
        dataset.smooth_spk(50, overwrite=True, ignore_nans=True)  # parallelized by default
    assert (nwb_interface._poolmap, NWBDataset.smooth_spk) == originals
    assert threaded == ([True] if free_copies == 1024 else [])
    pd.testing.assert_frame_equal(dataset.data, serial.data)
    assert dataset.data["spikes"].notna().to_numpy().any()


def test_psth_targets_that_would_not_fit_in_memory_stop_in_one_line(data_dir, tmp_path,
                                                                     monkeypatch, capsys):
    """Smoothing the 1 ms session peaks at 2.5 or more copies of it even one column after
    another: with less memory free a fit stops before training in one line (a profile's
    MC_Maze-sized fit was killed for memory after minutes)."""
    from pyrolf.data import nlb_compat

    monkeypatch.setattr(nlb_compat, "available_memory", lambda: 1000.0)
    code, _, err = run_cli(["fit", "--data", "mc_maze", "--data-dir", data_dir, "--out",
                            tmp_path / "run", "--quiet", "--epochs", "1"], monkeypatch, capsys)
    assert_one_line_error(code, err, "PSTH targets smooth the whole session at 1 ms",
                          "this process can take 9.31e-07 GiB; free memory")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("case, fragments", [
    ("missing", ["not found", "dandi download DANDI:000128"]),
    ("unknown", ["unknown dataset"]),
    ("not_nlb", ["not hold NLB-format"]),
    ("truncated", ["truncated or corrupt"]),
])
def test_bad_nlb_data_is_one_line(case, fragments, data_dir, tmp_path, monkeypatch, capsys):
    name, folder = "mc_maze", tmp_path / "dandi"
    if case == "missing":
        folder = tmp_path / "nowhere"
    elif case == "unknown":
        name = "mc_mazee"
    else:
        source = nwb_files("mc_maze", data_dir)[0]
        target = folder / source.relative_to(data_dir)
        target.parent.mkdir(parents=True)
        if case == "truncated":
            target.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
        else:
            _write_plain_nwb(target)
    code, _, err = run_cli(["fit", "--data", name, "--data-dir", folder, "--out",
                            tmp_path / "run", "--quiet"], monkeypatch, capsys)
    assert_one_line_error(code, err, *fragments)
    assert not (tmp_path / "run").exists()


def _write_plain_nwb(path):
    """An NWB file with no units, trials or behaviour: valid NWB, not NLB."""
    from datetime import datetime, timezone

    from pynwb import NWBHDF5IO, NWBFile
    nwb = NWBFile(session_description="not nlb", identifier="x",
                  session_start_time=datetime(2020, 1, 1, tzinfo=timezone.utc))
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)


def test_data_dir_defaults_to_the_environment_variable(data_dir, monkeypatch):
    monkeypatch.setenv("PYROLF_DATA", str(data_dir))
    assert load_data("area2_bump").extra["nlb"].name == "area2_bump"
    assert set(DANDISETS) >= set(METRICS)


def test_download_without_the_dandi_client_names_the_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("shutil.which", lambda name: None)
    code, _, err = run_cli(["download", "area2_bump", "--data-dir", tmp_path], monkeypatch, capsys)
    assert_one_line_error(code, err, "pip install dandi", "dandi download DANDI:000127")


def test_a_run_keeps_its_targets_and_a_resumed_run_reads_them(data_dir, tmp_path, monkeypatch,
                                                               capsys):
    """A resumed run and ``evaluate`` read the targets the fit kept (``evaluate`` made them
    again, smoothing the whole 1 ms session: 18.9 GiB and 99 s for MC_Maze; a profile)."""
    run = tmp_path / "run"
    args = ["--data", "mc_maze", "--data-dir", data_dir, "--out", run, "--quiet",
            "--config", write_config(tmp_path, **SMALL)]
    code, _, err = run_cli(["fit", *args, "--epochs", "1"], monkeypatch, capsys)
    assert code == 0, err
    made = _targets(load_data("mc_maze", data_dir=data_dir))["mc_maze_20"]
    with h5py.File(run / "eval_targets.h5", "r") as file:
        kept = file["mc_maze_20"]
        assert set(kept) == set(made)
        for key in made:  # full precision
            np.testing.assert_equal(_rows(kept[key][()]), _rows(made[key]), err_msg=key)

    def made_again(*args, **kwargs):
        raise AssertionError("the resumed run made its targets again")

    monkeypatch.setattr("pyrolf.data.nlb.make_eval_target_tensors", made_again)
    first = json.loads((run / "metrics.json").read_text())
    code, _, err = run_cli(["fit", "--resume", run, "--epochs", "2", "--quiet"], monkeypatch, capsys)
    assert code == 0, err
    resumed = json.loads((run / "metrics.json").read_text())
    assert resumed["epochs"] == 2
    assert resumed["smoothing_co_bps"] == pytest.approx(first["smoothing_co_bps"])
    # scored on the kept targets as on freshly made ones
    [scores] = [entry["mc_maze_20_split"] for entry in
                evaluate({"mc_maze_20": made}, str(run / "submission.h5"))]
    assert scores["co-bps"] == pytest.approx(resumed["co_bps"])
    assert scores["psth R2"] == pytest.approx(resumed["psth_r2"])
    code, _, err = run_cli(["evaluate", run, "--quiet"], monkeypatch, capsys)
    assert code == 0, err
    evaluated = json.loads((run / "metrics.json").read_text())
    assert evaluated["psth_r2"] == pytest.approx(resumed["psth_r2"])


def _rows(array):
    """An array, or an object array of trial indices (per condition) as lists."""
    return [list(row) for row in array] if array.dtype == object else array


def test_an_unreadable_kept_targets_file_is_made_again(data_dir, tmp_path):
    kept = tmp_path / "eval_targets.h5"
    kept.write_text("cut short")
    from pyrolf.evaluation.nlb import keep_targets

    split = load_data("mc_maze", data_dir=data_dir).extra["nlb"]
    keep_targets(split, kept)
    with h5py.File(kept, "r") as file:
        np.testing.assert_equal(file["mc_maze_20/eval_spikes_heldout"][()],
                                split.targets()["mc_maze_20"]["eval_spikes_heldout"])


def test_lorenz_and_the_cli_do_not_import_the_nlb_stack():
    """nlb_tools' loaders, pynwb and hdmf take seconds to import; only NLB data need them."""
    import subprocess
    import sys

    code = ("import sys, pyrolf.cli.main; from pyrolf.data import load_data; load_data('lorenz');"
            "print(sorted(m for m in ('pynwb', 'hdmf', 'nlb_tools.nwb_interface') if m in sys.modules));"
            "from pyrolf.data import load_nlb; print(load_nlb.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "pyrolf.data.nlb"]


def test_a_full_disk_met_in_submission_h5_is_one_line_and_no_crash(data_dir, tmp_path,
                                                                   monkeypatch, capsys):
    """HDF5 writing submission.h5 past a file size limit (a full disk alike) printed h5py's
    tracebacks and the process crashed at exit, a segmentation fault (a file-system hostile
    test); the file is now made in memory and written by plain file I/O."""
    run = tmp_path / "run"
    code, _, err = run_cli(["fit", "--data", "mc_maze", "--data-dir", data_dir, "--out", run,
                            "--epochs", "1", "--quiet",
                            "--config", write_config(tmp_path, **SMALL)], monkeypatch, capsys)
    assert code == 0, err
    kept = {name: hashlib.sha256((run / name).read_bytes()).hexdigest()
            for name in ("submission.h5", "metrics.json")}
    size = (run / "submission.h5").stat().st_size

    def limited():  # below submission.h5, above the other files evaluate writes
        resource.setrlimit(resource.RLIMIT_FSIZE, (size // 2, size // 2))

    done = subprocess.run([sys.executable, "-c", "from pyrolf.cli.main import main; main()",
                           "evaluate", str(run), "--quiet"], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, preexec_fn=limited)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        f"error: {run / 'submission.h5'}: cannot be written (File too large) and is as it was "
        "(no file is left half written); free space or mend the folder and run the command "
        "again"]
    assert kept == {name: hashlib.sha256((run / name).read_bytes()).hexdigest() for name in kept}
    assert not list(run.glob("*.partial"))


def test_each_submission_array_is_its_trials_bins_and_neurons_of_the_rates():
    """(A mutation audit: the forward held-out array's neurons could be the held-in ones
    unseen.) 5 trials (3 training, 2 evaluation), 6 bins (4 observed, 2 forward), 5 neurons (3 held
    in first, 2 held out): rate ``100 trial + 10 bin + neuron`` names where each entry came
    from, so every array of the submission is checked against the block it must be."""
    from pyrolf.data.nlb import NLBSplit
    from pyrolf.data.spikes import SpikeData
    from pyrolf.evaluation.nlb import submission

    trials, bins, neurons, n_train, n_forward = 5, 6, 5, 3, 2
    i, t, j = np.meshgrid(np.arange(trials), np.arange(bins), np.arange(neurons), indexing="ij")
    rates = (100 * i + 10 * t + j).astype(np.float32)
    heldout = np.array([False, False, False, True, True])
    split = NLBSplit(name="mc_maze", bin_size_ms=20, phase="val", n_train=n_train, dataset=None)
    data = SpikeData(spikes=np.zeros_like(rates), heldout=heldout,
                     splits={"train": np.arange(3), "valid": np.array([], int),
                             "test": np.arange(3, 5)},
                     n_forward=n_forward, extra={"nlb": split})
    submitted = submission(rates, data)
    assert list(submitted) == ["mc_maze_20"]
    arrays = submitted["mc_maze_20"]

    def block(trial_rows, bin_rows, neuron_rows):
        return (100 * np.asarray(trial_rows)[:, None, None]
                + 10 * np.asarray(bin_rows)[None, :, None]
                + np.asarray(neuron_rows)[None, None, :])

    train, evaluation, observed, forward = [0, 1, 2], [3, 4], [0, 1, 2, 3], [4, 5]
    heldin_units, heldout_units = [0, 1, 2], [3, 4]
    expected = {
        "train_rates_heldin": block(train, observed, heldin_units),
        "train_rates_heldout": block(train, observed, heldout_units),
        "eval_rates_heldin": block(evaluation, observed, heldin_units),
        "eval_rates_heldout": block(evaluation, observed, heldout_units),
        "eval_rates_heldin_forward": block(evaluation, forward, heldin_units),
        "eval_rates_heldout_forward": block(evaluation, forward, heldout_units),
    }
    assert set(arrays) == set(expected)
    for key, values in expected.items():
        assert arrays[key].dtype == np.float32, key
        np.testing.assert_array_equal(arrays[key], values, err_msg=key)


def test_a_given_folder_comes_before_the_environment_variable_and_that_before_the_default(
        tmp_path, monkeypatch):
    from pathlib import Path

    from pyrolf.data.dandi import DATA_DIR_ENV, DEFAULT_DATA_DIR, data_dir

    given, environment = tmp_path / "given", tmp_path / "environment"
    monkeypatch.setenv(DATA_DIR_ENV, str(environment))
    assert data_dir(given) == given
    assert data_dir(str(given)) == given
    assert data_dir() == environment
    monkeypatch.delenv(DATA_DIR_ENV)
    assert data_dir() == DEFAULT_DATA_DIR
    assert data_dir("~/x") == Path.home() / "x"


def test_the_test_file_is_found_beside_the_train_file_or_is_none(tmp_path):
    subject = tmp_path / "000128" / "sub-Jenkins"
    subject.mkdir(parents=True)
    train = subject / "sub-Jenkins_ses-full_desc-train_behavior+ecephys.nwb"
    train.touch()
    assert nwb_files("mc_maze", tmp_path) == (train, None)
    test = subject / "sub-Jenkins_ses-full_desc-test_ecephys.nwb"
    test.touch()
    assert nwb_files("mc_maze", tmp_path) == (train, test)
