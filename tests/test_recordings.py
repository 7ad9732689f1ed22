"""Own recordings: NWB sessions in no NLB layout and spike-times files, cut into trials around an
event or chopped when continuous, binned as by hand, fitted end to end; bad input is one line."""

import contextlib
import dataclasses
import io
import json
import re
from datetime import datetime, timezone
from types import SimpleNamespace

import arviz as az
import h5py
import numpy as np
import pyro
import pytest
import xarray as xr
from pynwb import NWBHDF5IO, NWBFile, TimeSeries
from pynwb.ecephys import ElectricalSeries

from pyrolf.cli.main import main
from pyrolf.config import Config, ConfigError
from pyrolf.data import DataError, SpikeData, load_config_data, load_data
from pyrolf.data.chop import chop, merge
from pyrolf.data.recording_synthetic import (TRIAL_DESCRIPTIONS, simulate_recording,
                                             write_recording_nwb, write_spike_times_npz)
from pyrolf.data.recordings import bin_behavior, bin_spikes
from pyrolf.diagnostics.new_trials import new_trials, note_moved_units
from pyrolf.diagnostics.summary import posterior_summary
from pyrolf.evaluation.report import model_rates, trial_inputs
from pyrolf.pipeline import load_run
from test_cli import TINY, assert_one_line_error, run_cli

# a short fit that beats the smoothing baseline on the planted trials session (about 30 s)
FIT = ["--latent-dim", "8", "--epochs", "30", "--batch-size", "16", "--lr", "5e-3", "--quiet"]
SMALL_NETS = {"channels": 2, "encoder_hidden": 32, "decoder_width": 32,
              "decoder_feedforward": 64, "samples": 5, "eval_every": 5, "kl_warmup": 10}
ONSET = ["--align", "stim_on_time", "--window=-0.2,0.8"]


@pytest.fixture(scope="module")
def session():
    return simulate_recording(n_trials=160, n_units=40, seed=1)


@pytest.fixture(scope="module")
def files(session, tmp_path_factory):
    folder = tmp_path_factory.mktemp("recordings")
    continuous = simulate_recording(None, n_units=20, seed=2, duration_s=40.0)
    return {"nwb": write_recording_nwb(folder / "session.nwb", session),
            "npz": write_spike_times_npz(folder / "session.npz", session),
            "continuous": write_recording_nwb(folder / "continuous.nwb", continuous),
            "continuous_npz": write_spike_times_npz(folder / "continuous.npz", continuous),
            "continuous_session": continuous}


def by_hand(session, starts, n_bins, bin_s):
    """Counts ``(windows, n_bins, units)`` binned with np.histogram from the spike times."""
    return np.stack([np.stack([np.histogram(times, start + bin_s * np.arange(n_bins + 1))[0]
                               for times in session.spike_times], -1) for start in starts])


def load(path, **options):
    return load_config_data(Config(data=str(path), **options))


@pytest.mark.parametrize("kind", ["nwb", "npz"])
def test_trials_are_cut_around_the_alignment_and_binned_as_by_hand(kind, files, session):
    data = load(files[kind], align="stim_on_time", window="-0.5,0.3", condition="target",
                trials_where="outcome=correct")
    trials = session.trials
    correct = np.flatnonzero(trials.outcome == "correct")
    np.testing.assert_array_equal(data.extra["trial_ids"], correct)
    assert data.spikes.shape == (len(correct), 80, 40) and data.bin_size == 0.01
    np.testing.assert_array_equal(data.extra["unit_ids"], 100 + 7 * np.arange(40))
    starts = trials.stim_on_time.to_numpy()[correct] - 0.5
    np.testing.assert_array_equal(data.spikes, by_hand(session, starts, 80, 0.01))
    # conditions are the targets, labelled in sorted order
    assert list(data.extra["condition_values"]) == ["down", "left", "right", "up"]
    np.testing.assert_array_equal(data.extra["condition_values"][data.conditions],
                                  trials.target.to_numpy()[correct])
    assert data.heldout.sum() == 8  # a seeded 20 % of 40 units
    summary = data.extra["recording"]
    assert summary["trials"] == len(correct)
    assert summary["trials_not_matching"] == len(trials) - len(correct)
    assert summary["format"] == {"nwb": "nwb", "npz": "spike_times"}[kind]
    assert summary["window_s"] == [-0.5, 0.3]  # no float noise (0.30000000000000004)


def write_sorted_nwb(path, session):
    """``session`` as a spike sorter's NWB file: each unit labelled ``quality`` good, mua and
    noise in turn, its ``firing_rate`` (Hz) and two electrodes, the first in CA1 (even units) or
    in V1 (odd ones; electrode groups shankA and shankB); the trials table's columns as
    :func:`write_recording_nwb` writes them."""
    nwbfile = NWBFile(session_description="sorted", identifier=path.stem,
                      session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc))
    for column in session.trials.columns.drop(["start_time", "stop_time"]):
        nwbfile.add_trial_column(column, column)
    for row in session.trials.to_dict("records"):
        nwbfile.add_trial(**row)
    device = nwbfile.create_device("probe")
    groups = [nwbfile.create_electrode_group(f"shank{name}", name, area, device)
              for name, area in (("A", "CA1"), ("B", "V1"))]
    for electrode in range(4):
        nwbfile.add_electrode(group=groups[electrode % 2], location=groups[electrode % 2].location)
    nwbfile.add_unit_column("quality", "sorting label")
    nwbfile.add_unit_column("firing_rate", "mean rate (Hz)")
    duration = session.trials.stop_time.max()
    for unit, (unit_id, times) in enumerate(zip(session.unit_ids, session.spike_times)):
        nwbfile.add_unit(id=int(unit_id), spike_times=times,
                         quality=("good", "mua", "noise")[unit % 3],
                         firing_rate=len(times) / duration,
                         electrodes=[unit % 2, (unit + 1) % 4], electrode_group=groups[unit % 2])
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
    return path


def test_units_are_kept_by_the_units_and_electrodes_tables_columns(session, tmp_path):
    path = write_sorted_nwb(tmp_path / "sorted.nwb", session)
    index = np.arange(40)
    rates = np.array([len(times) for times in session.spike_times]) / session.trials.stop_time.max()
    for conditions, kept in [
            (["quality!=noise"], index % 3 != 2),
            (["quality=good", "location=CA1"], (index % 3 == 0) & (index % 2 == 0)),
            (["electrode_group=shankB"], index % 2 == 1),
            ([f"firing_rate>={np.median(rates)}"], rates >= np.median(rates))]:
        data = load(path, align="stim_on_time", window="-0.2,0.8", units_where=conditions)
        np.testing.assert_array_equal(data.extra["unit_ids"], session.unit_ids[kept])
        starts = session.trials.stim_on_time.to_numpy() - 0.2
        np.testing.assert_array_equal(data.spikes, by_hand(session, starts, 100, 0.01)[..., kept])
        assert data.extra["recording"]["units_in_file"] == 40
        assert data.extra["recording"]["units"] == kept.sum()
        assert data.extra["recording"]["units_where"] == conditions
    # the conditions of a run's config.json before units_where: one string, or none
    assert Config.from_dict({"data": "s.nwb", "trials_where": "outcome=correct"}).trials_where == [
        "outcome=correct"]
    assert Config.from_dict({"data": "s.nwb", "trials_where": None}).trials_where == []


def test_a_unit_without_an_electrode_meets_no_condition_on_the_electrodes(tmp_path):
    nwbfile = NWBFile(session_description="s", identifier="e",
                      session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc))
    device = nwbfile.create_device("probe")
    group = nwbfile.create_electrode_group("shank", "a shank", "CA1", device)
    nwbfile.add_electrode_column("imp", "impedance (kOhm)")
    for impedance in (10.0, 30.0):
        nwbfile.add_electrode(group=group, location="CA1", imp=impedance)
    for unit, electrodes in enumerate(([0], [1], [], [1])):
        nwbfile.add_unit(spike_times=np.arange(0.01 + unit / 100, 20.0, 0.05),
                         electrodes=electrodes)
    with NWBHDF5IO(str(tmp_path / "e.nwb"), "w") as io:
        io.write(nwbfile)
    # unit 2 has no electrode: NaN in a numeric column, nothing in a text one
    for condition, kept in (("imp>=20", [1, 3]), ("location=CA1", [0, 1, 3]),
                            ("imp<20", "e.nwb has 1 unit"), ("imp=nan", "e.nwb has 1 unit"),
                            ("location!=CA1",
                             "keeps no unit of e.nwb; location holds: CA1, (missing)")):
        if isinstance(kept, str):
            with pytest.raises(DataError, match=re.escape(kept)):
                load(tmp_path / "e.nwb", units_where=[condition])
        else:
            np.testing.assert_array_equal(
                load(tmp_path / "e.nwb", units_where=[condition]).extra["unit_ids"], kept)


@pytest.mark.parametrize("obs_intervals", [False, True])
def test_units_kept_without_a_spike_are_one_line(obs_intervals, tmp_path):
    """Units 2 and 3 have no spike, unit 4 spike times that are all NaN: keeping only them was a
    traceback of an empty min() (no obs_intervals) or a question about time bases of spikes from
    nan to nan s (a review, a walkthrough)."""
    nwbfile = NWBFile(session_description="s", identifier="q",
                      session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc))
    for unit in range(5):
        times = (np.arange(0.01 + unit / 100, 20.0, 0.05) if unit < 2 else
                 np.full(3, np.nan) if unit == 4 else np.array([]))
        nwbfile.add_unit(spike_times=times,
                         **({"obs_intervals": [[0.0, 20.0]]} if obs_intervals else {}))
    for start in np.arange(0.0, 19.0, 1.0):
        nwbfile.add_trial(start_time=start, stop_time=start + 0.8)
    with NWBHDF5IO(str(tmp_path / "q.nwb"), "w") as io:
        io.write(nwbfile)
    assert load(tmp_path / "q.nwb", units_where=["id<=2"]).extra["unit_ids"].tolist() == [0, 1, 2]
    with pytest.raises(DataError) as error:
        load(tmp_path / "q.nwb", units_where=["id>=2", "id<=3"])
    assert str(error.value) == ("the units (id>=2, id<=3) of q.nwb have no spike times (that are "
                                "numbers) in the file; keep units that fire (--units-where)")
    with pytest.raises(DataError) as error:
        load(tmp_path / "q.nwb", units_where=["id>=2"], align="start_time")
    assert str(error.value) == ("the units of q.nwb have no spike times (that are numbers) in "
                                "the file; keep units that fire (--units-where)")


def test_text_stored_as_bytes_is_text(session, tmp_path):
    """Some converters store text columns as fixed-length bytes: `--trials-where outcome!=correct`
    kept every trial, compared with "b'correct'" (found by a walkthrough)."""
    path = write_sorted_nwb(tmp_path / "bytes.nwb", session)
    with h5py.File(path, "a") as file:
        for column in ("intervals/trials/outcome", "units/quality"):
            attributes, values = dict(file[column].attrs), file[column][:]
            del file[column]
            stored = file.create_dataset(column, data=np.array(
                [value if isinstance(value, bytes) else value.encode() for value in values],
                dtype="S16"))
            stored.attrs.update(attributes)
    data = load(path, align="stim_on_time", window="-0.2,0.8", condition="outcome",
                trials_where=["outcome!=correct"], units_where=["quality=good"])
    np.testing.assert_array_equal(data.extra["trial_ids"],
                                  np.flatnonzero(session.trials.outcome != "correct"))
    assert list(data.extra["condition_values"]) == ["error"]
    assert data.extra["trial_table"]["outcome"].tolist() == ["error"] * data.n_trials
    np.testing.assert_array_equal(data.extra["unit_ids"], session.unit_ids[::3])
    # a spike-times file whose text was saved as bytes (from h5py, MATLAB)
    arrays = dict(np.load(write_spike_times_npz(tmp_path / "s.npz", session)))
    arrays["outcome"] = arrays["outcome"].astype("S16")
    arrays["note"] = np.array([b"caf\xe9"] * len(arrays["outcome"]))  # (latin-1: no UTF-8)
    np.savez(tmp_path / "bytes.npz", **arrays)
    data = load(tmp_path / "bytes.npz", align="stim_on_time", window="-0.2,0.8",
                condition="outcome", trials_where=["outcome!=correct"])
    assert list(data.extra["condition_values"]) == ["error"]
    assert data.extra["trial_table"]["outcome"].tolist() == ["error"] * data.n_trials
    assert set(data.extra["trial_table"]["note"]) == {"caf\ufffd"}  # (was a traceback)


