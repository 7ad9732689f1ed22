"""Several sessions, each with its own neurons, fitted with one dynamics model.

The sessions are kept apart, each the :class:`~pyrolf.data.spikes.SpikeData` it was loaded as,
in one :class:`Sessions`. The flow fitted to them has the neurons of all sessions side by side,
session after session (:attr:`Sessions.n_neurons`): the encoder's input weights have a column per
held-in neuron, so each session's counts enter through its own columns (a per-session read-in),
and the decoder's read-out has a row per neuron, so each session's rates come from its own rows
(a per-session read-out); the latent dynamics, the encoder's recurrence and the decoder's
Transformer are shared. A session's view of the flow
(:func:`pyrolf.models.sessions.session_flow`) reads and scores the session's own counts
``(trials, time, its neurons)`` through those columns and rows alone, so training steps on one
session's batches at a time and each session is scored, inferred and diagnosed as if fitted
alone, and nothing grows with the product of all sessions' trials and all their neurons.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pyrolf.data.spikes import DataError, HeldOut, SpikeData
from pyrolf.messages import note

#: bin sizes of sessions this close (relative) are one: a spike file may keep 0.01 as float32
BIN_TOLERANCE = 1e-6


def same_bin_size(one: float, other: float) -> bool:
    """Whether two bin sizes in seconds are one (within :data:`BIN_TOLERANCE` of each other: a
    size kept as float32, 0.1 s as 0.10000000149, is the size it was)."""
    return math.isclose(one, other, rel_tol=BIN_TOLERANCE)


@dataclass
class Sessions(HeldOut):
    """Sessions fitted with one dynamics (module docstring): their held-in neurons are the
    columns of the encoder's input weights, all their neurons the rows of the decoder's read-out.

    Attributes:
        sessions: each session's data as loaded, by name, in the order of their neurons in the
            fitted flow.
    """

    sessions: dict[str, SpikeData]

    @property
    def name(self) -> str:
        return " + ".join(self.sessions)

    @property
    def n_neurons(self) -> int:
        """The neurons of all sessions: the rows of the flow's read-out."""
        return sum(data.n_neurons for data in self.sessions.values())

    @property
    def heldout(self) -> np.ndarray:
        """``(neurons of all sessions,)`` bool, session after session."""
        return np.concatenate([data.heldout for data in self.sessions.values()])

    def neurons(self, name: str) -> slice:
        """Session ``name``'s neurons among those of all sessions: its rows of the decoder's
        read-out.

        Raises:
            DataError: no session of that name (the message lists them).
        """
        return self._span(name, lambda data: data.n_neurons)

    def inputs(self, name: str) -> slice:
        """Session ``name``'s held-in neurons among those of all sessions: its columns of the
        encoder's input weights.

        Raises:
            DataError: no session of that name (the message lists them).
        """
        return self._span(name, lambda data: data.n_heldin)

    def _span(self, name: str, size) -> slice:
        """Where session ``name``'s ``size(data)`` entries lie among all sessions', which come
        session after session."""
        data, names = session_data(self, name), list(self.sessions)
        start = sum(size(self.sessions[other]) for other in names[:names.index(name)])
        return slice(start, start + size(data))


def session_names(paths) -> list[str]:
    """A name per session file: its stem (``a.nwb`` -> ``a``), made unique by ``-2``, ``-3``
    where stems repeat."""
    names: list[str] = []
    for path in paths:
        stem, name, count = Path(path).stem, Path(path).stem, 1
        while name in names:
            count += 1
            name = f"{stem}-{count}"
        names.append(name)
    return names


