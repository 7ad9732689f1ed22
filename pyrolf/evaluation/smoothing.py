"""NLB's spike-smoothing baseline: Gaussian-smoothed held-in spikes plus a Poisson GLM for held-out.

Held-in rates are each trial's held-in spike counts smoothed in time with a Gaussian kernel.
Held-out rates come from one Poisson GLM per held-out neuron, fitted on the train trials, whose
inputs are ``log(smoothed held-in counts + 1e-4)`` of the same bin (as in nlb_tools'
``examples/baselines/smoothing``).  The kernel width is the one with the best co-bps on the
valid trials. Each fit costs about ``bins × held-out × held-in²`` (Newton steps), so on long
recordings with many units the choice among the widths, a fit each, costs minutes: where the
train trials hold more than :data:`MANY_BINS` bins, the widths are compared on a seeded share
of them that holds :data:`SELECTION_BINS`, and the chosen width is fitted on all of them (below
that, the fits are exactly as before). A fit can be kept in a file (a run folder's
``smoothing.npz``) by the data it was fitted on, so that scoring the same data again (``pyrolf
evaluate``, ``--resume``) predicts from the kept GLMs in seconds.

Counts not recorded (NaN: a unit's ``obs_intervals`` miss the bin) are left out: smoothing
averages the recorded bins near each bin, a bin with none near reads the neuron's mean count,
and each GLM is fitted on the bins its neuron was recorded in.
"""

from __future__ import annotations

import hashlib
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d
from sklearn.linear_model import PoissonRegressor
from threadpoolctl import threadpool_limits

from pyrolf.data.spikes import SpikeData
from pyrolf.evaluation.metrics import co_bps, recorded_mean
from pyrolf.messages import note, progress_bar
from pyrolf.runs import RunFolder, Unwritten

DEFAULT_WIDTHS = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
#: train-trial bins past which the widths are compared on a share of the train trials ...
MANY_BINS = 100_000
#: ... that holds this many bins
SELECTION_BINS = 25_000
LOG_OFFSET = 1e-4  # added to smoothed counts before the log
#: the least kernel weight of recorded bins a smoothed bin needs (else it is NaN: unknown)
REACHED = 1e-6
RATE_FLOOR = 1e-9
#: the GLMs' tolerance (sklearn's ``tol``): Newton steps until the gradient is this small, so
#: that a fit does not depend on where it starts (sklearn's default 1e-4 left co-bps 1e-4 apart)
GLM_TOL = 1e-8
#: part of a kept fit's key: raise it when the fits change, so that older kept fits are not used
KEPT_VERSION = 2
#: fits made in this process, by :func:`fitted_key`, the latest :data:`REMEMBERED` of them: a
#: notebook's fits of the same data (other settings, seeds, models) score against them at once
_FITTED: dict[str, dict] = {}
REMEMBERED = 16


def smooth_spikes(spikes: np.ndarray, width: float) -> np.ndarray:
    """Gaussian smoothing in time of every trial and neuron, edges reflected. Counts not
    recorded (NaN) are left out: each smoothed bin is the kernel-weighted mean of the recorded
    bins near it (the smoothed counts over the smoothed share recorded), NaN where the kernel
    reaches none.

    Args:
        spikes: counts ``(trials, time, neurons)``.
        width: kernel standard deviation in bins.

    Returns:
        smoothed counts (spikes per bin), float64, same shape.
    """
    spikes = np.asarray(spikes, dtype=np.float64)
    unrecorded = np.isnan(spikes)
    partly = unrecorded.any(axis=(0, 1))  # the neurons with a count not recorded
    smoothed = gaussian_filter1d(spikes if not partly.any() else np.where(unrecorded, 0.0, spikes),
                                 width, axis=1, mode="reflect")
    if partly.any():
        share = gaussian_filter1d((~unrecorded[..., partly]).astype(np.float64), width, axis=1,
                                  mode="reflect")
        smoothed[..., partly] = np.divide(smoothed[..., partly], share,
                                          out=np.full_like(share, np.nan),
                                          where=share > REACHED)
    return smoothed


