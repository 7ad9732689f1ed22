"""NLB's spike-smoothing baseline: Gaussian-smoothed held-in spikes plus a Poisson GLM for held-out.

Held-in rates are each trial's held-in spike counts smoothed in time with a Gaussian kernel.
Held-out rates come from one Poisson GLM per held-out neuron, fitted on the train trials, whose
inputs are ``log(smoothed held-in counts + 1e-4)`` of the same bin (as in nlb_tools'
``examples/baselines/smoothing``).  The kernel width is the one with the best co-bps on the
valid trials.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.ndimage import gaussian_filter1d
from sklearn.linear_model import PoissonRegressor
from threadpoolctl import threadpool_limits

from pyrolf.data.spikes import SpikeData
from pyrolf.evaluation.metrics import co_bps

DEFAULT_WIDTHS = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
LOG_OFFSET = 1e-4  # added to smoothed counts before the log
RATE_FLOOR = 1e-9


def smooth_spikes(spikes: np.ndarray, width: float) -> np.ndarray:
    """Gaussian smoothing in time of every trial and neuron, edges reflected.

    Args:
        spikes: counts ``(trials, time, neurons)``.
        width: kernel standard deviation in bins.

    Returns:
        smoothed counts (spikes per bin), float64, same shape.
    """
    return gaussian_filter1d(np.asarray(spikes, dtype=np.float64), width, axis=1, mode="reflect")


def fit_poisson_glm(inputs: np.ndarray, targets: np.ndarray, train: np.ndarray,
                    alpha: float) -> np.ndarray:
    """Fit one Poisson GLM per target neuron on the ``train`` trials; predict every trial.

    Args:
        inputs: regressors ``(trials, time, features)``.
        targets: counts ``(trials, time, neurons)``.
        train: indices of the trials to fit on.
        alpha: L2 penalty of :class:`~sklearn.linear_model.PoissonRegressor`.

    Returns:
        predicted rates ``(trials, time, neurons)``, at least ``RATE_FLOOR``; ``RATE_FLOOR`` for a
        neuron without a spike in the train trials, whose maximum-likelihood rate is 0 (a GLM's
        log link cannot reach it).
    """
    n_trials, n_bins, n_features = inputs.shape
    x_all = inputs.reshape(-1, n_features)
    x_train = inputs[train].reshape(-1, n_features)
    y_train = targets[train].reshape(-1, targets.shape[-1])

    def fit_one(neuron: int) -> np.ndarray:
        if not y_train[:, neuron].any():
            return np.zeros(len(x_all))
        glm = PoissonRegressor(alpha=alpha, solver="newton-cholesky", max_iter=1000)
        return glm.fit(x_train, y_train[:, neuron]).predict(x_all)

    # One fit per thread (numpy's linear algebra releases the GIL), each single-threaded: these
    # fits are too small for a multi-threaded BLAS, whose thread start-up would dominate.
    with threadpool_limits(limits=1), ThreadPoolExecutor(os.cpu_count()) as pool:
        predictions = np.stack(list(pool.map(fit_one, range(targets.shape[-1]))), axis=-1)
    return np.maximum(predictions, RATE_FLOOR).reshape(n_trials, n_bins, -1)


def smoothing_baseline(data: SpikeData, widths: tuple[float, ...] = DEFAULT_WIDTHS,
                       alpha: float = 0.01) -> dict:
    """Run the smoothing baseline on the observed bins of every trial.

    Args:
        data: spikes with held-out neurons and train/valid splits (the valid split picks the width).
        widths: candidate kernel standard deviations in bins.
        alpha: L2 penalty of the held-out GLMs.

    Returns:
        ``rates``: predicted rates ``(trials, n_observed, neurons)`` in spikes per bin, all trials;
        ``width``: the chosen kernel sd in bins;
        ``valid_co_bps``: ``{width: co-bps of the held-out neurons on the valid trials}``.
    """
    if len(data.splits["valid"]) == 0:
        raise ValueError("the smoothing baseline picks its width on valid trials; there are none.")
    spikes = data.spikes[:, :data.n_observed]
    heldin_spikes, heldout_spikes = spikes[..., data.heldin], spikes[..., data.heldout]
    valid = data.splits["valid"]
    best, scores = None, {}
    for width in widths:
        heldin_rates = smooth_spikes(heldin_spikes, width)
        heldout_rates = fit_poisson_glm(np.log(heldin_rates + LOG_OFFSET), heldout_spikes,
                                        data.splits["train"], alpha)
        scores[width] = co_bps(heldout_rates[valid], heldout_spikes[valid])
        if best is None or scores[width] > scores[best[0]]:
            best = (width, heldin_rates, heldout_rates)
    width, heldin_rates, heldout_rates = best
    rates = np.empty(spikes.shape, dtype=np.float64)
    rates[..., data.heldin] = np.maximum(heldin_rates, RATE_FLOOR)
    rates[..., data.heldout] = heldout_rates
    return {"rates": rates, "width": width, "valid_co_bps": scores}
