"""The coordinates of what ``pyrolf infer`` and ``pyrolf diagnose`` write (``inferred.nc``,
``posterior.nc``): each trial's id, split, condition and trials-table columns, each bin's time,
each neuron's id, unit-table columns and held-out flag.

Own recordings (:mod:`pyrolf.data.recordings`) know their bin size, so ``time`` is in seconds and
``neuron`` holds the unit ids. Trials: ``trial`` is the trial's row in the file's trials table and
``time`` the bin start from the alignment.
"""

from __future__ import annotations

import numpy as np

from pyrolf.data.files import decoded
from pyrolf.data.spikes import SpikeData
from pyrolf.diagnostics.summary import VARIABLES


#: an NLB trial's ``split`` label by its split in the data: train, pyrolf's validation tenth of
#: the training trials, NLB's evaluation trials (other data keep their split names; trials from
#: other data than the run's: "new"). NLB's own split (``train``, ``val``, ``test``) is the
#: coordinate ``nlb_split``.
NLB_SPLIT_LABELS = {"train": "train", "valid": "valid", "test": "eval"}
#: what ``split`` says, as its ``description``
SPLIT_DESCRIPTION = ("pyrolf's use of the trial: train (fitted), valid (picks the best epoch), "
                     "test, or eval for NLB's evaluation trials (scored), new (trials the run was "
                     "not fitted on)")
NEW_TRIALS = "new"
#: names of the Dataset's own coordinates and variables, which no trials-table column takes
RESERVED = {"trial", "trial_id", "split", "condition", "time", "forward", "neuron", "heldout",
            "window", "behavior", "latent",
            *(f"{name}{side}" for name in VARIABLES for side in ("", "_lower", "_upper"))}
TIME_DECIMALS = 9  # places a time coordinate in seconds keeps (nanoseconds)
CONDITION_NAME = "the trial's condition (own recordings: the --condition column's value)"


def trial_splits(data: SpikeData) -> np.ndarray:
    """Each trial's split label ``(trials,)`` (NLB: :data:`NLB_SPLIT_LABELS`)."""
    labels = NLB_SPLIT_LABELS if "nlb" in data.extra else {}
    split = np.empty(data.n_trials, dtype=object)
    for name, indices in data.splits.items():
        split[indices] = labels.get(name, name)
    return split.astype(str)


def trial_ids(data: SpikeData) -> np.ndarray:
    """Each trial's name in the source ``(trials,)``: NLB: nlb_tools' ``trial_id``; own
    recordings: the row in the file's trials table (trials left out by ``--trials-where`` or
    dropped keep their rows' numbers out); else its index."""
    nlb = data.extra.get("nlb")
    return np.asarray(nlb.trial_ids if nlb is not None
                      else data.extra.get("trial_ids", np.arange(data.n_trials)))


def trial_coords(data: SpikeData) -> dict[str, tuple]:
    """``trial`` (:func:`trial_ids`), ``trial_id`` (NWB recordings: the trials table's ``id``),
    ``split`` and, where the data have conditions, ``condition`` (own recordings: the condition
    column's value), and the trials table's columns of one value per trial where the data keep
    them (``extra["trial_table"]``: own recordings' trials table, NLB's ``trial_info``; a name
    taken already gets the prefix ``nlb_``, NLB's ``split`` as ``nlb_split``, or ``table_``; the
    condition column itself where it is named ``condition``, as that coordinate holds it):
    coordinates along ``trial``."""
    extra = data.extra
    source = next((key for key in ("nlb", "trial_ids", "chop") if key in extra), "index")
    coords = {"trial": ("trial", trial_ids(data), {"long_name": _TRIAL_NAMES[source]}),
              "split": ("trial", trial_splits(data), {"description": SPLIT_DESCRIPTION})}
    if "trial_table_ids" in extra:
        coords["trial_id"] = ("trial", np.asarray(extra["trial_table_ids"]), {
            "long_name": "the trial's id in the file's trials table (NWB's id column)"})
    if data.conditions is not None:
        condition = np.asarray(data.conditions)
        if "condition_values" in extra:
            condition = np.asarray(extra["condition_values"])[condition]
            if condition.dtype == object:
                condition = condition.astype(str)
        coords["condition"] = ("trial", condition, {"long_name": CONDITION_NAME})
    taken = "nlb_" if "nlb" in extra else "table_"
    condition_column = extra.get("recording", {}).get("condition")
    for name, values in extra.get("trial_table", {}).items():
        if name == "condition" == condition_column:
            continue
        column = table_column(values)
        if column is not None:
            attrs = {"long_name": "trials-table column"}
            if name in extra.get("trial_descriptions", {}):  # (what the file says of it)
                attrs["description"] = extra["trial_descriptions"][name]
            if np.asarray(values).dtype.kind == "m" or (
                    column.dtype.kind == "f" and name.endswith("_time")):
                attrs["units"] = "s"  # NWB's times (and nlb_tools' durations) are in seconds
            free = name == "condition" and "condition" not in coords  # no --condition
            coords[taken + name if name in RESERVED and not free else name] = ("trial", column,
                                                                               attrs)
    return coords


#: what ``trial`` holds, by source
_TRIAL_NAMES = {"nlb": "nlb_tools' trial_id",
                "trial_ids": "the trial's row in the file's trials table (from 0; trial_id: its "
                             "id)",
                "chop": "the window's index in the recording (window_start_s: its start)",
                "index": "the trial's index in the data"}


