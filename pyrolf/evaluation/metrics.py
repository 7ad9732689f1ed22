"""Scores of predicted firing rates: R² against ground-truth rates and NLB's co-bps."""

from __future__ import annotations

import numpy as np
from nlb_tools.evaluation import bits_per_spike


def rates_r2(predicted: np.ndarray, true: np.ndarray) -> float:
    """Mean over neurons of ``1 - SS_res / SS_tot``, each neuron over all its (trial, bin) entries.

    Args:
        predicted: predicted rates ``(trials, time, neurons)``.
        true: ground-truth rates, same shape and units.

    Neurons whose true rate is constant have no R² and are left out of the mean (NaN when
    every neuron's is).

    Raises:
        ValueError: the shapes differ.
    """
    predicted = np.asarray(predicted, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if predicted.shape != true.shape:
        raise ValueError(f"predicted rates {predicted.shape} and true rates {true.shape} differ "
                         "in shape.")
    predicted = predicted.reshape(-1, true.shape[-1])
    true = true.reshape(-1, true.shape[-1])
    ss_tot = np.sum((true - true.mean(axis=0)) ** 2, axis=0)
    varying = ss_tot > 0
    if not varying.any():
        return float("nan")
    ss_res = np.sum((true - predicted) ** 2, axis=0)
    return float(np.mean(1.0 - ss_res[varying] / ss_tot[varying]))


def co_bps(rates: np.ndarray, spikes: np.ndarray) -> float:
    """NLB bits per spike of ``rates`` on ``spikes`` (nlb_tools' ``bits_per_spike``).

    ``(log-likelihood(rates) - log-likelihood(null)) / (spike count * ln 2)`` under Poisson, the
    null predicting each neuron's mean count over ``spikes``; zero rates count as 1e-9.  Called
    on the held-out neurons this is NLB's co-bps.

    Args:
        rates: predicted rates in spikes per bin ``(trials, time, neurons)``, non-negative.
        spikes: observed counts, same shape (NaN entries are ignored).
    """
    rates = np.array(rates, dtype=np.float64)  # a copy: nlb_tools overwrites zero rates in place
    spikes = np.asarray(spikes, dtype=np.float64)
    if rates.shape != spikes.shape:
        raise ValueError(f"rates {rates.shape} and spikes {spikes.shape} differ in shape.")
    return float(bits_per_spike(rates, spikes))
