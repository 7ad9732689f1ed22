"""Passes of a flow's guide and model over many trials and posterior draws, traced: what the
validation's rates, the KL per latent dimension and the posterior's draws are read from."""

from __future__ import annotations

import torch
from pyro import poutine
from pyro.poutine.messenger import Messenger
from pyro.poutine.trace_struct import Trace

from pyrolf.messages import progress_bar
from pyrolf.models.langevinflow import OBSERVATION_SITE

#: trial-draws per pass of :func:`traced_passes`: on a GPU a pass costs about the same for few
#: rows as for thousands (the time goes to launching kernels), on a CPU it grows with them
DRAWS_PER_PASS = {"cpu": 256, "cuda": 2048}


class RatesOnly(Messenger):
    """The model's observation site (:data:`OBSERVATION_SITE`) left undrawn where no counts are
    given: its value is the distribution's mean, the rates, and no counts are simulated. For
    passes that read only the model's log-rates or its latent sites' densities."""

    def _pyro_sample(self, msg):
        if msg["name"] == OBSERVATION_SITE and msg["value"] is None:
            msg["value"] = msg["fn"].mean


def guide_and_model_traces(model, guide, *args, **kwargs) -> tuple[Trace, Trace]:
    """One draw of ``guide(*args, **kwargs)`` and ``model`` replayed on it with the same
    arguments, under :class:`RatesOnly` (where no counts are given, none are drawn): the traces
    ``(guide, model)``."""
    guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
    with RatesOnly():
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(
            *args, **kwargs)
    return guide_trace, model_trace


def traced_passes(model, guide, inputs: torch.Tensor, samples: int,
                  draws_per_pass: int | None = None, progress: str | None = None, **kwargs):
    """``samples`` draws of every trial of ``inputs`` ``(trials, observed, held_in)``, traced
    (:func:`guide_and_model_traces`) pass by pass: yields ``(trials, drawn, guide_trace,
    model_trace)``, ``trials`` a slice of ``inputs``' trials and ``drawn`` the slice of each
    one's draws (of ``range(samples)``) the pass holds; the traces' ``trials`` plate holds
    ``len(trials) · len(drawn)`` rows, each trial's draws next to one another.

    The draws of several trials go through the guide and the model together,
    ``draws_per_pass`` rows at a time (default: by device, :data:`DRAWS_PER_PASS`), through the
    ``draws`` argument of LangevinFlow's signature: the encoder reads each trial once per pass.
    The passes of one slice of trials come one after another and hold ``samples`` draws of each
    of its trials in all. ``kwargs`` go to the guide and the model; ``spikes`` and ``mask``
    among them ``(trials, T, neurons)`` are cut to the pass's trials and repeated for its rows.
    ``progress``: the label of a progress bar of the trial-draws done (on stderr), or ``None``.
    """
    default = DRAWS_PER_PASS.get(inputs.device.type, DRAWS_PER_PASS["cpu"])
    draws_per_pass = draws_per_pass or default
    per_trial = min(samples, draws_per_pass)        # draws of one trial in one pass
    n_trials = inputs.shape[0]
    step = max(1, draws_per_pass // per_trial)      # trials in one pass
    with progress_bar(total=n_trials * samples, desc=progress, unit="draw",
                      disable=progress is None) as bar:
        for start in range(0, n_trials, step):
            trials = slice(start, min(start + step, n_trials))
            for done in range(0, samples, per_trial):
                drawn = slice(done, min(done + per_trial, samples))
                draws = drawn.stop - drawn.start
                rows = {name: kwargs[name][trials].repeat_interleave(draws, 0)
                        for name in ("spikes", "mask") if kwargs.get(name) is not None}
                traces = guide_and_model_traces(model, guide, inputs[trials],
                                                **{**kwargs, **rows}, draws=draws)
                yield (trials, drawn, *traces)
                bar.update((trials.stop - trials.start) * draws)