def test_a_run_of_some_units_infers_another_file_by_their_ids(session, tmp_path, monkeypatch,
                                                              capsys):
    """The run keeps the units its conditions chose; new data are matched to them by id, not by
    the conditions (another day's labels need not be the same), the other units noted."""
    path, run = write_sorted_nwb(tmp_path / "sorted.nwb", session), tmp_path / "run"
    code, _, err = run_cli(["fit", "--data", path, *ONSET, "--units-where", "quality=good",
                            "--units-where", "location=CA1", "--out", run, *TINY],
                           monkeypatch, capsys)
    assert code == 0, err
    assert json.loads((run / "config.json").read_text())["units_where"] == [
        "quality=good", "location=CA1"]
    chosen = session.unit_ids[::6]  # good (every third) and in CA1 (every other)
    # another day: a unit the run does not have fell silent, which is not the run's concern
    silent = dataclasses.replace(session, spike_times=[
        times[:0] if unit == 1 else times for unit, times in enumerate(session.spike_times)])
    day2 = write_sorted_nwb(tmp_path / "day2.nwb", silent)
    code, _, err = run_cli(["infer", run, "--samples", 2, "--data", day2, "--out",
                            tmp_path / "again.nc"], monkeypatch, capsys)
    assert code == 0, err
    assert f"{40 - len(chosen)} of the data's units are not the run's and are left out" in err
    assert ("the run kept only the units that met --units-where quality=good location=CA1"
            in err)
    assert "no spike" not in err and "another place" not in err, err
    # a sorting that numbered other units so: the run's ids on other shanks, said in a note
    resorted = write_sorted_nwb(tmp_path / "resorted.nwb", dataclasses.replace(
        session, unit_ids=np.roll(session.unit_ids, 1)))
    code, _, err = run_cli(["infer", run, "--samples", 2, "--data", resorted, "--out",
                            tmp_path / "resorted.nc"], monkeypatch, capsys)
    assert code == 0, err
    assert (f"units of the data have the run's ids but another place than the run's "
            f"(electrode_group: ids {', '.join(map(str, chosen[:5]))} (and {len(chosen) - 5} "
            "more); group_name: ids") in err, err
    again = xr.open_dataset(tmp_path / "again.nc")
    np.testing.assert_array_equal(again["neuron"], chosen)
    # the Units table's columns (and the electrodes table's) come along, by unit id, so that
    # rates can be grouped by them (a walkthrough had to join the NWB table by hand)
    assert (again["unit_quality"] == "good").all() and (again["unit_location"] == "CA1").all()
    assert (again["unit_electrode_group"] == "shankA").all()
    assert (again["unit_group_name"] == "shankA").all()  # (the electrodes table's)
    rates = {unit: len(times) / session.trials.stop_time.max()
             for unit, times in zip(session.unit_ids, session.spike_times)}
    np.testing.assert_allclose(again["unit_firing_rate"], [rates[unit] for unit in chosen])
    assert again.rates.groupby("unit_quality").mean().sizes["unit_quality"] == 1
    assert "unit_spike_times" not in again.coords and "unit_electrodes" not in again.coords
    # they are the run's units: new trials from a file that says nothing of them (spike times
    # alone) get the run's columns too, as the run's own inferred.nc has them
    plain = write_spike_times_npz(tmp_path / "day2.npz", silent)
    code, _, err = run_cli(["infer", run, "--samples", 2, "--data", plain, "--out",
                            tmp_path / "plain.nc"], monkeypatch, capsys)
    assert code == 0, err
    plain = xr.open_dataset(tmp_path / "plain.nc")
    for name in ("unit_quality", "unit_location", "unit_firing_rate"):
        xr.testing.assert_equal(plain[name], again[name])
        assert plain[name].attrs == again[name].attrs
    # what the file says of each column, the electrodes table's too
    assert again["unit_quality"].attrs["description"] == "sorting label"
    assert again["unit_firing_rate"].attrs["description"] == "mean rate (Hz)"
    assert again["unit_location"].attrs["description"]  # (pynwb's own, of the electrodes')
    code, _, err = run_cli(["fit", "--data", path, *ONSET, "--units-where", "quality=god",
                            "--out", tmp_path / "none", *TINY], monkeypatch, capsys)
    assert_one_line_error(code, err, "--units-where quality=god keeps no unit of sorted.nwb",
                          "quality holds: good, mua, noise")
    code, _, err = run_cli(["fit", "--data", path, *ONSET, "--units-where", "area=CA1",
                            "--out", tmp_path / "none", *TINY], monkeypatch, capsys)
    assert_one_line_error(code, err, "no column 'area'", "quality, firing_rate", "location")
    code, _, err = run_cli(["fit", "--data", path, *ONSET, "--units-where", "firing_rate>1e9",
                            "--out", tmp_path / "none", *TINY], monkeypatch, capsys)
    assert_one_line_error(code, err, "--units-where firing_rate>1e9 keeps no unit")


def test_units_table_columns_are_matched_to_the_neurons_by_id():
    """Each neuron gets its own unit's row, whatever the order; one the table lacks (new trials
    that lack the unit) NaN or empty text."""
    from pyrolf.diagnostics.coords import unit_coords

    data = SpikeData(spikes=np.zeros((3, 2, 3), np.float32), heldout=np.array([0, 0, 1], bool),
                     splits={"train": [0], "valid": [1], "test": [2]},
                     extra={"unit_ids": np.array([3, 1, 2]), "unit_table": {
                         "id": np.array([1, 2, 9]), "quality": np.array(["a", "b", "c"]),
                         "depth": np.array([10.0, 20.0, 30.0]),
                         "waveform": np.zeros((3, 4))}})
    coords = unit_coords(data)
    assert set(coords) == {"unit_quality", "unit_depth"}  # (no column of an array per unit)
    assert coords["unit_quality"][1].tolist() == ["", "a", "b"]
    np.testing.assert_array_equal(coords["unit_depth"][1], [np.nan, 10.0, 20.0])
    assert unit_coords(dataclasses.replace(data, extra={"unit_ids": np.arange(3)})) == {}


def test_columns_of_a_list_per_unit_or_electrode_are_no_unit_coordinates(tmp_path):
    """A ragged electrodes column was read as its index's ends and written as a coordinate
    (found by a walkthrough); a unit without an electrode had the text "None"."""
    from pyrolf.diagnostics.coords import unit_coords

    recording = simulate_recording(n_trials=40, n_units=8, seed=5)
    nwbfile = NWBFile(session_description="ragged", identifier="ragged",
                      session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc))
    for column in recording.trials.columns.drop(["start_time", "stop_time"]):
        nwbfile.add_trial_column(column, column)
    for row in recording.trials.to_dict("records"):
        nwbfile.add_trial(**row)
    group = nwbfile.create_electrode_group("shank", "a shank", "CA1",
                                           nwbfile.create_device("probe"))
    nwbfile.add_electrode_column("tags", "a list per electrode", index=True)
    nwbfile.add_electrode_column("position", "an array per electrode")
    for electrode in range(8):
        nwbfile.add_electrode(group=group, location="CA1", tags=["a"] * (electrode % 3 + 1),
                              position=[float(electrode), 2.0 * electrode])
    for unit, (unit_id, times) in enumerate(zip(recording.unit_ids, recording.spike_times)):
        nwbfile.add_unit(id=int(unit_id), spike_times=times, electrodes=[unit] if unit else [])
    path = tmp_path / "ragged.nwb"
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
    data = load(path, align="stim_on_time", window="-0.2,0.8")
    coords = unit_coords(data)
    assert "unit_location" in coords and not {"unit_tags", "unit_position"} & set(coords)
    assert coords["unit_location"][1].tolist() == [""] + ["CA1"] * 7
    with pytest.raises(DataError, match="column 'tags' of the electrodes table of ragged.nwb "
                                        "holds a list per electrode"):
        load(path, align="stim_on_time", window="-0.2,0.8", units_where=["tags=a"])


def test_nwb_and_spike_times_files_give_the_same_data(files):
    options = dict(align="stim_on_time", window="-0.1,0.5", condition="target", data_seed=3)
    nwb, npz = load(files["nwb"], **options), load(files["npz"], **options)
    np.testing.assert_array_equal(nwb.spikes, npz.spikes)
    np.testing.assert_array_equal(nwb.heldout, npz.heldout)
    for split in nwb.splits:
        np.testing.assert_array_equal(nwb.splits[split], npz.splits[split])


def test_both_readers_are_spike_sources_that_read_a_session_alike(files):
    """NWB and spike-times files meet :class:`SpikeSource` (every member), with a trials
    table and without, and say the same of the same session."""
    from pyrolf.data.recordings import open_source
    from pyrolf.data.source import SpikeSource

    for with_trials, without in (("nwb", "continuous"), ("npz", "continuous_npz")):
        for name in (with_trials, without):
            with open_source(files[name]) as source:
                assert isinstance(source, SpikeSource), name
        with open_source(files[with_trials]) as source:
            assert source.n_trials == 160 and {"start_time", "stop_time"} <= set(
                source.trial_columns)
    with open_source(files["nwb"]) as nwb, open_source(files["npz"]) as npz:
        np.testing.assert_array_equal(nwb.unit_ids, npz.unit_ids)
        np.testing.assert_array_equal(nwb.spike_counts, npz.spike_counts)
        np.testing.assert_array_equal(nwb.unit_spike_times(3), npz.unit_spike_times(3))
        np.testing.assert_array_equal(nwb.trial_column("stim_on_time"),
                                      npz.trial_column("stim_on_time"))


@pytest.mark.parametrize("kind", ["nwb", "npz"])
def test_behavior_is_binned_into_the_trials_bins_as_by_hand(kind, files, session):
    data = load(files[kind], align="stim_on_time", window="-0.2,0.8", behavior="hand_vel")
    first_ms = np.round((data.extra["align_times"] - 0.2) * 1000).astype(int)
    hand = np.stack([session.behavior[ms:ms + 1000].reshape(100, 10, 2).mean(1)
                     for ms in first_ms])
    np.testing.assert_allclose(data.extra["behavior"], hand, rtol=1e-6, atol=1e-6)
    assert data.extra["recording"]["behavior"] == "hand_vel"


def test_behavior_bins_average_their_samples_and_interpolate_between_sparse_ones():
    times = np.array([0.003, 0.001, 0.012, 0.014, 0.016, 0.040])   # not sorted
    values = np.array([1.0, 3.0, 5.0, 7.0, np.nan, 9.0])           # a tracking loss at 0.016
    binned = bin_behavior(times, np.column_stack([values, -values]), np.array([0.0, -0.02]), 6,
                          0.01)
    slope = 2.0 / 0.026                                           # from (0.014, 7) to (0.040, 9)
    expected = [2.0, 6.0, 7 + 0.011 * slope, 7 + 0.021 * slope, 9.0, np.nan]
    np.testing.assert_allclose(binned[0, :, 0], expected, rtol=1e-6)
    np.testing.assert_allclose(binned[0, :, 1], -np.array(expected), rtol=1e-6)
    # the second window starts 20 ms earlier: nothing before the first sample
    np.testing.assert_allclose(binned[1, :, 0], [np.nan, np.nan, *expected[:4]], rtol=1e-6)
    # a sample on an edge, up to float rounding, opens the bin after it
    on_edge = bin_behavior(np.array([0.23]), np.ones((1, 1)), np.array([0.2]), 5, 0.01)[0, :, 0]
    np.testing.assert_array_equal(on_edge, [np.nan, np.nan, np.nan, 1.0, np.nan])


def test_behavior_is_not_interpolated_across_a_gap_in_the_series():
    """A 30 Hz series (slower than 10 ms bins) is interpolated between its samples, but not
    across a second without tracking, nor across a stretch of NaN samples (found by a hostile
    walkthrough: a 5 s gap was filled with a straight line and scored)."""
    times = np.arange(90) / 30.0
    values = times.copy()
    kept = (times < 1.0) | (times >= 2.0)           # no sample from 1 s to 2 s
    binned = bin_behavior(times[kept], values[kept, None], np.array([0.0]), 300, 0.01)[0, :, 0]
    centres = np.arange(300) * 0.01 + 0.005
    gap = (centres > times[kept][times[kept] < 1.0].max()) & (centres < 2.0)
    elsewhere = ~gap & (centres < times[-1])
    assert np.isnan(binned[gap]).all() and np.isfinite(binned[elsewhere]).all()
    np.testing.assert_allclose(binned[elsewhere], centres[elsewhere], atol=0.006)
    # the same second as NaN samples (a tracking loss), and one missed sample bridged
    lost = np.where(kept, values, np.nan)
    np.testing.assert_array_equal(np.isnan(bin_behavior(times, lost[:, None], np.array([0.0]),
                                                        300, 0.01)[0, :, 0]), np.isnan(binned))
    one_missed = np.arange(90) != 45
    assert np.isfinite(bin_behavior(times[one_missed], values[one_missed, None], np.array([0.0]),
                                    290, 0.01)).all()


def test_behavior_is_read_from_nwb_timestamps_or_rate_by_name_or_path(tmp_path):
    """A TimeSeries with timestamps in a module, one with starting_time and rate in another:
    each read by its name or path, with conversion and offset applied."""
    path = write_nwb(tmp_path / "b.nwb", TWO_UNITS, {
        "behavior": [TimeSeries(name="speed", data=np.arange(40.0), unit="m/s",
                                timestamps=0.5 + 0.025 * np.arange(40), conversion=2.0,
                                offset=1.0)],
        "eye": [TimeSeries(name="pupil", data=np.arange(100.0).reshape(50, 2), unit="mm",
                           starting_time=0.0, rate=100.0)]})
    speed = load(path, window="0,0.2", bin_size_ms=50, behavior="behavior/speed")
    # trial k's window starts at k s: samples 0.5 + 0.025 i in [k, k + 0.2) only for k >= 1
    centre_samples = (np.arange(5)[:, None] + 0.05 * np.arange(4) - 0.5) / 0.025
    expected = np.where(np.arange(5)[:, None] >= 1, 1.0 + 2.0 * (centre_samples + 0.5), np.nan)
    in_span = centre_samples.max(axis=1) <= 39
    np.testing.assert_allclose(speed.extra["behavior"][in_span, :, 0], expected[in_span])
    pupil = load(path, window="0,0.2", bin_size_ms=50, behavior="pupil").extra["behavior"]
    assert pupil.shape == (5, 4, 2)
    np.testing.assert_allclose(pupil[0, :, 0], [4.0, 14.0, 24.0, 34.0])  # 5 samples a bin
    assert np.isnan(pupil[1:]).all()                                       # after 0.5 s


def test_nwb_spike_times_are_read_a_unit_or_a_chunk_at_a_time(files, session, monkeypatch):
    """The spike_times column is never read whole: the span is scanned in chunks, and binning
    reads one unit's slice of it at a time."""
    monkeypatch.setattr("pyrolf.data.nwb.CHUNK", 5000)
    reads, read = [], h5py.Dataset.__getitem__

    def counted(dataset, key):
        values = read(dataset, key)
        if dataset.name == "/units/spike_times":
            reads.append(np.size(values))
        return values

    monkeypatch.setattr(h5py.Dataset, "__getitem__", counted)
    load(files["nwb"], align="stim_on_time", window="0,0.5")
    longest = max(len(times) for times in session.spike_times)
    total = sum(len(times) for times in session.spike_times)
    assert sum(reads) == 2 * total and len(reads) > 40  # the scan, then every unit once
    assert max(reads) <= max(5000, longest) < total / 10


def test_each_trials_column_is_read_from_the_nwb_file_once(files, monkeypatch):
    """The options that name trials columns (--align, --condition) and the trial table kept in
    the data read each column whole from the file once."""
    reads, read = [], h5py.Dataset.__getitem__

    def counted(dataset, key):
        if dataset.name.startswith("/intervals/trials/") and key == slice(None):
            reads.append(dataset.name)
        return read(dataset, key)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", counted)
    data = load(files["nwb"], align="stim_on_time", window="0,0.5", condition="target")
    assert {"stim_on_time", "target", "start_time"} <= set(data.extra["trial_table"])
    assert reads and len(reads) == len(set(reads)), sorted(reads)


def test_default_window_is_the_shortest_trial_from_its_start_in_10_ms_bins(files, session):
    data = load_data(str(files["nwb"]))
    trials = session.trials
    shortest = (trials.stop_time - trials.start_time).min()
    assert data.n_bins == int(np.floor(shortest / 0.01 + 1e-9))
    assert data.extra["window"][0] == 0.0 and data.conditions is None
    np.testing.assert_array_equal(data.spikes, by_hand(session, trials.start_time, data.n_bins,
                                                       0.01))


