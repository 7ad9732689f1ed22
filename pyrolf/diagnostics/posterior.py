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
from tqdm.auto import tqdm

from pyrolf.models.langevinflow import OBSERVATION_SITE, guide_and_model_traces


@dataclass
class PosteriorSamples:
    """Draws of ``draws`` samples for ``trials`` trials of ``time`` bins.

    z, v: latent positions and velocities ``(draws, trials, time, latent)``.
    predictive_spikes: counts drawn from the model given each draw
        ``(draws, trials, time, neurons)``, int32.
    log_likelihood: ``log p(x | z)`` of the scored entries, summed per trial ``(draws, trials)``.
    log_prior: ``log p(z)`` per trial ``(draws, trials)``.
    log_guide: ``log q(z | x)`` per trial ``(draws, trials)``.
    rates: posterior-mean rates in spikes per bin ``(trials, time, neurons)``.
    """

    z: np.ndarray
    v: np.ndarray
    predictive_spikes: np.ndarray
    log_likelihood: np.ndarray
    log_prior: np.ndarray
    log_guide: np.ndarray
    rates: np.ndarray

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


@torch.no_grad()
def sample_posterior(model, guide, inputs: torch.Tensor, spikes: torch.Tensor,
                     mask: torch.Tensor, n_bins: int, samples: int,
                     batch_size: int = 256, progress: str | None = None) -> PosteriorSamples:
    """Draw ``samples`` posterior samples per trial from ``guide`` and score them with ``model``.

    ``model`` and ``guide`` have LangevinFlow's signature (they are called with ``inputs,
    spikes, mask, n_bins``); the guide returns ``(z, v)`` ``(trials, n_bins, latent)``, the
    model the log-rates ``(trials, n_bins, neurons)`` and observes the site ``"spikes"``; every
    sample site lies in the ``trials`` plate. Both run with ``kl_weight = 1`` (the exact ELBO
    terms); put the networks in eval mode first if dropout should be off.

    Args:
        inputs: what the encoder sees ``(trials, observed, held_in)``.
        spikes: counts ``(trials, n_bins, neurons)``.
        mask: bool ``(trials, n_bins, neurons)``, the entries the likelihood scores.
        n_bins: bins of the latent trajectory (observed plus forward).
        samples: draws per trial.
        batch_size: trials per forward pass.
        progress: the label of a progress bar of the trial-draws done (on stderr), or ``None``
            for none.
    """
    n_trials = inputs.shape[0]
    draws = {"z": [], "v": [], "predictive_spikes": [], "log_likelihood": [], "log_prior": [],
             "log_guide": []}
    rates = []
    bar = tqdm(total=n_trials * samples, desc=progress, unit="draw", disable=progress is None,
               dynamic_ncols=True)
    for start in range(0, n_trials, batch_size):
        chunk = slice(start, start + batch_size)
        args = (inputs[chunk], spikes[chunk], mask[chunk], n_bins)
        size = inputs[chunk].shape[0]
        chunk_draws = {key: [] for key in draws}
        rate_sum = 0.0
        for _ in range(samples):
            guide_trace, model_trace = guide_and_model_traces(model, guide, *args)
            guide_trace.compute_log_prob()
            model_trace.compute_log_prob()
            z, v = guide_trace.nodes["_RETURN"]["value"]
            log_rates = model_trace.nodes["_RETURN"]["value"]
            observation = model_trace.nodes[OBSERVATION_SITE]["fn"]
            chunk_draws["z"].append(z.cpu())
            chunk_draws["v"].append(v.cpu())
            chunk_draws["predictive_spikes"].append(observation.sample().to(torch.int32).cpu())
            chunk_draws["log_likelihood"].append(_per_trial(model_trace, size, observed=True))
            chunk_draws["log_prior"].append(_per_trial(model_trace, size, observed=False))
            chunk_draws["log_guide"].append(_per_trial(guide_trace, size, observed=False))
            rate_sum = rate_sum + log_rates.exp().cpu()
            bar.update(size)
        for key, values in chunk_draws.items():
            draws[key].append(torch.stack(values))
        rates.append(rate_sum / samples)
    bar.close()
    arrays = {key: torch.cat(values, 1).numpy() for key, values in draws.items()}
    return PosteriorSamples(rates=torch.cat(rates).numpy(), **arrays)
