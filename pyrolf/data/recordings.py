"""Own recordings: the spike times of sorted units, cut into trials around an event or, without
trials, chopped into overlapping windows, and binned.

Two formats, told apart by the file (:func:`recording_format`):

- **NWB** (a path ending ``.nwb``; NLB's files come by dataset name, not by path): spikes from the
  Units table's ``spike_times``, trials from the trials table, read lazily with pynwb
  (:mod:`pyrolf.data.nwb`).
- **Spike times** (a ``.npz`` holding ``spike_times`` and no ``spikes``, which would make it a
  binned spike file, :mod:`pyrolf.data.files`): ``spike_times`` (s, one entry per spike),
  ``unit_ids`` (same length, the unit of each spike), optionally ``trial_start`` and
  ``trial_stop`` (s, one per trial, together; they are the trials table's ``start_time`` and
  ``stop_time``, the names ``--align`` takes as in NWB) and event columns: every other 1-D array
  as long as ``trial_start`` is a trials-table column (times, labels, outcomes).

The options are :class:`~pyrolf.config.Config` fields, so a run folder rebuilds the same bins:

- **Trials** (the file has a trials table, ``continuous`` is off): a trial's window runs from
  ``window`` START to STOP seconds around its ``align`` column (default ``start_time``; default
  window: 0 to the shortest trial's ``stop_time`` minus its alignment) and is cut into bins of
  ``bin_size_ms`` (default 10 ms; the window's length rounded down to whole bins). A window may
  reach beyond its trial; a trial is dropped when its window leaves the recording (NWB
  ``obs_intervals`` where the file has them, else the first to the last spike of the units kept,
  widened to the trials' starts and stops), falls wholly in a pause that no unit's
  ``obs_intervals`` cover (one partly in it keeps the bins recorded), or its alignment time is
  NaN, and the rows are named and counted. Where a unit's own ``obs_intervals`` miss a bin (a
  unit lost before the session ended, or found late), its count there is NaN: unknown, neither
  fitted nor scored (the fit's encoder reads it as hidden, a zero; scores, diagnose and
  ``infer`` fill it: :mod:`pyrolf.diagnostics.missing`), trials and windows alike
  (:func:`unrecorded_bins`); a note names those units. ``trials_where`` keeps the trials that
  meet each of its conditions (``outcome=correct``, ``reaction_time<0.6``:
  :mod:`pyrolf.data.where`); ``condition`` names the column whose values are the conditions
  (stratified splits, PSTHs).
- **Continuous** (no trials table, or ``continuous``): the whole recording, binned from the
  last multiple of the bin width (s) before its start, cut by :func:`pyrolf.data.chop.chop` into
  windows of ``chop_s`` overlapping by ``overlap_s`` (both rounded down to whole bins), which are
  fitted as trials. Windows are split at random like trials, so a test window overlaps its
  neighbours.

- **Units** (``units_where``, NWB only): only the units that meet each of its conditions on the
  Units table (``quality=good``, ``firing_rate>=0.5``; :mod:`pyrolf.data.where`). A column that
  the Units table lacks is read from the electrodes table at each unit's first electrode (its
  ``electrodes`` region, e.g. ``location``); a column of electrode groups compares their names.

- **Behaviour** (``behavior`` NAME): a series recorded beside the spikes (a hand's velocity, an
  eye's position) is binned into the same bins by :func:`bin_behavior`: an NWB file's TimeSeries
  NAME (in ``processing`` or ``acquisition``; its path, e.g. ``behavior/Position/hand``, where a
  name repeats), or a spike-times file's arrays NAME ``(samples,)`` or ``(samples, dims)`` and
  ``NAME_times`` ``(samples,)`` s, in the spikes' time base.

Either way a seeded ``heldout_fraction`` of the units (at least one) is held out, and the trials
(windows) split 70/15/15 % (:func:`pyrolf.data.files.heldout_and_splits`, seed ``data_seed``).

What :class:`~pyrolf.data.spikes.SpikeData` ``extra`` holds:

- ``unit_ids`` ``(neurons,)``: the Units table's ids (NWB) or the ``unit_ids`` (sorted), in the
  order of the neuron axis: the units ``units_where`` keeps; ``unit_table``: ``id`` and each
  column of the Units table (and of its electrodes table) of one value per unit, ``(neurons,)``.
- ``recording``: a JSON-able summary (format, units, trials kept and dropped and why, window,
  bins), also written into ``metrics.json``.
- Trials: ``trial_ids`` ``(trials,)``, each trial's row in the file's trials table;
  ``trial_table_ids`` ``(trials,)`` (NWB), each one's ``id`` in that table;
  ``align_times`` ``(trials,)`` s; ``window`` ``(start, stop)`` s around the alignment (bin ``k``
  starts ``window[0] + k * bin_size`` after it); ``condition_values``: the value of each condition
  label (label ``i`` is ``condition_values[i]``); ``trial_table``: each trials-table column of
  one value per trial, ``(trials,)`` at the kept trials; ``trial_descriptions`` (NWB): what the
  file says of each of them, by name (``unit_descriptions`` alike, of ``unit_table``).
- ``behavior`` ``(trials, time, dims)`` float32, with ``behavior``: the binned series, NaN where
  a bin lies outside it; ``behavior_name``: the ``behavior`` NAME; ``behavior_lag_bins``:
  ``behavior_lag_ms`` in bins, how far after the rates' bin ``behavior_r2`` decodes it.
- Continuous: ``chop`` = ``{"starts": (windows,) first bin of each window, "n_time": bins of the
  whole recording, "start_time": s in the file's time base where bin 0 starts, "bin_size": s}``;
  :func:`pyrolf.data.chop.merge` ``(windowed, chop["starts"], chop["n_time"])`` puts per-window
  results back on the recording's time axis, bin ``t`` starting at
  ``start_time + t * bin_size``.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from pyrolf.data import where
from pyrolf.data.chop import chop
from pyrolf.data.files import UNRECORDED_READ, check_file, decoded, heldout_and_splits
from pyrolf.data.source import SpikeSource
from pyrolf.data.spikes import DataError, MissingBehavior, NoTrialsTable, SpikeData
from pyrolf.memory import check_fits
from pyrolf.messages import few_ids, note

#: settings that select and cut trials, and those of continuous recordings
TRIAL_OPTIONS = ("align", "window", "condition", "trials_where")
UNIT_OPTIONS = ("units_where",)
CHOP_OPTIONS = ("continuous", "chop_s", "overlap_s")
MIN_WINDOWS = 3  # train, valid and test need one each
EDGE_S = 1e-9  # a behavioural sample, or an obs_intervals end, this close to a bin edge counts
               # as on it (float rounding)
FEW_SPIKES = 10  # a unit with fewer spikes than this in all the trials kept is noted
# the least mean firing rate (spikes/s per unit, over the bins kept) a fit is given: below it the
# trials or windows hold next to nothing, most often because the spike times or the trial times
# are not in seconds (in ms a unit firing 20 Hz fires 0.02 per "second")
LEAST_RATE_HZ = 0.05
# a --window this many times longer than every trial is taken for one not in seconds
FAR_WINDOW = 10
# times (obs_intervals, trials) spanning this many times what the spikes span, or the spikes this
# many times theirs, may be in other units than seconds (ms, samples)
FAR_SPAN = 10
# bytes binning takes at its peak per (trial or window, bin, unit): the float32 counts, the mask
# of the bins not recorded, a copy of the counts and masks of their NaN (checking the rate)
BINNING_BYTES = 12
GAP_SPACINGS = 5.0  # samples further apart than this many median spacings leave a gap between
                    # (up to four samples missed in a row are bridged)


def recording_format(path: Path) -> str | None:
    """``"nwb"`` for a path ending ``.nwb``, ``"spike_times"`` for an ``.npz`` archive holding
    ``spike_times`` and no ``spikes``; ``None`` otherwise (a binned spike file, or a file that
    cannot be read, which :func:`pyrolf.data.files.load_spike_file` reports)."""
    suffix = path.suffix.lower()
    if suffix == ".nwb":
        return "nwb"
    if suffix != ".npz" or not zipfile.is_zipfile(path):
        return None
    with zipfile.ZipFile(path) as archive:
        names = {name.removesuffix(".npy") for name in archive.namelist()}
    if "spike_times" in names and "spikes" in names:
        raise DataError(f"{path} holds both `spikes` (binned counts) and `spike_times`; keep "
                        "one of them")
    return "spike_times" if "spike_times" in names else None


def load_recording(path: Path, config) -> SpikeData:
    """The trials or windows of the recording at ``path`` as ``config`` (a
    :class:`~pyrolf.config.Config`) cuts them (module docstring).

    Returns:
        :class:`SpikeData` with float32 ``spikes`` ``(trials, time, neurons)`` (trials: the
        trials kept, or the windows), named after the file's stem, ``bin_size`` in seconds.

    Raises:
        DataError: a file that is missing or unreadable, has no units or no spikes, a column that
            is not there (the message lists those that are), a window over :data:`FAR_WINDOW`
            times longer than every trial, a bin wider than the window, a ``trials_where`` that
            keeps no trial, too few trials, a ``units_where`` that keeps fewer than 2 units or
            only units without a spike, trials or windows that would not fit in memory, units
            firing below :data:`LEAST_RATE_HZ` in the trials or windows kept.
    """
    check_file(path, "recording (.nwb or spike-times .npz)")
    with open_source(path) as source:
        units = _units(source, config)
        continuous = config.continuous or source.trial_columns is None
        if continuous and config.changed(TRIAL_OPTIONS):
            raise NoTrialsTable(f"{path} has no trials table, so "
                            f"{', '.join(config.changed(TRIAL_OPTIONS))} cannot apply; leave "
                            "them out to fit it as a continuous recording")
        # the series first: a file without it is said before anything is cut (and noted)
        series = None if config.behavior is None else source.behavior(config.behavior)
        cut = _chopped if continuous else _trials
        spikes, extra, conditions = cut(source, config, config.bin_ms() / 1000, units)
        if series is not None:
            extra["behavior_lag_bins"] = config.behavior_lag_ms // config.bin_ms()
            observed = spikes.shape[1] - config.forward_bins  # (the lag is decoded in them)
            if abs(extra["behavior_lag_bins"]) >= observed:
                raise DataError(f"--behavior-lag {config.behavior_lag_ms} ms is not shorter "
                                f"than the trials' {observed * config.bin_ms()} ms of observed "
                                "bins; give a shorter lag")
            extra["behavior"] = _behavior(path.name, config.behavior, series, extra,
                                          spikes.shape[1], config.bin_ms() / 1000)
            extra["behavior_name"] = config.behavior
            extra["recording"].update(behavior=config.behavior,
                                      behavior_lag_ms=config.behavior_lag_ms)
        if continuous and not config.continuous:
            note(f"{path.name} has no trials table: fitting it as a continuous recording cut "
                 f"into {config.chop_s:g} s windows overlapping by {config.overlap_s:g} s")
        extra["unit_table"] = _table(source.unit_columns, source.unit_column, units)
        extra.update(_described(source, "units", extra["unit_table"]))
    extra["unit_ids"] = source.unit_ids[units]
    _note_quiet_units(path, spikes, extra["unit_ids"], "windows" if continuous else "trials")
    extra["recording"] = {"format": source.format, "units_in_file": int(source.n_units),
                          "units": len(units), "units_where": config.units_where,
                          "bin_ms": config.bin_ms(), **extra["recording"]}
    heldout, splits = heldout_and_splits(config.data_seed, spikes.shape[2], spikes.shape[0],
                                         conditions, heldout_fraction=config.heldout_fraction)
    return SpikeData(spikes=spikes, heldout=heldout, splits=splits, conditions=conditions,
                     name=path.stem, bin_size=config.bin_ms() / 1000, extra=extra)


def _check_rate(source: SpikeSource, units: np.ndarray, spikes: np.ndarray, opens: np.ndarray,
                bin_size: float, what: str) -> None:
    """Refuse trials (``what`` ``"trials"``) or a recording's windows (``"windows"``) ``spikes``
    ``(trials, time, units)`` of the units at positions ``units`` of ``source``, opening at
    ``opens`` ``(trials,)`` s, in which the units fire on average below :data:`LEAST_RATE_HZ` in
    the bins recorded, in one line: times in ms, or units too sparse to fit."""
    seconds = float((~np.isnan(spikes)).sum()) * bin_size  # unit-seconds recorded
    total = int(np.nansum(spikes))
    rate = total / seconds if seconds > 0 else 0.0
    if rate >= LEAST_RATE_HZ:
        return
    first, last = _spike_span(source, units)
    if np.isnan(first):  # (spike times all NaN: a count of them is no spike)
        raise no_spikes(source.path.name)
    cut = (float(opens.min()), float(opens.max()) + spikes.shape[1] * bin_size)
    # little of the trials' span among the spikes': two time bases; the trials among spikes that
    # span far longer: two time bases, or trials in a block of a long session, with sparse units
    among_spikes = min(last, cut[1]) - max(first, cut[0]) >= 0.5 * (cut[1] - cut[0])
    unsure = among_spikes and last - first > FAR_SPAN * (cut[1] - cut[0])
    said = (f"{source.path.name}: its units fire {rate:.3g} spikes/s on average in the {what} "
            f"kept ({total} spike{'s' if total != 1 else ''} in {spikes.shape[0]} {what}), too "
            "few to fit")
    # (where no unit fires in them, keeping the units that fire keeps none)
    keep = " If they are, keep the units that fire (--units-where)" if total else ""
    if not among_spikes or unsure:
        times = "trial times" if what == "trials" else "obs_intervals"  # (windows: of them)
        raise DataError(f"{said}: the spikes lie from {first:g} to {last:g} s, the {what} from "
                        f"{cut[0]:g} to {cut[1]:g} s; are the spike times and the {times} in "
                        f"one time base, in seconds?{keep if unsure else ''}")
    raise DataError(f"{said}: are the times in seconds (in ms a unit firing 20 Hz fires 0.02 a "
                    f"second)?{keep}")


def _unit_spans(source: SpikeSource, units: np.ndarray) -> np.ndarray:
    """First and last spike (s) of each unit at positions ``units`` of ``source``: ``(units,
    2)``, NaN for a unit without a spike."""
    return np.array([(times[0], times[-1]) if len(times) else (np.nan, np.nan)
                     for times in map(source.unit_spike_times, units)]).reshape(-1, 2)


def _spike_span(source: SpikeSource, units: np.ndarray) -> tuple[float, float]:
    """First and last spike (s) of the units at positions ``units`` of ``source`` (NaN
    without a spike)."""
    spans = _unit_spans(source, units)
    if np.isnan(spans).all():
        return np.nan, np.nan
    return float(np.nanmin(spans[:, 0])), float(np.nanmax(spans[:, 1]))


def note_overlapping(data: SpikeData) -> None:
    """A note where the windows of a recording's valid or test trials overlap a training
    trial's (``data.extra``'s ``window`` ``(start, stop)`` s around its ``align_times``
    ``(trials,)`` s): the spikes they share, the held-out units' among them, are trained on, so
    their scores are optimistic. Said by a fit, of the data it fits (new trials are no one's);
    a continuous recording's windows overlap by design (``--overlap``)."""
    extra, splits = data.extra, data.splits
    if "align_times" not in extra or "window" not in extra or "train" not in splits:
        return
    align, window = np.asarray(extra["align_times"]), extra["window"]
    length = window[1] - window[0]
    trained = np.sort(align[splits["train"]])
    scored = np.concatenate([splits.get("valid", []), splits.get("test", [])]).astype(int)
    if not len(trained) or not len(scored):
        return
    after = np.searchsorted(trained, align[scored])  # the nearest trained trials either side
    before, after = np.maximum(after - 1, 0), np.minimum(after, len(trained) - 1)
    nearest = np.minimum(np.abs(align[scored] - trained[before]),
                         np.abs(align[scored] - trained[after]))
    shared = length - nearest
    overlap = shared > EDGE_S
    if overlap.any():
        note(f"{data.name}: {int(overlap.sum())} of the {len(scored)} valid and test trials' "
             f"windows overlap a training trial's (by up to {shared[overlap].max():.3g} s): the "
             "spikes they share were trained on, so their scores are optimistic; a shorter "
             "--window keeps them apart")


def _note_quiet_units(path: Path, spikes: np.ndarray, unit_ids: np.ndarray, what: str) -> None:
    """A note naming the units of ``spikes`` ``(trials, time, units)`` with no spike, or fewer
    than :data:`FEW_SPIKES`, in all of them (``what``: "trials" or "windows")."""
    counts = np.nansum(spikes, axis=(0, 1))  # (the bins recorded)
    recorded = ~np.isnan(spikes).all(axis=(0, 1))  # (a unit never recorded is said elsewhere)
    groups = [((counts == 0) & recorded, "no spike"),
              ((counts > 0) & (counts < FEW_SPIKES), f"fewer than {FEW_SPIKES} spikes")]
    said = [f"{int(chosen.sum())} {'unit has' if chosen.sum() == 1 else 'units have'} {how} "
            f"in the {what} kept ({few_ids(unit_ids[chosen])})"
            for chosen, how in groups if chosen.any()]
    if said:
        note(f"{path.name}: {'; '.join(said)}: their co-bps and PSTH R² are mostly noise; leave "
             "them out with --units-where (id!=ID, or a quality or firing-rate column)")


@contextmanager
def open_source(path: Path) -> Iterator[SpikeSource]:
    """The spike source of a recording file (:class:`~pyrolf.data.source.SpikeSource`), open
    while the block runs."""
    if recording_format(path) == "nwb":
        from pyrolf.data.nwb import open_nwb  # pynwb: only NWB files need it

        with open_nwb(path) as source:
            yield source
    else:
        yield SpikeTimesFile(path)


def bin_spikes(source: SpikeSource, starts: np.ndarray, n_bins: int, bin_size: float,
               units: np.ndarray) -> np.ndarray:
    """Spike counts ``(windows, n_bins, len(units))`` (float32) of the units of ``source`` at
    positions ``units`` in the windows that start at ``starts`` ``(windows,)`` seconds: bin ``k``
    of window ``j`` counts the spikes in ``[starts[j] + k * bin_size, starts[j] + (k + 1) *
    bin_size)``. One unit's spike times are read at a time."""
    edges = np.asarray(starts, dtype=np.float64)[:, None] + bin_size * np.arange(n_bins + 1)
    counts = np.empty((len(edges), n_bins, len(units)), dtype=np.float32)
    for column, unit in enumerate(units):
        counts[..., column] = np.diff(np.searchsorted(source.unit_spike_times(unit), edges),
                                      axis=1)
    return counts


def bin_behavior(times: np.ndarray, values: np.ndarray, starts: np.ndarray, n_bins: int,
                 bin_size: float) -> np.ndarray:
    """A behavioural series binned as :func:`bin_spikes` bins spikes: ``(windows, n_bins, dims)``
    (float32) in the windows that start at ``starts`` ``(windows,)`` s.

    Bin ``k`` of window ``j`` is the mean of the samples in ``[starts[j] + k * bin_size,
    starts[j] + (k + 1) * bin_size)`` (a sample within :data:`EDGE_S` of an edge counts as on
    it); a bin that holds none (a series sampled more slowly than the bins) is the series
    linearly interpolated at the bin's centre between the samples either side, where they are
    at most :data:`GAP_SPACINGS` times the series' median spacing apart; NaN in a longer gap,
    before the first sample and after the last. Samples with a NaN (a tracking loss) are left
    out, so a long loss is a gap.

    Args:
        times: sample times ``(samples,)`` s, in any order.
        values: samples ``(samples, dims)``.
    """
    kept = np.isfinite(times) & np.isfinite(values).all(axis=1)
    order = np.argsort(times[kept], kind="stable")
    times, values = times[kept][order], values[kept][order]
    edges = np.asarray(starts, dtype=np.float64)[:, None] + bin_size * np.arange(n_bins + 1)
    if not len(times):
        return np.full((*edges[:, 1:].shape, values.shape[1]), np.nan, dtype=np.float32)
    at = np.searchsorted(times, edges - EDGE_S)                     # (windows, n_bins + 1)
    counts = np.diff(at, axis=1)[..., None]
    total = np.concatenate([np.zeros((1, values.shape[1])), np.cumsum(values, axis=0)])
    centres = edges[:, :-1] + bin_size / 2
    between = np.stack([np.interp(centres, times, column, left=np.nan, right=np.nan)
                        for column in values.T], axis=-1)
    if len(times) > 1:  # no interpolation across a gap in the series
        spacing = np.diff(times)
        typical = np.median(spacing[spacing > 0]) if (spacing > 0).any() else 0.0
        after = np.clip(np.searchsorted(times, centres), 1, len(times) - 1)
        between[spacing[after - 1] > GAP_SPACINGS * typical] = np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (total[at[:, 1:]] - total[at[:, :-1]]) / counts
    return np.where(counts > 0, means, between).astype(np.float32)


def whole_bins(seconds: float, bin_size: float) -> int:
    """How many whole bins of ``bin_size`` fit in ``seconds`` (rounded down; a length that is a
    whole number of bins up to rounding error counts as that number)."""
    return int(np.floor(seconds / bin_size + 1e-9))


def _units(source: SpikeSource, config) -> np.ndarray:
    """Positions ``(kept,)`` of the units of ``source`` that ``config.units_where`` keeps (all
    without it).

    Raises:
        DataError: fewer than 2 units kept, a column the Units table lacks (the message lists
            those it has), a spike-times file (no Units table) given conditions.
    """
    name = source.path.name

    def column(wanted: str) -> np.ndarray:
        if wanted in source.unit_columns:
            return source.unit_column(wanted)
        if source.format == "spike_times":
            raise DataError(f"--units-where {wanted}: {name} has no Units table; its units are "
                            "chosen by id (e.g. id!=7)")
        raise DataError(f"--units-where {wanted}: the Units table of {name} has no column "
                        f"{wanted!r}; its columns: {', '.join(source.unit_columns)}")

    units = np.arange(source.n_units)
    if config.units_where:
        units = where.select(column, config.units_where, source.n_units, "--units-where", name,
                             "unit")
    kept = f" ({', '.join(config.units_where)})" if config.units_where else ""
    if len(units) < 2:
        raise DataError(f"{name} has {len(units)} unit(s){kept}; pyrolf needs at least 2 (one "
                        "held in, one held out)")
    if not source.spike_counts[units].any():
        raise no_spikes(name, kept)
    return units


def no_spikes(name: str, kept: str = "") -> DataError:
    """The error of units kept (``kept``: by which conditions) of the file named ``name`` that
    have no spike time that is a number."""
    return DataError(f"the units{kept} of {name} have no spike times (that are numbers) in the "
                     "file; keep units that fire (--units-where)")


def _trials(source: SpikeSource, config, bin_size: float, units: np.ndarray):
    """``(spikes, extra, conditions)`` of the trials ``config`` selects and cuts, of the units at
    positions ``units``: the trials table's rows ``--trials-where`` selects with a time in
    ``--align``, their window (:func:`_trial_window`), those whose window lies in the recording
    (:func:`_in_recording`; the others dropped with a note), what ``extra`` records of them
    (:func:`_trial_record`), and their counts."""
    path, n_file = source.path, source.n_trials
    if not n_file:
        raise DataError(f"the trials table of {path.name} has no trials; fit the recording "
                        "as a whole with --continuous")
    rows = where.select(lambda name: _column(source, name, "--trials-where"),
                        config.trials_where, n_file, "--trials-where", path.name)
    align = _times(source, config.align, "--align")
    starts, stops = _times(source, "start_time", "trial start"), _times(source, "stop_time",
                                                                         "trial stop")
    unaligned = np.isnan(align[rows])
    unaligned_rows, rows = rows[unaligned], rows[~unaligned]
    if not len(rows):
        raise DataError(f"no trial of {path.name} has a time in {config.align} (all NaN); "
                        "give another --align")
    window, n_bins = _trial_window(path, config, rows, align, starts, stops, bin_size)
    inside, paused, recording, intervals = _in_recording(source, config, units, rows, align,
                                                         window, starts, stops)
    outside = ~inside & ~paused
    _note_dropped(path, config, rows, outside, paused, unaligned_rows, window, recording)
    kept = rows[inside]
    if len(kept) < MIN_WINDOWS:
        raise DataError(f"{path.name} keeps {len(kept)} trials; give at least {MIN_WINDOWS} "
                        "(train, valid and test need one each)")
    extra, conditions = _trial_record(source, config, kept, align, window)
    extra["recording"] = {
        "trials_in_file": int(n_file), "trials": int(len(kept)),
        "trials_not_matching": int(n_file - len(kept) - outside.sum() - paused.sum()
                                   - unaligned.sum()),
        "trials_without_alignment": int(unaligned.sum()),
        "trials_outside_recording": int(outside.sum()),
        "trials_in_recording_pause": int(paused.sum()),
        "rows_dropped": {"outside_recording": rows[outside].tolist(),
                         "in_recording_pause": rows[paused].tolist(),
                         "without_alignment": unaligned_rows.tolist()},
        "align": config.align, "window_s": list(window), "trials_where": config.trials_where,
        "condition": config.condition}
    _check_memory(path, len(kept) * n_bins * len(units),  # (a window in ms: 1000 times the bins)
                  f"{len(kept)} trials of {n_bins} bins of {len(units)} units",
                  "is --window in seconds? (else give a shorter one or a wider --bin)"
                  if config.window else
                  f"the trials are cut from their {config.align} to {window[1]:g} s after it, "
                  "the end of the shortest (no --window): are the trial times in seconds? "
                  "(else give a shorter --window or a wider --bin)")
    opens = align[kept] + window[0]
    spikes = bin_spikes(source, opens, n_bins, bin_size, units)
    if intervals is not None:
        spikes[unrecorded_bins(intervals, opens, n_bins, bin_size)] = np.nan
    _check_rate(source, units, spikes, opens, bin_size, "trials")
    if intervals is not None:
        _note_unrecorded(path, spikes, source.unit_ids[units], "trials")
    return spikes, extra, conditions


def _note_dropped(path: Path, config, rows: np.ndarray, outside: np.ndarray,
                  paused: np.ndarray, unaligned_rows: np.ndarray, window: tuple[float, float],
                  recording: str) -> None:
    """One note naming the trials dropped: of the trials table's ``rows``, those whose window
    leaves the ``recording`` (``outside``) or lies wholly in a pause of it (``paused``), and the
    rows without a time in ``--align`` (``unaligned_rows``)."""
    dropped = []
    if outside.any():
        dropped.append(f"{int(outside.sum())} of {len(rows)} trials dropped "
                       f"({few_ids(rows[outside], word='rows')}): their window ({window[0]:g} "
                       f"to {window[1]:g} s around {config.align}) leaves {recording}")
    if paused.any():
        dropped.append(f"{int(paused.sum())} of {len(rows)} trials dropped "
                       f"({few_ids(rows[paused], word='rows')}): their window falls wholly in a "
                       "pause of the recording, which no unit's obs_intervals cover")
    if len(unaligned_rows):
        dropped.append(f"{len(unaligned_rows)} trials without a time in {config.align} (NaN) "
                       f"left out ({few_ids(unaligned_rows, word='rows')})")
    if dropped:
        note(f"{path.name}: {'; '.join(dropped)} (rows of the trials table, as inferred.nc's "
             "trial)")


def _trial_window(path: Path, config, rows: np.ndarray, align: np.ndarray, starts: np.ndarray,
                  stops: np.ndarray, bin_size: float) -> tuple[tuple[float, float], int]:
    """The window ``(from, to)`` s around ``config.align`` every trial (of the trials table's
    ``rows``) is cut in, a whole number of ``bin_size`` bins, and that number: ``--window``
    (refused where far longer than every trial: given in ms?), else :func:`_default_window`."""
    window = config.window_seconds()
    if window is None:
        window = _default_window(path, rows, align, starts, stops, config.align)
    else:
        longest = np.max(stops[rows] - starts[rows])
        # a table of events (every trial of no length) leaves the window to say it all; a
        # window may reach beyond its trial, but not by so much that it is in other units
        if longest > 0 and window[1] - window[0] > FAR_WINDOW * longest:
            raise DataError(f"--window {window[0]:g},{window[1]:g} ({window[1] - window[0]:g} s) "
                            f"is over {FAR_WINDOW} times longer than every trial of {path.name} "
                            f"(the longest lasts {longest:g} s); is it in seconds around "
                            f"{config.align}?")
    n_bins = whole_bins(window[1] - window[0], bin_size)
    if n_bins < 1:
        raise DataError(f"--bin {config.bin_ms()} ms is wider than the window "
                        f"({window[1] - window[0]:g} s); give a smaller --bin or a longer "
                        "--window")
    return (window[0], round(window[0] + n_bins * bin_size, 9)), n_bins  # (no 0.3000...4)


def _in_recording(source: SpikeSource, config, units: np.ndarray, rows: np.ndarray,
                  align: np.ndarray, window: tuple[float, float], starts: np.ndarray,
                  stops: np.ndarray):
    """``(inside, paused, recording, intervals)``: which trials (the trials table's ``rows``)
    have their ``window`` inside the span the recording of ``units`` covers, which lie wholly in
    a pause of it (where ``intervals``, the units' ``obs_intervals`` or ``None``, cover none of
    it: dropped too), and the recording in words. A note names the trials kept partly in a
    pause (counts unknown there); none inside is one line."""
    path = source.path
    first, last = _span(source, units, starts, stops)
    opens, closes = align[rows] + window[0], align[rows] + window[1]
    inside = (opens >= first) & (closes <= last)
    intervals = source.unit_intervals(units)
    paused = np.zeros(len(rows), dtype=bool)
    if intervals is not None:  # a window wholly in a pause of the recording, which no unit records
        union = _joined(np.concatenate(intervals))
        paused = inside & ~_touched(union, opens, closes)
        inside &= ~paused
        partly = inside & ~_covered(union, opens, closes)
        if partly.any():
            note(f"{path.name}: {int(partly.sum())} of the trials kept lie partly in a pause of "
                 f"the recording ({few_ids(rows[partly], word='rows')}): no unit's obs_intervals "
                 "cover some of their bins, whose counts are unknown (NaN) for every unit")
    recording = (f"the recording ({first:.3f} to {last:.3f} s"
                 + (", its units' obs_intervals)" if intervals is not None else ")"))
    if not inside.any():
        raise DataError(f"every trial's window ({window[0]:g} to {window[1]:g} s around "
                        f"{config.align}) leaves {recording}: {config.align} holds "
                        f"{', '.join(f'{t:g}' for t in align[rows][:3])}, ...; give a column of "
                        "times in seconds, in the spikes' time base"
                        + (", or obs_intervals that cover the trials" if intervals is not None
                           else ""))
    return inside, paused, recording, intervals


def _trial_record(source: SpikeSource, config, rows: np.ndarray, align: np.ndarray,
                  window: tuple[float, float]):
    """``(extra, conditions)`` of the trials kept, the trials table's ``rows``: their ids,
    alignment times, window and table (with the file's descriptions of its columns), and the
    ``--condition`` of each (``conditions`` ``(trials,)``, ``None`` without one; its values in
    ``extra["condition_values"]``)."""
    extra = {"trial_ids": rows, "align_times": align[rows], "window": window,
             "trial_table": _table(source.trial_columns, source.trial_column, rows)}
    extra.update(_described(source, "trials", extra["trial_table"]))
    if source.trial_table_ids is not None:
        extra["trial_table_ids"] = source.trial_table_ids[rows]
    conditions = None
    if config.condition is not None:
        values, conditions = np.unique(_column(source, config.condition, "--condition")[rows],
                                       return_inverse=True)
        extra["condition_values"] = values
    return extra, conditions


def _check_memory(path: Path, entries: int, what: str, advice: str) -> None:
    """Refuse, in one line, binning ``entries`` counts (trials or windows x bins x units; ``what``
    says them) where :data:`BINNING_BYTES` each would not fit in the memory this process can
    still take; ``advice``: what to check or do."""
    check_fits(entries * BINNING_BYTES, f"{path.name}: {what}, binned,", advice, DataError)


def _default_window(path: Path, rows: np.ndarray, align: np.ndarray, starts: np.ndarray,
                    stops: np.ndarray, column: str) -> tuple[float, float]:
    """The window of a fit without ``--window``: from each trial's ``column`` to the end of the
    shortest trial of ``rows`` (the trials table's rows; ``align``, ``starts``, ``stops``
    ``(table rows,)`` s), those that stop at or before they start (broken rows, or of no
    length) apart. A note says so where the window is less than half the median trial's, or rows
    were set apart."""
    broken = stops[rows] <= starts[rows]
    if broken.any() and not broken.all():  # (a table of events: every trial of no length)
        trials = "trial stops" if broken.sum() == 1 else "trials stop"
        note(f"{path.name}: {int(broken.sum())} {trials} at or before they start (stop_time <= "
             f"start_time; {few_ids(rows[broken], word='rows')}): the default window leaves "
             "their length out")
    lengths = stops[rows[~broken]] - align[rows[~broken]]
    shortest = np.min(lengths) if len(lengths) else 0.0
    if shortest <= 0:
        at = f"{-shortest:g} s before" if shortest < 0 else "at"
        row = rows[~broken][np.argmin(lengths)] if len(lengths) else rows[0]
        raise DataError(f"trial {row} of {path.name} (a row of its trials table, from 0) ends "
                        f"{at} its {column}; give --window START,STOP around it")
    median = float(np.median(lengths))
    if shortest < median / 2:
        note(f"{path.name}: no --window, so every trial is cut from its {column} to "
             f"{shortest:g} s after it, the length of the shortest (row "
             f"{rows[~broken][np.argmin(lengths)]}; the median lasts {median:g} s); give "
             "--window START,STOP for longer windows (a window may reach beyond its trial)")
    return 0.0, float(shortest)


def _chopped(source: SpikeSource, config, bin_size: float, units: np.ndarray):
    """``(spikes, extra, None)`` of the whole recording chopped into windows, of the units at
    positions ``units``."""
    path = source.path
    first, last = _span(source, units)
    first = np.floor(first / bin_size) * bin_size  # bins on the file's grid of whole bins
    n_time = whole_bins(last - first, bin_size)
    window_bins = whole_bins(config.chop_s, bin_size)
    overlap_bins = whole_bins(config.overlap_s, bin_size)
    if window_bins < 1 or overlap_bins >= window_bins:
        raise DataError(f"--bin {config.bin_ms()} ms is too wide for windows of --chop "
                        f"{config.chop_s:g} s overlapping by --overlap {config.overlap_s:g} s "
                        "(each a whole number of bins, the overlap fewer); give a smaller --bin")
    if n_time < window_bins:
        raise DataError(f"{path.name} covers {last - first:g} s, less than one --chop window of "
                        f"{config.chop_s:g} s; give a shorter --chop")
    windowed = window_bins / (window_bins - overlap_bins)  # (the windows repeat the overlap)
    _check_memory(path, round(n_time * len(units) * (1 + windowed)),  # the series, its windows
                  f"{last - first:g} s ({first:.3f} to {last:.3f} s) in {config.bin_ms()} ms "
                  f"bins of {len(units)} units", f"{_apart(source, units)}are the spike times in "
                  "seconds?")
    series = bin_spikes(source, np.array([first]), n_time, bin_size, units)[0]
    intervals, paused = source.unit_intervals(units), 0
    if intervals is not None:  # the file says when it recorded: pauses and units lost are known
        series[unrecorded_bins(intervals, np.array([first]), n_time, bin_size)[0]] = np.nan
    windows, starts = chop(series, window_bins, overlap_bins)
    _check_rate(source, units, windows, first + starts * bin_size, bin_size, "windows")
    if intervals is not None:
        paused = int(np.isnan(windows).all(axis=(1, 2)).sum())
        if paused:
            note(f"{path.name}: {paused} of {len(starts)} windows fall wholly in a pause of the "
                 "recording, which no unit's obs_intervals cover; they stay in the series "
                 "(merging needs every window), with nothing to score")
        _note_unrecorded(path, windows, source.unit_ids[units], "windows")
    else:
        empty = int((windows.sum(axis=(1, 2)) == 0).sum())
        if empty:
            note(f"{path.name}: {empty} of {len(starts)} windows hold no spike of any unit (a "
                 f"pause in the recording?); {_apart(source, units)}they are read as silent "
                 "time")
    if len(starts) < MIN_WINDOWS:
        raise DataError(f"{path.name} ({last - first:g} s) gives {len(starts)} windows of "
                        f"{config.chop_s:g} s; give a shorter --chop to get at least "
                        f"{MIN_WINDOWS} (train, valid and test need one each)")
    extra = {"chop": {"starts": starts, "n_time": n_time, "start_time": first,
                      "bin_size": bin_size},
             "recording": {"windows": len(starts), "windows_in_recording_pause": paused,
                           "window_bins": window_bins,
                           "overlap_bins": overlap_bins, "start_s": first,
                           "seconds": n_time * bin_size}}
    return windows, extra, None


def _apart(source: SpikeSource, units: np.ndarray) -> str:
    """``"units 7, 9 spike apart from the rest (...); "``: the units at positions ``units`` of
    ``source`` whose first spike comes before, or whose last comes after, the others' by more
    than the others' median span (a stray spike, times in samples), or ``""``."""
    spans = _unit_spans(source, units)
    first, last = np.nanmedian(spans, axis=0)
    length = max(last - first, 0.0)
    with np.errstate(invalid="ignore"):
        apart = (spans[:, 0] < first - length) | (spans[:, 1] > last + length)
    if not apart.any():
        return ""
    shown = [f"{source.unit_ids[unit]} ({spans[i, 0]:g} to {spans[i, 1]:g} s)"
             for i, unit in zip(np.flatnonzero(apart)[:5], units[apart][:5])]
    return (f"units {', '.join(shown)} spike apart from the rest (most units from {first:g} to "
            f"{last:g} s); ")


def _behavior(file: str, name: str, series: tuple, extra: dict, n_bins: int,
              bin_size: float) -> np.ndarray:
    """The behavioural series ``name`` of the file named ``file``, ``series`` ``(times, values,
    unit)`` as its source's ``behavior(name)`` gives it, binned into the trials' bins, or into
    the whole recording's and chopped into its windows as the spikes are: ``(trials, n_bins,
    dims)``; its unit, where the source names one, goes to ``extra["behavior_unit"]``."""
    times, values, unit = series
    if unit:
        extra["behavior_unit"] = unit
    if "chop" not in extra:
        binned = bin_behavior(times, values, extra["align_times"] + extra["window"][0], n_bins,
                              bin_size)
    else:
        whole = bin_behavior(times, values, np.array([extra["chop"]["start_time"]]),
                             extra["chop"]["n_time"], bin_size)[0]
        binned = chop(whole, n_bins, extra["recording"]["overlap_bins"])[0]
    if np.isnan(binned).all():
        raise DataError(f"--behavior {name}: no sample of it falls in the "
                        f"{'windows' if 'chop' in extra else 'trials'} of {file} "
                        "(its times are in seconds in the spikes' time base?)")
    return binned


def _table(names, column, rows: np.ndarray) -> dict[str, np.ndarray]:
    """The columns ``names`` of one value per row, each ``column(name)`` at ``rows`` ``(rows,)``
    (columns that ``column`` refuses, of a list or an array per row, left out): a trials table
    (``source.trial_columns``, ``source.trial_column``) or the Units table and its electrodes
    table (``source.unit_columns``, ``source.unit_column``, ``id`` among them)."""
    table = {}
    for name in names:
        try:
            table[name] = np.asarray(column(name))[rows]
        except DataError:
            continue
    return table


def _described(source: SpikeSource, table: str, columns: dict) -> dict:
    """``{"trial_descriptions" or "unit_descriptions": what the file says of each of the
    ``columns`` kept of its ``table`` ("trials" or "units"), by name}``, or ``{}`` where it says
    nothing of them."""
    said = {name: text for name, text in source.descriptions(table).items()
            if name in columns and text}
    return {f"{table[:-1]}_descriptions": said} if said else {}


def _column(source: SpikeSource, name: str, option: str) -> np.ndarray:
    """Trials-table column ``name`` ``(trials,)`` (``id``, where the table has no column of that
    name: NWB's trial ids, ``inferred.nc``'s ``trial_id``); a :class:`DataError` listing the
    columns there are when it is not there."""
    if name == "id" and name not in source.trial_columns and source.trial_table_ids is not None:
        return source.trial_table_ids
    if name not in source.trial_columns:
        raise DataError(f"{option} {name}: the trials table of {source.path.name} has no column "
                        f"{name!r}; its columns: {', '.join(source.trial_columns)}")
    return source.trial_column(name)


def _times(source: SpikeSource, name: str, option: str) -> np.ndarray:
    """Trials-table column ``name`` as float64 seconds ``(trials,)``."""
    values = _column(source, name, option)
    if values.dtype == bool:
        raise DataError(f"{option} {name}: column {name!r} of {source.path.name} holds true or "
                        "false, not times in seconds")
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{option} {name}: column {name!r} of {source.path.name} holds "
                        f"{values[0]!r}, not times in seconds") from None