def test_trials_keep_their_id_in_the_nwb_trials_table_beside_their_row(files, tmp_path):
    """A trials table's ids need not be its rows (1-based, or ids left by a converter):
    inferred.nc's ``trial`` is the row and ``trial_id`` the id, each said in its long_name, so a
    join on the NWB table's index (its ids) cannot silently match the wrong trials."""
    from pyrolf.diagnostics.coords import trial_coords

    path = tmp_path / "ids.nwb"
    path.write_bytes(files["nwb"].read_bytes())
    with h5py.File(path, "r+") as file:
        file["intervals/trials/id"][:] = 1000 + 7 * np.arange(160)
    data = load(path, align="stim_on_time", window="-0.2,0.3", condition="target",
                trials_where=["outcome=correct"])
    rows = data.extra["trial_ids"]
    coords = trial_coords(data)
    np.testing.assert_array_equal(coords["trial"][1], rows)
    np.testing.assert_array_equal(coords["trial_id"][1], 1000 + 7 * rows)
    assert "row" in coords["trial"][2]["long_name"] and "id" in coords["trial_id"][2]["long_name"]
    assert "trial_id" not in trial_coords(load(files["npz"], align="stim_on_time",
                                               window="-0.2,0.3"))  # (no table of ids)
    # --trials-where chooses trials by that id too (a table without a column named `id`)
    chosen = load(path, align="stim_on_time", window="-0.2,0.3",
                  trials_where=["id=1007,1021,1035"])
    np.testing.assert_array_equal(chosen.extra["trial_ids"], [1, 3, 5])
    with pytest.raises(DataError, match="has no column 'id'"):
        load(files["npz"], align="stim_on_time", window="-0.2,0.3", trials_where=["id=1"])
    # a condition column named `condition` is that coordinate, not a second `table_condition`
    named = dataclasses.replace(data, extra={**data.extra, "recording": {
        **data.extra["recording"], "condition": "condition"}, "trial_table": {
        **data.extra["trial_table"], "condition": data.extra["condition_values"][
            data.conditions]}})
    assert "condition" in trial_coords(named) and "table_condition" not in trial_coords(named)
    unnamed = dataclasses.replace(named, conditions=None, extra={  # no --condition: it is free
        **named.extra, "recording": {**named.extra["recording"], "condition": None}})
    assert "condition" in trial_coords(unnamed) and "table_condition" not in trial_coords(unnamed)
    assert "table_condition" in trial_coords(dataclasses.replace(named, extra={
        **named.extra, "recording": {**named.extra["recording"], "condition": "target"}}))


def test_any_whole_number_of_milliseconds_is_a_bin(files, session):
    data = load(files["nwb"], align="stim_on_time", window="0,0.5", bin_size_ms=7)
    assert data.n_bins == 71 and data.bin_size == 0.007  # 0.5 s rounded down to whole bins
    assert data.extra["window"][1] == pytest.approx(0.497)
    np.testing.assert_array_equal(
        data.spikes, by_hand(session, session.trials.stim_on_time, 71, 0.007))


def test_trials_whose_window_leaves_the_recording_are_dropped_and_counted(files, session,
                                                                          capsys):
    data = load(files["nwb"], align="stop_time", window="-0.5,0.5")
    err = capsys.readouterr().err
    assert "1 of 160 trials dropped (rows 159): their window" in err  # named, as `trial` is
    assert "leaves the recording" in err
    assert data.extra["recording"]["trials_outside_recording"] == 1
    np.testing.assert_array_equal(data.extra["trial_ids"], np.arange(159))  # the last one

    no_response = session.trials.response_time.isna().sum()
    data = load(files["npz"], align="response_time", window="-0.3,0.3")
    rows = np.flatnonzero(session.trials.response_time.isna())
    assert (f"{no_response} trials without a time in response_time (NaN) left out (rows "
            f"{', '.join(map(str, rows[:5]))}") in capsys.readouterr().err
    assert data.n_trials == 160 - no_response
    assert data.extra["recording"]["trials_without_alignment"] == no_response


@pytest.mark.parametrize("kind", ["continuous", "continuous_npz"])
def test_a_recording_without_trials_is_chopped_into_windows_that_merge_back(kind, files,
                                                                            capsys):
    continuous = files["continuous_session"]
    data = load(files[kind], chop_s=0.5, overlap_s=0.3, heldout_fraction=0.25)
    assert "no trials table" in capsys.readouterr().err
    plan = data.extra["chop"]
    first = min(times[0] for times in continuous.spike_times)
    assert plan["start_time"] == pytest.approx(np.floor(first / 0.01) * 0.01)
    assert plan["bin_size"] == 0.01 and data.n_bins == 50
    whole = by_hand(continuous, [plan["start_time"]], plan["n_time"], 0.01)[0]
    windows, starts = chop(whole, 50, 30)
    np.testing.assert_array_equal(plan["starts"], starts)
    np.testing.assert_array_equal(data.spikes, windows)
    np.testing.assert_array_equal(merge(data.spikes, plan["starts"], plan["n_time"]), whole)
    last = max(times[-1] for times in continuous.spike_times)
    assert last - 0.01 < plan["start_time"] + plan["n_time"] * 0.01 <= last  # whole bins to the end
    assert data.heldout.sum() == 5 and data.conditions is None  # 25 % of 20 units


def test_continuous_chops_a_session_that_has_trials(files, session):
    data = load(files["nwb"], continuous=True, bin_size_ms=20)
    assert data.n_bins == 50 and data.extra["chop"]["bin_size"] == 0.02
    assert "trial_ids" not in data.extra


def test_run_folder_fits_evaluates_and_keeps_the_options(files, tmp_path, monkeypatch, capsys):
    """End to end on the trials session: co-bps above the smoothing baseline; evaluate rebuilds
    the same bins from config.json; the counts of trials land in metrics.json."""
    config = tmp_path / "nets.json"
    config.write_text(json.dumps(SMALL_NETS))
    run = tmp_path / "run"
    code, out, err = run_cli(["fit", "--data", files["nwb"], *ONSET, "--condition", "target",
                              "--trials-where", "outcome=correct", "--behavior", "hand_vel",
                              "--config", config, "--out", run, *FIT], monkeypatch, capsys)
    assert code == 0, err
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["co_bps"] > metrics["smoothing_co_bps"] + 0.02, metrics
    assert metrics["recording"]["trials_not_matching"] > 0
    # each held-out unit's co-bps, by its id; weighted by its test spikes they give co_bps
    data = load_run(run)[2]
    heldout_ids = data.extra["unit_ids"][data.heldout]
    counts = data.spikes[data.splits["test"]][..., data.heldout].sum(axis=(0, 1))
    # the condition-averaged rates of the test trials follow the conditions' PSTHs
    assert 0.2 < metrics["psth_r2"] <= 1
    # the planted hand velocity, a linear map of the latents, is decoded from the rates
    assert metrics["behavior_r2"] > 0.4 and metrics["recording"]["behavior"] == "hand_vel"
    for prefix in ("", "smoothing_"):
        per_neuron = metrics[f"{prefix}co_bps_per_neuron"]
        assert list(per_neuron) == [str(unit) for unit in heldout_ids]
        assert np.dot(list(per_neuron.values()), counts) / counts.sum() == pytest.approx(
            metrics[f"{prefix}co_bps"], rel=1e-9)
    saved = json.loads((run / "config.json").read_text())
    assert saved["align"] == "stim_on_time" and saved["window"] == "-0.2,0.8"
    assert saved["trials_where"] == ["outcome=correct"] and saved["data"] == str(files["nwb"])
    assert json.loads((run / "source.json").read_text())["bytes"] == files["nwb"].stat().st_size
    (run / "metrics.json").unlink()
    code, _, err = run_cli(["evaluate", run], monkeypatch, capsys)
    assert code == 0, err
    assert json.loads((run / "metrics.json").read_text())["co_bps"] == pytest.approx(
        metrics["co_bps"])


def cli(*args):
    """``pyrolf ARGS`` outside a test's monkeypatch and capsys (module fixtures): its exit code
    and what it printed."""
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out):
        patch.setattr("sys.argv", ["pyrolf", *map(str, args)])
        with pytest.raises(SystemExit) as exit_info:
            main()
            raise SystemExit(0)
    return exit_info.value.code, out.getvalue()


@pytest.fixture(scope="module")
def continuous_run(files, tmp_path_factory):
    """``pyrolf fit`` (tiny) on the continuous session chopped into 0.5 s windows, then
    ``pyrolf infer --samples 5``."""
    run = tmp_path_factory.mktemp("continuous") / "run"
    code, out = cli("fit", "--data", files["continuous"], "--chop", "0.5", "--behavior",
                    "hand_vel", "--out", run, *TINY)
    assert code == 0, out
    code, out = cli("infer", run, "--samples", 5)
    assert code == 0, out
    return SimpleNamespace(path=run, out=out)


