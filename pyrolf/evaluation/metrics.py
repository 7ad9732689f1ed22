"""Scores against the truth: R² of predicted rates and of inferred latents, coverage of posterior
intervals, NLB's co-bps (of the held-out neurons together and of each one), fp-bps, psth R² and
velocity decoding (of any behaviour), and the persistence forecast of the forward bins."""

from __future__ import annotations

import warnings

import numpy as np
from nlb_tools.evaluation import bits_per_spike, eval_psth, fit_and_eval_decoder


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


def latents_r2(train_states: np.ndarray, train_latents: np.ndarray, test_states: np.ndarray,
               test_latents: np.ndarray) -> float:
    """How linearly the inferred states hold the true latents: a least-squares linear map with
    intercept from states to latents, fitted on the train entries, scored by R² on the test
    entries (each latent dim over all its test (trial, bin) entries), mean over the latent dims
    (as :func:`rates_r2`, which leaves out dims whose truth is constant).

    Args:
        train_states, test_states: inferred states, e.g. the posterior-mean ``[z, v]``
            ``(trials, time, features)``.
        train_latents, test_latents: true latents ``(trials, time, k)`` of the same trials and bins.

    Raises:
        ValueError: the states and latents of a split differ in trials or bins.
    """
    def rows(states, latents):
        states, latents = np.asarray(states, np.float64), np.asarray(latents, np.float64)
        if states.shape[:-1] != latents.shape[:-1]:
            raise ValueError(f"states {states.shape} and latents {latents.shape} differ in "
                             "trials or bins.")
        states = states.reshape(-1, states.shape[-1])
        return np.column_stack([states, np.ones(len(states))]), latents.reshape(-1, latents.shape[-1])

    train_x, train_y = rows(train_states, train_latents)
    test_x, test_y = rows(test_states, test_latents)
    weights = np.linalg.lstsq(train_x, train_y, rcond=None)[0]
    return rates_r2(test_x @ weights, test_y)


