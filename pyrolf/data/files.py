"""The user's own spike files: ``.h5``/``.hdf5`` (HDF5 datasets at the root) or ``.npz``.

Arrays a file holds (names are the keys / dataset names):

- ``spikes`` (required): ``(trials, time, neurons)`` non-negative integer spike counts, at most
  :data:`MAX_COUNT` per bin; NaN where a neuron was not recorded (unknown, not silence: neither
  fitted nor scored; the fit's encoder reads it as hidden, scores, diagnose and ``infer`` fill
  it: :data:`UNRECORDED_READ`).
- ``rates`` (optional): ground-truth rates in spikes per bin, same shape as ``spikes``.
- ``heldout`` (optional): ``(neurons,)`` bool, the neurons scored by co-bps; without it a seeded
  random 20 % (``heldout_fraction``) of the neurons (at least one) is held out.
- ``conditions`` (optional): ``(trials,)`` integer condition label per trial.
- ``latents`` (optional): ``(trials, time, k)`` the true latent state (synthetic data), kept in
  ``SpikeData.extra["latents"]``; when present, a run's metrics include ``latents_r2``.
- ``bin_size_s`` (optional): one number, the bin width in seconds (HDF5: a dataset or an
  attribute of the file), kept as ``bin_size``; with it the
  bins are known as for a recording (time in seconds in ``inferred.nc``, ``psth_r2`` with
  ``conditions``, sessions' bins compared).

Other arrays are left alone; one whose name is like one of these (``bin_size``, ``held_out``) is
named in a note, as it is not read.

Trials are split at random (seeded) into train/valid/test, stratified by condition when
``conditions`` is present.  Every problem with a file raises :class:`DataError` with one line
saying what is wrong and what to do.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import zipfile
from pathlib import Path

import h5py
import numpy as np

from pyrolf.data.spikes import DataError, SpikeData
from pyrolf.messages import few_ids, note

#: how pyrolf reads counts not recorded (NaN), as the notes that find them say
UNRECORDED_READ = ("not scored; the fit's encoder reads them as hidden (zeros), the scores, "
                   "diagnose and infer fill them with what the run infers")

#: the narrowest bin width taken, seconds: finer is a width in other units (ns, µs as s), whose
#: PSTH kernel of tens of ms would be millions of bins wide
LEAST_BIN_S = 1e-5
HDF5_SUFFIXES = (".h5", ".hdf5")
NPZ_SUFFIXES = (".npz",)
ARRAY_NAMES = ("spikes", "rates", "heldout", "conditions", "latents", "bin_size_s")
MISSPELLED = 0.8  # how like a known name (difflib's ratio) another name must be to be noted
HELDOUT_FRACTION = 0.2
SPLIT_NAMES = ("train", "valid", "test")
FEW_SCORED = 3  # fewer valid or test trials than this: their scores say little (a note)
# More spikes than this in one bin of one neuron are no binned spike count (a neuron firing at
# 500 Hz gives 1000 in a 2 s bin): more likely spike times, sample indices or a unit error.
MAX_COUNT = 1000


def decoded(value):
    """``value`` as text where it is bytes (text saved by h5py, MATLAB, NWB converters: UTF-8,
    a byte that is none, e.g. latin-1, as U+FFFD), else as it is."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def fingerprint(path: str | Path) -> dict:
    """``{"bytes": size, "sha256": hex digest of the whole file}``: what says a file is the same."""
    with open(path, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    return {"bytes": Path(path).stat().st_size, "sha256": digest}


def spikes_fingerprint(sessions: list[SpikeData]) -> dict:
    """``{"shapes": each one's (trials, time, neurons), "sha256": hex digest of their counts as
    float32, in order, "roles": hex digest of what each one's neurons and trials are to a fit:
    its held-out flags and its splits (name, trials)}``: what says a run is given the data it
    was fitted on, wherever they came from (:func:`same_data`)."""
    counts, roles = hashlib.sha256(), hashlib.sha256()
    for data in sessions:
        counts.update(np.ascontiguousarray(data.spikes, dtype=np.float32).data)
        roles.update(np.asarray(data.heldout, dtype=np.uint8).tobytes())
        for name in sorted(data.splits):
            roles.update(name.encode())
            roles.update(np.sort(np.asarray(data.splits[name], dtype=np.int64)).tobytes())
    return {"shapes": [list(data.spikes.shape) for data in sessions],
            "sha256": counts.hexdigest(), "roles": roles.hexdigest()}


def same_data(recorded: dict, fingerprint: dict) -> bool:
    """Whether ``fingerprint`` (:func:`spikes_fingerprint`) is of the data ``recorded`` is of
    (one a run took before pyrolf kept the ``roles`` compares the counts)."""
    return all(fingerprint.get(key) == value for key, value in recorded.items())


def same_counts(recorded: dict, fingerprint: dict) -> bool:
    """Whether ``fingerprint`` has the counts ``recorded`` has (their roles aside)."""
    return same_data({key: recorded[key] for key in ("shapes", "sha256")}, fingerprint)


def check_data(data: SpikeData, where: str = "the data", one_of: int = 1) -> SpikeData:
    """``data`` checked as a spike file's arrays are (:func:`load_spike_file`), with its splits
    and forward bins: ``spikes`` ``(trials, time, neurons)`` whole, finite, non-negative counts
    (made float32), ``heldout`` one flag per neuron holding some out and some in (made bool),
    ``rates`` and ``conditions`` of their shapes, ``splits`` ``train``, ``valid`` and ``test``,
    each of trial indices in range, none empty, no trial in two, ``n_forward`` below the bins,
    and every neuron recorded (not NaN) somewhere in the training trials. ``where`` names the
    data in the messages; ``one_of``: of how many sessions they are one (the advice that leaves
    a unit out says it leaves it out of every session).

    Raises:
        DataError: one line, on what is wrong and what to give.
    """
    data = check_trials(data, where)
    spikes = data.spikes
    n_trials, n_bins, n_neurons = spikes.shape
    heldout = _check_heldout(where, np.asarray(data.heldout), n_neurons)
    if not isinstance(data.splits, dict):
        raise DataError(f"{where}: splits must be a dict of trial indices, got "
                        f"{type(data.splits).__name__}; give train, valid and test trials")
    splits, seen = {}, np.zeros(n_trials, dtype=int)
    for name in ("train", "valid", "test"):
        indices = np.asarray(data.splits.get(name, []))
        if (not np.issubdtype(indices.dtype, np.integer) or indices.ndim != 1
                or not len(indices) or indices.min() < 0 or indices.max() >= n_trials):
            raise DataError(f"{where}: splits[{name!r}] must be a non-empty 1-D array of trial "
                            f"indices in 0..{n_trials - 1}; give train, valid and test trials")
        np.add.at(seen, indices, 1)
        splits[name] = indices
    if seen.max() > 1:
        raise DataError(f"{where}: trial {int(np.argmax(seen > 1))} is in more than one split "
                        "(or twice in one); give each trial to one of train, valid and test")
    if not 0 <= data.n_forward < n_bins:
        raise DataError(f"{where}: n_forward {data.n_forward} must leave an observed bin of the "
                        f"{n_bins}")
    untrained = np.isnan(spikes[splits["train"], :n_bins - data.n_forward]).all(axis=(0, 1))
    if untrained.any():
        ids, named = data.neuron_ids[untrained], "unit_ids" in data.extra
        many = len(ids) > 1
        them, word = ("them" if many else "it"), ("unit" if named else "neuron") + "s" * many
        how = ("--units-where id!=" + ",".join(map(str, ids)) if named
               else f"leave {them} out of the file")
        if named and one_of > 1:
            how += (f" (which leaves {them} out of every session: where another session has a "
                    f"unit of {'these ids' if many else 'this id'}, leave {them} out of this "
                    "session's file instead)")
        what = data.trial_word
        raise DataError(f"{where}: {few_ids(ids, word=word)} {'have' if many else 'has'} no "
                        f"count recorded in the {len(splits['train'])} training {what} (NaN "
                        f"throughout: not recorded there), so nothing to fit {them} on; {how}")
    return dataclasses.replace(data, heldout=heldout, splits={**data.splits, **splits})


def check_trials(data: SpikeData, where: str = "the data", fitted: bool = True) -> SpikeData:
    """``data``'s trials checked as a spike file's are (:func:`load_spike_file`), as new trials
    for a run (whose held-out flags and splits apply) need: ``spikes`` ``(trials, time,
    neurons)`` whole, finite, non-negative counts (made float32), ``rates`` and ``conditions``
    of their shapes, ``bin_size`` one positive number of seconds or ``None``. ``where`` names
    the data in the messages; ``fitted``: as :func:`check_counts` (new trials: any number).

    Raises:
        DataError: one line, on what is wrong and what to give.
    """
    if not isinstance(data, SpikeData):
        raise DataError(f"{where} must be a pyrolf.data.SpikeData (spikes, heldout, splits), got "
                        f"{type(data).__name__}")
    spikes = check_counts(where, np.asarray(data.spikes), fitted)
    rates = None if data.rates is None else _check_rates(where, np.asarray(data.rates),
                                                         spikes.shape)
    conditions = (None if data.conditions is None else
                  _check_conditions(where, np.asarray(data.conditions), len(spikes)))
    bin_size = (None if data.bin_size is None else
                _check_bin_size(where, np.asarray(data.bin_size), "bin_size"))
    extra = data.extra if "behavior" not in data.extra else {
        **data.extra, **_check_behavior(where, data.extra, spikes.shape[:2],
                                        spikes.shape[1] - data.n_forward, fitted)}
    return dataclasses.replace(data, spikes=spikes, rates=rates, conditions=conditions,
                               bin_size=bin_size, extra=extra)


def _check_behavior(where: str, extra: dict, shape: tuple[int, int], n_observed: int,
                    fitted: bool = True) -> dict:
    """The behaviour of data given in Python (``extra["behavior"]``, see
    :class:`~pyrolf.data.spikes.SpikeData`) checked, before any fit: ``(trials, time, dims)``
    numbers (a ``(trials, time)`` array is one dimension), NaN where unknown, made float32;
    ``behavior_lag_bins`` a whole number of bins shorter than the ``n_observed`` bins it is
    decoded in (default 0), ``behavior_name`` (default ``"behavior"``); to be ``fitted``,
    known in some bin (new trials' may be unknown throughout: they are not scored)."""
    behavior = np.asarray(extra["behavior"])
    _require_numeric(where, "extra['behavior']", behavior)
    if behavior.ndim == 2:
        behavior = behavior[..., None]
    if behavior.ndim != 3 or behavior.shape[:2] != shape:
        raise DataError(f"{where}: extra['behavior'] has shape {behavior.shape} but the spikes "
                        f"have {shape[0]} trials of {shape[1]} bins; give it as (trials, time, "
                        "dims), one value per bin (NaN where unknown)")
    if not behavior.shape[2]:
        raise DataError(f"{where}: extra['behavior'] has shape {behavior.shape}, no dimension; "
                        "give at least one behavioural variable per bin")
    if np.isinf(behavior).any():
        raise DataError(f"{where}: extra['behavior'] holds infinite values; give NaN where the "
                        "behaviour is unknown")
    if fitted and np.isnan(behavior).all():
        raise DataError(f"{where}: extra['behavior'] is NaN (unknown) in every bin; give the "
                        "behaviour where it was measured, or leave it out")
    lag = extra.get("behavior_lag_bins", 0)
    if not isinstance(lag, (int, np.integer)) or isinstance(lag, bool) or abs(lag) >= n_observed:
        raise DataError(f"{where}: extra['behavior_lag_bins'] must be a whole number of bins "
                        f"shorter than a trial's {n_observed} observed bins, got {lag!r}; how "
                        "many bins after the rates' bin the behaviour is decoded (0: the same "
                        "bin)")
    return {"behavior": behavior.astype(np.float32, copy=False), "behavior_lag_bins": int(lag),
            "behavior_name": str(extra.get("behavior_name", "behavior"))}


def split_trials(rng: np.random.Generator, n_trials: int,
                 fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
                 conditions: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Random train/valid/test split of trial indices, stratified by condition.

    Each condition (taken in random order, its trials shuffled) gives ``floor(fraction * its
    trials)`` to every split; its few remaining trials go to the splits whose overall count lags
    furthest behind ``fraction * trials seen so far``.  So every condition contributes its share
    rounded up or down (exactly its share when that is a whole number) and the totals follow
    ``fractions``.  A split left empty takes one random trial of the largest split.

    Args:
        rng: source of randomness.
        n_trials: number of trials.
        fractions: train, valid and test fractions, non-negative, summing to 1, train positive.
        conditions: ``(trials,)`` condition label per trial, or ``None`` for a plain random split.

    Returns:
        ``{"train", "valid", "test"}`` -> sorted, disjoint int64 index arrays covering all trials.
    """
    fractions = np.asarray(fractions, dtype=np.float64)
    if (fractions.shape != (3,) or np.any(fractions < 0) or fractions[0] <= 0
            or not np.isclose(fractions.sum(), 1.0)):
        raise DataError(f"split fractions {tuple(fractions.tolist())} are invalid; give three "
                        "non-negative train/valid/test fractions summing to 1 with train > 0.")
    if n_trials < len(SPLIT_NAMES):
        raise DataError(f"{n_trials} trials cannot fill train/valid/test; give at least 3 trials.")
    labels = np.zeros(n_trials, dtype=np.int64) if conditions is None else np.asarray(conditions)
    assignment = np.empty(n_trials, dtype=np.int64)
    assigned, seen = np.zeros(3), 0
    for label in rng.permutation(np.unique(labels)):
        group = rng.permutation(np.flatnonzero(labels == label))
        seen += len(group)
        share = fractions * len(group)
        counts = np.floor(share + 1e-9)
        lag = fractions * seen - assigned - counts
        lagging = [s for s in np.argsort(-lag, kind="stable") if share[s] - counts[s] > 1e-9]
        counts[lagging[:len(group) - int(counts.sum())]] += 1
        assignment[group] = np.repeat(np.arange(3), counts.astype(np.int64))
        assigned += counts
    for split in range(3):
        if fractions[split] > 0 and not np.any(assignment == split):
            largest = np.argmax(np.bincount(assignment, minlength=3))
            assignment[rng.choice(np.flatnonzero(assignment == largest))] = split
    return {name: np.flatnonzero(assignment == i) for i, name in enumerate(SPLIT_NAMES)}


def load_spike_file(path: str | Path, seed: int = 0,
                    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
                    heldout_fraction: float = HELDOUT_FRACTION) -> SpikeData:
    """Read and check a spike file (format in the module docstring).

    Args:
        path: ``.h5``, ``.hdf5`` or ``.npz`` file.
        seed: seeds the held-out neurons (when the file has no ``heldout``) and the splits.
        split_fractions: train, valid and test fractions of the trials.
        heldout_fraction: share of the neurons held out when the file has no ``heldout`` (one
            with ``heldout`` takes only the default).

    Returns:
        :class:`SpikeData` with float32 ``spikes`` (and ``rates``), named after the file's stem.

    Raises:
        DataError: the file is missing, unreadable or its arrays are unusable, or it has
            ``heldout`` and ``heldout_fraction`` is not the default.
    """
    path = Path(path)
    spikes, rates, heldout, conditions, latents, bin_size = _check_arrays(path,
                                                                          _read_arrays(path))
    if heldout is not None and heldout_fraction != HELDOUT_FRACTION:
        raise DataError(f"{path} flags its own held-out neurons (`heldout`), so a heldout "
                        f"fraction ({heldout_fraction}) cannot apply; leave out --heldout")
    n_trials, _, n_neurons = spikes.shape
    unrecorded = np.isnan(spikes)
    if unrecorded.any():
        neurons = np.flatnonzero(unrecorded.any(axis=(0, 1)))
        note(f"{path.name}: {int(unrecorded.sum())} of its {spikes.size} counts are NaN, not "
             f"recorded, in {few_ids(neurons, word='neurons (from 0)')}: {UNRECORDED_READ}")
    heldout, splits = heldout_and_splits(seed, n_neurons, n_trials, conditions, heldout,
                                         heldout_fraction, split_fractions)
    return SpikeData(spikes=spikes, heldout=heldout, splits=splits, rates=rates,
                     conditions=conditions, name=path.stem, bin_size=bin_size,
                     extra={} if latents is None else {"latents": latents})


def note_few_scored(data: SpikeData) -> None:
    """A note where ``data``'s valid or test split holds fewer than :data:`FEW_SCORED` trials:
    the best epoch is chosen on the valid trials and the metrics are of the test trials, so
    few make both noisy. Said by a fit (and a sweep) of the data it fits."""
    few = [f"{len(data.splits[name])} {name} trial{'' if len(data.splits[name]) == 1 else 's'}"
           for name in SPLIT_NAMES[1:] if len(data.splits[name]) < FEW_SCORED]
    if few:
        note(f"{data.name}: {' and '.join(few)} of its {data.spikes.shape[0]}: the best epoch is "
             "chosen on the valid trials and the scores are of the test trials, which so few "
             "make noisy (more trials give firmer ones)")


def heldout_and_splits(seed: int, n_neurons: int, n_trials: int,
                       conditions: np.ndarray | None = None, heldout: np.ndarray | None = None,
                       heldout_fraction: float = HELDOUT_FRACTION,
                       split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)):
    """``(heldout, splits)`` of a data set: ``heldout`` as given, else a seeded random
    ``heldout_fraction`` of the neurons (at least one, and one held in); the trials split by
    :func:`split_trials` (stratified by ``conditions`` ``(trials,)``). Separate random streams:
    the splits do not depend on whether the held-out neurons were given."""
    heldout_rng, split_rng = map(np.random.default_rng, np.random.SeedSequence(seed).spawn(2))
    if heldout is None:
        n_heldout = min(max(1, int(round(heldout_fraction * n_neurons))), n_neurons - 1)
        heldout = np.zeros(n_neurons, dtype=bool)
        heldout[heldout_rng.choice(n_neurons, n_heldout, replace=False)] = True
    return heldout, split_trials(split_rng, n_trials, split_fractions, conditions)


def save_spike_file(path: str | Path, data: SpikeData) -> None:
    """Write ``spikes``, ``heldout`` and, when present, ``rates``, ``conditions``,
    ``extra["latents"]`` and the bin width where it is known (``bin_size_s``: a recording's, an
    NLB set's, a spike file's that held it).

    The format follows the extension (``.h5``/``.hdf5`` or ``.npz``); loading the file gives back
    the same arrays exactly.  Splits, ``n_forward`` and the rest of ``extra`` are not stored.

    Raises:
        DataError: unknown extension, arrays that would not load back (e.g. non-integer spike
            counts), or the file cannot be written.
    """
    path = Path(path)
    suffix = _suffix(path)
    given = {"spikes": data.spikes, "heldout": data.heldout, "rates": data.rates,
             "conditions": data.conditions, "latents": data.extra.get("latents"),
             "bin_size_s": data.bin_size}
    spikes, rates, heldout, conditions, latents, bin_size = _check_arrays(
        path, {name: np.asarray(array) for name, array in given.items() if array is not None})
    complete = not np.isnan(spikes).any()  # else float32, NaN where not recorded
    arrays = {"spikes": spikes.astype(np.int64) if complete else spikes, "heldout": heldout}
    optional = {"rates": rates, "conditions": conditions, "latents": latents,
                "bin_size_s": bin_size}
    arrays.update({name: array for name, array in optional.items() if array is not None})
    try:
        if suffix in HDF5_SUFFIXES:
            with h5py.File(path, "w") as file:
                for name, array in arrays.items():
                    file.create_dataset(name, data=array)
        else:
            np.savez(path, **arrays)
    except OSError as error:
        raise DataError(f"cannot write {path} ({_first_line(error)}); check that its folder "
                        "exists and is writable.") from error


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in HDF5_SUFFIXES + NPZ_SUFFIXES:
        raise DataError(f"{path} has unknown extension {suffix!r}; spike files are .h5, .hdf5 "
                        "or .npz (recordings: .nwb, or a spike-times .npz)")
    return suffix


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def check_file(path: Path, kind: str) -> None:
    """Raise :class:`DataError` unless ``path`` is a file: a folder (whatever its name) or
    nothing there is one line, naming the ``kind`` of file expected."""
    if path.is_dir():
        raise DataError(f"{path} is a directory, not a {kind}; give the file in it.")
    if not path.is_file():
        raise DataError(f"{path}: file not found; check the path.")


def flags_heldout(path: Path) -> bool:
    """Whether the spike file at ``path`` flags its own held-out neurons (holds ``heldout``);
    ``False`` where it cannot be read (:func:`load_spike_file` then says why)."""
    try:
        if _suffix(path) in HDF5_SUFFIXES:
            with h5py.File(path, "r") as file:
                return "heldout" in file
        with np.load(path) as arrays:
            return "heldout" in arrays.files
    except (OSError, ValueError, zipfile.BadZipFile, DataError):
        return False


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """The known arrays of the file, read into memory; a note names those of the file's other
    names that look like a misspelled known one (``bin_size``, ``held_out``)."""
    check_file(path, "spike file (.h5/.npz)")
    arrays, names = _read_hdf5(path) if _suffix(path) in HDF5_SUFFIXES else _read_npz(path)
    unread = {name: difflib.get_close_matches(name, ARRAY_NAMES, n=1, cutoff=MISSPELLED)
              for name in names if name not in ARRAY_NAMES}
    said = [f"`{name}` (is it `{like[0]}`?)" for name, like in unread.items()
            if like and like[0] not in arrays]
    if said:
        note(f"{path.name}: {', '.join(said)} not read; pyrolf reads {', '.join(ARRAY_NAMES)} "
             "by these names")
    return arrays


def _read_hdf5(path: Path) -> tuple[dict[str, np.ndarray], list[str]]:
    """The known arrays of the HDF5 file, and the names of its root's entries and attributes."""
    try:
        with h5py.File(path, "r") as file:
            for name in ARRAY_NAMES:
                if name in file and not isinstance(file[name], h5py.Dataset):
                    raise DataError(f"{path}: `{name}` is an HDF5 group, not a dataset; "
                                    "store it as a dataset at the file's root.")
            arrays = {name: np.asarray(file[name][()]) for name in ARRAY_NAMES if name in file}
            if "bin_size_s" not in arrays and "bin_size_s" in file.attrs:  # metadata, as h5py
                arrays["bin_size_s"] = np.asarray(file.attrs["bin_size_s"])  # users keep it
            return arrays, [*file.keys(), *file.attrs.keys()]
    except (OSError, KeyError) as error:
        raise DataError(f"{path} is not a readable HDF5 file ({_first_line(error)}); "
                        "re-export it with h5py.") from error


def _read_npz(path: Path) -> tuple[dict[str, np.ndarray], list[str]]:
    """The known arrays of the npz archive, and the names of all its arrays."""
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path} is not an npz archive (corrupt or another format); "
                        "re-export it with numpy.savez.")
    arrays = {}
    try:
        with np.load(path, allow_pickle=False) as file:
            for name in ARRAY_NAMES:
                if name not in file.files:
                    continue
                try:
                    arrays[name] = np.asarray(file[name])
                except ValueError as error:
                    raise DataError(f"{path}: `{name}` is not a plain numeric array (Python "
                                    "objects or a damaged entry); save it with numpy.savez from "
                                    "a numeric array.") from error
            names = list(file.files)
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path} is not a readable npz archive ({_first_line(error)}); "
                        "re-export it with numpy.savez.") from error
    return arrays, names