def test_trials_session_fits_and_infers_with_its_trial_and_unit_ids(files, session, tmp_path,
                                                                   monkeypatch, capsys):
    """fit -> infer on the trials session: trial ids are the trials table's rows, neurons the
    unit ids, time seconds from the alignment; --data of the same trials as a spike-times file
    is cut by the run's options into the same bins and gets the same rates."""
    run = tmp_path / "run"
    code, _, err = run_cli(["fit", "--data", files["nwb"], *ONSET, "--condition", "target",
                            "--trials-where", "outcome=correct", "--behavior", "hand_vel",
                            "--out", run, *TINY], monkeypatch, capsys)
    assert code == 0, err
    code, out, err = run_cli(["infer", run, "--samples", 5], monkeypatch, capsys)
    assert code == 0, err
    correct = np.flatnonzero(session.trials.outcome == "correct")
    assert f"inferred {len(correct)} trials" in out
    inferred = xr.open_dataset(run / "inferred.nc")
    assert inferred["rates"].dims == ("trial", "time", "neuron")
    np.testing.assert_array_equal(inferred["trial"], correct)
    np.testing.assert_array_equal(inferred["neuron"], 100 + 7 * np.arange(40))
    assert "Units table's id" in inferred["neuron"].attrs["long_name"]
    assert "row in the file's trials table" in inferred["trial"].attrs["long_name"]
    for name in ("condition", "heldout", "latent", "time", "split"):
        assert set(inferred[name].attrs) & {"long_name", "description"}, name
    np.testing.assert_allclose(inferred["time"], -0.2 + 0.01 * np.arange(100), atol=1e-12)
    assert inferred["time"].attrs["units"] == "s" and "stim_on_time" in inferred[
        "time"].attrs["long_name"]
    # a bin's start is the number it is written as: selecting by it finds every bin
    for at in ("-0.18", "-0.09", "0.07", "0.29", "0.57", "0.79"):
        assert inferred["rates"].sel(time=float(at)).sizes == {"trial": len(correct),
                                                                  "neuron": 40}
    np.testing.assert_array_equal(inferred["condition"], session.trials.target[correct])
    # the trials table's columns of the kept trials, as trial coordinates
    np.testing.assert_array_equal(inferred["outcome"], ["correct"] * len(correct))
    np.testing.assert_array_equal(inferred["target"], session.trials.target[correct])
    np.testing.assert_allclose(inferred["response_time"], session.trials.response_time[correct])
    assert inferred["response_time"].attrs["units"] == "s"  # NWB's *_time columns: seconds
    assert "units" not in inferred["target"].attrs
    # what the file says of each column (a walkthrough: every one read 'trials-table column')
    for name in ("outcome", "target", "response_time", "stim_on_time"):
        assert inferred[name].attrs["description"] == TRIAL_DESCRIPTIONS[name]
    assert inferred["rates"].attrs["units"] == inferred["rates_upper"].attrs["units"] == "spikes/bin"
    np.testing.assert_array_equal(inferred["latent"], np.arange(inferred.sizes["latent"]))
    behavior = load(files["nwb"], align="stim_on_time", window="-0.2,0.8",
                    trials_where="outcome=correct", behavior="hand_vel").extra["behavior"]
    assert inferred["behavior"].dims == ("trial", "time", "behavior_dim")
    np.testing.assert_array_equal(inferred["behavior"], behavior)
    assert inferred["behavior"].attrs["units"] == "a.u."  # the NWB TimeSeries' unit
    assert inferred.attrs["bin_size_s"] == 0.01
    assert set(inferred["split"].values) == {"train", "valid", "test"}
    assert json.loads((run / "dynamics.json").read_text())["frequency_unit"] == "Hz"
    # diagnose names the trials, times and units as inferred.nc does, and takes trial ids
    code, _, err = run_cli(["diagnose", run, "--samples", 25], monkeypatch, capsys)
    assert code == 0, err
    test = inferred["trial"].values[inferred["split"].values == "test"]
    posterior = az.from_netcdf(run / "posterior.nc")
    np.testing.assert_array_equal(posterior["posterior"]["trial"], test)
    # and says what it is of, as inferred.nc does
    for key in ("config", "bin_size_s", "source", "pyrolf_version", "weights"):
        assert posterior["posterior"].attrs[key] == inferred.attrs[key], key
    assert json.loads((run / "diagnostics.json").read_text())["trials"] == test.tolist()
    picked = [int(test[-1]), int(correct[0])]
    code, _, err = run_cli(["diagnose", run, "--samples", 25, "--trials",
                            ",".join(map(str, picked))], monkeypatch, capsys)
    assert code == 0, err
    posterior = az.from_netcdf(run / "posterior.nc")
    observed = posterior["observed_data"]["spikes"]
    np.testing.assert_array_equal(observed["trial"], picked)
    np.testing.assert_array_equal(observed["neuron"], inferred["neuron"])
    np.testing.assert_array_equal(observed["heldout"], inferred["heldout"])
    np.testing.assert_allclose(posterior["posterior"]["time"], inferred["time"])
    assert posterior["posterior"]["time"].attrs["units"] == "s"
    # and carries the trials' conditions, trials-table columns and the forward flags, so draws
    # group by condition without inferred.nc
    for name in ("target", "response_time", "split"):
        np.testing.assert_array_equal(posterior["posterior"][name],
                                      inferred[name].sel(trial=picked))
    np.testing.assert_array_equal(posterior["posterior"]["forward"], inferred["forward"])
    own = load(files["nwb"], align="stim_on_time", window="-0.2,0.8",
               trials_where="outcome=correct")
    rows = [int(np.flatnonzero(correct == trial)[0]) for trial in picked]
    np.testing.assert_array_equal(observed.values, own.spikes[rows])
    error = int(np.flatnonzero(session.trials.outcome != "correct")[0])
    code, _, err = run_cli(["diagnose", run, "--samples", 25, "--trials", f"{error},"],
                           monkeypatch, capsys)
    assert_one_line_error(code, err, f"no trial {error} in the data (row {error} of the trials "
                          "table was left out: see `recording` in metrics.json")
    code, _, err = run_cli(["infer", run, "--samples", 5, "--data", files["npz"], "--out",
                            tmp_path / "npz.nc"], monkeypatch, capsys)
    assert code == 0, err
    other = xr.open_dataset(tmp_path / "npz.nc")
    assert set(other["split"].values) == {"new"}
    np.testing.assert_array_equal(other["trial"], correct)
    np.testing.assert_array_equal(other["neuron"], inferred["neuron"])
    np.testing.assert_allclose(other["rates"], inferred["rates"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(other["behavior"], behavior, rtol=1e-6, atol=1e-7)
    # new trials without the run's behaviour are inferred all the same, with a note
    bare = tmp_path / "bare.npz"
    with np.load(files["npz"]) as archive:
        np.savez(bare, **{name: archive[name] for name in archive.files
                          if not name.startswith("hand_vel")})
    code, _, err = run_cli(["infer", run, "--samples", 5, "--data", bare, "--out",
                            tmp_path / "bare.nc"], monkeypatch, capsys)
    assert code == 0, err
    assert "note: --behavior hand_vel" in err and "inferring without it" in err
    without = xr.open_dataset(tmp_path / "bare.nc")
    assert "behavior" not in without
    np.testing.assert_allclose(without["rates"], inferred["rates"], rtol=1e-5, atol=1e-7)
    renamed = write_spike_times_npz(tmp_path / "renamed.npz", dataclasses.replace(
        session, unit_ids=np.where(session.unit_ids == 107, 9999, session.unit_ids)))
    code, _, err = run_cli(["infer", run, "--samples", 5, "--data", renamed, "--out",
                            tmp_path / "renamed.nc"], monkeypatch, capsys)
    assert code == 0, err
    # a held-in unit lost on another day: filled from what the run infers of it, and flagged
    assert "the data lack 1 of the run's" in err and "held-in units (ids 107)" in err
    assert "1 of the data's units is not the run's and is left out (ids 9999)" in err
    renamed = xr.open_dataset(tmp_path / "renamed.nc")
    np.testing.assert_array_equal(renamed["in_data"], renamed["neuron"] != 107)
    np.testing.assert_array_equal(other["in_data"], True)
    # most held-in units missing is refused
    few = write_spike_times_npz(tmp_path / "few.npz", dataclasses.replace(
        session, unit_ids=np.where(session.unit_ids < 250, session.unit_ids + 5000,
                                   session.unit_ids)))
    code, _, err = run_cli(["infer", run, "--samples", 5, "--data", few, "--out",
                            tmp_path / "few.nc"], monkeypatch, capsys)
    assert_one_line_error(code, err, "of the run's", "held-in units (they lack ids",
                          "at least 50% are there", "the data's units the run has not are ids "
                          "5100, 5107", "a new spike sorting's ids name other units")
    assert not (tmp_path / "few.nc").exists()


def test_new_trials_are_cut_by_the_run_s_own_window_and_errors_say_its_settings_were_used(
        files, session, tmp_path, monkeypatch, capsys):
    """A run fitted without --window cut its trials to its own shortest trial; another day's
    file, whose shortest trial is shorter, is cut the same (it was cut shorter: other bins than
    the model's). A run's setting the new file cannot meet says it is the run's."""
    run = tmp_path / "run"
    code, _, err = run_cli(["fit", "--data", files["npz"], "--trials-where", "outcome=correct",
                            "--out", run, *TINY], monkeypatch, capsys)
    assert code == 0, err
    bins = load(files["npz"], trials_where=["outcome=correct"]).n_bins
    trials = session.trials.copy()
    trials.loc[5, "stop_time"] = trials.start_time[5] + 0.3  # a short trial on day 2
    day2 = write_spike_times_npz(tmp_path / "day2.npz", dataclasses.replace(session,
                                                                            trials=trials))
    code, _, err = run_cli(["infer", run, "--samples", 2, "--data", day2, "--out",
                            tmp_path / "day2.nc"], monkeypatch, capsys)
    assert code == 0, err
    assert xr.open_dataset(tmp_path / "day2.nc").sizes["time"] == bins
    bare = write_spike_times_npz(tmp_path / "bare.npz", dataclasses.replace(
        session, trials=trials.drop(columns="outcome")))
    code, _, err = run_cli(["infer", run, "--samples", 2, "--data", bare, "--out",
                            tmp_path / "bare.nc"], monkeypatch, capsys)
    assert_one_line_error(code, err, "--trials-where outcome", "no column 'outcome'",
                          "is read with the run's settings, its config.json's")
    # infer's own --trials-where replaces the run's: every trial, or others
    code, _, err = run_cli(["infer", run, "--samples", 2, "--data", bare, "--trials-where",
                            "all", "--out", tmp_path / "bare.nc"], monkeypatch, capsys)
    assert code == 0, err
    assert xr.open_dataset(tmp_path / "bare.nc").sizes["trial"] == len(trials)
    code, _, err = run_cli(["infer", run, "--samples", 2, "--data", day2, "--trials-where",
                            "outcome!=correct", "--out", tmp_path / "errors.nc"], monkeypatch,
                           capsys)
    assert code == 0, err
    np.testing.assert_array_equal(xr.open_dataset(tmp_path / "errors.nc")["trial"],
                                  np.flatnonzero(trials.outcome != "correct"))
    code, _, err = run_cli(["infer", run, "--trials-where", "outcome=error"], monkeypatch,
                           capsys)
    assert_one_line_error(code, err, "--trials-where chooses among new trials", "give --data")
    code, _, err = run_cli(["infer", run, "--data", day2, "--trials-where", "outcome",
                            "--out", tmp_path / "no.nc"], monkeypatch, capsys)
    assert_one_line_error(code, err, "is no condition")


def test_new_trials_are_matched_to_the_run_by_unit_id_in_any_order():
    """Units given in another order are put back in the run's (all units, or only its held-in
    ones); units the run does not have are left out, with a note; a held-in unit missing is
    refused, naming the ids."""
    rng = np.random.default_rng(0)
    ids, heldout = np.array([10, 20, 30, 40]), np.array([False, True, False, False])
    spikes = rng.poisson(2.0, (3, 5, 4)).astype(np.float32)
    splits = {"train": np.arange(3)}

    def given(order):
        return SpikeData(spikes=spikes[..., order], heldout=np.zeros(len(order), bool),
                         splits=splits, extra={"unit_ids": ids[order]})

    full = new_trials(given([2, 0, 3, 1]), heldout, ids)
    np.testing.assert_array_equal(full.spikes, spikes)
    np.testing.assert_array_equal(full.extra["unit_ids"], ids)
    held_in = new_trials(given([3, 2, 0]), heldout, ids)
    np.testing.assert_array_equal(held_in.spikes[..., ~heldout], spikes[..., ~heldout])
    assert np.isnan(held_in.spikes[..., heldout]).all()  # (zeros once filled: never read)
    np.testing.assert_array_equal(held_in.extra["unit_ids"], ids)
    assert held_in.extra["in_data"].tolist() == [True, False, True, True]
    # a held-in unit missing: all the run's units, NaN for it (filled later), flagged
    stranger = given([0, 1, 2, 3])
    stranger.extra["unit_ids"] = np.array([10, 20, 30, 50])
    with contextlib.redirect_stderr(io.StringIO()) as err:
        lost = new_trials(stranger, heldout, ids)
    assert "the data lack 1 of the run's 3 held-in units (ids 40)" in err.getvalue()
    assert "1 of the data's units is not the run's and is left out (ids 50)" in err.getvalue()
    np.testing.assert_array_equal(lost.spikes[..., :3], spikes[..., :3])
    assert np.isnan(lost.spikes[..., 3]).all()
    assert lost.extra["in_data"].tolist() == [True, True, True, False]
    with contextlib.redirect_stderr(io.StringIO()) as err:
        both = new_trials(given([0, 2]), heldout, ids)
    assert "; they lack held-out ids 20 too" in err.getvalue()
    assert both.extra["in_data"].tolist() == [True, False, True, False]
    with pytest.raises(DataError, match=r"hold 1 of the run's 3 held-in units \(they lack ids "
                                        r"30, 40\).*at least 50% are there"):
        new_trials(given([0]), heldout, ids)
    # a unit more, anywhere: the run's are picked by id, the other left out with a note
    more = SpikeData(spikes=np.concatenate([spikes[..., :2], 7 + spikes[..., :1],
                                            spikes[..., 2:]], -1),
                     heldout=np.zeros(5, bool), splits=splits,
                     extra={"unit_ids": np.array([10, 20, 99, 30, 40])})
    with contextlib.redirect_stderr(io.StringIO()) as err:
        picked = new_trials(more, heldout, ids)
    assert "1 of the data's units is not the run's and is left out (ids 99)" in err.getvalue()
    np.testing.assert_array_equal(picked.spikes, spikes)
    np.testing.assert_array_equal(picked.extra["unit_ids"], ids)
    with contextlib.redirect_stderr(io.StringIO()) as err:  # and beside only the held-in ones
        picked = new_trials(SpikeData(spikes=more.spikes[..., [0, 2, 3, 4]],
                                      heldout=np.zeros(4, bool), splits=splits,
                                      extra={"unit_ids": np.array([10, 99, 30, 40])}),
                            heldout, ids)
    np.testing.assert_array_equal(picked.spikes[..., ~heldout], spikes[..., ~heldout])
    assert np.isnan(picked.spikes[..., heldout]).all()
    assert ("the data lack 1 of the run's held-out units (ids 20): their rates are inferred from "
            "the held-in units") in err.getvalue() and "neurons are read as" not in err.getvalue()
    # a unit recorded in none of the bins (its obs_intervals: all NaN) is one the data lack; one
    # recorded in some is there, its NaN kept
    counts = spikes.copy()
    counts[..., 2], counts[:1, :, 3] = np.nan, np.nan
    unrecorded = dataclasses.replace(given([0, 1, 2, 3]), spikes=counts,
                                     extra={"unit_ids": ids})
    with contextlib.redirect_stderr(io.StringIO()) as err:
        read = new_trials(unrecorded, heldout, ids)
    assert read.extra["in_data"].tolist() == [True, True, False, True]
    np.testing.assert_array_equal(read.spikes[..., 3], counts[..., 3])
    assert ("(ids 30; of those, ids 30 are in the file but recorded in none of the trials "
            "(obs_intervals))") in err.getvalue()


def test_a_continuous_run_s_posterior_draws_place_each_window_in_the_recording(
        continuous_run):
    """posterior.nc's ``trial`` of a continuous run is a window: its attributes give each one's
    start in the file, as inferred.nc's do, and ``time`` says it runs from the window's start."""
    run = continuous_run.path
    code, out = cli("diagnose", run, "--samples", 25, "--trials", 3)
    assert code == 0, out
    posterior = az.from_netcdf(run / "posterior.nc")["posterior"]
    inferred = xr.open_dataset(run / "inferred.nc")
    np.testing.assert_array_equal(posterior.attrs["window_start_s"],
                                  inferred.attrs["window_start_s"][posterior["trial"].values])
    assert "window's start" in posterior["time"].attrs["long_name"]
    assert posterior.attrs["bin_size_s"] == inferred.attrs["bin_size_s"] == 0.01


def test_continuous_recording_fits_and_infers_one_series_over_the_session(continuous_run, files):
    """fit -> infer on the continuous session: inferred.nc is (time, latent) / (time, neuron)
    over the whole recording in seconds, and every variable is the merge of the per-window
    posterior summaries (the same draws: same seed)."""
    run = continuous_run.path
    metrics = json.loads((run / "metrics.json").read_text())
    assert np.isfinite(metrics["co_bps"]) and metrics["recording"]["window_bins"] == 50
    saved = json.loads((run / "config.json").read_text())
    # no trials table: chopped, and said so, so that new data, trials table or not, are chopped too
    assert saved["chop_s"] == 0.5 and saved["continuous"] is True
    flow, config, data = load_run(run)
    plan = data.extra["chop"]
    assert f"inferred {data.n_trials} windows merged into {plan['n_time']} bins" in \
        continuous_run.out
    inferred = xr.open_dataset(run / "inferred.nc")
    assert dict(inferred.sizes) == {"time": plan["n_time"], "latent": config.latent_dim,
                                    "neuron": 20, "behavior_dim": 2}
    for name in ("z", "v", "inputs", "rates"):
        for key in (name, f"{name}_lower", f"{name}_upper"):
            assert inferred[key].dims == ("time", "neuron" if name == "rates" else "latent")
    # labelled as a trial run's: z.sel(latent=0) works on both
    np.testing.assert_array_equal(inferred["latent"], np.arange(config.latent_dim))
    time = inferred["time"].values
    np.testing.assert_allclose(time, plan["start_time"] + 0.01 * np.arange(plan["n_time"]),
                               atol=1e-9)
    np.testing.assert_array_equal(time, np.round(time, 9))  # (.sel by the number written)
    assert inferred["time"].attrs["units"] == "s"
    assert inferred["forward"].dims == ("time",) and not inferred["forward"].any()  # none asked
    spikes = files["continuous_session"].spike_times
    first, last = min(t[0] for t in spikes), max(t[-1] for t in spikes)
    assert time[0] <= first < time[0] + 0.01 and last - 0.01 < time[-1] + 0.01 <= last
    np.testing.assert_array_equal(inferred["neuron"], data.extra["unit_ids"])
    pyro.set_rng_seed(config.seed)
    summary = posterior_summary(flow, trial_inputs(data, np.arange(data.n_trials)), data.n_bins,
                                5)
    for key, windows in summary.items():
        np.testing.assert_array_equal(inferred[key].values,
                                      merge(windows, plan["starts"], plan["n_time"]), key)
    # merged as they are reduced, a few windows at a time (here 2), none kept: the same series
    inputs = trial_inputs(data, np.arange(data.n_trials))
    pyro.set_rng_seed(config.seed)
    summary = posterior_summary(flow, inputs, data.n_bins, 5, draws_per_pass=10)
    pyro.set_rng_seed(config.seed)
    merged = posterior_summary(flow, inputs, data.n_bins, 5, draws_per_pass=10,
                               chop={**plan, "observed": data.n_observed})
    assert set(merged) == set(summary)
    for key, windows in summary.items():
        assert merged[key].shape == (plan["n_time"], *windows.shape[2:])
        np.testing.assert_array_equal(merged[key], merge(windows, plan["starts"], plan["n_time"]),
                                      key)
    pyro.set_rng_seed(config.seed)
    rates = model_rates(flow, data, np.arange(data.n_trials), samples=5)
    np.testing.assert_allclose(inferred["rates"].values,
                               merge(rates, plan["starts"], plan["n_time"]), rtol=1e-5, atol=1e-7)
    split = np.empty(data.n_trials, dtype=object)
    for name, indices in data.splits.items():
        split[indices] = name
    np.testing.assert_array_equal(inferred["split"], split[inferred["window"].values])
    # the behaviour merged back is the whole recording's, binned in one go
    behavior = files["continuous_session"].behavior
    whole = bin_behavior(np.arange(len(behavior)) / 1000, behavior,
                         np.array([plan["start_time"]]), plan["n_time"], 0.01)[0]
    assert inferred["behavior"].dims == ("time", "behavior_dim")
    np.testing.assert_array_equal(inferred["behavior"], whole)


def test_every_bin_of_the_merged_series_comes_from_the_nearest_window_that_covers_it(
        continuous_run):
    inferred = xr.open_dataset(continuous_run.path / "inferred.nc")
    starts = np.round((inferred.attrs["window_start_s"] - inferred["time"].values[0])
                      / 0.01).astype(int)
    width, bins = inferred.attrs["window_bins"], np.arange(inferred.sizes["time"])
    window = inferred["window"].values
    assert np.all(starts[window] <= bins) and np.all(bins < starts[window] + width)
    assert set(window) == set(range(len(starts)))  # every window contributes
    distance = np.abs(bins[:, None] + 0.5 - (starts[None] + width / 2))
    covers = (starts[None] <= bins[:, None]) & (bins[:, None] < starts[None] + width)
    np.testing.assert_allclose(distance[bins, window], np.where(covers, distance, np.inf).min(1))
    for name in inferred.data_vars:
        assert np.isfinite(inferred[name].values).all(), name
    assert (inferred["rates_lower"] <= inferred["rates"]).all()
    assert (inferred["rates"] <= inferred["rates_upper"]).all()


def test_another_continuous_file_is_chopped_by_the_run_s_options_and_merged(continuous_run,
                                                                           files, tmp_path,
                                                                           monkeypatch, capsys):
    code, _, err = run_cli(["infer", continuous_run.path, "--samples", 5, "--data",
                            files["continuous_npz"], "--out", tmp_path / "npz.nc"],
                           monkeypatch, capsys)
    assert code == 0, err
    other = xr.open_dataset(tmp_path / "npz.nc")
    inferred = xr.open_dataset(continuous_run.path / "inferred.nc")
    assert set(other["split"].values) == {"new"}
    # the merged series keeps the coordinates along neuron the windows had (in_data was lost)
    assert other["in_data"].dims == ("neuron",) and bool(other["in_data"].all())
    np.testing.assert_array_equal(other["time"], inferred["time"])
    np.testing.assert_allclose(other["rates"], inferred["rates"], rtol=1e-5, atol=1e-7)


#: two units spiking through the 5 trials of :func:`write_nwb`
TWO_UNITS = [{"spike_times": np.arange(0.05, 5.0, 0.1)}, {"spike_times": np.arange(0.1, 5.0, 0.2)}]


def write_nwb(path, units=None, series=None, voltages=False, length=0.8):
    """A small NWB file: ``units`` rows of keyword arguments to ``add_unit`` (``None``: no Units
    table), a trials table of 5 trials of ``length`` s, one a second, with an ``outcome`` column,
    ``series`` (processing module name -> its TimeSeries) and, with ``voltages``, an
    ElectricalSeries ``lfp`` of two electrodes in ``acquisition``."""
    nwbfile = NWBFile(session_description="bad", identifier=path.stem,
                      session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc))
    nwbfile.add_trial_column("outcome", "correct or error")
    for trial in range(5):
        nwbfile.add_trial(start_time=float(trial), stop_time=trial + length, outcome="correct")
    if units is not None:
        if units and "quality" in units[0]:
            nwbfile.add_unit_column("quality", "sorting quality")
        for row in units:
            nwbfile.add_unit(**row)
    if voltages:
        device = nwbfile.create_device("probe")
        group = nwbfile.create_electrode_group("shank", "a shank", "cortex", device)
        for _ in range(2):
            nwbfile.add_electrode(group=group, location="cortex")
        nwbfile.add_acquisition(ElectricalSeries(
            name="lfp", data=np.zeros((100, 2)), rate=1000.0,
            electrodes=nwbfile.create_electrode_table_region([0, 1], "both")))
    for module, contents in (series or {}).items():
        nwbfile.create_processing_module(module, module).add(contents)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
    return path


@pytest.mark.parametrize("case, args, fragments", [
    ("no_units", [], ["has no Units table"]),
    ("no_spike_times", [], ["Units table", "has no spikes", "quality"]),
    ("empty_units", [], ["Units table", "has no spikes"]),
    ("empty_npz", [], ["holds no spikes"]),
    ("empty_trials", [], ["has no trials", "--continuous"]),
    ("npz_without_unit_ids", [], ["needs `unit_ids`"]),
    ("npz_start_only", [], ["only one of `trial_start` and `trial_stop`"]),
    ("folder_nwb", [], ["adir.nwb is a directory, not a recording"]),
    ("npz_short_stop", [], ["`trial_start` (3,) and `trial_stop` (2,)", "of one length"]),
    ("npz_short_start", [], ["`trial_start` (2,) and `trial_stop` (3,)", "of one length"]),
    ("events", [], ["trial 0 of events.nwb", "ends at its start_time", "--window"]),
    ("session", ["--align", "go_cue_time"],
     ["--align go_cue_time", "no column 'go_cue_time'", "stim_on_time, response_time, target"]),
    ("session", ["--condition", "direction"], ["no column 'direction'", "outcome"]),
    ("npz", ["--trials-where", "reward=1"], ["no column 'reward'", "stim_on_time"]),
    ("session", ["--align", "stim_on_time", "--window", "0,80"],
     ["--window 0,80 (80 s) is over 10 times longer than every trial", "longest lasts 1.4"]),
    ("session", [*ONSET, "--bin", "2000"], ["--bin 2000 ms is wider than the window (1 s)"]),
    ("continuous", ["--bin", "1500"], ["--bin 1500 ms is too wide", "--chop 1"]),
    ("session", ["--trials-where", "outcome=corect"],
     ["--trials-where outcome=corect keeps no trial", "outcome holds: correct, error"]),
    ("continuous", ["--align", "stim_on_time"], ["no trials table", "align"]),
    ("session", ["--window", "0.8,-0.2"], ["window must be START,STOP"]),
    ("session", ["--trials-where", "outcome"],
     ["trials_where: 'outcome' is no condition COLUMN=VALUE"]),
    ("session", ["--trials-where", "outcome>correct"], ["outcome of session.nwb holds text"]),
    ("session", ["--units-where", "quality=good"],
     ["--units-where quality", "the Units table of session.nwb has no column 'quality'",
      "its columns: id, spike_times"]),
    ("npz", ["--units-where", "quality=good"], ["session.npz has no Units table"]),
    ("lorenz", ["--units-where", "quality=good"], ["only own recordings", "units_where"]),
    ("spike_file", ["--units-where", "quality=good"], ["holds binned counts", "units_where"]),
    ("session", ["--continuous", "--condition", "target"], ["have no trials", "condition"]),
    ("session", ["--heldout", "1.5"], ["heldout_fraction must lie in (0, 1)"]),
    ("session", ["--chop", "0.5", "--overlap", "0.5"], ["overlap_s < chop_s"]),
    ("lorenz", ["--align", "stim_on_time"], ["only own recordings", "align", "'lorenz'"]),
    ("spike_file", ["--window", "0,1"], ["holds binned counts", "window"]),
    ("spike_file", ["--behavior", "hand_vel"], ["holds binned counts", "behavior"]),
    ("spike_file", ["--bin", "20"], ["holds binned counts", "bin_size_ms"]),
    ("spike_file", ["--heldout", "0.5"], ["flags its own held-out neurons", "leave out --heldout"]),
    ("lorenz", ["--bin", "20"], ["Lorenz data have bins of their own"]),
    ("lorenz", ["--phase", "test"], ["only NLB datasets take phase", "'lorenz'"]),
    ("session", ["--data-dir", "."], ["only NLB datasets take data_dir"]),
    ("lorenz", ["--behavior", "hand_vel"], ["only own recordings", "behavior"]),
    ("session", ["--behavior", "eye_pos"],
     ["--behavior eye_pos", "no TimeSeries named 'eye_pos'", "its series: behavior/hand_vel"]),
    ("npz", ["--behavior", "eye_pos"], ["--behavior eye_pos", "`eye_pos`", "`eye_pos_times`"]),
    ("two_series", ["--behavior", "speed"],
     ["several series of that name", "left/speed, right/speed", "give one of those paths"]),
    ("image_series", ["--behavior", "frames"], ["(20, 2, 2)", "(time, dims)"]),
    ("late_series", ["--behavior", "speed"], ["no sample of it falls in the trials"]),
    ("voltage_series", ["--behavior", "lfp"], ["is an ElectricalSeries", "not behaviour"]),
    ("text_series", ["--behavior", "events"], ["behavior/events", "does not hold numbers"]),
    ("session", ["--behavior-lag", "100"], ["behavior_lag_ms shifts", "--behavior NAME"]),
    ("session", ["--behavior", "hand_vel", "--behavior-lag", "15"],
     ["whole number of bins of 10 ms", "got 15"]),
    ("session", [*ONSET, "--behavior", "hand_vel", "--behavior-lag", "-1000"],
     ["--behavior-lag -1000 ms is not shorter than the trials' 1000 ms of observed bins"]),
    ("not_nwb", [], ["is not a readable NWB file"]),
])
def test_bad_recordings_and_options_are_one_line(case, args, fragments, files, spike_file,
                                                 tmp_path, monkeypatch, capsys):
    data = {
        "no_units": lambda: write_nwb(tmp_path / "no_units.nwb"),
        "no_spike_times": lambda: write_nwb(tmp_path / "q.nwb", [{"quality": "good"}] * 2),
        "empty_units": lambda: write_nwb(tmp_path / "e.nwb", [{"spike_times": []}] * 3),
        "empty_npz": lambda: np.savez(tmp_path / "e.npz", spike_times=np.zeros(0),
                                      unit_ids=np.zeros(0)) or tmp_path / "e.npz",
        "empty_trials": lambda: np.savez(tmp_path / "t.npz", spike_times=np.arange(4.0),
                                         unit_ids=np.arange(4) % 2, trial_start=np.zeros(0),
                                         trial_stop=np.zeros(0)) or tmp_path / "t.npz",
        "npz_without_unit_ids": lambda: np.savez(tmp_path / "u.npz", spike_times=np.ones(3))
        or tmp_path / "u.npz",
        "npz_start_only": lambda: np.savez(tmp_path / "s.npz", spike_times=np.arange(4.0),
                                           unit_ids=np.arange(4) % 2, trial_start=np.zeros(2))
        or tmp_path / "s.npz",
        "npz_short_stop": lambda: np.savez(tmp_path / "s.npz", spike_times=np.arange(4.0),
                                           unit_ids=np.arange(4) % 2, trial_start=np.arange(3.0),
                                           trial_stop=np.arange(2.0) + 0.5) or tmp_path / "s.npz",
        "npz_short_start": lambda: np.savez(tmp_path / "s.npz", spike_times=np.arange(4.0),
                                            unit_ids=np.arange(4) % 2,
                                            trial_start=np.arange(2.0),
                                            trial_stop=np.arange(3.0) + 0.5) or tmp_path / "s.npz",
        "events": lambda: write_nwb(tmp_path / "events.nwb", TWO_UNITS, length=0.0),
        "folder_nwb": lambda: (tmp_path / "adir.nwb").mkdir() or tmp_path / "adir.nwb",
        "session": lambda: files["nwb"], "npz": lambda: files["npz"],
        "continuous": lambda: files["continuous"], "lorenz": lambda: "lorenz",
        "spike_file": lambda: spike_file,
        "not_nwb": lambda: (tmp_path / "x.nwb").write_bytes(b"not hdf5") and tmp_path / "x.nwb",
        "two_series": lambda: write_nwb(tmp_path / "two.nwb", TWO_UNITS, {
            "left": [TimeSeries(name="speed", data=np.ones(5), unit="m/s", rate=1.0)],
            "right": [TimeSeries(name="speed", data=np.ones(5), unit="m/s", rate=1.0)]}),
        "image_series": lambda: write_nwb(tmp_path / "im.nwb", TWO_UNITS, {"video": [TimeSeries(
            name="frames", data=np.ones((20, 2, 2)), unit="a.u.", rate=30.0)]}),
        "voltage_series": lambda: write_nwb(tmp_path / "v.nwb", TWO_UNITS, voltages=True),
        "text_series": lambda: write_nwb(tmp_path / "text.nwb", TWO_UNITS, {"behavior": [
            TimeSeries(name="events", data=["go", "stop"], unit="n/a", timestamps=[0.5, 1.5])]}),
        "late_series": lambda: write_nwb(tmp_path / "late.nwb", TWO_UNITS, {"behavior": [
            TimeSeries(name="speed", data=np.ones(5), unit="m/s", timestamps=100.0 + np.arange(5))
        ]}),
    }[case]()
    code, _, err = run_cli(["fit", "--data", data, *args, "--out", tmp_path / "run", *TINY],
                           monkeypatch, capsys)
    assert_one_line_error(code, err, *fragments)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_spike_times_that_are_no_number_or_outside_the_recorded_time_are_noted(tmp_path,
                                                                              capsys):
    """A NaN spike time crashed a continuous fit (an OverflowError), and one stray spike set the
    span of the recording (found by a hostile walkthrough): NaN and infinite times are left out
    with a note naming their units; obs_intervals, where the file has them, are the time
    recorded, and spikes outside them are counted in a note."""
    times = TWO_UNITS[0]["spike_times"]
    broken = write_nwb(tmp_path / "nan.nwb", [
        {"spike_times": np.concatenate([times[:3], [np.nan], times[3:], [np.inf]])},
        TWO_UNITS[1]])
    data = load(broken, continuous=True)
    assert ("2 spike times of nan.nwb are no number (NaN or infinite) and are left out, in the "
            "units with ids 0") in capsys.readouterr().err
    np.testing.assert_array_equal(data.spikes, load(write_nwb(tmp_path / "clean.nwb", TWO_UNITS),
                                                    continuous=True).spikes)
    observed = [[0.0, 5.0]]
    stray = write_nwb(tmp_path / "stray.nwb", [
        {"spike_times": np.append(times, 100.0), "obs_intervals": observed},
        {**TWO_UNITS[1], "obs_intervals": observed}])
    data = load(stray, continuous=True)
    assert "1 spike times of stray.nwb lie outside its units' obs_intervals (0.000 to 5.000 s)" \
        in capsys.readouterr().err
    assert data.extra["chop"]["n_time"] == 500  # 5 s of 10 ms bins, not 100 s
    # trials too: a window past the time recorded leaves the recording, trials or not there
    short = write_nwb(tmp_path / "short.nwb", [{**unit, "obs_intervals": [[0.0, 3.0]]}
                                               for unit in TWO_UNITS])
    data = load(short, window="0,0.8")
    assert data.extra["trial_ids"].tolist() == [0, 1, 2]
    assert "2 of 5 trials dropped" in capsys.readouterr().err
    # a pause no unit records drops the trials in it; a unit that stops early is named
    paused = write_nwb(tmp_path / "paused.nwb", [
        {**TWO_UNITS[0], "obs_intervals": [[0.0, 1.9], [2.9, 4.0], [3.5, 5.0]]},
        {**TWO_UNITS[1], "obs_intervals": [[0.0, 1.0], [1.0, 1.9], [2.95, 3.5]]}])
    data = load(paused, window="0,0.8")
    err = capsys.readouterr().err
    assert data.extra["trial_ids"].tolist() == [0, 1, 3, 4]
    assert ("1 of 5 trials dropped (rows 2): their window falls wholly in a pause of the "
            "recording, which no unit's obs_intervals cover") in err
    assert data.extra["recording"]["trials_in_recording_pause"] == 1
    assert data.extra["recording"]["trials_not_matching"] == 0
    assert data.extra["recording"]["rows_dropped"] == {
        "outside_recording": [], "in_recording_pause": [2], "without_alignment": []}
    assert ("1 unit is not recorded throughout the 4 trials kept (their obs_intervals; ids, "
            "with the trials missed in part or whole: 1 (2)): their counts there are unknown "
            "(NaN), not scored; the fit's encoder reads them as hidden (zeros), the scores, "
            "diagnose and infer fill them with what the run infers") in err
    # unit 1 stops at 3.5 s: trial 3 (3 to 3.8 s) is recorded for its first 50 bins, trial 4
    # not at all; unit 0 throughout
    unrecorded = np.isnan(data.spikes)
    assert not unrecorded[..., 0].any() and not unrecorded[:2].any()
    assert unrecorded[2, :, 1].tolist() == [False] * 50 + [True] * 30
    assert unrecorded[3, :, 1].all()
    # a trial partly in the pause is kept, its bins there unknown: trial 2 (2.15 to 2.95 s) is
    # recorded by unit 0 from 2.9 s, trial 1 (1.15 to 1.95 s) by neither unit after 1.9 s
    later = load(paused, window="0.15,0.95")
    assert later.extra["trial_ids"].tolist() == [0, 1, 2, 3, 4]
    assert ("paused.nwb: 2 of the trials kept lie partly in a pause of the recording (rows 1, "
            "2)") in capsys.readouterr().err
    assert np.isnan(later.spikes[2, :75, 0]).all() and not np.isnan(later.spikes[2, 75:, 0]).any()
    assert np.isnan(later.spikes[1, 75:]).all() and not np.isnan(later.spikes[1, :75]).any()
    capsys.readouterr()
    data = load(write_nwb(tmp_path / "whole.nwb", [{**unit, "obs_intervals": [[0.0, 5.0]]}
                                                   for unit in TWO_UNITS]), window="0,0.8")
    assert data.n_trials == 5 and "not recorded" not in capsys.readouterr().err
    # intervals that are no number (a converter's "not known") say nothing, as none would: every
    # trial was said to leave the recording (found by a walkthrough)
    unknown = load(write_nwb(tmp_path / "unknown.nwb", [
        {**unit, "obs_intervals": [[np.nan, np.nan]]} for unit in TWO_UNITS]), window="0,0.8")
    assert unknown.n_trials == 5 and not np.isnan(unknown.spikes).any()
    assert "unknown.nwb: the obs_intervals of every unit are no number" in capsys.readouterr().err
    # so is one unit's: recorded throughout, with a note (it was recorded in no bin, its spikes
    # thrown away, and refused as "no count recorded", found by a walkthrough)
    one = load(write_nwb(tmp_path / "one_unknown.nwb", [
        {**TWO_UNITS[0], "obs_intervals": [[0.0, 2.5]]},
        {**TWO_UNITS[1], "obs_intervals": [[np.nan, np.nan]]}]), window="0,0.8")
    assert not np.isnan(one.spikes[..., 1]).any() and np.isnan(one.spikes[3:, :, 0]).all()
    assert ("one_unknown.nwb: the obs_intervals of the units with ids 1 are no number (NaN: not "
            "known); they are read as recorded throughout") in capsys.readouterr().err
    # one that stops before it starts is left out, and said
    backwards = load(write_nwb(tmp_path / "backwards.nwb", [
        {**TWO_UNITS[0], "obs_intervals": [[0.0, 5.0]]},
        {**TWO_UNITS[1], "obs_intervals": [[0.0, 2.5], [5.0, 2.5]]}]), window="0,0.8")
    assert ("backwards.nwb: obs_intervals that stop before they start are left out, of the units "
            "with ids 1") in capsys.readouterr().err
    assert np.isnan(backwards.spikes[3:, :, 1]).all() and not np.isnan(backwards.spikes[:2]).any()
    # a unit left with no interval was recorded in no bin (it raised IndexError)
    none_left = load(write_nwb(tmp_path / "none_left.nwb", [
        {**TWO_UNITS[0], "obs_intervals": [[0.0, 5.0]]},
        {**TWO_UNITS[1], "obs_intervals": [[5.0, 2.5]]}]), window="0,0.8")
    assert np.isnan(none_left.spikes[..., 1]).all() and not np.isnan(none_left.spikes[..., 0]).any()
    # continuous: the windows in the pause and the unit lost are known from the file, and said
    data = load(paused, continuous=True, chop_s=0.5, overlap_s=0.0)
    err = capsys.readouterr().err
    assert data.extra["recording"]["windows_in_recording_pause"] == 1  # 2 to 2.5 s, of 10
    assert "1 of 10 windows fall wholly in a pause of the recording" in err
    assert np.isnan(data.spikes[4]).all() and not np.isnan(data.spikes[3, :40]).any()
    assert "1 unit is not recorded throughout the 10 windows kept" in err, err  # (the pause apart)
    assert "(a pause in the recording?)" not in err  # (a guess, where the file does not say)


def test_obs_intervals_not_in_seconds_are_named_not_cut_into_a_thousand_fold_windows(tmp_path):
    """One unit's obs_intervals in ms made a 5 s continuous recording 5000 s long: a thousand
    times the windows, 4 GB and no epoch in minutes, without a word (found by a hostile
    walkthrough); trials and continuous recordings alike, it is one line naming the unit."""
    path = write_nwb(tmp_path / "ms.nwb", [{**TWO_UNITS[0], "obs_intervals": [[0.0, 5.0]]},
                                           {**TWO_UNITS[1], "obs_intervals": [[0.0, 5000.0]]}])
    for options in ({"window": "0,0.8"}, {"continuous": True, "chop_s": 0.5, "overlap_s": 0.0}):
        with pytest.raises(DataError, match=r"ms.nwb: the obs_intervals of the units with ids 1 "
                                            r"reach from 0 to 5000 s, far beyond the spikes "
                                            r"\(0.05 to 4.95 s\); are they in seconds\?"):
            load(path, **options)
    # intervals that end before the trials: they, not the times, are named as what the trials
    # leave (the advice was only to give times in seconds, found by a walkthrough)
    short = write_nwb(tmp_path / "short.nwb", [{**unit, "obs_intervals": [[0.0, 0.1]]}
                                               for unit in TWO_UNITS])
    with pytest.raises(DataError, match=r"leaves the recording \(0.000 to 0.100 s, its units' "
                                        r"obs_intervals\): .* in the spikes' time base, or "
                                        r"obs_intervals that cover the trials"):
        load(short, window="0,0.8")
    # intervals a little past the spikes (a quiet end of the recording) are no such thing
    quiet = write_nwb(tmp_path / "quiet.nwb", [{**TWO_UNITS[0], "obs_intervals": [[0.0, 9.0]]},
                                               {**TWO_UNITS[1], "obs_intervals": [[0.0, 9.0]]}])
    assert load(quiet, continuous=True, chop_s=0.5, overlap_s=0.0).n_trials == 18


def test_a_stray_spike_or_times_in_samples_are_named_not_fitted_blindly(tmp_path, monkeypatch,
                                                                         capsys):
    """One unit's spike long after the others set a continuous recording's span: most windows
    held nothing, fitted without a word; times in samples ran out of memory with advice about
    --samples (found by a hostile walkthrough)."""
    times = [np.arange(0.01, 20.0, 0.05), np.arange(0.02, 20.0, 0.07),
             np.append(np.arange(0.03, 20.0, 0.11), 200.0)]
    path = tmp_path / "stray.npz"
    np.savez(path, spike_times=np.concatenate(times),
             unit_ids=np.repeat([1, 2, 9], [len(t) for t in times]))
    data = load(path, chop_s=1.0, overlap_s=0.0)
    assert data.n_trials == 200
    err = capsys.readouterr().err
    assert ("stray.npz: 180 of 200 windows hold no spike of any unit (a pause in the recording?); "
            "units 9 (0.03 to 200 s) spike apart from the rest") in err
    # the span of the units kept: without unit 9, 20 s of spikes
    data = load(path, chop_s=1.0, overlap_s=0.0, units_where=["id!=9"])
    assert data.n_trials == 20 and "hold no spike" not in capsys.readouterr().err
    monkeypatch.setattr("pyrolf.memory.available_memory", lambda: 1000.0)
    with pytest.raises(DataError, match=r"stray.npz: 199.99 s \(0.010 to 200.000 s\) in 10 ms "
                                        r"bins of 3 units, binned, take 0.00151 GiB, more "
                                        r"than the 9.31e-07 GiB of memory available; "
                                        r"units 9 \(0.03 to 200 s\) "
                                        r"spike apart .* are the spike times in seconds\?"):
        load(path)


@pytest.mark.parametrize("scaled, what", [
    ("spikes", "trials"), ("trials", "trials"), ("both", "trials"), ("spikes", "windows")])
def test_spike_or_trial_times_in_ms_stop_in_one_line_before_any_fit(scaled, what, session,
                                                                    files, tmp_path):
    """Spike times or trial times in ms (or both, a "1 s" window being 1 ms) left next to no
    spike in the trials, fitted to co-bps NaN or -3814, and a continuous recording in ms ran for
    minutes in 3 GB on 37 492 windows (found by a walkthrough): one line saying the units fire
    next to nothing, where the spikes and the trials lie where they disagree; a window in ms
    too, whose bins would not fit in memory, is refused before they are made."""
    recording = files["continuous_session"] if what == "windows" else session
    ms = dataclasses.replace(recording, spike_times=[
        times * (1000 if scaled in ("spikes", "both") else 1) for times in recording.spike_times])
    if what == "trials" and scaled in ("trials", "both"):
        ms = dataclasses.replace(ms, trials=ms.trials.assign(**{
            name: ms.trials[name] * 1000 for name in ("start_time", "stop_time", "stim_on_time")}))
    path = write_spike_times_npz(tmp_path / "ms.npz", ms)
    options = {"continuous": True} if what == "windows" else {
        "align": "stim_on_time", "window": "-0.2,0.8"}
    kept = rf"the {what} kept \(\d+ spikes in \d+ {what}\)"
    advice = (r"are the times in seconds \(in ms a unit firing 20 Hz fires 0.02 a second\)\? If "
              r"they are, keep the units that fire \(--units-where\)" if scaled == "both" or
              what == "windows" else r"the spikes lie from .* s, the trials from .* s; are the "
                                     r"spike times and the trial times in one time base")
    with pytest.raises(DataError, match=rf"ms.npz: its units fire [0-9.e-]+ spikes/s on average "
                                        rf"in {kept}, too few to fit: {advice}"):
        load(path, **options)
    # in seconds, they fire as they were planted to
    assert np.nanmean(load(files["nwb"], align="stim_on_time", window="-0.2,0.8").spikes) > 0.01
    if scaled == "both":  # a window in ms too: 100 000 bins a trial, refused before binning
        def binned(*args):
            raise AssertionError("binned before the check")

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("pyrolf.data.recordings.bin_spikes", binned)
            patch.setattr("pyrolf.memory.available_memory", lambda: 2.0**30)
            with pytest.raises(DataError, match=r"ms.npz: 160 trials of 100000 bins of 40 units"
                                                r", binned, take 7.15 GiB, more than the 1 "
                                                r"GiB of memory available; is --window "
                                                r"in seconds\?"):
                load(path, align="stim_on_time", window="-200,800")
            # without --window the trials' own length is in ms: no word of a --window
            with pytest.raises(DataError, match=r"ms.npz: 160 trials of 99999 bins of 40 units"
                                                r", binned, take 7.15 GiB, .*; the trials are "
                                                r"cut from their stim_on_time to 999.99 s after "
                                                r"it, "
                                                r"the end of the shortest \(no --window\): are "
                                                r"the trial times in seconds\?"):
                load(path, align="stim_on_time")


def test_sparse_units_in_trials_of_a_long_recording_are_not_said_to_be_in_another_time_base(
        tmp_path):
    """Trials in the first 100 s of a 2-hour session in seconds whose units fire 0.02 Hz: the
    spans differ 72 times, which was read as two time bases alone (a review); the trials lie among
    the spikes, so the advice names both causes: the clocks, or units too sparse."""
    generator = np.random.default_rng(0)
    times = [np.sort(generator.uniform(0.0, 7200.0, 144)) for _ in range(5)]
    starts = np.arange(0.0, 100.0, 1.0)
    np.savez(tmp_path / "long.npz", spike_times=np.concatenate(times),
             unit_ids=np.repeat(np.arange(5), 144), trial_start=starts, trial_stop=starts + 0.8)
    with pytest.raises(DataError, match=r"long.npz: its units fire 0.0\d+ spikes/s on average in "
                                        r"the trials kept .*: the spikes lie from .* to 7[\d.]+ s, "
                                        r"the trials from 0 to 99.8 s; are the spike times and "
                                        r"the trial times in one time base, in seconds\? If they "
                                        r"are, keep the units that fire \(--units-where\)$"):
        load(tmp_path / "long.npz", align="start_time")
    # no unit fires in any trial kept (each spike falls between two): keeping the units that
    # fire would keep none, so that advice is left out
    between = [np.sort(generator.choice(7200, 144, replace=False) + 0.9) for _ in range(5)]
    np.savez(tmp_path / "between.npz", spike_times=np.concatenate(between),
             unit_ids=np.repeat(np.arange(5), 144), trial_start=starts, trial_stop=starts + 0.8)
    with pytest.raises(DataError, match=r"between.npz: its units fire 0 spikes/s on average in "
                                        r"the trials kept \(0 spikes in 100 trials\), too few to "
                                        r"fit: the spikes lie from .* s; are the spike times and "
                                        r"the trial times in one time base, in seconds\?$"):
        load(tmp_path / "between.npz", align="start_time")


def test_windows_of_scored_trials_that_overlap_a_training_trial_s_are_noted(session, files,
                                                                             capsys):
    """A window longer than the time between trials shares spikes, the held-out units' too,
    between training and test trials: their scores are optimistic, said in a note by the fit
    (found by a walkthrough; not by reading new trials, which no one trains on); windows that
    stay apart say nothing."""
    from pyrolf.data.recordings import note_overlapping

    starts = session.trials["stim_on_time"].to_numpy()
    gap = np.diff(np.sort(starts)).min()
    note_overlapping(load(files["nwb"], align="stim_on_time", window=f"0,{gap / 2:.3f}"))
    assert "overlap a training trial" not in capsys.readouterr().err
    data = load(files["nwb"], align="stim_on_time", window=f"0,{gap * 1.5:.3f}")
    assert "overlap a training trial" not in capsys.readouterr().err  # (read, not yet fitted)
    note_overlapping(data)
    assert "valid and test trials' windows overlap a training trial's" in capsys.readouterr().err
    # by hand: trials 1 s apart, 7 trained; of the three scored, only trial 7 (beside 6) overlaps
    # a trained one, by 1.5 - 1 s; trials 8 and 9 lie 2 and 3 s from one
    by_hand = dataclasses.replace(data, splits={"train": np.arange(7), "valid": np.array([7]),
                                                "test": np.array([8, 9])}, extra={
        "align_times": np.arange(10.0), "window": (-0.25, 1.25)})
    note_overlapping(by_hand)
    assert (f"{data.name}: 1 of the 3 valid and test trials' windows overlap a training "
            "trial's (by up to 0.5 s)") in capsys.readouterr().err
    note_overlapping(dataclasses.replace(by_hand, extra={**by_hand.extra, "window": (0.0, 1.0)}))
    assert "overlap" not in capsys.readouterr().err  # (windows that touch share no spike)
    note_overlapping(new_trials(data, data.heldout, data.extra["unit_ids"]))  # (split "new")
    assert "overlap" not in capsys.readouterr().err
    # a fit says it, before it builds the model
    from pyrolf.pipeline import training

    def stop(*args):
        raise RuntimeError("stopped before the model")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training, "starting_flow", stop)
        with pytest.raises(RuntimeError, match="stopped before the model"):
            training.fit(data, Config(epochs=1), progress=False)
    assert "overlap a training trial's" in capsys.readouterr().err