def filled_smooth(spikes: np.ndarray, width: float, means: np.ndarray) -> np.ndarray:
    """:func:`smooth_spikes` with its NaN (bins the kernel finds nothing recorded near) filled by
    each neuron's mean count per bin ``means`` ``(neurons,)``: the baseline's regressors and
    held-in rates, which must be numbers everywhere."""
    smoothed = smooth_spikes(spikes, width)
    unknown = np.isnan(smoothed)
    if unknown.any():  # (in place: no copy of every smoothed count)
        smoothed[unknown] = np.broadcast_to(means, smoothed.shape)[unknown]
    return smoothed


def fit_poisson_glm(inputs: np.ndarray, targets: np.ndarray, train: np.ndarray,
                    alpha: float, workers: int | None = None,
                    start: np.ndarray | None = None) -> np.ndarray:
    """Fit one Poisson GLM per target neuron on the ``train`` trials.

    Args:
        inputs: regressors ``(trials, time, features)``.
        targets: counts ``(trials, time, neurons)``; a neuron's bins not recorded (NaN) are
            left out of its fit.
        train: indices of the trials to fit on.
        alpha: L2 penalty of :class:`~sklearn.linear_model.PoissonRegressor`.
        workers: fits at once, one thread each; default torch's thread count (what the fit
            computes with: ``--threads``, or the cores other processes leave free).
        start: weights ``(features + 1, neurons)`` the Newton steps start from (sklearn's
            ``warm_start``), e.g. the fit of inputs smoothed a little differently: the same
            optimum (the loss is convex) in fewer steps. Default: sklearn's start.

    Returns:
        weights ``(features + 1, neurons)``: each neuron's coefficients, then its intercept, which
        is ``-inf`` for a neuron without a spike in the train trials (its maximum-likelihood rate
        is 0, which a GLM's log link cannot reach); see :func:`glm_rates`.
    """
    n_features = inputs.shape[-1]
    x_train = inputs[train].reshape(-1, n_features)
    y_train = targets[train].reshape(-1, targets.shape[-1])
    recorded = ~np.isnan(y_train)
    partly = ~recorded.all(axis=0)

    def fit_one(neuron: int) -> np.ndarray:
        x, y = x_train, y_train[:, neuron]
        if partly[neuron]:  # bins the neuron was not recorded in (NaN) are left out
            x, y = x[recorded[:, neuron]], y[recorded[:, neuron]]
        if not y.any():
            return np.append(np.zeros(n_features), -np.inf)
        glm = PoissonRegressor(alpha=alpha, solver="newton-cholesky", tol=GLM_TOL,
                               max_iter=1000, warm_start=start is not None)
        if start is not None and np.isfinite(start[-1, neuron]):  # what warm_start starts from
            glm.coef_, glm.intercept_ = start[:-1, neuron], start[-1, neuron]
        # The Newton solver's line search may try a step whose rates overflow (few train bins:
        # a split of one trial) and backs off from it; numpy's warning of it is no result's.
        with np.errstate(over="ignore", invalid="ignore"):
            glm.fit(x, y)
        return np.append(glm.coef_, glm.intercept_)

    # One fit per thread (numpy's linear algebra releases the GIL), each single-threaded: these
    # fits are too small for a multi-threaded BLAS, whose thread start-up would dominate.
    workers = workers or torch.get_num_threads()
    with threadpool_limits(limits=1), ThreadPoolExecutor(workers) as pool:
        return np.stack(list(pool.map(fit_one, range(targets.shape[-1]))), axis=-1)


