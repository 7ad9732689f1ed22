import dataclasses

import h5py
import numpy as np
import pytest

from pyrolf.data.files import (MAX_COUNT, load_spike_file, note_few_scored, save_spike_file,
                               split_trials)
from pyrolf.data.spikes import DataError, SpikeData

SUFFIXES = (".h5", ".hdf5", ".npz")


def write_arrays(path, **arrays):
    """Write ``arrays`` in the format of ``path``'s extension, with no checks."""
    if path.suffix == ".npz":
        np.savez(path, **arrays)
    else:
        with h5py.File(path, "w") as file:
            for name, array in arrays.items():
                file.create_dataset(name, data=array)


def make_data(rng, with_rates, with_conditions, trials=12, bins=7, neurons=5):
    rates = rng.gamma(2.0, 0.5, size=(trials, bins, neurons)).astype(np.float32)
    heldout = np.zeros(neurons, dtype=bool)
    heldout[[1, 3]] = True
    return SpikeData(spikes=rng.poisson(rates).astype(np.float32), heldout=heldout,
                     splits=split_trials(rng, trials), rates=rates if with_rates else None,
                     conditions=np.arange(trials) % 3 if with_conditions else None)


def assert_same_data(loaded, expected):
    np.testing.assert_array_equal(loaded.spikes, expected.spikes)
    assert loaded.spikes.dtype == np.float32
    np.testing.assert_array_equal(loaded.heldout, expected.heldout)
    for name in ("rates", "conditions"):
        if getattr(expected, name) is None:
            assert getattr(loaded, name) is None
        else:
            np.testing.assert_array_equal(getattr(loaded, name), getattr(expected, name))


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("with_rates", [False, True])
@pytest.mark.parametrize("with_conditions", [False, True])
def test_round_trip_is_exact(tmp_path, suffix, with_rates, with_conditions):
    data = make_data(np.random.default_rng(0), with_rates, with_conditions)
    path = tmp_path / f"session{suffix}"
    save_spike_file(path, data)
    loaded = load_spike_file(path)
    assert_same_data(loaded, data)
    assert loaded.name == "session"


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_true_latents_round_trip_and_the_lorenz_data_carry_theirs(tmp_path, suffix):
    from pyrolf.data import lorenz_dataset

    data = lorenz_dataset(seed=2, n_conditions=3, trials_per_condition=2, n_bins=6, n_neurons=5,
                          n_heldout=1)
    assert data.extra["latents"].shape == (6, 6, 3)
    save_spike_file(tmp_path / f"lorenz{suffix}", data)
    loaded = load_spike_file(tmp_path / f"lorenz{suffix}")
    np.testing.assert_array_equal(loaded.extra["latents"], data.extra["latents"])
    assert set(loaded.extra) == {"latents"}
    save_spike_file(tmp_path / f"plain{suffix}", make_data(np.random.default_rng(0), True, True))
    assert "latents" not in load_spike_file(tmp_path / f"plain{suffix}").extra


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_known_bin_width_is_kept_and_an_unknown_one_stays_unknown(tmp_path, suffix, capsys):
    data = make_data(np.random.default_rng(0), False, True)
    save_spike_file(tmp_path / f"plain{suffix}", data)
    plain = load_spike_file(tmp_path / f"plain{suffix}")
    assert plain.bin_size is None
    write_arrays(tmp_path / f"binned{suffix}", spikes=data.spikes.astype(int), bin_size_s=0.02)
    binned = load_spike_file(tmp_path / f"binned{suffix}")
    assert binned.bin_size == 0.02
    save_spike_file(tmp_path / f"again{suffix}", binned)  # kept on saving
    assert load_spike_file(tmp_path / f"again{suffix}").bin_size == 0.02
    if suffix != ".npz":  # HDF5 files keep such a number as an attribute too
        with h5py.File(tmp_path / f"attr{suffix}", "w") as file:
            file.create_dataset("spikes", data=data.spikes.astype(int))
            file.attrs["bin_size_s"] = 0.005
        assert load_spike_file(tmp_path / f"attr{suffix}").bin_size == 0.005
    write_arrays(tmp_path / f"ms{suffix}", spikes=data.spikes.astype(int), bin_size_s=10)
    assert load_spike_file(tmp_path / f"ms{suffix}").bin_size == 10.0  # taken, and said
    assert "`bin_size_s` 10 makes bins of 10 s; the unit is seconds" in capsys.readouterr().err
    # a name like a known one is not read, and said; other arrays are the user's own
    write_arrays(tmp_path / f"typo{suffix}", spikes=data.spikes.astype(int), bin_size=0.02,
                 held_out=np.zeros(data.n_neurons, bool), session_notes=np.arange(3))
    typo = load_spike_file(tmp_path / f"typo{suffix}")
    assert typo.bin_size is None
    err = capsys.readouterr().err
    assert (f"typo{suffix}: `bin_size` (is it `bin_size_s`?), `held_out` (is it `heldout`?) not "
            "read; pyrolf reads spikes, rates, heldout") in err
    assert "session_notes" not in err
    write_arrays(tmp_path / f"both{suffix}", spikes=data.spikes.astype(int), bin_size=0.02,
                 bin_size_s=0.02)
    load_spike_file(tmp_path / f"both{suffix}")
    assert "not read" not in capsys.readouterr().err


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_file_without_heldout_survives_save_and_reload_unchanged(tmp_path, suffix):
    spikes = np.random.default_rng(1).poisson(1.0, size=(20, 6, 10))
    write_arrays(tmp_path / f"raw{suffix}", spikes=spikes)
    first = load_spike_file(tmp_path / f"raw{suffix}", seed=4)
    assert first.heldout.sum() == 2  # 20 % of 10 neurons
    save_spike_file(tmp_path / f"saved{suffix}", first)
    second = load_spike_file(tmp_path / f"saved{suffix}", seed=4)
    assert_same_data(second, first)
    for split in ("train", "valid", "test"):
        np.testing.assert_array_equal(second.splits[split], first.splits[split])