def test_a_window_a_little_longer_than_every_trial_is_cut_as_any_window(session, files):
    """A window may reach beyond its trial: one a little longer than the longest trial (into the
    time between trials) was refused as not in seconds (found by a walkthrough); one ten times
    longer still is (see test_bad_recordings_and_options_are_one_line)."""
    longest = float((session.trials["stop_time"] - session.trials["start_time"]).max())
    data = load(files["nwb"], align="stim_on_time", window=f"0,{longest * 1.2:.2f}")
    assert data.n_bins == round(longest * 1.2 * 100)


def trials_npz(path, stops=None, **columns):
    """A spike-times file of 3 units, one spiking only after the trials, and 6 trials a second
    apart lasting ``stops`` - start (default 0.8 s), with the trial ``columns``."""
    starts = np.arange(6.0)
    times = [np.arange(0.01, 6.0, 0.05), np.arange(0.02, 6.0, 0.07), np.array([7.0, 7.5])]
    np.savez(path, spike_times=np.concatenate(times),
             unit_ids=np.repeat([1, 2, 9], [len(t) for t in times]), trial_start=starts,
             trial_stop=starts + 0.8 if stops is None else np.asarray(stops), **columns)
    return path


def test_columns_that_are_no_times_and_odd_trials_are_said_plainly(tmp_path, capsys):
    path = trials_npz(tmp_path / "t.npz", is_correct=np.arange(6) % 2 == 0,
                      choice=np.resize([-1, -2], 6), cue=np.arange(6.0) + 0.1)
    with pytest.raises(DataError, match="column 'is_correct' of t.npz holds true or false, not "
                                        "times in seconds"):
        load(path, align="is_correct")
    with pytest.raises(DataError, match=r"every trial's window \(0 to 0.8 s around choice\) "
                                        r"leaves the recording .*: choice holds -1, -2, -1, "
                                        r"\.\.\.; give a column of times in seconds"):
        load(path, align="choice", window="0,0.8")
    # a unit silent in every trial (it spikes after them) is named
    load(path, align="cue", window="0,0.5")
    assert "t.npz: 1 unit has no spike in the trials kept (ids 9)" in capsys.readouterr().err
    # one short trial sets the default window, and says so; a broken row, and one of no length,
    # are set apart (the one of no length stopped the fit)
    stops = np.arange(6.0) + np.array([1.0, 1.0, 0.08, 1.0, -0.5, 0.0])
    data = load(trials_npz(tmp_path / "s.npz", stops=stops))
    err = capsys.readouterr().err
    assert data.extra["window"] == (0.0, 0.08) and data.n_trials == 6
    assert ("s.npz: 2 trials stop at or before they start (stop_time <= start_time; rows 4, 5)"
            in err)
    assert ("no --window, so every trial is cut from its start_time to 0.08 s after it, the "
            "length of the shortest (row 2; the median lasts 1 s)") in err
    # a NaN in a numeric column is chosen by =nan (and left out by !=nan)
    path = trials_npz(tmp_path / "n.npz",
                      contrast=np.array([0.5, np.nan, 1.0, np.nan, 0.0, np.nan]))
    np.testing.assert_array_equal(load(path, trials_where="contrast=nan").extra["trial_ids"],
                                  [1, 3, 5])
    np.testing.assert_array_equal(load(path, trials_where=["contrast!=nan", "contrast>=0"]
                                       ).extra["trial_ids"], [0, 2, 4])


