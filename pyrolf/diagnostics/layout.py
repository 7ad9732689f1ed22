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
from pyrolf.evaluation.metrics import recorded_mean

#: what of a session's ``extra`` new trials are laid out by
KEPT_EXTRA = ("unit_ids", "unit_table", "unit_descriptions", "window")


def data_layout(data: SpikeData | Sessions, counts: str) -> dict:
    """What :func:`layout_data` needs of ``data`` (a run's data, one session or several), as
    plain arrays: ``{"sessions": {name: {"heldout", "bin_size", "train_mean" (observed bins,
    neurons) float32, NaN for a bin no training trial recorded, "extra"}}, "several": bool,
    "counts": counts}``; ``counts``: the SHA-256 of the data's counts
    (:func:`~pyrolf.data.files.spikes_fingerprint`), which says whose layout it is."""
    several = isinstance(data, Sessions)
    return {"several": several, "counts": counts,
            "sessions": {name: {
                "heldout": own.heldout.copy(), "bin_size": own.bin_size,
                "train_mean": recorded_mean(own.spikes[own.splits["train"], :own.n_observed],
                                            axis=0).astype(np.float32),
                "extra": {key: own.extra[key] for key in KEPT_EXTRA if key in own.extra}}
                for name, own in (data.sessions.items() if several else [(data.name, data)])}}


def layout_data(layout: dict) -> SpikeData | Sessions:
    """The data of :func:`data_layout`'s ``layout``: each session one training pseudo-trial
    ``(1, observed bins, neurons)``, its training means, with the session's neurons, bin size
    and kept ``extra``."""
    sessions = {name: SpikeData(spikes=kept["train_mean"][None], heldout=kept["heldout"],
                                splits={"train": np.array([0])}, name=name,
                                bin_size=kept["bin_size"], extra=dict(kept["extra"]))
                for name, kept in layout["sessions"].items()}
    return Sessions(sessions) if layout["several"] else next(iter(sessions.values()))