def _check_arrays(path: Path, arrays: dict[str, np.ndarray]) -> tuple:
    """Checked ``(spikes, rates, heldout, conditions, latents, bin_size_s)``, the optional ones
    ``None`` when absent."""
    if "spikes" not in arrays:
        raise DataError(f"{path} has no `spikes` array; store the counts under the name `spikes` "
                        "as a (trials, time, neurons) array.")
    spikes = check_counts(path, arrays["spikes"])
    n_trials, _, n_neurons = spikes.shape
    rates = _check_rates(path, arrays["rates"], spikes.shape) if "rates" in arrays else None
    heldout = _check_heldout(path, arrays["heldout"], n_neurons) if "heldout" in arrays else None
    conditions = (_check_conditions(path, arrays["conditions"], n_trials)
                  if "conditions" in arrays else None)
    latents = (_check_latents(path, arrays["latents"], spikes.shape[:2])
               if "latents" in arrays else None)
    bin_size = _check_bin_size(path, arrays["bin_size_s"]) if "bin_size_s" in arrays else None
    return spikes, rates, heldout, conditions, latents, bin_size


def _check_bin_size(where: Path | str, value: np.ndarray, name: str = "bin_size_s") -> float:
    """A bin width (``name``, of the data ``where`` names) as a float: one positive number
    (seconds)."""
    value = np.asarray(value)
    if (value.size != 1 or not np.issubdtype(value.dtype, np.number)
            or np.issubdtype(value.dtype, np.complexfloating)
            or not np.isfinite(value).all() or value.item() <= 0):
        raise DataError(f"{where}: `{name}` must be one positive number, the bin width in "
                        f"seconds (e.g. 0.01), got {value.tolist()!r}")
    if value.item() < LEAST_BIN_S:
        raise DataError(f"{where}: `{name}` {value.item():g} s is below {LEAST_BIN_S * 1e6:g} µs, "
                        "finer than spike times are kept; give the bin width in seconds (10 ms "
                        "is 0.01)")
    if value.item() >= 1:
        note(f"{getattr(where, 'name', where)}: `{name}` {value.item():g} makes bins of "
             f"{value.item():g} s; the unit is seconds (10 ms is 0.01)")
    return float(value.item())