def test_infer_on_other_data_says_each_note_of_them_once(tmp_path, monkeypatch, capsys):
    """`infer --data` printed the notes of the run's own data (read again) and, for a file
    without the run's behaviour (read twice), its own notes twice (found by a walkthrough)."""
    hand = {"hand": np.sin(np.arange(700) / 50.0), "hand_times": np.arange(700) / 100.0}
    run = tmp_path / "run"
    code, _, err = run_cli(["fit", "--data", trials_npz(tmp_path / "day1.npz", cue=np.arange(6.0),
                                                        **hand),
                            "--align", "cue", "--window", "0,0.5", "--behavior", "hand",
                            "--out", run, *TINY], monkeypatch, capsys)
    assert code == 0, err
    assert "day1.npz: 1 unit has no spike" in err
    bare = trials_npz(tmp_path / "day2.npz", cue=np.arange(6.0))
    code, _, err = run_cli(["infer", run, "--samples", 2, "--data", bare, "--out",
                            tmp_path / "day2.nc"], monkeypatch, capsys)
    assert code == 0, err
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert "day1.npz" not in err and len(notes) == len(set(notes)) == 2, notes
    assert "day2.npz: 1 unit has no spike" in notes[1] and "--behavior hand" in notes[0]


def test_a_table_of_events_is_cut_by_the_window_alone(tmp_path):
    # trials of no length mark events: the window around them says what to cut
    path = write_nwb(tmp_path / "events.nwb", TWO_UNITS, length=0.0)
    data = load(path, align="start_time", window="0,0.5")
    assert data.n_trials == 5 and data.n_bins == 50
    spikes = [unit["spike_times"] for unit in TWO_UNITS]
    for trial in range(5):
        expected = [np.sum((times >= trial) & (times < trial + 0.5)) for times in spikes]
        np.testing.assert_array_equal(data.spikes[trial].sum(0), expected)