def table_column(values: np.ndarray) -> np.ndarray | None:
    """A trials- or units-table column ``(rows,)`` as netCDF holds it: numbers and flags as they
    are, durations in seconds, anything else as text (bytes decoded as UTF-8, a missing value,
    ``None``, as ``""``); ``None`` for a column of lists."""
    values = np.asarray(values)
    if values.ndim != 1:
        return None
    if values.dtype.kind in "biuf":
        return values
    if values.dtype.kind == "m":
        return values / np.timedelta64(1, "s")
    if values.dtype.kind not in "OUSM" or any(np.ndim(value) for value in values):
        return None
    return np.array(["" if value is None else str(decoded(value)) for value in values])


def forward_coord(data: SpikeData) -> tuple:
    """The ``forward`` coordinate along ``time``: whether each bin is a forward bin."""
    return ("time", np.arange(data.n_bins) >= data.n_observed,
            {"long_name": "forward bin: never shown to the encoder, predicted by the prior's "
                          "dynamics alone"})


def seconds(times: np.ndarray) -> np.ndarray:
    """``times`` in seconds rounded to :data:`TIME_DECIMALS` places: a bin's start is the number
    it is written as (-0.18, not -0.18000000000000002), so ``.sel(time=-0.18)`` finds it."""
    return np.round(times, TIME_DECIMALS)


def neuron_coord(data: SpikeData) -> tuple:
    """The ``neuron`` coordinate: :attr:`SpikeData.neuron_ids`, its ``long_name`` saying what
    they are."""
    said = ("nlb_tools' unit id" if "nlb" in data.extra else
            "the unit's id (NWB: the Units table's id column)" if "unit_ids" in data.extra else
            "the neuron's index in the data")
    return "neuron", np.asarray(data.neuron_ids), {"long_name": said}


def neuron_coords(data: SpikeData) -> dict[str, tuple]:
    """The coordinates along ``neuron`` that ``inferred.nc`` and ``posterior.nc`` share:
    ``neuron`` (unit ids or indices), ``heldout`` and the Units table's (:func:`unit_coords`)."""
    return {"neuron": neuron_coord(data), "heldout": heldout_coord(data), **unit_coords(data)}


def unit_coords(data: SpikeData) -> dict[str, tuple]:
    """The columns of a recording's Units table (and of its electrodes table, at each unit's
    first electrode) of one value per unit (``extra["unit_table"]``, by unit id), as coordinates
    ``unit_NAME`` along ``neuron``, matched to :attr:`SpikeData.neuron_ids` by id: NaN (numbers)
    or ``""`` (text) for a unit the table does not have (where the run's data carry no table,
    data built in Python, new trials keep their own file's, which may lack some of the run's
    units)."""
    table = data.extra.get("unit_table")
    if not table or "unit_ids" not in data.extra:
        return {}
    row = {unit: i for i, unit in enumerate(np.asarray(table["id"]).tolist())}
    at = np.array([row.get(unit, -1) for unit in np.asarray(data.neuron_ids).tolist()])
    coords = {}
    for name, values in table.items():
        column = None if name == "id" else table_column(values)
        if column is None:
            continue
        if (at < 0).any():
            empty = "" if column.dtype.kind == "U" else np.nan
            column = np.where(at < 0, empty, column[np.maximum(at, 0)].astype(
                column.dtype if column.dtype.kind == "U" else np.float64))
        else:
            column = column[at]
        attrs = {"long_name": "Units-table column (or the electrodes table's, at the unit's "
                              "first electrode)"}
        if name in data.extra.get("unit_descriptions", {}):  # (what the file says of it)
            attrs["description"] = data.extra["unit_descriptions"][name]
        coords[f"unit_{name}"] = ("neuron", column, attrs)
    return coords


def heldout_coord(data: SpikeData) -> tuple:
    """The ``heldout`` coordinate along ``neuron``: the run's held-out flags."""
    return "neuron", np.asarray(data.heldout, dtype=bool), {
        "long_name": "held out: never read by the encoder, predicted from the held-in units "
                     "(scored by co-bps)"}


def time_coord(data: SpikeData) -> tuple:
    """The ``time`` coordinate of trials: bin start in seconds from the time each trial is
    aligned to (NLB: the field nlb_tools aligns the dataset's trials to, e.g. MC_Maze's
    ``move_onset_time``, from 250 ms before it, :attr:`~pyrolf.data.nlb.NLBSplit.alignment`;
    own recordings: ``window[0] + bin * bin_size`` from the ``--align`` column), else the bin
    index."""
    bin_size, bins = data.bin_size, np.arange(data.n_bins)
    if bin_size is None:
        return "time", bins, {"units": "bin", "long_name": "bin index from the trial's start"}
    if "nlb" in data.extra:
        field, start = data.extra["nlb"].alignment
        return "time", seconds(start + bins * bin_size), {
            "units": "s", "long_name": f"bin start in seconds from the trial's {field} (where "
                                       "nlb_tools aligns the dataset's trials)"}
    if "window" in data.extra:
        align = data.extra.get("recording", {}).get("align", "the alignment")
        return "time", seconds(data.extra["window"][0] + bins * bin_size), {
            "units": "s", "long_name": f"bin start in seconds from the trial's {align} (the "
                                       "--align column)"}
    origin = ("window's start (window_start_s: its start in the file)" if "chop" in data.extra
              else "trial's start")
    return "time", seconds(bins * bin_size), {
        "units": "s", "long_name": f"bin start in seconds from the {origin}"}
