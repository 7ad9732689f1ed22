"""New trials laid out on a run's neurons: by unit id where both name their units, else in the
run's order (all its neurons, or its held-in ones alone); units the run has but the trials lack
are filled in (:mod:`pyrolf.diagnostics.missing`) and named in a note."""

from __future__ import annotations

import dataclasses

import numpy as np

from pyrolf.data.spikes import DataError, SpikeData
from pyrolf.diagnostics.coords import NEW_TRIALS
from pyrolf.messages import few_ids, note


def new_trials(data: SpikeData, heldout: np.ndarray, unit_ids=None,
               unit_table: dict | None = None,
               unit_descriptions: dict | None = None) -> SpikeData:
    """The trials of ``data`` laid out on a run's neurons (``heldout`` ``(neurons,)``, the run's
    flags, held-in neurons where ``False``; ``unit_ids`` ``(neurons,)``, the run's unit ids, or
    ``None``; ``unit_table`` and ``unit_descriptions``, the run's ``extra["unit_table"]`` and
    what its file says of the columns, which describe them in place of ``data``'s, or
    ``None``): data with all the run's neurons are taken in the run's order;
    data with exactly the run's held-in neurons fill those, with a note (the held-out ones, which
    the encoder never reads, are NaN, unknown, and the run's ``unit_ids`` name them); a neuron
    NaN throughout is one the data lack (``extra["in_data"]``). Where both the run and ``data``
    have unit ids (own recordings) the units are matched by id, in any order; otherwise by
    position, and named by the run's ``unit_ids`` where it has them.
    Splits: NLB data keep theirs, other data have one, ``"new"``.

    Raises:
        DataError: other units than the run's (one line naming the ids that differ) or, without
            unit ids, any other neuron count (one line naming both counts).
    """
    n_neurons, n_heldin = len(heldout), int((~heldout).sum())
    by_id = unit_ids is not None and "unit_ids" in data.extra
    if by_id:
        if unit_table is not None and "unit_table" in data.extra:
            note_moved_units(data.extra["unit_ids"], data.extra["unit_table"],
                             np.asarray(unit_ids), unit_table)
        data = in_run_order(data, np.asarray(unit_ids), heldout)
    extra = data.extra
    if data.n_neurons == n_neurons:
        spikes, rates = data.spikes, data.rates
        never = np.isnan(spikes).all(axis=(0, 1))  # a neuron not recorded at all: missing
        extra = {**extra, "in_data": extra.get("in_data", ~never)}
        if unit_ids is not None and not by_id:  # (named as the run's units they are read as)
            extra["unit_ids"] = unit_ids
            note(f"the data's {n_neurons} neurons have no unit ids: they are read as the run's "
                 f"units in its order ({few_ids(unit_ids)})")
    elif data.n_neurons == n_heldin:
        spikes = np.full(data.spikes.shape[:2] + (n_neurons,), np.nan, dtype=np.float32)
        spikes[..., ~heldout] = data.spikes
        rates = None
        extra = {key: value for key, value in extra.items() if key != "unit_ids"}
        extra["in_data"] = ~heldout & ~np.isnan(spikes).all(axis=(0, 1))
        if unit_ids is not None:
            extra["unit_ids"] = unit_ids
    else:
        raise DataError(f"the data have {data.n_neurons} neurons but the run was fitted on "
                        f"{n_neurons} ({n_heldin} held in); give all {n_neurons} in the run's "
                        f"order or only the {n_heldin} held-in ones")
    if not by_id:  # (in_run_order has checked and named the units it read and those lacking)
        names, word = ((np.asarray(unit_ids), "ids") if unit_ids is not None
                       else (np.arange(n_neurons), "neurons (from 0)"))
        if data.n_neurons == n_heldin:  # named by the data's own columns
            names, word = np.full(n_neurons, -1), "the data's columns (from 0)"
            names[~heldout] = np.arange(n_heldin)
        missing_in, missing_out = lacking(extra["in_data"], heldout, names, word)
        if data.n_neurons == n_heldin:  # (they lack every held-out one: said so)
            missing_out = []
            note(f"the data's {n_heldin} neurons are read as the run's {n_heldin} held-in ones "
                 "(in the run order); the held-out ones' rates are inferred from them")
        note_lacking(missing_in, n_heldin, missing_out, word=word)
    splits = data.splits if "nlb" in data.extra else {NEW_TRIALS: np.arange(data.n_trials)}
    if unit_table is not None:  # (the run's units, whatever the new file says of them)
        extra = {key: value for key, value in extra.items() if key != "unit_descriptions"}
        extra["unit_table"] = unit_table
        if unit_descriptions:
            extra["unit_descriptions"] = unit_descriptions
    return dataclasses.replace(data, spikes=spikes, rates=rates, heldout=heldout.copy(),
                               splits=splits, extra=extra)


def lacking(in_data: np.ndarray, heldout: np.ndarray, names: np.ndarray, word: str = "ids",
            strangers=()) -> tuple[list, list]:
    """The names (``names``, ``word`` what they are) of a run's held-in neurons and of its
    held-out ones (``heldout`` its flags) that new trials lack (``in_data`` false), checked
    (:func:`~pyrolf.diagnostics.missing.check_enough_held_in`).

    Raises:
        DataError: they lack more than half of the run's held-in neurons (one line naming them).
    """
    from pyrolf.diagnostics.missing import check_enough_held_in

    missing_in = names[~heldout & ~in_data].tolist()
    missing_out = names[heldout & ~in_data].tolist()
    n_heldin = int((~heldout).sum())
    check_enough_held_in(n_heldin - len(missing_in), n_heldin, missing_in, word, strangers)
    return missing_in, missing_out