def _covered(joined: tuple[np.ndarray, np.ndarray], starts: np.ndarray,
             stops: np.ndarray) -> np.ndarray:
    """``(windows,)`` bool: whether each window ``[starts, stops]`` s lies within a union of
    intervals, ``joined`` by :func:`_joined`."""
    begins, ends = joined
    at = np.searchsorted(begins, starts, side="right") - 1
    return (at >= 0) & (ends[np.maximum(at, 0)] >= stops)


def _touched(joined: tuple[np.ndarray, np.ndarray], starts: np.ndarray,
             stops: np.ndarray) -> np.ndarray:
    """``(windows,)`` bool: whether each window ``[starts, stops]`` s shares more than
    :data:`EDGE_S` with a union of intervals, ``joined`` by :func:`_joined`."""
    begins, ends = joined
    at = np.searchsorted(begins, np.asarray(stops) - EDGE_S, side="left") - 1
    return (at >= 0) & (ends[np.maximum(at, 0)] > np.asarray(starts) + EDGE_S)


def _joined(intervals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The union of ``intervals`` ``(intervals, 2)`` s as disjoint intervals in order, their
    ``(begins, ends)`` (overlapping or touching ones joined); no interval is one that holds
    nothing, ``(inf, -inf)`` (a unit without an interval recorded nothing)."""
    if not len(intervals):
        return np.array([np.inf]), np.array([-np.inf])
    intervals = intervals[np.argsort(intervals[:, 0], kind="stable")]
    reach = np.maximum.accumulate(intervals[:, 1])
    joined = np.r_[True, intervals[1:, 0] > reach[:-1]]  # where a joined interval begins
    return intervals[joined, 0], reach[np.r_[np.flatnonzero(joined)[1:] - 1, len(intervals) - 1]]


def _note_unrecorded(path: Path, spikes: np.ndarray, unit_ids: np.ndarray, what: str) -> None:
    """A note naming the units (``unit_ids``) of ``spikes`` ``(trials, time, units)`` that were
    not recorded throughout the ``what`` (trials, windows) kept (NaN in some of their bins, those
    of a pause no unit records apart), with how many each misses in part or whole."""
    unrecorded = np.isnan(spikes)
    missed = (unrecorded & ~unrecorded.all(axis=2, keepdims=True)).any(axis=1).sum(axis=0)
    if missed.any():
        worst = np.argsort(-missed, kind="stable")[:(missed > 0).sum()]
        named = 5 + (len(worst) == 6)  # (the sixth, not "and 1 more")
        shown = ", ".join(f"{unit_ids[unit]} ({missed[unit]})" for unit in worst[:named])
        more = f" and {len(worst) - named} more" if len(worst) > named else ""
        note(f"{path.name}: {len(worst)} {'unit is' if len(worst) == 1 else 'units are'} not "
             f"recorded throughout the {len(spikes)} {what} kept (their obs_intervals; ids, "
             f"with the {what} missed in part or whole: {shown}{more}): their counts there are "
             f"unknown (NaN), {UNRECORDED_READ}")


def unrecorded_bins(intervals: list[np.ndarray], starts: np.ndarray, n_bins: int,
                    bin_size: float) -> np.ndarray:
    """``(windows, n_bins, units)`` bool: whether each unit (each one's ``intervals``
    ``(intervals, 2)`` s, its ``obs_intervals``) was not recorded throughout bin ``k``,
    ``[starts[j] + k * bin_size, starts[j] + (k + 1) * bin_size]``, of window ``j`` (``starts``
    ``(windows,)`` s); a bin's edges within :data:`EDGE_S` of an interval's count as in it."""
    starts = np.asarray(starts, dtype=np.float64)
    unrecorded = np.zeros((len(starts), n_bins, len(intervals)), dtype=bool)
    for unit, own in enumerate(map(_joined, intervals)):
        # whole windows first: most are recorded throughout, and their bins need no look
        partly = np.flatnonzero(~_covered(own, starts + EDGE_S,
                                          starts + n_bins * bin_size - EDGE_S))
        if len(partly):
            begins = starts[partly, None] + bin_size * np.arange(n_bins)
            covered = _covered(own, (begins + EDGE_S).ravel(),
                               (begins + bin_size - EDGE_S).ravel())
            unrecorded[partly, :, unit] = ~covered.reshape(begins.shape)
    return unrecorded


def _span(source: SpikeSource, units: np.ndarray, starts: np.ndarray | None = None,
          stops: np.ndarray | None = None):
    """First and last time (s) the recording covers: ``source.span(units)`` (NWB
    ``obs_intervals``, else the spikes of the units at positions ``units``), where not recorded
    in the file widened to the trials' ``starts`` and ``stops`` where given."""
    first, last, recorded = source.span(units)
    if starts is not None and not recorded:
        first, last = min(first, np.nanmin(starts)), max(last, np.nanmax(stops))
    return float(first), float(last)


class SpikeTimesFile:
    """A spike-times ``.npz`` (module docstring) read whole: a
    :class:`~pyrolf.data.source.SpikeSource`."""

    format = "spike_times"

    def __init__(self, path: Path):
        self.path = path
        try:
            with np.load(path, allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
        except ValueError as error:
            raise DataError(f"{path}: an array is not plain numbers or text ({error}); save "
                            "them with numpy.savez from numeric or string arrays") from None
        except (OSError, EOFError, zipfile.BadZipFile) as error:
            raise DataError(f"{path} is not a readable npz archive ({error}); re-export it with "
                            "numpy.savez") from None
        times, ids = arrays.pop("spike_times"), arrays.pop("unit_ids", None)
        if ids is None or ids.ndim != 1 or times.ndim != 1 or len(ids) != len(times):
            raise DataError(f"{path} needs `unit_ids` beside `spike_times`, both 1-D and of the "
                            "same length (the unit of each spike)")
        if not len(times):
            raise DataError(f"{path} holds no spikes (`spike_times` is empty)")
        if not np.issubdtype(times.dtype, np.number) or not np.all(np.isfinite(times)):
            raise DataError(f"{path}: `spike_times` must be finite numbers (seconds)")
        # spikes sorted by unit, then time, with as few copies of them held at once as can be
        order = np.lexsort((times, ids))
        ids = ids[order]
        first = np.flatnonzero(np.concatenate([[True], ids[1:] != ids[:-1]]))
        self.unit_ids = ids[first]
        del ids
        self._times = times[order].astype(np.float64, copy=False)
        del order, times
        self._bounds = np.append(first, len(self._times))
        self.trial_columns, self.n_trials, self.trial_table_ids = None, 0, None
        self.unit_intervals = lambda units: None  # the file records no time of its own
        self.unit_columns = ("id",)  # no Units table: units are chosen by id
        if ("trial_start" in arrays) != ("trial_stop" in arrays):
            raise DataError(f"{path} has only one of `trial_start` and `trial_stop`; give both "
                            "(one per trial) or neither (a continuous recording)")
        if "trial_start" in arrays:
            starts, stops = arrays.pop("trial_start"), arrays.pop("trial_stop")
            if starts.ndim != 1 or stops.shape != starts.shape:
                raise DataError(f"{path}: `trial_start` {starts.shape} and `trial_stop` "
                                f"{stops.shape} must be 1-D and of one length (one of each per "
                                "trial, in the same order)")
            self._trials = {"start_time": starts, "stop_time": stops}
            self.n_trials = len(starts)
            self._trials.update({name: array for name, array in arrays.items()
                                 if array.ndim == 1 and len(array) == self.n_trials})
            self.trial_columns = tuple(self._trials)
        self._arrays = arrays

    @property
    def n_units(self) -> int:
        return len(self.unit_ids)

    @property
    def spike_counts(self) -> np.ndarray:
        """``(units,)``: how many spikes each unit has (at least one: units are read of them)."""
        return np.diff(self._bounds)

    def unit_spike_times(self, unit: int) -> np.ndarray:
        return self._times[self._bounds[unit]:self._bounds[unit + 1]]

    def span(self, units: np.ndarray | None = None) -> tuple[float, float, bool]:
        """``(first, last, False)``: the first and last spike time of the units at positions
        ``units`` (default all); the file records no time of its own."""
        units = np.arange(self.n_units) if units is None else np.asarray(units)
        firsts, lasts = self._times[self._bounds[units]], self._times[self._bounds[units + 1] - 1]
        return float(firsts.min()), float(lasts.max()), False

    def descriptions(self, table: str) -> dict[str, str]:
        """None: a spike-times file describes no column."""
        return {}

    def trial_column(self, name: str) -> np.ndarray:
        """Column ``name`` ``(trials,)``, bytes (as h5py or MATLAB save text) decoded."""
        values = self._trials[name]
        return np.array([decoded(value) for value in values]) if values.dtype.kind == "S" else (
            values)

    def unit_column(self, name: str) -> np.ndarray:
        """``id``, the only column of units a spike-times file has: ``(units,)``."""
        if name != "id":
            raise KeyError(name)
        return self.unit_ids

    def behavior(self, name: str) -> tuple[np.ndarray, np.ndarray, None]:
        """Array ``name`` ``(samples,)`` or ``(samples, dims)`` and its ``name_times``
        ``(samples,)`` s: the timestamps and the data ``(samples, dims)``, of no unit known."""
        values, times = self._arrays.get(name), self._arrays.get(f"{name}_times")
        if values is None or times is None:
            raise MissingBehavior(f"--behavior {name}: {self.path.name} needs the arrays "
                                  f"`{name}` (samples, or samples x dims) and `{name}_times` "
                                  "(s, one per sample)")
        if (values.ndim not in (1, 2) or times.ndim != 1 or len(times) != len(values)
                or not len(times) or not np.issubdtype(values.dtype, np.number)):
            raise DataError(f"--behavior {name}: `{name}` {values.shape} of {self.path.name} "
                            f"must be numbers with one row per entry of `{name}_times` "
                            f"{times.shape}")
        return times.astype(np.float64), values.astype(np.float64).reshape(len(values), -1), None
