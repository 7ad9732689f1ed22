"""Several sessions, each with its own neurons, fitted with one dynamics model.

The sessions' trials are stacked into one :class:`~pyrolf.data.spikes.SpikeData` whose neurons
are all the sessions' neurons side by side, session after session: a trial has counts only in
its own session's columns, zeros elsewhere, and :attr:`~pyrolf.data.spikes.SpikeData.recorded`
says which columns those are. The encoder reads the held-in columns, so a session's counts enter
through its own columns of the encoder's input weights (a per-session read-in); the decoder's
read-out has a row per neuron, so each session's rates come from its own rows (a per-session
read-out); the latent dynamics, the encoder's recurrence and the decoder's Transformer are shared.
Training scores only the recorded entries. Each session stays reachable as the
:class:`~pyrolf.data.spikes.SpikeData` it was loaded as (:func:`session_data`), which the
per-session view of a fitted flow (:func:`pyrolf.models.sessions.session_flow`) takes as any
other data: so a session is scored, inferred and diagnosed as if fitted alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pyrolf.data.spikes import SESSIONS, DataError, SpikeData


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


def stack_sessions(sessions: dict[str, SpikeData]) -> SpikeData:
    """The sessions' trials in one :class:`SpikeData` (module docstring): trials and neurons
    session after session, splits each session's own, ``extra["sessions"]`` with, per session,
    its ``data``, the stacked indices of its ``trials`` and ``neurons``.

    Raises:
        DataError: fewer than two sessions, or sessions that differ in bins per trial, forward
            bins or bin size, or NLB data (nlb_tools scores one dataset at a time).
    """
    if len(sessions) < 2:
        raise DataError("stacking sessions needs at least two")
    names, datas = list(sessions), list(sessions.values())
    first = datas[0]
    for name, data in sessions.items():
        if "nlb" in data.extra:
            raise DataError(f"session {name} is NLB data, which nlb_tools scores one dataset at a "
                            "time; fit NLB datasets on their own")
        for what, value, expected in (("bins per trial", data.n_bins, first.n_bins),
                                      ("forward bins", data.n_forward, first.n_forward),
                                      ("bin size (s)", data.bin_size, first.bin_size)):
            if value != expected:
                raise DataError(f"session {name} has {value} {what} but {names[0]} has "
                                f"{expected}; sessions share one window and one bin size "
                                "(--window, --bin)")
    trial_starts = np.cumsum([0] + [data.n_trials for data in datas])
    neuron_starts = np.cumsum([0] + [data.n_neurons for data in datas])
    spikes = np.zeros((trial_starts[-1], first.n_bins, neuron_starts[-1]), dtype=np.float32)
    table = {}
    splits = {key: [] for key in ("train", "valid", "test")}
    for index, (name, data) in enumerate(sessions.items()):
        trials = np.arange(trial_starts[index], trial_starts[index + 1])
        neurons = np.arange(neuron_starts[index], neuron_starts[index + 1])
        spikes[trial_starts[index]:trial_starts[index + 1], :,
               neuron_starts[index]:neuron_starts[index + 1]] = data.spikes
        for key in splits:
            splits[key].append(trials[np.asarray(data.splits.get(key, []), dtype=np.int64)])
        table[name] = {"data": data, "trials": trials, "neurons": neurons}
    return SpikeData(
        spikes=spikes, heldout=np.concatenate([data.heldout for data in datas]),
        splits={key: np.concatenate(parts) for key, parts in splits.items()},
        n_forward=first.n_forward, name=" + ".join(names), bin_size=first.bin_size,
        extra={SESSIONS: table})


def session_data(data: SpikeData, name: str) -> SpikeData:
    """Session ``name`` of stacked ``data`` as it was loaded.

    Raises:
        DataError: ``data`` has no session of that name (the message lists them).
    """
    table = data.extra.get(SESSIONS)
    if table is None:
        raise DataError(f"{data.name} was fitted as one session; leave out --session")
    if name not in table:
        raise DataError(f"no session {name!r}; the run's sessions are {', '.join(table)}")
    return table[name]["data"]