def test_heldout_default_is_seeded_and_at_least_one(tmp_path):
    write_arrays(tmp_path / "three.npz", spikes=np.ones((5, 4, 3)))
    assert load_spike_file(tmp_path / "three.npz").heldout.sum() == 1
    write_arrays(tmp_path / "many.npz", spikes=np.ones((5, 4, 40)))
    masks = [load_spike_file(tmp_path / "many.npz", seed=s).heldout for s in (0, 0, 1)]
    np.testing.assert_array_equal(masks[0], masks[1])
    assert not np.array_equal(masks[0], masks[2])


def test_splits_are_random_by_trial_and_stratified_by_condition(tmp_path):
    rng = np.random.default_rng(2)
    conditions = np.repeat(np.arange(8), 20)
    write_arrays(tmp_path / "c.h5", spikes=rng.poisson(1.0, size=(160, 3, 4)),
                 conditions=conditions)
    splits = load_spike_file(tmp_path / "c.h5", seed=0).splits
    everything = np.concatenate(list(splits.values()))
    np.testing.assert_array_equal(np.sort(everything), np.arange(160))
    for name, share in zip(("train", "valid", "test"), (14, 3, 3)):
        assert np.all(np.diff(splits[name]) > 0)
        np.testing.assert_array_equal(np.bincount(conditions[splits[name]], minlength=8), share)
    other = load_spike_file(tmp_path / "c.h5", seed=1).splits
    assert not np.array_equal(other["train"], splits["train"])


def test_splits_keep_every_condition_near_its_share_with_uneven_conditions():
    rng = np.random.default_rng(3)
    conditions = rng.integers(0, 15, size=200)
    splits = split_trials(rng, 200, (0.6, 0.2, 0.2), conditions)
    for name, fraction in zip(("train", "valid", "test"), (0.6, 0.2, 0.2)):
        assert abs(len(splits[name]) - fraction * 200) <= 2
        counts = np.bincount(conditions[splits[name]], minlength=15)
        assert np.all(np.abs(counts - fraction * np.bincount(conditions, minlength=15)) < 1)


def test_three_trials_fill_all_three_splits():
    splits = split_trials(np.random.default_rng(0), 3)
    assert [len(splits[name]) for name in ("train", "valid", "test")] == [1, 1, 1]


def test_few_valid_or_test_trials_are_noted_by_count(capsys):
    splits = {"train": np.arange(7), "valid": np.array([7]), "test": np.array([8, 9])}
    data = SpikeData(np.zeros((10, 4, 3)), np.array([True, False, False]), splits, name="d")
    note_few_scored(data)
    assert capsys.readouterr().err.startswith("note: d: 1 valid trial and 2 test trials of its 10")
    note_few_scored(dataclasses.replace(data, splits={"train": np.arange(4), "valid":
                                                      np.arange(4, 7), "test": np.arange(7, 10)}))
    assert capsys.readouterr().err == ""


GOOD = np.ones((4, 3, 5))