def in_run_order(data: SpikeData, unit_ids: np.ndarray, heldout: np.ndarray) -> SpikeData:
    """``data``'s neurons picked by unit id in the run's order (``unit_ids`` ``(neurons,)``,
    ``heldout`` the run's flags): all the run's units, NaN counts for those ``data`` lack (see
    :mod:`pyrolf.diagnostics.missing`) with a note naming them. A unit not recorded in any bin
    (all NaN: a recording's unit whose ``obs_intervals`` cover none of the trials) is one the
    data lack. Units the run does not have are left out, with a note naming them.

    Raises:
        DataError: ``data`` lacks more than half of the run's held-in units (one line naming the
            ids that differ).
    """
    ids = data.extra["unit_ids"].tolist()
    never = np.isnan(data.spikes).all(axis=(0, 1))
    column = {unit: i for i, unit in enumerate(ids) if not never[i]}
    run_ids = unit_ids.tolist()
    in_data = np.array([unit in column for unit in run_ids], dtype=bool)
    known = set(run_ids)
    strangers = [unit for unit in ids if unit not in known]
    missing_in, missing_out = lacking(in_data, heldout, np.asarray(unit_ids), strangers=strangers)
    note_strangers(strangers)
    gone = [unit for unit in ids if unit in known and unit not in column]
    what = data.trial_word
    recorded = (f"; of those, {few_ids(gone)} are in the file but recorded in none of the {what} "
                "(obs_intervals)" if gone else "")
    note_lacking(missing_in, int((~heldout).sum()), missing_out, recorded)
    spikes = np.full(data.spikes.shape[:2] + (len(run_ids),), np.nan, dtype=np.float32)
    there = [i for i, unit in enumerate(run_ids) if unit in column]
    spikes[..., there] = data.spikes[..., [column[run_ids[i]] for i in there]]
    rates = None
    if data.rates is not None and len(there) == len(run_ids):
        rates = data.rates[..., [column[unit] for unit in run_ids]]
    return dataclasses.replace(data, spikes=spikes, rates=rates, extra={
        **data.extra, "unit_ids": np.asarray(run_ids), "in_data": in_data})


#: the columns of NWB's Units and electrodes tables that say where a unit was recorded: a unit
#: id of the run's found elsewhere in new data is of another spike sorting, another unit
PLACE_COLUMNS = ("electrode_group", "group_name", "location", "x", "y", "z", "rel_x", "rel_y",
                 "rel_z")


def note_moved_units(ids: np.ndarray, table: dict, run_ids: np.ndarray, run_table: dict) -> None:
    """A note naming the units of new data (``ids`` ``(units,)``, their Units table ``table``)
    that the run has (``run_ids``, ``run_table``) but recorded elsewhere, by a column of
    :data:`PLACE_COLUMNS` both tables have: matched by id, they would be read as the run's
    units (labels such as ``quality`` may change from day to day; where a unit is may not)."""
    position = {unit: row for row, unit in enumerate(run_ids.tolist())}
    pairs = [(row, position[unit]) for row, unit in enumerate(ids.tolist()) if unit in position]
    moved = {}
    for name in PLACE_COLUMNS:
        if name in table and name in run_table:
            new, old = np.asarray(table[name]), np.asarray(run_table[name])
            units = [ids[row] for row, at in pairs if not _same_place(new[row], old[at])]
            if units:
                moved[name] = units
    if moved:
        said = "; ".join(f"{name}: {few_ids(units)}" for name, units in moved.items())
        note(f"units of the data have the run's ids but another place than the run's ({said}): "
             "they are matched by id, so a spike sorting that numbered other units so would be "
             "read as the run's; infer only data sorted as the run's")


def _same_place(one, other) -> bool:
    """Whether two values of a place column are the same: numbers (coordinates, float32 or
    float64) within rounding, the rest as text."""
    try:
        return bool(np.isclose(float(one), float(other), rtol=1e-6, equal_nan=True))
    except (TypeError, ValueError):
        return str(one) == str(other)


def note_lacking(missing_in: list, n_heldin: int, missing_out: list, recorded: str = "",
                 word: str = "ids") -> None:
    """A note naming the run's held-in units the data lack (``missing_in``, of ``n_heldin``)
    and its held-out ones (``missing_out``), ``word`` what their names are; ``recorded``: what
    more to say of them."""
    if missing_in:
        note(f"the data lack {len(missing_in)} of the run's {n_heldin} held-in units "
             f"({few_ids(missing_in, word=word)}{recorded}): what the encoder reads of them is "
             "filled with the rates the run infers for them from the others"
             + (f"; they lack held-out {few_ids(missing_out, word=word)} too" if missing_out
                else "")
             + " (in_data false in the output: their rates are predictions only)")
    elif missing_out:
        note(f"the data lack {len(missing_out)} of the run's held-out units "
             f"({few_ids(missing_out, word=word)}{recorded}): their rates are inferred from the "
             "held-in units (in_data false in the output)")


def note_strangers(unknown, units_where: list[str] | None = None) -> None:
    """A note naming the data's units ``unknown`` that the run does not have (none: no note);
    ``units_where``: the run's conditions on its units, said as one reason why."""
    if len(unknown):
        chosen = (f"; the run kept only the units that met --units-where "
                  f"{' '.join(units_where)}" if units_where else "")
        are = "is" if len(unknown) == 1 else "are"
        note(f"{len(unknown)} of the data's units {are} not the run's and {are} left out "
             f"({few_ids(sorted(unknown))}{chosen})")