def _require_numeric(path: Path, name: str, array: np.ndarray) -> None:
    """Real numbers (or booleans) only: text, objects and complex numbers refused."""
    if (not (np.issubdtype(array.dtype, np.number) or array.dtype == bool)
            or np.issubdtype(array.dtype, np.complexfloating)):
        raise DataError(f"{path}: `{name}` has dtype {array.dtype}, not real numbers; "
                        "store it as real numbers.")


def _require_finite(path: Path, name: str, array: np.ndarray) -> None:
    if not np.all(np.isfinite(array)):
        raise DataError(f"{path}: `{name}` contains NaN or infinite values; "
                        "replace them with valid numbers.")


def check_counts(path: Path, spikes: np.ndarray, fitted: bool = True) -> np.ndarray:
    """Checked counts as float32 ``(trials, time, neurons)``, NaN where not recorded: to be
    ``fitted``, 3 trials (train, valid, test) and 2 neurons (one held in, one held out) at least;
    new trials for a run, one of each."""
    spikes = np.asarray(spikes)
    _require_numeric(path, "spikes", spikes)
    if spikes.ndim != 3:
        raise DataError(f"{path}: `spikes` has shape {spikes.shape}, not 3-D; "
                        "store it as (trials, time, neurons).")
    n_trials, n_bins, n_neurons = spikes.shape
    if fitted and (n_trials < 3 or n_bins < 1 or n_neurons < 2):
        raise DataError(f"{path}: `spikes` has shape {spikes.shape}; need at least 3 trials, "
                        "1 time bin and 2 neurons (one held in, one held out).")
    if not fitted and not (n_trials and n_bins and n_neurons):
        raise DataError(f"{path}: `spikes` has shape {spikes.shape}; need at least 1 trial, 1 "
                        "time bin and 1 neuron.")
    if np.any(np.isinf(spikes)):
        raise DataError(f"{path}: `spikes` contains infinite values; store spike counts (NaN "
                        "where a neuron was not recorded).")
    unrecorded = np.isnan(spikes) if spikes.dtype.kind == "f" else np.zeros(spikes.shape, bool)
    if unrecorded.all():
        raise DataError(f"{path}: every entry of `spikes` is NaN (not recorded); store the "
                        "spike counts.")
    if np.any(spikes < 0):
        raise DataError(f"{path}: `spikes` has negative values; store non-negative spike counts.")
    if np.any((spikes != np.round(spikes)) & ~unrecorded):
        raise DataError(f"{path}: `spikes` has non-integer values; store whole spike counts "
                        "per bin, not rates or smoothed counts.")
    largest = np.nanmax(spikes)
    if largest > MAX_COUNT:
        raise DataError(f"{path}: `spikes` has a count of {largest:g} in one bin, more than "
                        f"the {MAX_COUNT} spikes of one neuron in one bin pyrolf takes as plausible; "
                        "store spike counts per bin (not spike times or sample indices).")
    return spikes.astype(np.float32, copy=False)


