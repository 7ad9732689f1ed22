"""Importance-sampling diagnostics of a variational posterior, per trial.

With draws ``z_s ~ q(z | x)`` and log-weights ``w_s = log p(x, z_s) - log q(z_s | x)``:

- ``ELBO = mean_s w_s``, the evidence lower bound the fit maximises (with KL weight 1);
- ``IWELBO = log mean_s exp(w_s)``, the importance-weighted bound, tighter: ``ELBO <= IWELBO <=
  log p(x)`` (Jensen);
- Pareto k-hat of the weights (PSIS, Vehtari et al. 2024): below 0.7 the importance-weighted
  estimates are reliable, above it ``q`` misses posterior mass that matters. R-hat and ESS say
  little about independent variational draws; k-hat is the honest check.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from pyrolf.diagnostics.arviz_adapter import psis_khat

KHAT_THRESHOLD = 0.7
MIN_SAMPLES = 25  # PSIS fits the largest ~20 % of the weights and needs at least 5 of them


def elbo(log_weights: np.ndarray) -> np.ndarray:
    """ELBO per trial: the mean log-weight, ``(draws, trials) -> (trials,)``."""
    return np.mean(log_weights, axis=0)


def iwelbo(log_weights: np.ndarray) -> np.ndarray:
    """Importance-weighted ELBO per trial: ``log mean exp`` of the log-weights,
    ``(draws, trials) -> (trials,)``."""
    return logsumexp(log_weights, axis=0) - np.log(log_weights.shape[0])


def pareto_khat(log_weights: np.ndarray) -> np.ndarray:
    """Pareto k-hat per trial, ``(draws, trials) -> (trials,)``, from ArviZ's PSIS.

    A trial whose log-weights are all equal (``q`` is the posterior up to a constant) has
    uniform weights and no tail to fit: its k-hat is NaN, which counts as reliable. ArviZ itself
    has no value for it: legacy ArviZ (0.23) returns ``inf`` (fewer than 5 tail draws above the
    cut-off) and arviz-stats >= 1.0 raises "All tail values are the same".
    """
    log_weights = np.asarray(log_weights, dtype=np.float64)
    uniform = np.ptp(log_weights, axis=0) == 0
    khat = np.full(log_weights.shape[1], np.nan)
    if not uniform.all():
        khat[~uniform] = psis_khat(log_weights[:, ~uniform])
    return khat


def importance_summary(log_weights: np.ndarray) -> dict:
    """``pareto_khat`` (list per trial), ``share_khat_above_0_7`` (share of trials, NaN k-hat
    counting as reliable), ``elbo`` and ``iwelbo`` (means over trials of the per-trial values)
    of log-weights ``(draws, trials)``."""
    khat = pareto_khat(log_weights)
    return {
        "pareto_khat": khat.tolist(),
        "share_khat_above_0_7": float(np.mean(khat > KHAT_THRESHOLD)),
        "elbo": float(elbo(log_weights).mean()),
        "iwelbo": float(iwelbo(log_weights).mean()),
    }
