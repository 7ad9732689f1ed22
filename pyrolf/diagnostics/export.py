"""Every trial's posterior in one xarray Dataset: what ``pyrolf infer`` writes to ``inferred.nc``.

Each trial gets ``samples`` posterior draws (the guide sampled, each draw decoded by the model:
:func:`~pyrolf.inference.svi.posterior_passes`), and each of ``z``, ``v``, ``inputs`` and
``rates`` is reduced to its posterior mean and central 90 % interval. The reduction goes group of
trials by group of trials: only one group's draws (``draws_per_pass`` trial-draws, or all draws of
one trial where ``samples`` is larger) are held at a time, so memory grows with the trials'
summaries, not with ``samples``; each trial's interval comes from all its own draws at once, so it
is the exact sample quantile.

Own recordings (:mod:`pyrolf.data.recordings`) know their bin size, so ``time`` is in seconds and
``neuron`` holds the unit ids. Trials: ``trial`` is the trial's row in the file's trials table and
``time`` the bin start from the alignment. A continuous recording's windows are merged back into
one series over the whole recording (:func:`merged_dataset`).
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from pyrolf.data.chop import merge, merge_cuts, merge_into
from pyrolf.data.files import decoded
from pyrolf.data.spikes import DataError, SpikeData
from pyrolf.diagnostics.arviz_adapter import NETCDF_ENGINE
from pyrolf.diagnostics.ppc import INTERVAL_PROB, predictive_interval, quantile_ranks
from pyrolf.evaluation.report import trial_inputs
from pyrolf.inference.svi import posterior_passes
from pyrolf.memory import check_fits
from pyrolf.messages import few_ids, note
from pyrolf.runs import RunFolder

VARIABLES = ("z", "v", "inputs", "rates")
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
DESCRIPTIONS = {
    "z": ("latent position, posterior mean", "latent"),
    "v": ("latent velocity, posterior mean", "latent"),
    "inputs": ("inferred input, posterior mean: v_t - mean(z_{t-1}, v_{t-1}), the velocity beyond "
               "the prior's drift from the bin before (0 at t = 0)", "latent"),
    "rates": ("firing rate in spikes per bin, posterior mean", "neuron"),
}
#: each variable's units where it has any (the latents' scale is the model's own)
UNITS = {"rates": "spikes/bin"}
TIME_DECIMALS = 9  # places a time coordinate in seconds keeps (nanoseconds)
CONDITION_NAME = "the trial's condition (own recordings: the --condition column's value)"


def inferred_inputs(dynamics, z: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The inferred input of every bin ``(..., time, D)`` from positions and velocities
    ``(..., time, D)``: ``v_t - mean(z_{t-1}, v_{t-1})``
    (:meth:`~pyrolf.dynamics.langevin.LangevinDynamics.innovations`) for ``t >= 1``, 0 at
    ``t = 0``."""
    return torch.cat([torch.zeros_like(v[..., :1, :]), dynamics.innovations(z, v)], -2)


