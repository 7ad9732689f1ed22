"""What a recording file offers :mod:`pyrolf.data.recordings`: the spike source that
:func:`~pyrolf.data.recordings.open_source` opens. Two readers meet it,
:class:`~pyrolf.data.nwb.NWBSource` (NWB, read lazily with pynwb) and
:class:`~pyrolf.data.recordings.SpikeTimesFile` (a spike-times ``.npz``); a reader of another
format would meet it too, chosen by :func:`~pyrolf.data.recordings.recording_format` and
``open_source``, and its recordings would be cut and binned as theirs are."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class SpikeSource(Protocol):
    """The sorted units of one recording, its trials table where it has one, and its behaviour.
    Units are named by position (``0 .. n_units - 1``) in the order of ``unit_ids``.

    Attributes:
        format: the file's format as ``metrics.json`` names it (``"nwb"``, ``"spike_times"``).
        path: the file.
        unit_ids: ``(units,)`` each unit's id in the file.
        unit_columns: names :meth:`unit_column` reads (``"id"`` first), for ``--units-where``.
        trial_columns: names :meth:`trial_column` reads (``start_time`` and ``stop_time``
            among them), ``None`` without a trials table.
        n_trials: rows of the trials table (0 without one).
        trial_table_ids: ``(trials,)`` the trials table's ids, ``None`` where it has none.
    """

    format: str
    path: Path
    unit_ids: np.ndarray
    unit_columns: tuple[str, ...]
    trial_columns: tuple[str, ...] | None
    n_trials: int
    trial_table_ids: np.ndarray | None

    @property
    def n_units(self) -> int:
        """How many units (``len(unit_ids)``)."""

    @property
    def spike_counts(self) -> np.ndarray:
        """``(units,)``: how many spike times each unit holds."""

    def unit_spike_times(self, unit: int) -> np.ndarray:
        """``(spikes,)``: the sorted spike times (s) of the unit at position ``unit``, only
        numbers."""

    def unit_intervals(self, units: np.ndarray) -> list[np.ndarray] | None:
        """For each unit at positions ``units``, the times it was recorded ``(intervals, 2)``
        s (start, stop); ``None`` where the file records none (every unit recorded
        throughout)."""

    def span(self, units: np.ndarray | None = None) -> tuple[float, float, bool]:
        """``(first, last, recorded)``: the time the recording covers, from the file's own
        record of it (``recorded`` true) or else the first and last spike of the units at
        positions ``units`` (default all)."""

    def unit_column(self, name: str) -> np.ndarray:
        """Column ``name`` of the units ``(units,)`` (``"id"``: ``unit_ids``).

        Raises:
            KeyError: no such column."""

    def trial_column(self, name: str) -> np.ndarray:
        """Column ``name`` of the trials table ``(trials,)``, text as ``str``."""

    def descriptions(self, table: str) -> dict[str, str]:
        """What the file says of each column of ``table`` (``"trials"`` or ``"units"``), by
        name; ``{}`` where it says nothing."""

    def behavior(self, name: str) -> tuple[np.ndarray, np.ndarray, str | None]:
        """The behaviour series ``name``: its times ``(samples,)`` s, its values ``(samples,
        dims)`` and their unit (``None`` where not known).

        Raises:
            MissingBehavior: no such series (:mod:`pyrolf.data.spikes`); DataError: one that
                cannot be read as such."""