def _check_rates(path: Path, rates: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Checked ground-truth rates as float32, same shape as the spikes."""
    _require_numeric(path, "rates", rates)
    if rates.shape != shape:
        raise DataError(f"{path}: `rates` has shape {rates.shape} but `spikes` has {shape}; "
                        "give rates of the same shape or leave `rates` out.")
    _require_finite(path, "rates", rates)
    if np.any(rates < 0):
        raise DataError(f"{path}: `rates` has negative values; rates are spikes per bin, >= 0.")
    return rates.astype(np.float32, copy=False)


def _check_heldout(path: Path, heldout: np.ndarray, n_neurons: int) -> np.ndarray:
    """Checked ``(neurons,)`` bool mask with at least one held-in and one held-out neuron."""
    if heldout.shape != (n_neurons,):
        raise DataError(f"{path}: `heldout` has shape {heldout.shape} but there are {n_neurons} "
                        "neurons; give one flag per neuron.")
    _require_numeric(path, "heldout", heldout)
    if not np.all((heldout == 0) | (heldout == 1)):
        raise DataError(f"{path}: `heldout` has values other than 0/1 or True/False; "
                        "give one boolean flag per neuron.")
    heldout = heldout.astype(bool)
    if heldout.all() or not heldout.any():
        raise DataError(f"{path}: `heldout` marks {'all' if heldout.all() else 'no'} neurons; "
                        "hold out at least one neuron and keep at least one held in.")
    return heldout


def _check_conditions(path: Path, conditions: np.ndarray, n_trials: int) -> np.ndarray:
    """Checked ``(trials,)`` int64 condition labels."""
    if conditions.shape != (n_trials,):
        raise DataError(f"{path}: `conditions` has shape {conditions.shape} but there are "
                        f"{n_trials} trials; give one label per trial.")
    _require_numeric(path, "conditions", conditions)
    _require_finite(path, "conditions", conditions)
    if np.any(conditions != np.round(conditions)):
        raise DataError(f"{path}: `conditions` has non-integer values; give integer labels.")
    return conditions.astype(np.int64)


def _check_latents(path: Path, latents: np.ndarray, trials_and_time: tuple[int, int]) -> np.ndarray:
    """Checked true latents ``(trials, time, k)`` as float32."""
    _require_numeric(path, "latents", latents)
    if latents.ndim != 3 or latents.shape[:2] != trials_and_time:
        raise DataError(f"{path}: `latents` has shape {latents.shape} but `spikes` has "
                        f"{trials_and_time[0]} trials of {trials_and_time[1]} bins; give "
                        "(trials, time, k) latents or leave `latents` out.")
    _require_finite(path, "latents", latents)
    return latents.astype(np.float32)
