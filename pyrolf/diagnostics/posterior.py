"""Posterior draws from the guide, each scored and simulated by the model.

For every draw the guide is traced on the trials' encoder inputs, the model is replayed on the
guide's latent values with the observed spikes, and from the two traces come the draw's latent
trajectory, the exact ELBO terms per trial (``log p(x, z)`` and ``log q(z | x)``, no KL weight, no
coordinated dropout), the rates, and spike counts drawn from the model's observation distribution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from pyro.poutine.util import site_is_subsample

from pyrolf.inference.passes import traced_passes
from pyrolf.models.langevinflow import OBSERVATION_SITE


@dataclass
class PosteriorSamples:
    """Draws of ``draws`` samples for ``trials`` trials of ``time`` bins.

    z, v: latent positions and velocities ``(draws, trials, time, latent)``.
    predictive_spikes: counts drawn from the model given each draw
        ``(draws, trials, time, neurons)``, of the smallest integer type from int16 up that
        holds them (:func:`count_type`).
    log_likelihood: ``log p(x | z)`` of the scored entries, summed per trial ``(draws, trials)``.
    log_prior: ``log p(z)`` per trial ``(draws, trials)``.
    log_guide: ``log q(z | x)`` per trial ``(draws, trials)``.
    rates: posterior-mean rates in spikes per bin ``(trials, time, neurons)``.
    rate_draws: where asked for, the rates each draw decodes to, in spikes per bin ``(draws,
        trials, time, neurons)`` (the predicted counts' Poisson means); else ``None``.
    """

    z: np.ndarray
    v: np.ndarray
    predictive_spikes: np.ndarray
    log_likelihood: np.ndarray
    log_prior: np.ndarray
    log_guide: np.ndarray
    rates: np.ndarray
    rate_draws: np.ndarray | None = None

    @property
    def log_weights(self) -> np.ndarray:
        """Importance log-weights ``log p(x, z) - log q(z | x)`` ``(draws, trials)``."""
        return self.log_likelihood + self.log_prior - self.log_guide


def _per_trial(trace, n_trials: int, observed: bool) -> torch.Tensor:
    """Sum of the log-densities of a trace's observed (or latent) sites per trial ``(trials,)``;
    every site must lie in the trials plate (its log-density leads with the trial dim)."""
    total = torch.zeros(n_trials, dtype=torch.float64)
    for site in trace.nodes.values():
        if site["type"] != "sample" or site_is_subsample(site) or site["is_observed"] != observed:
            continue
        total = total + site["log_prob"].reshape(n_trials, -1).double().sum(-1).cpu()
    return total


def count_type(largest) -> np.dtype:
    """The smallest signed integer type from int16 up that holds counts up to ``largest``: a
    draw's counts take half of int32's memory where every count is below 32768. Signed, as
    ArviZ's ``plot_ppc`` takes no unsigned counts; not int8, in which arithmetic on counts
    wraps at once (numpy keeps the type: 12 squared is 144, in int8 -112)."""
    return next(np.dtype(dtype) for dtype in (np.int16, np.int32, np.int64)
                if int(largest) <= np.iinfo(dtype).max)


@torch.no_grad()
def sample_posterior(model, guide, inputs: torch.Tensor, spikes: torch.Tensor,
                     mask: torch.Tensor, n_bins: int, samples: int,
                     draws_per_pass: int | None = None, progress: str | None = None,
                     rates: bool = False) -> PosteriorSamples:
    """Draw ``samples`` posterior samples per trial from ``guide`` and score them with ``model``.

    ``model`` and ``guide`` have LangevinFlow's signature (they are called with ``inputs,
    spikes, mask, n_bins, draws``); the guide returns ``(z, v)`` ``(trials · draws, n_bins,
    latent)``, the model the log-rates ``(trials · draws, n_bins, neurons)`` and observes the
    site ``"spikes"``; every sample site lies in the ``trials`` plate. Both run with
    ``kl_weight = 1`` (the exact ELBO terms); put the networks in eval mode first if dropout
    should be off.

    Args:
        inputs: what the encoder sees ``(trials, observed, held_in)``.
        spikes: counts ``(trials, n_bins, neurons)``.
        mask: bool ``(trials, n_bins, neurons)``, the entries the likelihood scores.
        n_bins: bins of the latent trajectory (observed plus forward).
        samples: draws per trial.
        draws_per_pass, progress: as in :func:`~pyrolf.inference.passes.traced_passes`,
            which draws several trials many times in one pass.
        rates: keep each draw's rates too (``rate_draws``: as many values as the predicted
            counts, in floats).
    """
    n_trials = inputs.shape[0]
    passes = traced_passes(model, guide, inputs, samples, draws_per_pass, progress,
                           spikes=spikes, mask=mask, n_bins=n_bins)
    draws, rate_sum = {}, None    # each (draws, trials, ...), filled pass by pass
    for trials, drawn, guide_trace, model_trace in passes:
        guide_trace.compute_log_prob()
        model_trace.compute_log_prob()
        shape = (trials.stop - trials.start, drawn.stop - drawn.start)
        rows = shape[0] * shape[1]
        z, v = guide_trace.nodes["_RETURN"]["value"]
        observation = model_trace.nodes[OBSERVATION_SITE]["fn"]
        drawn_rates = model_trace.nodes["_RETURN"]["value"].exp()
        values = {"z": z, "v": v, **({"rate_draws": drawn_rates} if rates else {}),
                  "predictive_spikes": observation.sample().to(torch.int32),
                  "log_likelihood": _per_trial(model_trace, rows, observed=True),
                  "log_prior": _per_trial(model_trace, rows, observed=False),
                  "log_guide": _per_trial(guide_trace, rows, observed=False)}
        for key, value in values.items():
            value = value.cpu().unflatten(0, shape).movedim(1, 0).numpy()
            dtype = count_type(value.max(initial=0)) if key == "predictive_spikes" else value.dtype
            if key not in draws:
                draws[key] = np.empty((samples, n_trials, *value.shape[2:]), dtype)
            elif np.promote_types(draws[key].dtype, dtype) != draws[key].dtype:  # (a larger count)
                draws[key] = draws[key].astype(np.promote_types(draws[key].dtype, dtype))
            draws[key][drawn, trials] = value
        summed = drawn_rates.cpu().unflatten(0, shape).sum(1).numpy()
        if rate_sum is None:
            rate_sum = np.zeros((n_trials, *summed.shape[1:]), summed.dtype)
        rate_sum[trials] += summed
    return PosteriorSamples(rates=rate_sum / samples, **draws)