def test_bins_of_5_or_20_ms_stay_the_rule_for_nlb_and_the_default_follows_the_data():
    with pytest.raises(ConfigError, match="bin_size_ms must be one of 5, 20, got 7"):
        Config(data="mc_maze", bin_size_ms=7)
    assert Config(data="session.nwb", bin_size_ms=7).bin_ms() == 7
    assert Config(data="session.nwb").bin_ms() == 10
    assert Config(data="mc_maze").bin_ms() == 20
    assert Config(data="session.nwb", window=" -0.2, 0.8").window_seconds() == (-0.2, 0.8)


def test_a_spike_times_file_with_binned_counts_too_is_refused(tmp_path):
    path = tmp_path / "both.npz"
    np.savez(path, spikes=np.ones((3, 4, 2)), spike_times=np.ones(3))
    with pytest.raises(DataError, match="both `spikes`"):
        load_data(str(path))


def test_a_large_heldout_fraction_still_keeps_one_unit_held_in(files):
    data = load(files["continuous"], heldout_fraction=0.99)
    assert data.n_heldin == 1 and data.heldout.sum() == 19


def test_a_missing_held_in_unit_is_filled_from_the_run_s_psth_then_from_what_it_infers(
        monkeypatch, capsys):
    """The fill starts from the unit's mean count per bin in the run's train trials; each pass
    then gives it the rates the run infers from the trials as filled so far; the counts there
    are untouched, a held-in count not recorded is filled alike, and a missing held-out unit,
    which the encoder never reads, stays NaN."""
    from pyrolf.diagnostics import missing

    rng = np.random.default_rng(1)
    heldout = np.array([False, False, False, True])
    run = SpikeData(spikes=rng.poisson(2.0, (6, 5, 4)).astype(np.float32), heldout=heldout,
                    splits={"train": np.arange(4), "valid": np.array([4]),
                            "test": np.array([5])})
    counts = rng.poisson(3.0, (3, 5, 4)).astype(np.float32)
    counts[..., [1, 3]] = np.nan  # held-in unit 1 and held-out unit 3 lost
    counts[2, 3:, 2] = np.nan  # held-in unit 2 not recorded at the end of trial 2
    trials = SpikeData(spikes=counts, heldout=heldout, splits={"new": np.arange(3)},
                       extra={"in_data": np.array([True, False, True, False])})
    seen = []

    def inferred_rates(flow, data, which, samples, device, progress):
        seen.append(data.spikes[..., 1].copy())  # what the "encoder" reads of the lost unit
        return np.broadcast_to(data.spikes[..., :1] + 1.0, data.spikes.shape)  # unit 0 + 1

    monkeypatch.setattr(missing, "model_rates", inferred_rates)
    filled = missing.fill_missing_counts(None, trials, run, passes=2)
    np.testing.assert_allclose(seen[0], np.broadcast_to(
        run.spikes[run.splits["train"], :, 1].mean(0), (3, 5)))  # the PSTH first
    np.testing.assert_allclose(filled.spikes[..., 1], counts[..., 0] + 1.0)  # then inferred
    # a count not recorded is filled as a missing unit's are, the counts recorded untouched
    np.testing.assert_allclose(filled.spikes[2, 3:, 2], counts[2, 3:, 0] + 1.0)
    np.testing.assert_array_equal(filled.spikes[..., 0], counts[..., 0])
    np.testing.assert_array_equal(filled.spikes[:2, :, 2], counts[:2, :, 2])
    assert np.isnan(filled.spikes[..., 3]).all() and len(seen) == 2  # held out: unknown
    np.testing.assert_array_equal(filled.extra["unrecorded"], np.isnan(counts))
    assert missing.fill_missing_counts(None, run, run) is run  # nothing missing: as it was
    held_out_lost = rng.poisson(3.0, (3, 5, 4)).astype(np.float32)
    held_out_lost[..., 3] = np.nan
    out_only = dataclasses.replace(trials, spikes=held_out_lost, extra={
        "in_data": np.array([True, True, True, False])})
    seen.clear()
    assert missing.fill_missing_counts(None, out_only, run) is out_only
    assert not seen  # no pass of inference where the encoder reads nothing filled
    # only the trials chosen are filled, and only those with a count to fill are passed
    passed = []
    monkeypatch.setattr(missing, "model_rates", lambda flow, data, which, *_: (
        passed.append(list(which)) or np.ones((len(which), *data.spikes.shape[1:]))))
    holed = np.where(np.isnan(counts), 0.0, counts).astype(np.float32)
    holed[1, 3:, 2] = holed[2, 0, 1] = np.nan
    some = missing.fill_missing_counts(None, dataclasses.replace(trials, spikes=holed), run,
                                       only=np.array([0, 2]))
    assert passed == [[2], [2]] and some.spikes[2, 0, 1] == 1.0
    assert np.isnan(some.spikes[1, 3:, 2]).all()  # trial 1: not chosen
    # a trial with fewer than half its held-in counts recorded is named: its rates are mostly
    # predictions (the data hold most units, so they are not refused)
    assert "fewer than 50%" not in capsys.readouterr().err  # (a third of trial 2's, at most)
    holed[2, :, 1:3] = np.nan  # trial 2: held-in units 1 and 2 lost, 0 recorded
    missing.fill_missing_counts(None, dataclasses.replace(trials, spikes=holed), run)
    assert ("in 1 of the 3 trials fewer than 50% of the held-in counts were recorded (trials 2): "
            "what the encoder reads there is mostly filled") in capsys.readouterr().err


def test_a_spike_on_a_bin_edge_counts_in_the_bin_it_opens():
    """Bins are [a, b): spikes at 0, 0.25 and 0.5 s count one in each of three bins of 0.25 s
    from 0 s, and in those from 0.25 s one, one and none (as (a, b] they would count 1, 1, 0
    and 1, 0, 0: a mutation test found the rule checked only by chance)."""
    source = SimpleNamespace(unit_spike_times=lambda unit: np.array([0.0, 0.25, 0.5]))
    np.testing.assert_array_equal(bin_spikes(source, np.array([0.0, 0.25]), 3, 0.25,
                                             np.array([0]))[..., 0], [[1, 1, 1], [1, 1, 0]])


def test_the_fill_starts_from_the_unit_s_mean_where_no_train_trial_recorded_a_bin_or_past_them(
        monkeypatch):
    """The run's train trials never recorded held-in unit 1 in bin 2, and the new trials are 7
    bins long where the run's are 5: there the fill starts from the unit's mean count over the
    bins recorded (2 per bin here), not from silence (a mutation test found it unchecked)."""
    from pyrolf.diagnostics import missing

    heldout = np.array([False, False, True])
    spikes = np.full((6, 5, 3), 2.0, np.float32)
    spikes[:4, 2, 1] = np.nan  # (the train trials)
    run = SpikeData(spikes=spikes, heldout=heldout, splits={
        "train": np.arange(4), "valid": np.array([4]), "test": np.array([5])})
    counts = np.ones((2, 7, 3), np.float32)
    counts[..., 1] = np.nan  # held-in unit 1 lost
    trials = SpikeData(spikes=counts, heldout=heldout, splits={"new": np.arange(2)},
                       extra={"in_data": np.array([True, False, True])})
    seen = []
    monkeypatch.setattr(missing, "model_rates", lambda flow, data, *_: (
        seen.append(data.spikes[..., 1].copy()) or np.ones(data.spikes.shape)))
    missing.fill_missing_counts(None, trials, run, passes=1)
    np.testing.assert_array_equal(seen[0], np.full((2, 7), 2.0))