def reduce_draws(draws: torch.Tensor, on_device: bool | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and central 90 % interval over the draws of ``draws`` ``(trials, draws, ...)``:
    three arrays ``(trials, ...)`` on the host.

    ``on_device`` (default: where ``draws`` are not on the CPU): the draws are sorted and the
    bounds interpolated where they lie, so only the summaries cross to the host; else (and
    where a draw is NaN) numpy sorts them on the host (:func:`predictive_interval`), several
    times faster than torch's CPU sort. Both give the same bounds to rounding."""
    on_device = draws.device.type != "cpu" if on_device is None else on_device
    if not on_device or torch.isnan(draws).any():
        values = draws.cpu().numpy()
        return (values.mean(1), *predictive_interval(values, INTERVAL_PROB, axis=1))
    ordered = torch.sort(draws, dim=1).values
    tail = (1 - INTERVAL_PROB) / 2
    bounds = []
    for quantile in (tail, 1 - tail):
        below, above, weight = quantile_ranks(draws.shape[1], quantile)
        low = ordered[:, int(below)].double()
        bounds.append((low + (ordered[:, int(above)] - low) * float(weight)).cpu().numpy())
    return (draws.mean(1).cpu().numpy(), *bounds)


@torch.no_grad()
def posterior_summary(flow, inputs: torch.Tensor, n_bins: int, samples: int,
                      draws_per_pass: int | None = None, progress: str | None = None,
                      chop: dict | None = None) -> dict[str, np.ndarray]:
    """Posterior mean and central 90 % interval of ``z``, ``v``, ``inputs`` (see
    :func:`inferred_inputs`) and ``rates`` (spikes per bin) of the trials whose encoder inputs
    are ``inputs`` ``(trials, observed, held_in)``: keys ``NAME``, ``NAME_lower``, ``NAME_upper``,
    each float32 ``(trials, n_bins, latent)`` or, for rates, ``(trials, n_bins, neurons)``.
    ``chop``: the trials are a continuous recording's windows, cut as
    ``data.extra["chop"]`` says (with ``observed``, the windows' observed bins); each summary
    then comes merged into one series ``(time, ...)`` (:func:`~pyrolf.data.chop.merge`),
    each group's windows merged as they are reduced, so no window's summary is kept.

    ``flow`` is a LangevinFlow (its guide returns ``(z, v)``, its prior has ``dynamics``);
    ``samples`` draws per trial, ``draws_per_pass`` and ``progress`` as in
    :func:`~pyrolf.inference.svi.posterior_passes`, reduced group by group (module docstring).
    """
    dynamics = flow.prior.dynamics
    summary = {}
    if chop is not None:
        starts, n_time = np.asarray(chop["starts"]), int(chop["n_time"])
        cuts = merge_cuts(starts, n_time, n_bins, chop["observed"])
    passes = posterior_passes(flow, inputs, n_bins, samples, draws_per_pass, progress)
    for trials, group in itertools.groupby(passes, key=lambda one_pass: one_pass[0]):
        group = list(group)
        z, v = (torch.cat([latents[i] for _, latents, _ in group], 1) for i in (0, 1))
        log_rates = torch.cat([log_rates for _, _, log_rates in group], 1)
        draws = {"z": z, "v": v, "inputs": inferred_inputs(dynamics, z, v),
                 "rates": log_rates.exp()}
        for name, values in draws.items():
            reduced = reduce_draws(values.float())
            for key, value in zip((name, f"{name}_lower", f"{name}_upper"), reduced):
                if key not in summary:
                    summary[key] = np.empty((inputs.shape[0] if chop is None else n_time,
                                             *value.shape[1 if chop is None else 2:]),
                                            np.float32)
                if chop is None:
                    summary[key][trials] = value
                else:
                    merge_into(summary[key], value, trials.start, starts, cuts)
    return summary


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


def inferred_dataset(summary: dict[str, np.ndarray], data: SpikeData, samples: int,
                     config: dict) -> xr.Dataset:
    """The Dataset of ``inferred.nc`` from a :func:`posterior_summary` of every trial of
    ``data`` (laid out on the run's neurons, as :func:`new_trials` makes it): variables
    ``z``, ``v``, ``inputs`` ``(trial, time, latent)``, ``rates`` ``(trial, time, neuron)`` (units
    ``spikes/bin``) and each one's ``_lower`` and ``_upper``; coordinates :func:`trial_coords`,
    ``time`` (:func:`time_coord`), ``forward`` (per bin: a forward bin, never shown to the
    encoder), ``neuron`` (:attr:`SpikeData.neuron_ids`), ``heldout`` and ``latent`` (0, 1, ...);
    attributes the run's ``config`` (JSON), ``pyrolf_version``, ``bin_size_s`` (NaN where
    unknown), ``samples``, ``interval`` and ``source``. Where the data have behaviour
    (``extra["behavior"]``, see :func:`pyrolf.data.recordings.bin_behavior`) it comes along as
    ``behavior`` ``(trial, time, behavior_dim)``, observed, not inferred. Where some counts
    were not recorded (NaN, or a unit filled in), ``recorded`` ``(trial, time, neuron)`` says
    which were (:func:`recorded_counts`). The windows of a continuous recording (``"chop"`` in
    ``data.extra``) come merged into one series: :func:`merged_dataset`; their ``summary`` is
    merged already (:func:`posterior_summary` with ``chop``)."""
    coords = {
        **trial_coords(data),
        "time": time_coord(data),
        **neuron_coords(data),
        "latent": ("latent", np.arange(summary["z"].shape[-1]),
                   {"long_name": "latent dimension (z and v have one each)"}),
        "forward": forward_coord(data),
    }
    if "in_data" in data.extra:  # new trials: which units they held
        coords["in_data"] = ("neuron", np.asarray(data.extra["in_data"], dtype=bool), {
            "long_name": "the unit's spikes were in the data; where not, its rates are the "
                         "run's predictions only (and, held in, the encoder read them filled)"})
    chopped = "chop" in data.extra
    summaries, variables = {}, {}
    for name in VARIABLES:
        text, last = DESCRIPTIONS[name]
        dims = ("time", last) if chopped else ("trial", "time", last)
        units = {"units": UNITS[name]} if name in UNITS else {}
        summaries[name] = (dims, summary[name], {"long_name": text, **units})
        for side in ("lower", "upper"):
            summaries[f"{name}_{side}"] = (dims, summary[f"{name}_{side}"], {
                "long_name": f"{side} end of the central {INTERVAL_PROB:.0%} posterior interval "
                             f"of {name}", **units})
    recorded = recorded_counts(data)
    if recorded is not None:
        variables["recorded"] = (("trial", "time", "neuron"), recorded, {
            "long_name": "the unit was recorded in the bin (its obs_intervals; in_data): where "
                         "not, its rates there are the run's predictions only"})
    if "behavior" in data.extra:
        unit = {"units": data.extra["behavior_unit"]} if "behavior_unit" in data.extra else {}
        variables["behavior"] = (("trial", "time", "behavior_dim"), data.extra["behavior"], {
            "long_name": f"observed behaviour: {data.extra['behavior_name']}, binned as the "
                         "spikes are", **unit})
    attrs = {**run_attrs(data, config), "samples": int(samples),
             "interval": f"central {INTERVAL_PROB:.0%} posterior interval"}
    if chopped:
        return merged_dataset(xr.Dataset(variables, coords=coords, attrs=attrs), data, summaries)
    return xr.Dataset({**summaries, **variables}, coords=coords, attrs=attrs)


def recorded_counts(data: SpikeData) -> np.ndarray | None:
    """``(trials, time, neurons)`` bool: which counts of ``data`` were recorded (not NaN, or not
    NaN before :func:`~pyrolf.diagnostics.missing.fill_missing_counts` filled them:
    ``extra["unrecorded"]``, of a unit ``extra["in_data"]`` does not flag as missing); ``None``
    where all were."""
    recorded = ~data.extra.get("unrecorded", np.isnan(data.spikes))
    if "in_data" in data.extra:
        recorded &= np.asarray(data.extra["in_data"], dtype=bool)
    return None if recorded.all() else recorded


def run_attrs(data: SpikeData, config: dict) -> dict:
    """What a run's output files (``inferred.nc``, ``posterior.nc``) say they are of: the run's
    ``config`` (JSON), ``pyrolf_version``, ``bin_size_s`` (NaN where unknown) and ``source``
    (``data``'s name, which callers replace by its file)."""
    bin_size = data.bin_size
    return {"config": json.dumps(config), "pyrolf_version": version("pyrolf"),
            "bin_size_s": float("nan") if bin_size is None else float(bin_size),
            "source": data.name}


def window_starts(data: SpikeData) -> np.ndarray:
    """Each window's start ``(windows,)`` in seconds in the file's time base, of a continuous
    recording's windows (``"chop"`` in ``data.extra``)."""
    plan = data.extra["chop"]
    return seconds(plan["start_time"] + np.asarray(plan["starts"]) * plan["bin_size"])


def merged_dataset(windows: xr.Dataset, data: SpikeData, merged: dict | None = None
                   ) -> xr.Dataset:
    """The windows of a continuous recording (``windows``, laid out by ``trial`` as
    :func:`inferred_dataset` lays out trials, one per window of ``data``) merged into one series
    over the whole recording by :func:`pyrolf.data.chop.merge`: each bin from the window whose
    centre is nearest (a tie to the later window; the middle of each overlap is the cut), with
    the variables ``merged`` already (``{name: (dims, values, attrs)}``, dims led by ``time``:
    the posterior summaries, merged as they were reduced) first. Every variable, ``_lower`` and
    ``_upper`` included, goes to ``(time, latent)`` or ``(time, neuron)``; a merged interval is
    the per-bin interval of the window the bin came from. ``time`` is the bin start in seconds
    in the file's time base (NWB: from the session start), ``start_time + bin * bin_size``;
    per-bin coordinates ``window`` (the window the bin came from), ``split`` (its split) and
    ``forward`` (a forward bin of its window: windows with forward bins give a bin from those
    only where no window observes it); attributes ``window_start_s`` (each window's start),
    ``window_bins``, ``overlap_rule``."""
    plan = data.extra["chop"]
    starts, n_time = np.asarray(plan["starts"]), int(plan["n_time"])
    n_windows, observed = len(starts), data.n_observed
    window_of_bin = merge(np.repeat(np.arange(n_windows)[:, None], data.n_bins, 1), starts,
                          n_time, observed)
    bin_in_window = merge(np.repeat(np.arange(data.n_bins)[None], n_windows, 0), starts, n_time,
                          observed)
    variables = {**(merged or {}), **{
        name: (("time", *array.dims[2:]), merge(array.values, starts, n_time, observed),
               array.attrs) for name, array in windows.data_vars.items()}}
    coords = {
        "time": ("time", seconds(plan["start_time"] + np.arange(n_time) * plan["bin_size"]),
                 {"units": "s", "long_name": "bin start in seconds in the recording file's time "
                                             "base (NWB: from the session start)"}),
        "window": ("time", window_of_bin, {"long_name": "the window (chop) this bin was taken "
                                                        "from"}),
        "split": ("time", windows["split"].values[window_of_bin],
                  {"long_name": "split of the window this bin was taken from"}),
        "forward": ("time", bin_in_window >= observed,
                    {"long_name": "a forward bin of its window, predicted by the prior alone: "
                                  "no window observes it"}),
        "latent": windows["latent"],
        **{name: coord for name, coord in windows.coords.items() if coord.dims == ("neuron",)},
    }
    attrs = {**windows.attrs, "window_start_s": window_starts(data),
             "window_bins": int(data.n_bins),
             "overlap_rule": "each bin from the window whose centre is nearest (a tie to the "
                             "later window): the middle of each overlap is the cut; intervals "
                             "are the per-bin intervals of that window"}
    return xr.Dataset(variables, coords=coords, attrs=attrs)


def write_inferred(dataset: xr.Dataset, path: Path) -> None:
    """Write ``dataset`` to the netCDF file ``path`` (HDF5 inside, so ``xarray.open_dataset``
    and ``h5py`` both read it; variables byte-shuffled, then zlib-compressed: smaller and faster
    to write than zlib alone) through a temporary file beside it, so an interrupted or failed
    write leaves no file. The file is made in memory (its compressed bytes beside the dataset),
    then written by plain file I/O: HDF5 writing to a full disk fails in its close, and the
    process then crashed at exit (a segmentation fault), where a plain write is one
    ``OSError``."""
    path = Path(path)
    encoding = {name: {"zlib": True, "shuffle": True} for name in dataset.data_vars}

    def write(partial: Path) -> None:
        image = io.BytesIO()
        dataset.to_netcdf(image, engine=NETCDF_ENGINE, encoding=encoding)
        partial.write_bytes(image.getbuffer())

    RunFolder(path.parent).write_atomically(path.name, write)


def summary_bytes(n_trials: int, n_bins: int, latent_dim: int, n_neurons: int,
                  merged_bins: int | None = None) -> int:
    """Bytes ``infer`` holds at its peak for the posterior summaries of ``n_trials`` trials of
    ``n_bins`` bins (:func:`posterior_summary`: the mean and interval bounds of ``z``, ``v`` and
    ``inputs``, ``latent_dim`` each, and of the rates, ``n_neurons``, float32) and the file
    written from them, whose image is made in memory (:func:`write_inferred`; compressed, at
    most as large); of a continuous recording, the merged series of ``merged_bins`` bins and its
    file (the windows' summaries are merged as they come, none kept)."""
    per_bin = 3 * (3 * latent_dim + n_neurons) * 4
    return 2 * (n_trials * n_bins if merged_bins is None else merged_bins) * per_bin


def check_summary_memory(flow, data: SpikeData) -> None:
    """Raise :class:`~pyrolf.config.ConfigError` where inferring every trial of ``data`` would
    not fit in the memory available (:func:`summary_bytes`, ``flow.prior.latent_dim``
    latents; :func:`~pyrolf.memory.check_fits`), before any draw: not killed for memory minutes
    later. Nothing is checked where either is unknown."""
    latent_dim = getattr(getattr(flow, "prior", None), "latent_dim", None)
    if latent_dim is None:
        return
    chop = data.extra.get("chop")
    check_fits(summary_bytes(data.n_trials, data.n_bins, latent_dim, data.n_neurons,
                             None if chop is None else int(chop["n_time"])),
               f"the posterior summaries of {data.n_trials} "
               f"{'trials' if chop is None else 'windows'} of {data.n_bins} bins, with the file "
               "written from them,",
               "infer fewer at a time (--data FILE --trials-where), or where more is free")


def infer_trials(flow, data: SpikeData, samples: int, config: dict, device: str = "cpu",
                 draws_per_pass: int | None = None, progress: bool = False) -> xr.Dataset:
    """:func:`inferred_dataset` of every trial of ``data`` (laid out on the run's neurons) from
    ``samples`` posterior draws each, on ``device`` (``flow`` already there); ``progress``: a
    bar of the trial-draws done (:func:`check_summary_memory` says first whether they fit)."""
    chop = data.extra.get("chop")
    summary = posterior_summary(flow, trial_inputs(data, np.arange(data.n_trials), device),
                                data.n_bins, samples, draws_per_pass,
                                "infer" if progress else None,
                                None if chop is None else {**chop, "observed": data.n_observed})
    return inferred_dataset(summary, data, samples, config)
