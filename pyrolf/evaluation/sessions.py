"""The scores of several sessions (:mod:`pyrolf.data.sessions`): each session's own, and their
co-bps over all sessions' held-out neurons together."""

from __future__ import annotations

import math

from pyrolf.data.sessions import Sessions
from pyrolf.data.spikes import SpikeData

#: the scores pooled over sessions: bits per spike of the held-out neurons, the model's and the
#: smoothing baseline's
POOLED = ("co_bps", "smoothing_co_bps")


def heldout_spikes(data: SpikeData, trials) -> float:
    """The spikes of ``data``'s held-out neurons in the observed bins of ``trials``: what
    co-bps divides by."""
    return float(data.spikes[trials][:, : data.n_observed][..., data.heldout].sum())


def pooled(scores: dict, spikes: dict) -> float:
    """Bits per spike of several sessions' held-out neurons together from each session's
    ``scores`` and held-out ``spikes`` (the same keys): the scores weighted by the spikes, as
    co-bps's null model (each neuron's mean count) is a neuron's own. A session without a
    held-out spike has none to count; NaN where no session has one. One session's score is
    given as it is."""
    total = sum(spikes.values())
    if total == 0:
        return math.nan
    return float(sum(scores[key] * (spikes[key] / total) for key in scores if spikes[key] > 0))


def pooled_metrics(by_session: dict[str, dict], data: Sessions) -> dict:
    """``co_bps`` and ``smoothing_co_bps`` of the sessions ``data`` (:func:`pooled` over their
    test trials), from each session's metrics ``by_session`` (name -> what
    :func:`~pyrolf.evaluation.report.evaluate` gives for it), which go under ``sessions``."""
    spikes = {name: heldout_spikes(session, session.splits["test"])
              for name, session in data.sessions.items()}
    return {**{key: pooled({name: metrics[key] for name, metrics in by_session.items()}, spikes)
               for key in POOLED}, "sessions": by_session}