def glm_rates(inputs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Rates of the GLMs ``weights`` (see :func:`fit_poisson_glm`) for ``inputs``
    ``(trials, time, features)``: ``(trials, time, neurons)``, at least ``RATE_FLOOR``."""
    return np.maximum(np.exp(inputs @ weights[:-1] + weights[-1]), RATE_FLOOR)


def smoothing_baseline(data: SpikeData, widths: tuple[float, ...] = DEFAULT_WIDTHS,
                       alpha: float = 0.01, progress: bool = False,
                       kept: Path | None = None) -> dict:
    """Run the smoothing baseline on the observed bins of every trial.

    Args:
        data: spikes with held-out neurons and train/valid splits (the valid split picks the width).
        widths: candidate kernel standard deviations in bins.
        alpha: L2 penalty of the held-out GLMs.
        progress: a bar of the fits (on stderr).
        kept: a file of kept fits (``.npz``, see :func:`fitted_key`): the fit of these data,
            widths and ``alpha`` is read from it where it holds one, else taken from the fits
            this process made (:data:`REMEMBERED`) or made, and added to it.

    Returns:
        ``rates``: predicted rates ``(trials, n_observed, neurons)`` in spikes per bin, all trials;
        ``width``: the chosen kernel sd in bins;
        ``valid_co_bps``: ``{width: co-bps of the held-out neurons on the valid trials}`` (of the
        fits on a share of the train trials where they hold more than :data:`MANY_BINS` bins).
    """
    if len(data.splits["valid"]) == 0:
        raise ValueError("the smoothing baseline picks its width on valid trials; there are none.")
    key = fitted_key(data, widths, alpha)
    in_file = read_fitted(kept, key) if kept is not None else None
    if in_file is not None and in_file["weights"].shape != (data.n_heldin + 1, data.heldout.sum()):
        in_file = None  # not of these data's neurons: a file edited or brought from elsewhere
    fitted = in_file or _FITTED.get(key) or fit_smoothing(data, widths, alpha, progress)
    if kept is not None and in_file is None:
        keep_fitted(kept, key, fitted)
    _FITTED.pop(key, None)  # (now the latest)
    _FITTED[key] = fitted
    while len(_FITTED) > REMEMBERED:
        del _FITTED[next(iter(_FITTED))]
    heldin_rates, heldout_rates = smoothing_rates(data, fitted["width"], fitted["weights"])
    rates = np.empty((data.n_trials, data.n_observed, data.n_neurons), dtype=np.float64)
    rates[..., data.heldin], rates[..., data.heldout] = heldin_rates, heldout_rates
    return {"rates": rates, "width": fitted["width"], "valid_co_bps": fitted["valid_co_bps"]}


def smoothing_rates(data: SpikeData, width: float, weights: np.ndarray,
                    trials: np.ndarray | slice = slice(None)) -> tuple[np.ndarray, np.ndarray]:
    """Held-in and held-out rates ``(trials, n_observed, held-in / held-out)`` of the smoothing
    baseline of kernel sd ``width`` (bins) and held-out GLMs ``weights`` (see
    :func:`fit_poisson_glm`) on the observed bins of ``trials`` (default all)."""
    heldin = filled_smooth(data.spikes[trials, :data.n_observed][..., data.heldin], width,
                           heldin_means(data))
    return np.maximum(heldin, RATE_FLOOR), glm_rates(np.log(heldin + LOG_OFFSET), weights)


def heldin_means(data: SpikeData) -> np.ndarray:
    """Each held-in neuron's mean count per bin ``(held-in,)`` over the observed bins of the
    train trials it was recorded in: what the baseline reads where it knows nothing nearer
    (:func:`filled_smooth`); 0 for a neuron recorded in none."""
    spikes = data.spikes[data.splits["train"], :data.n_observed][..., data.heldin]
    return np.nan_to_num(recorded_mean(spikes, axis=(0, 1)))


def fit_smoothing(data: SpikeData, widths: tuple[float, ...], alpha: float,
                  progress: bool = False) -> dict:
    """The width of best valid co-bps among ``widths`` and its held-out GLMs (see
    :func:`smoothing_baseline`): ``{"width", "valid_co_bps": {width: co-bps}, "weights":
    (held-in + 1, held-out)}``."""
    spikes = data.spikes[:, :data.n_observed]
    heldout_spikes = spikes[..., data.heldout]
    valid, train = data.splits["valid"], data.splits["train"]
    share = max(1, SELECTION_BINS // data.n_observed)
    compared_on = (train if len(train) * data.n_observed <= MANY_BINS else
                   np.sort(np.random.default_rng(0).choice(train, share, replace=False)))
    refit = compared_on is not train
    # only the trials the choice reads are smoothed for it (each trial is smoothed alone)
    read = np.union1d(compared_on, valid)
    fitted_on, scored_on = np.searchsorted(read, compared_on), np.searchsorted(read, valid)
    means = heldin_means(data)
    scored = data.scored_bins(valid)  # the bins the benchmark scores (DMFC_RSG: set to go)
    target = (heldout_spikes[valid] if scored is None
              else np.where(scored[..., None], heldout_spikes[valid], np.nan))

    def inputs(width: float, trials: np.ndarray) -> np.ndarray:
        heldin = spikes[trials][..., data.heldin]
        return np.log(filled_smooth(heldin, width, means) + LOG_OFFSET)

    scores, weights, last = {}, {}, None
    with progress_bar(total=len(widths) + refit, desc="smoothing baseline", unit="fit",
                      disable=not progress) as bar:
        for width in widths:  # each fit starts from the last width's: half the Newton steps
            smoothed = inputs(width, read)
            weights[width] = last = fit_poisson_glm(smoothed, heldout_spikes[read], fitted_on,
                                                    alpha, start=last)
            scores[width] = co_bps(glm_rates(smoothed[scored_on], weights[width]), target)
            bar.update()
        width = max(widths, key=scores.get)  # the first of the best
        if refit:  # the chosen width, on all the train trials
            weights[width] = fit_poisson_glm(inputs(width, train), heldout_spikes[train],
                                             np.arange(len(train)), alpha, start=weights[width])
            bar.update()
    return {"width": width, "valid_co_bps": scores, "weights": weights[width]}


def fitted_key(data: SpikeData, widths: tuple[float, ...], alpha: float) -> str:
    """SHA-256 of what a smoothing fit depends on: the observed counts, held-out neurons, train
    and valid trials of ``data`` and the bins scored of these, ``widths``, ``alpha``, the
    share's sizes and :data:`KEPT_VERSION`."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(data.spikes[:, :data.n_observed], np.float32).data)
    for array in (data.heldout, data.splits["train"], data.splits["valid"], widths):
        digest.update(np.ascontiguousarray(array, np.float64).data)
    scored = data.scored_bins(data.splits["valid"])
    if scored is not None:
        digest.update(np.ascontiguousarray(scored, np.float64).data)
    digest.update(repr((alpha, MANY_BINS, SELECTION_BINS, LOG_OFFSET, KEPT_VERSION)).encode())
    return digest.hexdigest()


def read_fitted(path: Path, key: str) -> dict | None:
    """The fit kept in ``path`` under ``key`` (see :func:`keep_fitted`); ``None`` where ``path``
    holds none, is missing or cannot be read (it is then made again)."""
    kept = _kept(path)
    try:
        widths, scores = kept[f"{key}.widths"], kept[f"{key}.valid_co_bps"]
        return {"width": float(kept[f"{key}.width"]), "weights": kept[f"{key}.weights"],
                "valid_co_bps": dict(zip(widths.tolist(), scores.tolist(), strict=True))}
    except (KeyError, TypeError, ValueError):  # none kept, or not as keep_fitted keeps it
        return None


def _kept(path: Path) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` file ``path``; none where it is missing or cannot be read."""
    try:
        with np.load(path) as kept:
            return dict(kept)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return {}


def keep_fitted(path: Path, key: str, fitted: dict) -> None:
    """Add ``fitted`` (see :func:`fit_smoothing`) under ``key`` to the ``.npz`` file ``path``
    (kept fits of other keys stay, one that cannot be read is dropped), written atomically; where
    it cannot be written, a note says so and the fits are not kept."""
    arrays = _kept(path)
    arrays.update({f"{key}.width": np.float64(fitted["width"]), f"{key}.weights": fitted["weights"],
                   f"{key}.widths": np.array(list(fitted["valid_co_bps"]), np.float64),
                   f"{key}.valid_co_bps": np.array(list(fitted["valid_co_bps"].values()))})

    def write(partial: Path) -> None:
        with open(partial, "wb") as handle:
            np.savez(handle, **arrays)

    try:
        RunFolder(path.parent).write_atomically(path.name, write)
    except Unwritten as error:  # a cache: the scores stand without it
        note(f"the smoothing baseline's fits could not be kept in {path} ({error.reason}); they "
             "are fitted again whenever the run is scored")