def test_binned_new_trials_are_read_by_a_run_of_a_recording_as_a_binned_session_is(
        files, tmp_path, monkeypatch, capsys):
    """A run fitted on an NWB session infers a binned spike file of its trials (read without the
    settings that cut recordings, which were refused), its errors are not said to come of the run's
    settings, and a --trials-where of infer's own that keeps nothing is not said to be the
    run's."""
    run = tmp_path / "run"
    code, _, err = run_cli(["fit", "--data", files["nwb"], *ONSET, "--out", run, *TINY],
                           monkeypatch, capsys)
    assert code == 0, err
    own = load(files["nwb"], align="stim_on_time", window="-0.2,0.8")
    binned = tmp_path / "binned.npz"
    np.savez(binned, spikes=own.spikes.astype(int), bin_size_s=0.01)
    code, _, err = run_cli(["infer", run, "--samples", 2, "--data", binned, "--out",
                            tmp_path / "binned.nc"], monkeypatch, capsys)
    assert code == 0, err
    assert "binned says nothing of where its bins lie: their time counts from 0 s, where the " \
           "run's trials were cut from -0.2 s around their stim_on_time" in err
    inferred = xr.open_dataset(tmp_path / "binned.nc")
    assert inferred.sizes["trial"] == own.n_trials
    # named as the run's units they are read as, not 0..N-1 (ids the run's file may hold too)
    np.testing.assert_array_equal(inferred.neuron, own.extra["unit_ids"])
    assert f"the data's {own.n_neurons} neurons have no unit ids: they are read as the run's " \
           "units in its order (ids " in err
    # binned otherwise: the dynamics take a step a bin
    np.savez(binned, spikes=own.spikes[:, ::2].astype(int), bin_size_s=0.02)
    code, _, err = run_cli(["infer", run, "--samples", 2, "--data", binned, "--out",
                            tmp_path / "binned20.nc"], monkeypatch, capsys)
    assert_one_line_error(code, err, "the trials of binned are in 20 ms bins, but the run was "
                                     "fitted on 10 ms bins, one step of its dynamics each; bin "
                                     "them at 10 ms")
    assert not (tmp_path / "binned20.nc").exists()
    np.savez(binned, spikes=np.full(own.spikes.shape, np.nan), bin_size_s=0.01)
    code, _, err = run_cli(["infer", run, "--samples", 2, "--data", binned, "--out",
                            tmp_path / "binned.nc"], monkeypatch, capsys)
    assert_one_line_error(code, err, "every entry of `spikes` is NaN (not recorded)")
    assert "run's settings" not in err  # (no setting of the run's cuts a binned file)
    # a recording without trials: not "leave the settings out" (infer cannot), but what to do
    code, _, err = run_cli(["infer", run, "--data", files["continuous"], "--out",
                            tmp_path / "cont.nc"], monkeypatch, capsys)
    assert_one_line_error(code, err, "has no trials table, but the run was fitted on trials cut "
                                     "by its settings (align, window", "fit a run on the file as "
                                     "a continuous recording (--chop) to infer it")
    code, _, err = run_cli(["infer", run, "--data", "mc_maze", "--out", tmp_path / "nlb.nc"],
                           monkeypatch, capsys)  # (was: bin_size_ms must be one of 5, 20)
    assert_one_line_error(code, err, f"mc_maze is an NLB dataset, but the run was fitted on "
                                     f"{files['nwb']}: the neurons of mc_maze are not the run's")
    code, _, err = run_cli(["infer", run, "--data", "lorenz", "--out", tmp_path / "nlb.nc"],
                           monkeypatch, capsys)  # (was: leave out bin_size_ms (--bin))
    assert_one_line_error(code, err, "lorenz is the embedded Lorenz benchmark, but the run was "
                                     f"fitted on {files['nwb']}")
    # a binned file that says no bin size: the run's, said
    np.savez(binned, spikes=own.spikes.astype(int))
    code, _, err = run_cli(["infer", run, "--samples", 2, "--data", binned, "--out",
                            tmp_path / "nobin.nc"], monkeypatch, capsys)
    assert code == 0, err
    assert "binned says no bin size (a spike file's bin_size_s, a SpikeData's bin_size): its " \
           "bins are taken to be the run's, 10 ms" in err
    assert xr.open_dataset(tmp_path / "nobin.nc").attrs["bin_size_s"] == 0.01
    # a recording given to a run of binned counts is cut into the run's bins, not the default
    coarse = load(files["nwb"], align="stim_on_time", window="-0.2,0.8", bin_size_ms=20)
    np.savez(tmp_path / "coarse.npz", spikes=coarse.spikes.astype(int), bin_size_s=0.02)
    code, _, err = run_cli(["fit", "--data", tmp_path / "coarse.npz", "--out", tmp_path / "bins",
                            *TINY], monkeypatch, capsys)
    assert code == 0, err
    code, _, err = run_cli(["infer", tmp_path / "bins", "--samples", 2, "--data", files["nwb"],
                            "--out", tmp_path / "coarse.nc"], monkeypatch, capsys)
    assert code == 0, err  # (was: the trials of session are in 10 ms bins ... bin them at 20 ms)
    assert xr.open_dataset(tmp_path / "coarse.nc").attrs["bin_size_s"] == 0.02
    np.savez(tmp_path / "coarse.npz", spikes=coarse.spikes.astype(int), bin_size_s=1 / 60)
    code, _, err = run_cli(["fit", "--data", tmp_path / "coarse.npz", "--out", tmp_path / "odd",
                            *TINY], monkeypatch, capsys)
    assert code == 0, err
    code, _, err = run_cli(["infer", tmp_path / "odd", "--data", files["nwb"], "--out",
                            tmp_path / "odd.nc"], monkeypatch, capsys)
    assert_one_line_error(code, err, "the run's bins are 16.6667 ms, and pyrolf bins recordings "
                                     "in whole ms")
    # a named data set given to a run of a spike file
    code, _, err = run_cli(["infer", tmp_path / "odd", "--data", "lorenz", "--out",
                            tmp_path / "odd.nc"], monkeypatch, capsys)
    assert_one_line_error(code, err, "lorenz is the embedded Lorenz benchmark, but the run was "
                                     "fitted on")
    code, _, err = run_cli(["infer", run, "--data", files["nwb"], "--trials-where",
                            "outcome=nope", "--out", tmp_path / "no.nc"], monkeypatch, capsys)
    assert_one_line_error(code, err, "--trials-where outcome=nope keeps no trial")
    assert "run's settings" not in err


def test_new_trials_are_inferred_from_the_run_folder_alone(files, tmp_path, monkeypatch,
                                                           capsys):
    """A run folder keeps what lays new trials out and fills a unit they lack (layout.pt): with
    the file it was fitted on gone (archived, a colleague's machine) `infer --data` works, where
    it stopped asking for that file (found by a walkthrough), and gives what reading it gave."""
    import shutil

    own = shutil.copy(files["nwb"], tmp_path / "day1.nwb")
    run = tmp_path / "run"
    code, _, err = run_cli(["fit", "--data", own, *ONSET, "--out", run, *TINY], monkeypatch,
                           capsys)
    assert code == 0, err
    day = simulate_recording(n_trials=30, n_units=40, seed=5)
    fitted = load(own, align="stim_on_time", window="-0.2,0.8")
    lost = fitted.extra["unit_ids"][~fitted.heldout][0]  # a held-in unit: filled from the means
    kept = np.flatnonzero(day.unit_ids != lost)
    day2 = write_recording_nwb(tmp_path / "day2.nwb", dataclasses.replace(
        day, spike_times=[day.spike_times[unit] for unit in kept], unit_ids=day.unit_ids[kept]))

    def inferred(name):
        code, _, err = run_cli(["infer", run, "--samples", 3, "--data", day2, "--out",
                                tmp_path / name], monkeypatch, capsys)
        assert code == 0, err
        return xr.load_dataset(tmp_path / name)

    alone = inferred("alone.nc")
    assert not alone.in_data.sel(neuron=lost) and not alone.heldout.sel(neuron=lost)
    assert alone.in_data.sum() == 39 and "recorded" in alone  # (its counts filled)
    layout = run / "layout.pt"
    kept_bytes = layout.read_bytes()
    layout.unlink()  # a run fitted before pyrolf kept it: its data are read
    xr.testing.assert_identical(inferred("read.nc"), alone)
    layout.write_bytes(kept_bytes)
    own.unlink()
    xr.testing.assert_identical(inferred("gone.nc"), alone)
    # without it, the run's own data are needed: said in one line
    layout.unlink()
    code, _, err = run_cli(["infer", run, "--data", day2, "--out", tmp_path / "x.nc"],
                           monkeypatch, capsys)
    assert_one_line_error(code, err, f"{own}, a data file of {run}, is missing")
    # a run from before layout.pt gains it when resumed (its data read then)
    shutil.copy(files["nwb"], own)
    code, _, err = run_cli(["fit", "--resume", run, "--epochs", "3", "--quiet"], monkeypatch,
                           capsys)
    assert code == 0, err
    assert layout.read_bytes() == kept_bytes


def test_the_least_rate_is_of_the_time_recorded_and_a_sparse_session_in_seconds_passes(tmp_path):
    """Units firing just above LEAST_RATE_HZ in the bins recorded are fitted, just below refused;
    bins not recorded (NaN) are no time the units could fire in."""
    from pyrolf.data.recordings import LEAST_RATE_HZ, _check_rate

    bin_size, shape = 0.01, (50, 100, 4)  # 200 unit-seconds
    source = SimpleNamespace(path=tmp_path / "s.nwb",
                             unit_spike_times=lambda unit: np.array([0.5, 40.0]))
    opens = np.arange(50.0)

    def spikes(rate, recorded=1.0):
        counts = np.zeros(shape, dtype=np.float32)
        counts[..., int(shape[2] * recorded):] = np.nan
        trial, time = np.unravel_index(np.arange(round(rate * 200 * recorded)), shape[:2])
        counts[trial, time, 0] = 1  # (unit 0: recorded)
        return counts

    _check_rate(source, np.arange(4), spikes(1.2 * LEAST_RATE_HZ), opens, bin_size, "trials")
    with pytest.raises(DataError, match=r"s.nwb: its units fire 0.04 spikes/s on average in the "
                                        r"trials kept \(8 spikes in 50 trials\), too few to fit: "
                                        r"are the times in seconds"):
        _check_rate(source, np.arange(4), spikes(0.8 * LEAST_RATE_HZ), opens, bin_size, "trials")
    # 8 spikes in half the time: 0.08 spikes/s, enough
    _check_rate(source, np.arange(4), spikes(1.6 * LEAST_RATE_HZ, recorded=0.5), opens, bin_size,
                "trials")


def test_a_layout_that_cannot_be_read_or_is_another_run_s_is_noted_and_the_data_read(
        files, tmp_path, monkeypatch, capsys):
    """A damaged layout.pt, or one copied from another run, lays nothing out: the run's own
    data are read in its place, with a note, and the result is the same."""
    run = tmp_path / "run"
    code, _, err = run_cli(["fit", "--data", files["nwb"], *ONSET, "--out", run, *TINY],
                           monkeypatch, capsys)
    assert code == 0, err
    args = ["infer", run, "--samples", 2, "--data", files["npz"], "--out"]
    code, _, err = run_cli([*args, tmp_path / "kept.nc"], monkeypatch, capsys)
    assert code == 0 and "layout.pt" not in err, err
    layout = run / "layout.pt"
    kept = layout.read_bytes()
    for damaged, said in ((kept[:100], "cannot be read (damaged?)"),
                          (b"not a pickle", "cannot be read (damaged?)"),
                          (None, "is of other data than")):  # (other held-out flags or splits)
        if damaged is None:  # another run's
            from pyrolf.runs import RunFolder

            layout.write_bytes(kept)
            other = RunFolder(run).load("layout.pt")
            RunFolder(run).save("layout.pt", {**other, "fitted": {**other["fitted"],
                                                                  "roles": "0" * 64}})
        else:
            layout.write_bytes(damaged)
        code, _, err = run_cli([*args, tmp_path / "read.nc"], monkeypatch, capsys)
        assert code == 0, err
        assert f"note: {layout} {said}" in err
        assert "own data are read in its place, and it is written again from them" in err
        xr.testing.assert_identical(xr.load_dataset(tmp_path / "read.nc"),
                                    xr.load_dataset(tmp_path / "kept.nc"))
        assert layout.read_bytes() == kept  # (written again, as the note says)
    # an older pyrolf's (keeping less): of no use, said so
    from pyrolf.runs import RunFolder

    RunFolder(run).save("layout.pt", {**RunFolder(run).load("layout.pt"), "format": 0})
    code, _, err = run_cli([*args, tmp_path / "read.nc"], monkeypatch, capsys)
    assert code == 0 and f"note: {layout} is of another version of pyrolf" in err, err
    assert layout.read_bytes() == kept
    # a resume writes it again too
    layout.write_bytes(b"junk")
    code, _, err = run_cli(["fit", "--resume", run, "--quiet"], monkeypatch, capsys)
    assert code == 0 and f"note: {layout} cannot be read (damaged?): written again" in err, err
    assert layout.read_bytes() == kept


def test_spike_times_out_of_order_in_the_file_are_binned_as_by_hand(tmp_path):
    """(A mutation audit.) NWB does not require a unit's spike times sorted: each unit's are
    written shuffled, and the counts must still be np.histogram's of its times in each 10 ms bin."""
    session = simulate_recording(n_trials=12, n_units=5, seed=4)
    rng = np.random.default_rng(0)
    shuffled = dataclasses.replace(session, spike_times=[rng.permutation(times)
                                                         for times in session.spike_times])
    assert any((np.diff(times) < 0).any() for times in shuffled.spike_times)
    path = write_recording_nwb(tmp_path / "shuffled.nwb", shuffled)
    data = load_config_data(Config(data=str(path), align="stim_on_time", window="-0.2,0.3"))
    starts = session.trials.stim_on_time.to_numpy()[data.extra["trial_ids"]] - 0.2
    by_hand = np.stack([np.stack([np.histogram(times, start + 0.01 * np.arange(51))[0]
                                  for times in session.spike_times], -1) for start in starts])
    assert data.spikes.shape == (len(starts), 50, 5) and data.spikes.sum() > 0
    np.testing.assert_array_equal(data.spikes, by_hand)


def test_units_listed_in_another_order_are_compared_by_id(capsys):
    run_ids, run_table = np.array([1, 2, 3]), {"location": ["CA3", "CA1", "DG"]}
    ids = np.array([3, 2, 1])  # the same units, listed in the other order
    note_moved_units(ids, {"location": ["DG", "CA1", "CA3"]}, run_ids, run_table)
    assert capsys.readouterr().err == ""
    note_moved_units(ids, {"location": ["DG", "CA2", "CA3"]}, run_ids, run_table)  # 2 moved
    err = capsys.readouterr().err
    assert err.startswith("note: units of the data have the run's ids but another place")
    assert "(location: ids 2)" in err


def test_units_read_by_id_keep_their_ground_truth_rates_in_the_run_s_order():
    """(N6) New data with ground-truth rates (synthetic recordings) read by unit id keep them,
    picked and ordered as their counts are; none where a unit of the run is missing."""
    from pyrolf.data.spikes import SpikeData
    from pyrolf.diagnostics.new_trials import in_run_order

    spikes = np.arange(2 * 4 * 3, dtype=np.float32).reshape(2, 4, 3) % 5
    rates = spikes + 0.5  # each unit's own rates, so the order can be told
    data = SpikeData(spikes, np.array([False, False, True]), {"train": np.arange(2)},
                     rates=rates, extra={"unit_ids": np.array([10, 20, 30])})
    run_ids, heldout = np.array([30, 10, 20]), np.array([True, False, False])
    laid = in_run_order(data, run_ids, heldout)
    np.testing.assert_array_equal(laid.spikes, spikes[..., [2, 0, 1]])
    np.testing.assert_array_equal(laid.rates, rates[..., [2, 0, 1]])
