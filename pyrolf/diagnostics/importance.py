"""Importance-sampling diagnostics of a variational posterior, per trial.

With draws ``z_s ~ q(z | x)`` and log-weights ``w_s = log p(x, z_s) - log q(z_s | x)``:

- ``ELBO = mean_s w_s``, the evidence lower bound the fit maximises (with KL weight 1);
- ``IWELBO = log mean_s exp(w_s)``, the importance-weighted bound, tighter: ``ELBO <= IWELBO <=
  log p(x)`` (Jensen);
- Pareto k-hat of the weights (PSIS, Vehtari et al. 2024): below ``min(1 - 1 / log10 S, 0.7)``
  for ``S`` draws (:func:`khat_threshold`: 0.5 at 100 draws, 0.7 only from about 2150) the
  importance-weighted estimates are reliable, above it ``q`` misses posterior mass that
  matters. R-hat and ESS say little about independent variational draws; k-hat is the honest
  check.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from pyrolf.diagnostics.arviz_adapter import psis_khat

KHAT_THRESHOLD = 0.7  # the threshold of many draws, and the most any number of draws allows
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


def khat_threshold(samples: int) -> float:
    """The k-hat above which importance-weighted estimates from ``samples`` draws are not
    reliable: ``min(1 - 1 / log10(samples), 0.7)`` (Vehtari et al. 2024; ArviZ's ``good_k``):
    with fewer draws a heavy tail is seen less, so a lighter one must already warn."""
    return float(min(1 - 1 / np.log10(samples), KHAT_THRESHOLD))


def importance_summary(log_weights: np.ndarray) -> dict:
    """Of log-weights ``(draws, trials)``: ``pareto_khat`` (list per trial),
    ``khat_threshold`` (:func:`khat_threshold` of the draws), ``share_khat_above_threshold``
    and ``share_khat_above_0_7`` (shares of trials above it and above 0.7, NaN k-hat counting as
    reliable), ``elbo`` and ``iwelbo`` (means over trials of the per-trial values)."""
    khat = pareto_khat(log_weights)
    threshold = khat_threshold(log_weights.shape[0])
    return {
        "pareto_khat": khat.tolist(),
        "khat_threshold": threshold,
        "share_khat_above_threshold": float(np.mean(khat > threshold)),
        "share_khat_above_0_7": float(np.mean(khat > KHAT_THRESHOLD)),
        "elbo": float(elbo(log_weights).mean()),
        "iwelbo": float(iwelbo(log_weights).mean()),
    }