def interval_coverage(true: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of the entries of ``true`` inside ``[lower, upper]`` (bounds included), all of one
    shape, e.g. ``(trials, time, neurons)``; entries whose true value is NaN are left out, NaN
    when none is left."""
    true = np.asarray(true)
    defined = ~np.isnan(true)
    if not defined.any():
        return float("nan")
    inside = (true >= lower) & (true <= upper)
    return float(inside[defined].mean())


def co_bps(rates: np.ndarray, spikes: np.ndarray) -> float:
    """NLB bits per spike of ``rates`` on ``spikes`` (nlb_tools' ``bits_per_spike``).

    ``(log-likelihood(rates) - log-likelihood(null)) / (spike count * ln 2)`` under Poisson, the
    null predicting each neuron's mean count over ``spikes``; zero rates count as 1e-9.  Called
    on the held-out neurons this is NLB's co-bps. NaN where ``spikes`` hold no spike (bits per
    spike of none).

    Args:
        rates: predicted rates in spikes per bin ``(trials, time, neurons)``, non-negative.
        spikes: observed counts, same shape (NaN entries are ignored).
    """
    rates = np.array(rates, dtype=np.float64)  # a copy: nlb_tools overwrites zero rates in place
    spikes = np.asarray(spikes, dtype=np.float64)
    if rates.shape != spikes.shape:
        raise ValueError(f"rates {rates.shape} and spikes {spikes.shape} differ in shape.")
    if not np.nansum(spikes) > 0:
        return float("nan")
    with warnings.catch_warnings():  # a neuron not recorded at all: its null rate is NaN, unused
        warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
        return float(bits_per_spike(rates, spikes))


def co_bps_per_neuron(rates: np.ndarray, spikes: np.ndarray) -> np.ndarray:
    """:func:`co_bps` of each neuron alone ``(neurons,)``, float64: nlb_tools' ``bits_per_spike``
    of its column, against its own mean count. NaN for a neuron without a spike in ``spikes``
    (bits per spike divide by the count). Over the neurons with spikes, their mean weighted by
    each neuron's spike count is :func:`co_bps` of all of them.

    Args:
        rates: predicted rates in spikes per bin ``(trials, time, neurons)``, non-negative.
        spikes: observed counts, same shape (NaN entries are ignored).
    """
    rates, spikes = np.asarray(rates), np.asarray(spikes)
    if rates.shape != spikes.shape:
        raise ValueError(f"rates {rates.shape} and spikes {spikes.shape} differ in shape.")
    return np.array([co_bps(rates[..., [n]], spikes[..., [n]]) for n in range(spikes.shape[-1])])


def psth(spikes: np.ndarray, conditions: np.ndarray) -> np.ndarray:
    """Peri-stimulus time histogram per condition, spikes per bin averaged over the trials of
    each condition, in float64: ``(..., trials, time, neurons)`` and labels ``(trials,)`` ->
    ``(..., conditions, time, neurons)``, conditions in sorted order. Counts not recorded (NaN)
    are left out of the mean; NaN where a condition recorded none."""
    return np.stack([recorded_mean(spikes[..., conditions == label, :, :], axis=-3)
                     for label in np.unique(conditions)], axis=-3)


def recorded_mean(values: np.ndarray, axis) -> np.ndarray:
    """Mean over ``axis`` in float64 of the entries that are not NaN (NaN where none is)."""
    if values.dtype.kind != "f" or not np.isnan(values).any():
        return values.mean(axis=axis, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        recorded = ~np.isnan(values)
        return (np.where(recorded, values, 0).sum(axis=axis, dtype=np.float64)
                / recorded.sum(axis=axis))


def psth_r2(rates: np.ndarray, smoothed: np.ndarray, conditions: np.ndarray,
            scored: np.ndarray) -> float:
    """NLB's psth R² (nlb_tools' ``eval_psth``): how well the ``scored`` trials' rates, averaged
    per condition, match each condition's PSTH of all trials. R² over the (condition, bin) rows
    of each neuron, averaged over the neurons (a neuron whose PSTH is constant scores 0, or 1
    where matched exactly, as scikit-learn's ``r2_score``).

    Args:
        rates: predicted rates in spikes per bin of the scored trials ``(scored, time, neurons)``.
        smoothed: smoothed counts of all trials ``(trials, time, neurons)``, whose
            :func:`psth` is the target; NaN where not recorded. A neuron whose PSTH is unknown
            somewhere (no trial of a condition recorded it in a bin) is left out; NaN where
            every neuron is.
        conditions: condition label of every trial ``(trials,)``.
        scored: indices of the scored trials ``(scored,)`` into ``smoothed``.
    """
    conditions = np.asarray(conditions)
    groups = [np.flatnonzero(conditions[scored] == label) for label in np.unique(conditions)]
    target = psth(smoothed, conditions)
    known = ~np.isnan(target).any(axis=(0, 1))  # neurons some condition never recorded: unscored
    if not known.any():
        return float("nan")
    return float(eval_psth(target[..., known], np.asarray(rates, np.float64)[..., known],
                           groups))


def _rows(values) -> np.ndarray:
    """``(..., features)`` as float64 rows ``(entries, features)``."""
    values = np.asarray(values, dtype=np.float64)
    return values.reshape(-1, values.shape[-1])


def behavior_unscorable(train_behavior: np.ndarray, test_behavior: np.ndarray) -> str | None:
    """Why :func:`behavior_r2` of behaviour ``(trials, time, dims)`` is NaN (no train or no test
    bin with behaviour, or a dim of the test behaviour constant), in words; ``None`` where it
    can be scored."""
    train_behavior, test_behavior = _rows(train_behavior), _rows(test_behavior)
    known = test_behavior[~np.isnan(test_behavior[:, 0])]
    if np.isnan(train_behavior[:, 0]).all():
        return "no train trial's bin has behaviour to fit the decoder on"
    if not len(known):
        return "no test trial's bin has behaviour to score the decoder on"
    if (np.ptp(known, axis=0) == 0).any():
        return ("a dimension of the test trials' behaviour is constant (R² has no variance to "
                "explain)")
    return None


def behavior_r2(train_rates: np.ndarray, train_behavior: np.ndarray, test_rates: np.ndarray,
                test_behavior: np.ndarray) -> float:
    """NLB's velocity decoding (nlb_tools' ``fit_and_eval_decoder``) of any behaviour: a ridge
    regression from the rates of a bin to its behaviour, the penalty chosen by 5-fold
    cross-validation over ``1e-4 ... 1``, fitted on the train entries and scored by R² on the
    test entries, averaged over the behaviour's dims. Bins whose behaviour is NaN are left out;
    NaN where :func:`behavior_unscorable` says why (no train or no test bin left, or a dim of
    the test behaviour constant: scikit-learn would call its R² 1 or 0).

    Args:
        train_rates, test_rates: rates ``(trials, time, neurons)``.
        train_behavior, test_behavior: behaviour ``(trials, time, dims)`` of the same bins, NaN
            in every dim of a bin without it.
    """
    if behavior_unscorable(train_behavior, test_behavior):
        return float("nan")
    return float(fit_and_eval_decoder(_rows(train_rates), _rows(train_behavior),
                                      _rows(test_rates), _rows(test_behavior)))


def persistence_rates(rates: np.ndarray, n_forward: int) -> np.ndarray:
    """The persistence forecast of the forward bins: each trial's rates of its last observed bin
    held constant over its ``n_forward`` trailing bins.

    Args:
        rates: rates ``(trials, time, neurons)`` whose last ``n_forward`` bins are forward bins
            (only the observed ones are read).
        n_forward: forward bins, at least 1 and fewer than ``time``.

    Returns:
        ``(trials, n_forward, neurons)``, float64.
    """
    rates = np.asarray(rates, dtype=np.float64)
    if not 0 < n_forward < rates.shape[1]:
        raise ValueError(f"need 0 < n_forward < {rates.shape[1]} bins, got {n_forward}.")
    last = rates[:, rates.shape[1] - n_forward - 1]
    return np.repeat(last[:, None], n_forward, axis=1)
