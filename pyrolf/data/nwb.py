"""Any NWB file's sorted units, trials and behavioural TimeSeries, read lazily with pynwb: the
spike source of an NWB recording (:mod:`pyrolf.data.recordings` cuts and bins it). NLB's files,
in their own layout, are read by :mod:`pyrolf.data.nlb`.

Nothing is loaded whole: the Units table's ``spike_times`` column stays in the file and is read
one unit at a time through its ragged index (``spike_times_index``), and only the trials-table
columns that are asked for are read. So a session of many GB needs memory for one unit's spike
times and for the binned counts, not for the file.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np
from hdmf.common import VectorIndex
from pynwb import NWBHDF5IO, TimeSeries
from pynwb.ecephys import ElectricalSeries

from pyrolf.data.files import _first_line, decoded
from pyrolf.data.recordings import FAR_SPAN, no_spikes
from pyrolf.data.spikes import DataError, MissingBehavior
from pyrolf.messages import few_ids, note

CHUNK = 1 << 22  # spike times read at a time when scanning the whole column


@contextmanager
def open_nwb(path: Path):
    """The :class:`NWBSource` of the NWB file ``path``, open while the block runs.

    Raises:
        DataError: the file is no readable NWB file, has no Units table or no spikes in it.
    """
    io = None
    try:
        io = NWBHDF5IO(str(path), "r")
        nwbfile = io.read()
    except Exception as error:  # h5py and hdmf raise many kinds for files that are not NWB
        if io is not None:
            io.close()
        raise DataError(f"{path} is not a readable NWB file ({_first_line(error)}); check that "
                        "it is one (e.g. with nwbinspector)") from None
    try:
        yield NWBSource(path, nwbfile)
    finally:
        io.close()


class NWBSource:
    """The units and trials of an open NWB file: a :class:`~pyrolf.data.source.SpikeSource`.

    Attributes:
        unit_ids: ``(units,)`` the Units table's ids, the order of :meth:`unit_spike_times`.
        unit_columns: ``id``, the names of the Units table's columns, then those of the
            electrodes table the units' ``electrodes`` region reaches (:meth:`unit_column`).
        trial_columns: names of the trials table's columns, ``None`` without a trials table.
    """

    format = "nwb"

    def __init__(self, path: Path, nwbfile):
        self.path = path
        units = nwbfile.units
        if units is None:
            raise DataError(f"{path} has no Units table (nwbfile.units), where pyrolf reads the "
                            "spike times of sorted units; spike-sort the session first, or give "
                            "its spike times as a spike-times .npz")
        if "spike_times" not in units.colnames:
            raise DataError(f"the Units table of {path} has no spikes (no spike_times column); "
                            f"its columns: {', '.join(units.colnames) or 'none'}")
        self._times = units.spike_times.data
        self._ends = np.asarray(units.spike_times_index.data[:], dtype=np.int64)
        if not len(self._times):
            raise DataError(f"the Units table of {path} has no spikes ({len(self._ends)} units, "
                            "every spike_times entry empty)")
        self.unit_ids = np.asarray(units.id.data[:])
        self._units = units
        self._electrodes = _first_electrodes(units)
        reached = () if self._electrodes is None else self._electrodes[0].colnames
        self.unit_columns = ("id", *units.colnames, *(
            name for name in reached if name not in units.colnames))
        self._nwbfile = nwbfile
        self._trials = nwbfile.trials
        self._columns: dict[str, np.ndarray] = {}  # trials-table columns read so far
        self.trial_columns = None if self._trials is None else tuple(self._trials.colnames)
        self.n_trials = 0 if self._trials is None else len(self._trials)
        self.trial_table_ids = None if self._trials is None else np.asarray(self._trials.id[:])

    @property
    def n_units(self) -> int:
        return len(self.unit_ids)

    @property
    def spike_counts(self) -> np.ndarray:
        """``(units,)``: how many spike times each unit holds (from the index, none read)."""
        return np.diff(self._ends, prepend=0)

    def unit_spike_times(self, unit: int) -> np.ndarray:
        """Sorted spike times (s) of the unit at position ``unit``, those that are no number
        (NaN, infinite) left out (:meth:`span` notes them)."""
        first = self._ends[unit - 1] if unit else 0
        times = np.asarray(self._times[first:self._ends[unit]], dtype=np.float64)
        return np.sort(times[np.isfinite(times)])

    def _intervals(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Every ``obs_intervals`` row ``(rows, 2)`` s and the position of its unit ``(rows,)``;
        ``None`` where the Units table has no such column."""
        if "obs_intervals" not in self._units.colnames:
            return None
        intervals = np.asarray(self._units.obs_intervals.data[:], dtype=np.float64).reshape(-1, 2)
        index = self._units["obs_intervals"]
        ends = (np.asarray(index.data[:], dtype=np.int64) if isinstance(index, VectorIndex)
                else np.arange(1, self.n_units + 1))  # (one interval per unit, not ragged)
        return intervals, np.searchsorted(ends, np.arange(len(intervals)), side="right")

    def unit_intervals(self, units: np.ndarray) -> list[np.ndarray] | None:
        """Each unit's ``obs_intervals`` ``(intervals, 2)`` s, of the units at positions
        ``units``, those that are no number or stop before they start left out (the latter
        with a note); a unit whose intervals are all no number (some converters write NaN for
        intervals not known) is read as recorded throughout, as a file without them is, with a
        note; ``None`` where the Units table has no such column or none of these units has a
        number in it."""
        rows = self._intervals()
        if rows is None:
            return None
        intervals, owners = rows
        own = [intervals[owners == unit] for unit in units]
        unknown = [bool(len(each)) and not np.isfinite(each).all(axis=1).any() for each in own]
        own = [np.array([[-np.inf, np.inf]]) if unsaid else each[np.isfinite(each).all(axis=1)]
               for unsaid, each in zip(unknown, own)]
        if any(unknown):
            whose = ("every unit" if all(unknown) else "the units with "
                     f"{few_ids(self.unit_ids[np.asarray(units)[unknown]].tolist())}")
            note(f"{self.path.name}: the obs_intervals of {whose} are no number (NaN: not "
                 "known); they are read as recorded throughout, as units of a file without "
                 "obs_intervals are")
        if all(unknown):
            return None
        backwards = [unit for unit, each in zip(units, own) if (each[:, 0] > each[:, 1]).any()]
        if backwards:
            note(f"{self.path.name}: obs_intervals that stop before they start are left out, "
                 f"of the units with {few_ids(self.unit_ids[backwards])}")
            own = [each[each[:, 0] <= each[:, 1]] for each in own]
        return own if any(len(each) for each in own) else None  # none stated: as without them

    def span(self, units: np.ndarray | None = None) -> tuple[float, float, bool]:
        """``(first, last, recorded)``: the time the recording covers, the Units table's
        ``obs_intervals`` from the first start to the last stop where it has them (``recorded``
        true; spike times outside them are noted), else the first and last spike time of the
        units at positions ``units`` (default all). The spike times are read in chunks; those
        that are no number are noted, naming their units, and left out."""
        observed, intervals, unknown = None, self._intervals(), False
        if intervals is not None:
            intervals, owners = intervals
            finite = np.isfinite(intervals).all(axis=-1)
            # a unit whose intervals are all NaN is recorded throughout (unit_intervals)
            unknown = len(np.setdiff1d(owners, owners[finite])) > 0
            intervals, owners = intervals[finite], owners[finite]
            if len(intervals):
                observed = float(intervals.min()), float(intervals.max())
        first, last, broken, outside = np.inf, -np.inf, [], 0
        for start in range(0, len(self._times), CHUNK):
            chunk = np.asarray(self._times[start:start + CHUNK], dtype=np.float64)
            finite = np.isfinite(chunk)
            broken.append(start + np.flatnonzero(~finite))
            if finite.any():
                first, last = min(first, chunk[finite].min()), max(last, chunk[finite].max())
            if observed is not None:
                kept = chunk[finite]
                outside += int(np.sum((kept < observed[0]) | (kept > observed[1])))
        broken = np.concatenate(broken)
        if len(broken):
            owners = np.unique(self.unit_ids[np.searchsorted(self._ends, broken, side="right")])
            note(f"{len(broken)} spike times of {self.path.name} are no number (NaN or "
                 f"infinite) and are left out, in the units with {few_ids(owners)}")
        if not np.isfinite(first):
            raise DataError(f"the Units table of {self.path} has no spike time that is a number; "
                            "fix the file")
        if observed is not None:
            _check_seconds(self.path, intervals, self.unit_ids[owners], first, last)
            if unknown:  # (so every spike is in the time recorded)
                observed, outside = (min(observed[0], first), max(observed[1], last)), 0
            if outside:
                note(f"{outside} spike times of {self.path.name} lie outside its units' "
                     f"obs_intervals ({observed[0]:.3f} to {observed[1]:.3f} s), the time "
                     "recorded, and are left out")
            return (*observed, True)
        if units is not None and len(units) < self.n_units:  # the units kept, not the others
            times = [own for own in map(self.unit_spike_times, units) if len(own)]
            if not times:  # (their spike times all NaN)
                raise no_spikes(self.path.name)
            first, last = min(own[0] for own in times), max(own[-1] for own in times)
        return float(first), float(last), False

    def behavior(self, name: str) -> tuple[np.ndarray, np.ndarray, str | None]:
        """The TimeSeries ``name`` anywhere in the file (``processing``, ``acquisition``; by its
        name, or its path such as ``behavior/Position/hand_pos`` where names repeat): its
        timestamps ``(samples,)`` s (from ``starting_time`` and ``rate`` where it has none), its
        data ``(samples, dims)`` in its unit (``conversion`` and ``offset`` applied) and that
        unit.

        Raises:
            DataError: no such series (the message lists those there are), one name for
                several, an ElectricalSeries, or data of more than two dimensions.
        """
        found = {_path(series): series for series in self._nwbfile.objects.values()
                 if isinstance(series, TimeSeries)}
        matches = sorted(path for path in found if path == name or path.endswith(f"/{name}"))
        if len(matches) > 1:
            raise DataError(f"--behavior {name}: {self.path.name} has several series of that "
                            f"name ({', '.join(matches)}); give one of those paths")
        if not matches:
            shown = sorted(path for path, series in found.items()
                           if not isinstance(series, ElectricalSeries))
            raise MissingBehavior(f"--behavior {name}: {self.path.name} has no TimeSeries named "
                                  f"{name!r}; " + (f"its series: {', '.join(shown)}" if shown
                                                   else "it holds none, raw voltages apart"))
        series = found[matches[0]]
        if isinstance(series, ElectricalSeries):
            raise DataError(f"--behavior {name}: {matches[0]} of {self.path.name} is an "
                            "ElectricalSeries (voltages), not behaviour; give a series of "
                            "movements, positions or other measures")
        try:
            values = np.asarray(series.get_data_in_units(), dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(f"--behavior {name}: {matches[0]} of {self.path.name} does not hold "
                            "numbers; give a series of measured values") from None
        if values.ndim > 2 or len(values) == 0:
            raise DataError(f"--behavior {name}: {matches[0]} of {self.path.name} holds data of "
                            f"shape {values.shape}; pyrolf bins a series of samples (time) or "
                            "(time, dims)")
        times = np.asarray(series.get_timestamps(), dtype=np.float64)
        if len(times) != len(values):
            raise DataError(f"--behavior {name}: {matches[0]} of {self.path.name} has "
                            f"{len(times)} timestamps for {len(values)} samples; fix the file")
        return times, values.reshape(len(values), -1), series.unit

    def unit_column(self, name: str) -> np.ndarray:
        """Units-table column ``name`` ``(units,)`` (``id``: the units' ids), or the electrodes
        table's column ``name`` at each unit's first electrode (NaN, or ``None`` in a column of
        text, for a unit of none); electrode groups by name, text as ``str``.

        Raises:
            DataError: a column of a list per unit (the spike times, the electrodes).
        """
        if name == "id":
            return self.unit_ids
        if name in self._units.colnames:
            return _plain(self._one_per_row(self._units[name], name, "Units table", "unit"))
        table, first = self._electrodes
        values = _plain(self._one_per_row(table[name], name, "electrodes table", "electrode"))
        if not (first < 0).any():
            return values[first]
        if values.dtype.kind in "biuf":  # (a boolean column becomes 0/1)
            return np.where(first < 0, np.nan, values[first].astype(np.float64))
        return np.array([None if row < 0 else values[row] for row in first], dtype=object)

    def _one_per_row(self, column, name: str, table: str, row: str) -> np.ndarray:
        """The values of ``column`` of one value per ``row``; a :class:`DataError` for a column
        of a list (ragged: its ``VectorIndex``) or an array per row."""
        if isinstance(column, VectorIndex) or len(getattr(column.data, "shape", ())) > 1:
            raise DataError(f"column {name!r} of the {table} of {self.path.name} holds a list "
                            f"per {row}; give a column with one value per {row}")
        return column.data[:]

    def descriptions(self, table: str) -> dict[str, str]:
        """What the file says of each column (its ``description``), by name, of the ``table``
        ``"trials"`` or ``"units"`` (and the electrodes table's the units reach)."""
        if table == "trials":
            return {name: str(self._trials[name].description)
                    for name in self.trial_columns or ()}
        reached = {} if self._electrodes is None else {
            name: str(self._electrodes[0][name].description)
            for name in self._electrodes[0].colnames}
        return {**reached, **{name: str(self._units[name].description)
                              for name in self._units.colnames}}

    def trial_column(self, name: str) -> np.ndarray:
        """Trials-table column ``name`` ``(trials,)``, read from the file the first time it is
        asked for (the options that name a column, then the trial table, read it)."""
        if name not in self._columns:
            self._columns[name] = _plain(self._one_per_row(self._trials[name], name,
                                                           "trials table", "trial"))
        return self._columns[name]


def _check_seconds(path: Path, intervals: np.ndarray, ids: np.ndarray, first: float,
                   last: float) -> None:
    """Refuse ``obs_intervals`` (``intervals`` ``(rows, 2)`` s, of the units ``ids``) that span
    over :data:`FAR_SPAN` times what the spikes span (``first`` to ``last`` s), naming the units
    whose intervals reach more than that span beyond the spikes.

    Raises:
        DataError: one line, asking for seconds.
    """
    length = max(last - first, 1.0)
    if intervals.max() - intervals.min() <= FAR_SPAN * length:
        return
    far = (intervals[:, 1] > last + length) | (intervals[:, 0] < first - length)
    raise DataError(f"{path.name}: the obs_intervals of the units with "
                    f"{few_ids(np.unique(ids[far]).tolist())} reach from "
                    f"{intervals[far].min():g} to {intervals[far].max():g} s, far beyond the "
                    f"spikes ({first:g} to {last:g} s); are they in seconds? give obs_intervals "
                    "in seconds, in the spikes' time base")


def _first_electrodes(units):
    """``(electrodes table, (units,) row of each unit's first electrode, -1 for none)``, or
    ``None`` where the Units table has no ``electrodes`` region."""
    if "electrodes" not in units.colnames:
        return None
    region = units.electrodes  # the region itself, ragged (indexed) or one row per unit
    rows = np.append(np.asarray(region.data[:], dtype=np.int64), -1)  # -1: a unit of none
    if isinstance(units["electrodes"], VectorIndex):
        ends = np.asarray(units["electrodes"].data[:], dtype=np.int64)
        starts = np.concatenate([[0], ends[:-1]])
        return region.table, np.where(ends > starts, rows[starts], -1)
    return region.table, rows[:-1]


def _plain(values) -> np.ndarray:
    """A column's ``values`` as an array of numbers, booleans or text (bytes decoded, NWB
    objects such as electrode groups by their names)."""
    values = np.asarray(values)
    if values.dtype.kind in "biufU":
        return values
    return np.array([decoded(value) if isinstance(value, bytes)
                     else getattr(value, "name", value) for value in values.ravel()],
                    dtype=object).reshape(values.shape)


def _path(container) -> str:
    """Where ``container`` sits in its file, e.g. ``behavior/Position/hand_pos``: the names of its
    parents below the file, then its own."""
    names = []
    while container is not None and container.parent is not None:
        names.append(container.name)
        container = container.parent
    return "/".join(reversed(names))
