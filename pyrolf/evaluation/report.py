"""The numbers a run reports: the model's test-trial scores beside the smoothing baseline's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pyrolf.data.sessions import Sessions
from pyrolf.data.spikes import SpikeData
from pyrolf.evaluation.metrics import (behavior_r2, behavior_unscorable, co_bps, co_bps_per_neuron,
                                       interval_coverage, latents_r2, persistence_rates, psth_r2,
                                       rates_r2)
from pyrolf.evaluation.sessions import pooled_metrics
from pyrolf.evaluation.smoothing import smooth_spikes, smoothing_baseline
from pyrolf.inference.svi import encoder_inputs, predict_rates
from pyrolf.messages import few_ids, note
from pyrolf.models.sessions import session_views


#: posterior draws per trial behind a 90 % interval: ``rates_coverage_90`` and ``pyrolf infer``
INTERVAL_SAMPLES = 100
#: σ in seconds of the Gaussian that smooths spikes into the PSTHs of ``psth_r2``: NLB's for
#: MC_Maze and DMFC_RSG (nlb_tools' ``kern_sd``, 70 ms)
PSTH_KERNEL_S = 0.07


def trial_inputs(data: SpikeData, trials, device: str = "cpu") -> torch.Tensor:
    """What the encoder sees of ``trials``: their held-in counts of the observed bins
    ``(trials, observed, held_in)``, float32 on ``device``."""
    spikes = torch.as_tensor(data.spikes[trials], dtype=torch.float32, device=device)
    return encoder_inputs(spikes, torch.as_tensor(data.heldin, device=device), data.n_forward)


def model_rates(flow, data: SpikeData, trials, samples: int, device: str = "cpu",
                progress: str | None = None):
    """Posterior-mean rates of ``trials`` ``(trials, T, neurons)`` as a numpy array;
    ``progress`` as in :func:`~pyrolf.inference.svi.posterior_passes`."""
    return predict_rates(flow, trial_inputs(data, trials, device), data.n_bins, samples,
                         progress=progress).cpu().numpy()


def as_encoded(flow, data: SpikeData, device: str = "cpu", only=None, progress: bool = False
               ) -> SpikeData:
    """``data`` with each held-in count not recorded (NaN) of the observed bins filled as
    ``pyrolf infer`` fills it (:func:`~pyrolf.diagnostics.missing.fill_missing_counts`, ``data``
    being the run's own), so that the rates scored are those ``inferred.nc`` holds; ``only``:
    the indices of the trials to fill (default: all); ``progress``: bars (``fill``) of the
    fill's passes. What is scored stays ``data``'s counts."""
    from pyrolf.diagnostics.missing import fill_missing_counts  # (it draws with model_rates)

    return fill_missing_counts(flow, data, data, device, only=only, progress=progress)


def co_bps_by_unit(rates, spikes, data: SpikeData) -> dict[str, float]:
    """Each held-out neuron's co-bps (:func:`~pyrolf.evaluation.metrics.co_bps_per_neuron`)
    keyed by its id (:attr:`~pyrolf.data.spikes.SpikeData.neuron_ids`, as text: JSON keys);
    ``rates`` and ``spikes`` ``(trials, time, held-out neurons)``."""
    ids = data.neuron_ids[data.heldout]
    return {str(unit): float(value)
            for unit, value in zip(ids.tolist(), co_bps_per_neuron(rates, spikes))}


def heldout_co_bps(rates, spikes, data: SpikeData, prefix: str = "") -> dict:
    """``co_bps`` of the held-out neurons together and ``co_bps_per_neuron``
    (:func:`co_bps_by_unit`), each key prefixed with ``prefix``; ``rates`` and ``spikes``
    ``(trials, time, held-out neurons)``."""
    return {f"{prefix}co_bps": co_bps(rates, spikes),
            f"{prefix}co_bps_per_neuron": co_bps_by_unit(rates, spikes, data)}


def score_rates(rates, data: SpikeData, trials, prefix: str = "") -> dict:
    """:func:`heldout_co_bps` and, when the truth is known, ``rates_r2`` of all neurons, over
    the observed bins of ``trials``; ``rates`` ``(trials, ≥observed, neurons)``."""
    observed = slice(0, data.n_observed)
    rates = rates[:, observed]
    spikes = data.spikes[trials][:, observed]
    metrics = heldout_co_bps(rates[..., data.heldout], spikes[..., data.heldout], data, prefix)
    if data.rates is not None:
        metrics[f"{prefix}rates_r2"] = rates_r2(rates, data.rates[trials][:, observed])
    return metrics


def _note_unscored(per_neuron: dict[str, float], data: SpikeData, test) -> None:
    """Notes naming the held-out units whose co-bps is null (``per_neuron``, by id): those not
    recorded in the ``test`` trials, and those with no spike in them."""
    counts = data.spikes[test][:, :data.n_observed][..., data.heldout]
    unrecorded = dict(zip(map(str, data.neuron_ids[data.heldout]),
                          np.isnan(counts).all(axis=(0, 1))))
    unscored = [unit for unit, value in per_neuron.items() if np.isnan(value)]
    for ids, verbs, said in (
            ([unit for unit in unscored if unrecorded[unit]], ("was", "were"),
             "not recorded in the {n} test trials ({ids}): their co_bps_per_neuron is null, and "
             "co_bps leaves them out"),
            ([unit for unit in unscored if not unrecorded[unit]], ("has", "have"),
             "no spike in the {n} test trials ({ids}): their co_bps_per_neuron is null, and in "
             "co_bps they count only as the rate predicted where none came")):
        if ids:
            note(f"{data.name}: {len(ids)} of the {int(data.heldout.sum())} held-out units "
                 f"{verbs[len(ids) > 1]} " + said.format(n=len(test), ids=few_ids(ids)))


def psth_metrics(rates, data: SpikeData, trials) -> dict:
    """``psth_r2``, NLB's psth R² (:func:`~pyrolf.evaluation.metrics.psth_r2`) of ``rates`` of
    ``trials`` ``(trials, ≥observed, neurons)``: all neurons over the observed bins, against
    each condition's PSTH of all trials' spikes (the scored ones too, as NLB's) smoothed by a
    Gaussian of :data:`PSTH_KERNEL_S`. Only where the data have conditions and say their bin
    size (own recordings, see :attr:`~pyrolf.data.spikes.SpikeData.bin_size`), else
    ``{}``; nlb_tools scores NLB data's (:func:`~pyrolf.evaluation.nlb.nlb_metrics`)."""
    if data.conditions is None or data.bin_size is None:
        return {}
    observed = slice(0, data.n_observed)
    smoothed = smooth_spikes(data.spikes[:, observed], PSTH_KERNEL_S / data.bin_size)
    return {"psth_r2": psth_r2(rates[:, observed], smoothed, data.conditions, trials)}


def behavior_metrics(rates: dict[str, tuple], data: SpikeData) -> dict:
    """``{prefix}behavior_r2`` for each ``prefix -> (train rates, test rates)`` of ``rates``
    (``(trials, ≥observed, neurons)`` of the train and the test trials): how well a ridge
    regression from the rates of all neurons in a bin decodes the behaviour
    (``extra["behavior"]``) ``extra["behavior_lag_bins"]`` bins later
    (:func:`~pyrolf.evaluation.metrics.behavior_r2`), both in the observed bins (pairs the lag
    takes past a trial's edge are left out)."""
    lag, n_observed = data.extra["behavior_lag_bins"], data.n_observed
    neural = slice(max(0, -lag), n_observed - max(0, lag))
    behavior = data.extra["behavior"][:, neural.start + lag:neural.stop + lag]
    train, test = data.splits["train"], data.splits["test"]
    unscorable = behavior_unscorable(behavior[train], behavior[test])
    if unscorable:
        note(f"{data.name}: {' and '.join(f'{prefix}behavior_r2' for prefix in rates)} "
             f"{'is' if len(rates) == 1 else 'are'} null: {unscorable}")
    return {f"{prefix}behavior_r2": behavior_r2(train_rates[:, neural], behavior[train],
                                                test_rates[:, neural], behavior[test])
            for prefix, (train_rates, test_rates) in rates.items()}


def forward_metrics(rates, data: SpikeData, trials) -> dict:
    """NLB's fp-bps over the forward bins of ``trials`` (all neurons, held in and held out;
    ``{}`` where the data have none): ``fp_bps`` of ``rates`` ``(trials, time, neurons)`` (all
    bins), ``persistence_fp_bps`` of their last observed bin held constant
    (:func:`~pyrolf.evaluation.metrics.persistence_rates`) and, where the truth is known,
    ``true_fp_bps`` of the true rates."""
    if data.n_forward == 0:
        return {}
    forward = slice(data.n_observed, None)
    spikes = data.spikes[trials][:, forward]
    metrics = {"fp_bps": co_bps(rates[:, forward], spikes),
               "persistence_fp_bps": co_bps(persistence_rates(rates, data.n_forward), spikes)}
    if data.rates is not None:
        metrics["true_fp_bps"] = co_bps(data.rates[trials][:, forward], spikes)
    return metrics


def truth_metrics(flow, data: SpikeData, device: str = "cpu", progress: str | None = None
                  ) -> dict:
    """Scores against the truth where the data carry it, from the posterior means and 90 %
    intervals of :data:`INTERVAL_SAMPLES` draws per trial (as ``pyrolf infer`` makes them, see
    :func:`pyrolf.diagnostics.summary.posterior_summary`), over the observed bins:
    ``rates_coverage_90`` (true rates: the share of test (trial, bin, neuron) entries inside the
    rate's interval) and ``latents_r2`` (true latents ``extra["latents"]``:
    :func:`~pyrolf.evaluation.metrics.latents_r2` of the posterior-mean ``[z, v]``, the map
    fitted on the train trials and scored on the test trials). ``progress`` as in
    :func:`~pyrolf.inference.svi.posterior_passes`."""
    from pyrolf.diagnostics.summary import posterior_summary  # (diagnostics: only where scored)

    if data.rates is None and "latents" not in data.extra:
        return {}
    observed = slice(0, data.n_observed)
    train, test = data.splits["train"], data.splits["test"]
    trials = np.concatenate([train, test])
    summary = posterior_summary(flow, trial_inputs(data, trials, device), data.n_bins,
                                INTERVAL_SAMPLES, progress=progress)
    summary = {key: value[:, observed] for key, value in summary.items()}
    tested = slice(len(train), None)
    metrics = {}
    if data.rates is not None:
        metrics["rates_coverage_90"] = interval_coverage(
            data.rates[test][:, observed], summary["rates_lower"][tested],
            summary["rates_upper"][tested])
    if "latents" in data.extra:
        states = np.concatenate([summary["z"], summary["v"]], -1)
        latents = data.extra["latents"][trials][:, observed]
        metrics["latents_r2"] = latents_r2(states[:len(train)], latents[:len(train)],
                                           states[tested], latents[tested])
    return metrics


def prepare_scoring(data: SpikeData | Sessions, saved: Path | None = None) -> None:
    """Make now what scoring ``data`` will need: NLB's evaluation targets (PSTHs included), made
    from the data or read from the test-phase targets file, and the bins NLB scores
    (:meth:`~pyrolf.data.nlb.NLBSplit.scored`). A fit calls it before training, so a
    bad targets file or too little memory for nlb_tools' PSTHs stops it before the hours of
    training rather than after. ``saved``: a run folder's file that keeps targets made from the
    data for a resumed run (see :func:`pyrolf.evaluation.nlb.keep_targets`)."""
    if isinstance(data, Sessions) or "nlb" not in data.extra:  # sessions are never NLB data
        return
    data.extra["nlb"].scored()  # (the bins NLB scores, cut once: a sweep's trials share them)
    if saved is None:
        data.extra["nlb"].targets()
    else:
        from pyrolf.evaluation.nlb import keep_targets  # nlb_tools, pynwb, pandas: NLB data only

        keep_targets(data.extra["nlb"], saved)


def evaluate(flow, data: SpikeData | Sessions, samples: int = 20, device: str = "cpu",
             submission_path=None, progress: bool = False, kept_smoothing=None) -> dict:
    """Test-trial metrics of ``flow`` (with :func:`forward_metrics` where the data have forward
    bins, :func:`truth_metrics` where they carry the truth, :func:`psth_metrics` where they
    have conditions and :func:`behavior_metrics` where they have behaviour) and of the
    Gaussian-smoothing baseline on the same trials; ``progress``: bars of the trial-draws
    (``fill``: :func:`as_encoded`'s, where counts were not recorded; ``score``: the rates,
    ``score intervals``: the truth metrics' draws, ``score train``: the train trials' rates the
    behaviour decoder is fitted on) and of the smoothing baseline's fits.
    ``kept_smoothing``: a file that keeps the smoothing baseline's fits by the data they were
    fitted on (a run folder's ``smoothing.npz``, see
    :func:`~pyrolf.evaluation.smoothing.smoothing_baseline`).

    NLB data are scored by nlb_tools on their evaluation trials (see
    :func:`pyrolf.evaluation.nlb.nlb_metrics`; ``submission_path`` goes there). Several sessions
    (:class:`~pyrolf.data.sessions.Sessions`) are scored session by session, each by its view of
    ``flow`` (:func:`~pyrolf.models.sessions.session_flow`), and pooled
    (:func:`pyrolf.evaluation.sessions.pooled_metrics`).
    """
    if isinstance(data, Sessions):
        return pooled_metrics({name: evaluate(view, own, samples, device, None, progress,
                                              kept_smoothing)
                               for name, (view, own) in session_views(flow, data).items()}, data)
    bar = "score" if progress else None
    if "nlb" in data.extra:
        rates = model_rates(flow, as_encoded(flow, data, device, progress=progress),
                            np.arange(data.n_trials), samples, device, bar)
        from pyrolf.evaluation.nlb import nlb_metrics  # nlb_tools, pynwb, pandas: NLB data only

        return nlb_metrics(rates, data, submission_path, progress, kept_smoothing)
    train, test = data.splits["train"], data.splits["test"]
    # the trials whose rates are drawn: the test trials, and the train ones where the truth's
    # latents or the behaviour are scored by a map fitted on them
    drawn = (np.concatenate([train, test]) if data.rates is not None
             or {"latents", "behavior"} & data.extra.keys() else test)
    encoded = as_encoded(flow, data, device, drawn, progress)
    rates = model_rates(flow, encoded, test, samples, device, bar)
    metrics = score_rates(rates, data, test)
    _note_unscored(metrics["co_bps_per_neuron"], data, test)
    metrics.update(psth_metrics(rates, data, test))
    metrics.update(forward_metrics(rates, data, test))
    metrics.update(truth_metrics(flow, encoded, device, "score intervals" if progress else None))
    baseline = smoothing_baseline(data, progress=progress, kept=kept_smoothing)
    metrics.update(score_rates(baseline["rates"][test], data, test, prefix="smoothing_"))
    metrics["smoothing_width_bins"] = baseline["width"]
    if "behavior" in data.extra:
        train_rates = model_rates(flow, encoded, train, samples, device,
                                  "score train" if progress else None)
        metrics.update(behavior_metrics({"": (train_rates, rates), "smoothing_": (
            baseline["rates"][train], baseline["rates"][test])}, data))
    if "recording" in data.extra:  # own recordings: what was read, and the trials kept and dropped
        metrics["recording"] = data.extra["recording"]
    return metrics