def gather_sessions(sessions: dict[str, SpikeData]) -> Sessions:
    """The sessions as :class:`Sessions`, after checking that one model can take them all.

    Raises:
        DataError: fewer than two sessions, two that hold the same counts, or sessions that
            differ in bins per trial, forward bins or bin size (where their sources say it: a
            spike file without ``bin_size_s`` takes the others', with a note), or NLB data
            (nlb_tools scores one dataset at a time).
    """
    if len(sessions) < 2:
        raise DataError("fitting several sessions needs at least two")
    names, first = list(sessions), next(iter(sessions.values()))
    for name, data in sessions.items():
        if "nlb" in data.extra:
            raise DataError(f"session {name} is NLB data, which nlb_tools scores one dataset at a "
                            "time; fit NLB datasets on their own")
        for what, value, expected in (("bins per trial", data.n_bins, first.n_bins),
                                      ("forward bins", data.n_forward, first.n_forward)):
            if value != expected:
                raise DataError(f"session {name} has {value} {what} but {names[0]} has "
                                f"{expected}; sessions share one window and one bin size "
                                "(--window, --bin)")
    for index, (name, data) in enumerate(sessions.items()):
        twin = next((other for other, earlier in list(sessions.items())[:index]
                     if earlier.spikes.shape == data.spikes.shape
                     and np.array_equal(earlier.spikes, data.spikes, equal_nan=True)), None)
        if twin is not None:
            raise DataError(f"sessions {twin} and {name} hold the same counts: one recording "
                            "given twice (a copy, a link?); give each session once")
    binned = [(name, data.bin_size) for name, data in sessions.items()
              if data.bin_size is not None]
    for name, size in binned[1:]:
        if not same_bin_size(size, binned[0][1]):
            raise DataError(f"session {name} has bins of {size * 1000:g} ms but {binned[0][0]} "
                            f"of {binned[0][1] * 1000:g} ms; sessions share one bin size (--bin "
                            "bins recordings; a binned file keeps its own)")
    unsaid = [name for name, data in sessions.items() if data.bin_size is None]
    if binned and unsaid:  # one model, one bin: theirs is the others' (time in seconds, PSTHs)
        size = binned[0][1]
        one = len(unsaid) == 1
        note(f"{'session' if one else 'sessions'} {', '.join(unsaid)} "
             f"{'says' if one else 'say'} no bin size: taken to be the others' {size * 1000:g} "
             "ms (store bin_size_s in a spike file to say it)")
        sessions = {name: dataclasses.replace(data, bin_size=size) if name in unsaid else data
                    for name, data in sessions.items()}
    return Sessions(dict(sessions))


def shared_bin_size(sessions: Iterable[SpikeData]) -> float | None:
    """Seconds per bin of ``sessions`` (:func:`gather_sessions` checks that those whose source
    says it agree), or ``None`` where none says it (spike files, the Lorenz data)."""
    return next((data.bin_size for data in sessions if data.bin_size is not None),
                None)


def session_list(data: Sessions | SpikeData) -> list[SpikeData]:
    """The sessions of ``data``, in order: ``data`` itself for one."""
    return list(data.sessions.values()) if isinstance(data, Sessions) else [data]


def session_data(data: Sessions | SpikeData, name: str) -> SpikeData:
    """Session ``name`` of ``data`` as it was loaded.

    Raises:
        DataError: ``data`` is one session, or has no session of that name (the message lists
            them).
    """
    check_session(list(data.sessions) if isinstance(data, Sessions) else [data.name], name)
    return data.sessions[name]


def check_session(names: list[str], session: str | None, required: bool = False) -> None:
    """Refuse, in one line, ``session`` for a run of the sessions ``names`` (one: a run of one
    session, so named): a name where the run has one session, a name it has not, or none
    where one is ``required`` of several.

    Raises:
        DataError: a name for a run of one session, or not one of ``names``.
        ConfigError: no name where one is ``required``.
    """
    if len(names) == 1:
        if session is not None:
            raise DataError(f"the run was fitted to one session ({names[0]}); leave out "
                            "session (--session)")
    elif session is None:
        if required:
            from pyrolf.config import ConfigError

            raise ConfigError(f"the run was fitted to the sessions {', '.join(names)}; give "
                              "session (--session NAME) to say which")
    elif session not in names:
        raise DataError(f"no session {session!r}; the run's sessions are {', '.join(names)}")