BAD_ARRAYS = {
    "missing spikes": {"rates": GOOD},
    "spikes 2-D": {"spikes": np.ones((4, 5))},
    "too few trials": {"spikes": np.ones((2, 3, 5))},
    "no bins": {"spikes": np.ones((4, 0, 5))},
    "no neurons": {"spikes": np.ones((4, 3, 0))},
    "one neuron": {"spikes": np.ones((4, 3, 1))},
    "spikes inf": {"spikes": np.where(np.arange(5) == 2, np.inf, GOOD)},
    "negative counts": {"spikes": -GOOD},
    "non-integer counts": {"spikes": GOOD * 0.5},
    "implausible counts": {"spikes": GOOD * (MAX_COUNT + 1)},
    "text spikes": {"spikes": np.full((4, 3, 5), b"a")},
    "complex spikes": {"spikes": GOOD + 0j},
    "rates shape": {"spikes": GOOD, "rates": np.ones((4, 3, 4))},
    "negative rates": {"spikes": GOOD, "rates": -GOOD},
    "NaN rates": {"spikes": GOOD, "rates": GOOD * np.nan},
    "heldout length": {"spikes": GOOD, "heldout": np.array([True, False])},
    "heldout not boolean": {"spikes": GOOD, "heldout": np.array([0, 2, 0, 1, 0])},
    "heldout all": {"spikes": GOOD, "heldout": np.ones(5, dtype=bool)},
    "heldout none": {"spikes": GOOD, "heldout": np.zeros(5, dtype=bool)},
    "conditions length": {"spikes": GOOD, "conditions": np.arange(3)},
    "conditions fractional": {"spikes": GOOD, "conditions": np.array([0, 0.5, 1, 1])},
    "latents shape": {"spikes": GOOD, "latents": np.ones((4, 2, 3))},
    "latents 2-D": {"spikes": GOOD, "latents": np.ones((4, 3))},
    "latents NaN": {"spikes": GOOD, "latents": np.full((4, 3, 2), np.nan)},
    "bin size negative": {"spikes": GOOD, "bin_size_s": -0.01},
    "bin size zero": {"spikes": GOOD, "bin_size_s": 0.0},
    "bin size twice": {"spikes": GOOD, "bin_size_s": np.array([0.01, 0.02])},
    "bin size text": {"spikes": GOOD, "bin_size_s": b"10 ms"},
    "bin size complex": {"spikes": GOOD, "bin_size_s": np.complex128(0.01)},
}


def assert_one_line_data_error(call, *args, **kwargs):
    with pytest.raises(DataError) as error:
        call(*args, **kwargs)
    message = str(error.value)
    assert message.strip() and "\n" not in message
    return message


@pytest.mark.parametrize("suffix", [".h5", ".npz"])
@pytest.mark.parametrize("case", sorted(BAD_ARRAYS))
def test_unusable_arrays_raise_one_line_data_error(tmp_path, suffix, case):
    path = tmp_path / f"bad{suffix}"
    write_arrays(path, **BAD_ARRAYS[case])
    assert str(path) in assert_one_line_data_error(load_spike_file, path)


def test_the_largest_plausible_count_loads(tmp_path):
    write_arrays(tmp_path / "busy.npz", spikes=GOOD * MAX_COUNT)
    assert load_spike_file(tmp_path / "busy.npz").spikes.max() == MAX_COUNT


def test_missing_file_directory_and_unknown_extension(tmp_path):
    assert "not found" in assert_one_line_data_error(load_spike_file, tmp_path / "none.h5")
    (tmp_path / "session.npz").mkdir()
    assert "is a directory" in assert_one_line_data_error(load_spike_file, tmp_path / "session.npz")
    (tmp_path / "spikes.csv").write_text("1,2,3\n")
    assert ".csv" in assert_one_line_data_error(load_spike_file, tmp_path / "spikes.csv")
    data = make_data(np.random.default_rng(0), False, False)
    assert_one_line_data_error(save_spike_file, tmp_path / "spikes.mat", data)


@pytest.mark.parametrize("suffix", [".h5", ".hdf5", ".npz"])
def test_corrupt_files_raise_one_line_data_error(tmp_path, suffix):
    garbage = tmp_path / f"garbage{suffix}"
    garbage.write_bytes(b"this is not a spike file\n" * 20)
    assert_one_line_data_error(load_spike_file, garbage)
    good = tmp_path / f"good{suffix}"
    write_arrays(good, spikes=np.random.default_rng(0).poisson(1.0, size=(50, 20, 10)))
    truncated = tmp_path / f"truncated{suffix}"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert_one_line_data_error(load_spike_file, truncated)


def test_hdf5_group_instead_of_dataset(tmp_path):
    path = tmp_path / "group.h5"
    with h5py.File(path, "w") as file:
        file.create_group("spikes")
    assert "group" in assert_one_line_data_error(load_spike_file, path)


def test_save_refuses_data_that_would_not_load_and_unwritable_paths(tmp_path):
    data = make_data(np.random.default_rng(0), True, False)
    smoothed = SpikeData(spikes=data.spikes + 0.25, heldout=data.heldout, splits=data.splits)
    assert_one_line_data_error(save_spike_file, tmp_path / "s.npz", smoothed)
    all_heldout = SpikeData(spikes=data.spikes, heldout=np.ones(5, dtype=bool), splits=data.splits)
    assert_one_line_data_error(save_spike_file, tmp_path / "h.h5", all_heldout)
    assert not (tmp_path / "s.npz").exists() and not (tmp_path / "h.h5").exists()
    assert_one_line_data_error(save_spike_file, tmp_path / "no" / "such" / "dir.h5", data)
    assert_one_line_data_error(save_spike_file, tmp_path / "no" / "such" / "dir.npz", data)


def test_bad_split_fractions_raise_data_error(tmp_path):
    write_arrays(tmp_path / "ok.npz", spikes=GOOD)
    assert_one_line_data_error(load_spike_file, tmp_path / "ok.npz",
                               split_fractions=(0.5, 0.2, 0.2))


def test_npz_with_python_objects_raises_one_line_data_error(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, spikes=np.array([GOOD, "text"], dtype=object))
    assert "numeric array" in assert_one_line_data_error(load_spike_file, path)
