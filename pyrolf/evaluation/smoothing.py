"""NLB's spike-smoothing baseline: Gaussian-smoothed held-in spikes plus a Poisson GLM for held-out.

Held-in rates are each trial's held-in spike counts smoothed in time with a Gaussian kernel.
Held-out rates come from one Poisson GLM per held-out neuron, fitted on the train trials, whose
inputs are ``log(smoothed held-in counts + 1e-4)`` of the same bin (as in nlb_tools'
``examples/baselines/smoothing``).  The kernel width is the one with the best co-bps on the
valid trials. Each fit costs about ``bins × held-out × held-in²`` (Newton steps), so on long
recordings with many units the choice among the widths, a fit each, costs minutes: where the
train trials hold more than :data:`MANY_BINS` bins, the widths are compared on a seeded share
of them that holds :data:`SELECTION_BINS`, and the chosen width is fitted on all of them (below
that, the fits are exactly as before).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d
from sklearn.linear_model import PoissonRegressor
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from pyrolf.data.spikes import SpikeData
from pyrolf.evaluation.metrics import co_bps

DEFAULT_WIDTHS = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
#: train-trial bins past which the widths are compared on a share of the train trials ...
MANY_BINS = 100_000
#: ... that holds this many bins
SELECTION_BINS = 25_000
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
                    alpha: float, workers: int | None = None) -> np.ndarray:
    """Fit one Poisson GLM per target neuron on the ``train`` trials; predict every trial.

    Args:
        inputs: regressors ``(trials, time, features)``.
        targets: counts ``(trials, time, neurons)``.
        train: indices of the trials to fit on.
        alpha: L2 penalty of :class:`~sklearn.linear_model.PoissonRegressor`.
        workers: fits at once, one thread each; default torch's thread count (what the fit
            computes with: ``--threads``, or the cores other processes leave free).

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
    workers = workers or torch.get_num_threads()
    with threadpool_limits(limits=1), ThreadPoolExecutor(workers) as pool:
        predictions = np.stack(list(pool.map(fit_one, range(targets.shape[-1]))), axis=-1)
    return np.maximum(predictions, RATE_FLOOR).reshape(n_trials, n_bins, -1)


def smoothing_baseline(data: SpikeData, widths: tuple[float, ...] = DEFAULT_WIDTHS,
                       alpha: float = 0.01, progress: bool = False) -> dict:
    """Run the smoothing baseline on the observed bins of every trial.

    Args:
        data: spikes with held-out neurons and train/valid splits (the valid split picks the width).
        widths: candidate kernel standard deviations in bins.
        alpha: L2 penalty of the held-out GLMs.
        progress: a bar of the fits (on stderr).

    Returns:
        ``rates``: predicted rates ``(trials, n_observed, neurons)`` in spikes per bin, all trials;
        ``width``: the chosen kernel sd in bins;
        ``valid_co_bps``: ``{width: co-bps of the held-out neurons on the valid trials}`` (of the
        fits on a share of the train trials where they hold more than :data:`MANY_BINS` bins).
    """
    if len(data.splits["valid"]) == 0:
        raise ValueError("the smoothing baseline picks its width on valid trials; there are none.")
    spikes = data.spikes[:, :data.n_observed]
    heldin_spikes, heldout_spikes = spikes[..., data.heldin], spikes[..., data.heldout]
    valid, train = data.splits["valid"], data.splits["train"]
    share = max(1, SELECTION_BINS // data.n_observed)
    compared_on = (train if len(train) * data.n_observed <= MANY_BINS else
                   np.sort(np.random.default_rng(0).choice(train, share, replace=False)))

    def fit(width: float, trials: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        heldin_rates = smooth_spikes(heldin_spikes, width)
        return heldin_rates, fit_poisson_glm(np.log(heldin_rates + LOG_OFFSET), heldout_spikes,
                                             trials, alpha)

    best, scores = None, {}
    refit = compared_on is not train
    with tqdm(total=len(widths) + refit, desc="smoothing baseline", unit="fit",
              disable=not progress, dynamic_ncols=True) as bar:
        for width in widths:
            heldin_rates, heldout_rates = fit(width, compared_on)
            scores[width] = co_bps(heldout_rates[valid], heldout_spikes[valid])
            if best is None or scores[width] > scores[best[0]]:
                best = (width, heldin_rates, heldout_rates)
            bar.update()
        width, heldin_rates, heldout_rates = best
        if refit:  # the chosen width, on all the train trials
            heldin_rates, heldout_rates = fit(width, train)
            bar.update()
    rates = np.empty(spikes.shape, dtype=np.float64)
    rates[..., data.heldin] = np.maximum(heldin_rates, RATE_FLOOR)
    rates[..., data.heldout] = heldout_rates
    return {"rates": rates, "width": width, "valid_co_bps": scores}
