"""The scores of several sessions (:mod:`pyrolf.data.sessions`): each session's own, and their
co-bps over all sessions' held-out neurons together."""

from __future__ import annotations

import math

import numpy as np

from pyrolf.data.sessions import Sessions
from pyrolf.data.spikes import SpikeData

#: the scores pooled over sessions: bits per spike of the held-out neurons, the model's and the
#: smoothing baseline's
POOLED = ("co_bps", "smoothing_co_bps")


def heldout_spikes(data: SpikeData, trials) -> float:
    """The spikes of ``data``'s held-out neurons in the observed bins of ``trials``: what
    co-bps divides by."""
    return float(np.nansum(data.spikes[trials][:, : data.n_observed][..., data.heldout]))


def pooled(scores: dict, weights: dict) -> float:
    """The mean of several sessions' ``scores`` weighted by ``weights`` (the same keys), the
    sessions of weight 0 left out (nothing of theirs to count; their score is undefined); NaN
    where all weigh 0. One session's score is given as it is. Weighted by the sessions' held-out
    spikes, each session's bits per spike of its held-out neurons pool into those of all
    sessions' held-out neurons together, as co-bps's null model (each neuron's mean count) is a
    neuron's own."""
    total = sum(weights.values())
    if total == 0:
        return math.nan
    return float(sum(scores[key] * (weights[key] / total) for key in scores if weights[key] > 0))


def pooled_metrics(by_session: dict[str, dict], data: Sessions) -> dict:
    """``co_bps`` and ``smoothing_co_bps`` of the sessions ``data`` (:func:`pooled` over their
    test trials), from each session's metrics ``by_session`` (name -> what
    :func:`~pyrolf.evaluation.report.evaluate` gives for it), which go under ``sessions``."""
    spikes = {name: heldout_spikes(session, session.splits["test"])
              for name, session in data.sessions.items()}
    return {**{key: pooled({name: metrics[key] for name, metrics in by_session.items()}, spikes)
               for key in POOLED}, "sessions": by_session}
