"""What a run keeps of its data so that new trials can be inferred without them: each session's
neurons (held-out flags, unit ids, Units table and what the file says of its columns), bin
size, the window its trials were cut with, and the mean count per bin of each neuron over its
training trials, which starts the fill of a held-in unit the new trials lack
(:func:`~pyrolf.diagnostics.missing.fill_missing_counts`).

A run folder holds it as ``layout.pt`` (written by the fit), so that ``pyrolf infer RUN --data
NEW`` reads neither the file the run was fitted on (it may be gone: an archived session, a run
folder shared with a colleague) nor its hash. :func:`layout_data` gives it back as data of one
pseudo-trial, the training means, in place of the run's own: everything new trials are laid out
and filled by, and nothing else.
"""

from __future__ import annotations

import numpy as np

from pyrolf.data.sessions import Sessions
from pyrolf.data.spikes import SpikeData
from pyrolf.diagnostics.missing import training_means

#: what of a session's ``extra`` new trials are laid out by
KEPT_EXTRA = ("unit_ids", "unit_table", "unit_descriptions", "window")
#: what a layout holds; one of another format (an older pyrolf's, keeping less) is of no use
LAYOUT_FORMAT = 1


def data_layout(data: SpikeData | Sessions, fitted: dict) -> dict:
    """What :func:`layout_data` needs of ``data`` (a run's data, one session or several), as
    plain arrays: ``{"format": LAYOUT_FORMAT, "fitted": fitted, "several": bool, "sessions":
    {name: {"heldout": (neurons,) bool, "bin_size": seconds or None, "train_means":
    (observed bins, neurons) float64 (:func:`~pyrolf.diagnostics.missing.training_means`),
    "extra": the session's KEPT_EXTRA}}}``; ``fitted``: the data's
    :func:`~pyrolf.data.files.spikes_fingerprint`, which says whose layout it is."""
    several = isinstance(data, Sessions)
    return {"format": LAYOUT_FORMAT, "fitted": fitted, "several": several,
            "sessions": {name: {
                "heldout": own.heldout.copy(), "bin_size": own.bin_size,
                "train_means": training_means(own),
                "extra": {key: own.extra[key] for key in KEPT_EXTRA if key in own.extra}}
                for name, own in (data.sessions.items() if several else [(data.name, data)])}}


def layout_data(layout: dict) -> SpikeData | Sessions:
    """The data of :func:`data_layout`'s ``layout``: each session one training pseudo-trial
    ``(1, observed bins, neurons)``, its training means (so that
    :func:`~pyrolf.diagnostics.missing.training_means` of it gives them back exactly), with the
    session's neurons, bin size and kept ``extra``.

    Raises:
        ValueError: a layout of another format, of no session, or whose flags and means do not
            agree (a damaged file).
    """
    if layout.get("format") != LAYOUT_FORMAT:
        raise ValueError(f"layout format {layout.get('format')}, not {LAYOUT_FORMAT}")
    sessions = {name: SpikeData(spikes=np.asarray(kept["train_means"])[None],
                                heldout=np.asarray(kept["heldout"], dtype=bool),
                                splits={"train": np.array([0])}, name=name,
                                bin_size=kept["bin_size"], extra=dict(kept["extra"]))
                for name, kept in layout["sessions"].items()}
    if not sessions or any(own.spikes.ndim != 3 or own.heldout.shape != (own.n_neurons,)
                           for own in sessions.values()):
        raise ValueError("a layout of no session, or of flags and means that do not agree")
    return Sessions(sessions) if layout["several"] else next(iter(sessions.values()))
