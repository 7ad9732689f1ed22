"""The scores of stacked sessions (:mod:`pyrolf.data.sessions`): each session's own, and their
co-bps over all sessions' held-out neurons together."""

from __future__ import annotations

from pyrolf.data.sessions import SESSIONS
from pyrolf.data.spikes import SpikeData

#: the scores pooled over sessions: bits per spike of the held-out neurons, the model's and the
#: smoothing baseline's
POOLED = ("co_bps", "smoothing_co_bps")


def heldout_test_spikes(data: SpikeData) -> float:
    """The spikes of ``data``'s held-out neurons in the observed bins of its test trials: what
    co-bps divides by."""
    test = data.splits["test"]
    return float(data.spikes[test][:, : data.n_observed][..., data.heldout].sum())


def pooled_metrics(by_session: dict[str, dict], data: SpikeData) -> dict:
    """``co_bps`` and ``smoothing_co_bps`` of the stacked sessions ``data``, from each session's
    metrics ``by_session`` (name -> what :func:`~pyrolf.evaluation.report.evaluate` gives for it),
    which go under ``sessions``. Each pooled score is the sessions' scores weighted by their
    held-out test spikes: bits per spike over all sessions' held-out neurons together, as
    co-bps's null model (each neuron's mean count) is a neuron's own."""
    spikes = {name: heldout_test_spikes(session["data"])
              for name, session in data.extra[SESSIONS].items()}
    total = sum(spikes.values())
    pooled = {key: float(sum(spikes[name] * metrics[key] for name, metrics in by_session.items())
                         / total) if total > 0 else float("nan")
              for key in POOLED}
    return {**pooled, "sessions": by_session}
