"""Diagnose a fitted flow on chosen trials and write what a user looks at into the run folder:
``posterior.nc`` (ArviZ), ``diagnostics.json`` and the PNG figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pyrolf.config import ConfigError
from pyrolf.data.spikes import SpikeData
from pyrolf.diagnostics import plots
from pyrolf.diagnostics.arviz_adapter import (inference_data, with_attrs, with_coords,
                                              with_variable_attrs, write_netcdf)
from pyrolf.diagnostics.coords import (forward_coord, neuron_coords, time_coord, trial_coords,
                                       trial_ids)
from pyrolf.diagnostics.export import UNITS, window_starts
from pyrolf.diagnostics.importance import MIN_SAMPLES, importance_summary
from pyrolf.diagnostics.posterior import PosteriorSamples, count_type, sample_posterior
from pyrolf.diagnostics.ppc import mean_rate, ppc_summary, predictive_interval
from pyrolf.evaluation.collapse import (ACTIVE_KL_PER_BIN, UnsplitSite, active_dimensions,
                                        kl_per_dimension)
from pyrolf.evaluation.metrics import rates_r2
from pyrolf.evaluation.report import as_encoded, trial_inputs
from pyrolf.inference.svi import evaluating, split_unrecorded
from pyrolf.memory import check_fits
from pyrolf.messages import few_ids, note
from pyrolf.runs import RunFolder, holding_interrupts

POSTERIOR, DIAGNOSTICS = "posterior.nc", "diagnostics.json"
#: what ``posterior.nc``'s observed counts say of their NaN, where they hold some
UNRECORDED_DESCRIPTION = ("spike counts; NaN where the unit was not recorded (its obs_intervals "
                          "miss the bin, or NaN in the spike file): unknown, not scored")
#: what ``posterior.nc``'s ``rates`` are
RATES_DESCRIPTION = ("firing rate in spikes per bin that the draw's latents decode to: the mean "
                     "of the Poisson counts drawn in posterior_predictive")
PHASE_PORTRAITS, COUPLING_KERNEL = "phase_portraits.png", "coupling_kernel.png"
PPC_MEAN_RATE, RATES_VS_TRUTH = "ppc_mean_rate.png", "rates_vs_truth.png"
KL_PER_DIMENSION = "kl_per_dimension.png"


def draws_bytes(n_trials: int, samples: int, n_bins: int, latent_dim: int, n_neurons: int,
                float_bytes: int = 4, count_bytes: int = 2, rates: bool = False,
                unrecorded: bool = False) -> int:
    """Bytes of the draws :func:`diagnose` holds: ``z`` and ``v`` (``float_bytes`` each value: 4
    for float32), the predicted counts (``count_bytes`` each, see
    :func:`~pyrolf.diagnostics.posterior.count_type`), with ``rates`` the rates of every draw
    (floats, and the float32 copy written of wider ones), and where some counts were not
    recorded (``unrecorded``) a float32 copy of the predicted counts, NaN where those were not
    (:func:`recorded_only`)."""
    per_neuron = (count_bytes + (4 if unrecorded else 0)
                  + ((float_bytes + (4 if float_bytes != 4 else 0)) if rates else 0))
    return n_trials * samples * n_bins * (2 * latent_dim * float_bytes + per_neuron * n_neurons)


def check_memory(flow, data: SpikeData, n_trials: int, samples: int,
                 rates: bool = False) -> None:
    """Raise :class:`ConfigError` where the draws of ``n_trials`` trials (:func:`draws_bytes`,
    ``flow.prior.latent_dim`` latents of the flow's float size, counts in the type that holds
    the data's largest (draws may exceed it: the type widens then), ``rates`` where kept) would
    not fit in the memory available
    (:func:`~pyrolf.memory.check_fits`); nothing is checked where either is unknown."""
    latent_dim = getattr(getattr(flow, "prior", None), "latent_dim", None)
    if latent_dim is None:
        return
    float_bytes = next(flow.parameters()).element_size()
    count_bytes = count_type(np.nanmax(data.spikes, initial=0)).itemsize
    check_fits(draws_bytes(n_trials, samples, data.n_bins, latent_dim, data.n_neurons,
                           float_bytes, count_bytes, rates, bool(np.isnan(data.spikes).any())),
               f"the draws of {n_trials} trials x {samples} samples",
               "diagnose fewer trials (--trials N) or draws (--samples N)")


def check_samples(samples: int, least: int = MIN_SAMPLES) -> int:
    """``samples``, posterior draws per trial, as a Python int (NumPy's are no JSON); a
    :class:`ConfigError` for no whole number or fewer than ``least`` (default
    :data:`MIN_SAMPLES`, what Pareto k-hat needs)."""
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)):
        raise ConfigError(f"samples (--samples) must be a whole number, got {samples!r}")
    if samples < least:
        raise ConfigError(f"samples (--samples) must be at least {least}"
                          + (" for Pareto k-hat" if least == MIN_SAMPLES else "")
                          + f", got {samples}")
    return int(samples)


def default_split(data: SpikeData) -> str:
    """The split diagnosed by default: ``test``, or ``valid`` on NLB data, whose test trials are
    NLB's evaluation trials with unknown held-out spikes (zeros in ``data.spikes``)."""
    return "valid" if "nlb" in data.extra else "test"


def select_trials(data: SpikeData, trials=None) -> np.ndarray:
    """Positions in ``data`` of the trials to diagnose: the :func:`default_split`
    (``trials=None``), its first ``trials`` trials (an int), or the trials named (a sequence of
    trial ids, as ``inferred.nc``'s ``trial`` coordinate names them: :func:`trial_ids`). Of the
    split, trials without a count recorded (NaN throughout) are left out, with a note.

    Raises:
        ConfigError: a count outside ``1..len(split)``; ids of no trial, repeated, or (NLB)
            naming evaluation trials.
    """
    split = default_split(data)
    pool = data.splits[split]
    blank = np.isnan(data.spikes[pool][:, :data.n_observed]).all(axis=(1, 2))
    if blank.any() and not isinstance(trials, (list, tuple, np.ndarray)):
        what = data.trial_word
        note(f"{int(blank.sum())} of the {len(pool)} {split} {what} hold no count recorded "
             f"({few_ids(trial_ids(data)[pool[blank]], word=what)}"
             + ("; a pause in the recording" if "unit_ids" in data.extra else "")
             + "), nothing to check the draws against: left out (name them with --trials to "
             "draw them)")
        pool = pool[~blank]
        if not len(pool):
            raise ConfigError(f"no {split} trial holds a count recorded; name trials to "
                              "diagnose with --trials ID,ID")
    if trials is None:
        return pool
    if isinstance(trials, (int, np.integer)):
        if not 1 <= trials <= len(pool):
            raise ConfigError(f"--trials {trials}: give a count from 1 to {len(pool)} "
                              f"(the {split} trials) or comma-separated trial ids (one trial: "
                              f"--trials {trials},)")
        return pool[:trials]
    wanted = np.asarray(list(trials), dtype=int)
    if wanted.size == 0:
        raise ConfigError("--trials names no trial")
    if np.unique(wanted).size != wanted.size:
        raise ConfigError("--trials names a trial twice")
    ids = trial_ids(data)
    position = {int(trial): index for index, trial in enumerate(ids)}
    missing = [int(trial) for trial in wanted if int(trial) not in position]
    if missing:
        in_file = data.extra.get("recording", {}).get("trials_in_file", 0)
        left_out = (f" (row {missing[0]} of the trials table was left out: see `recording` in "
                    "metrics.json for the trials dropped and why)"
                    if 0 <= missing[0] < in_file else "")
        raise ConfigError(f"--trials: no trial {missing[0]} in the data{left_out}; trials are "
                          f"named as inferred.nc's `trial` coordinate names them: "
                          f"{_id_ranges(ids)}")
    indices = np.array([position[int(trial)] for trial in wanted])
    if "nlb" in data.extra:
        unknown = indices[np.isin(indices, data.splits["test"])]
        if unknown.size:
            raise ConfigError(f"--trials: trial {ids[unknown[0]]} is an NLB evaluation trial "
                              "whose held-out spikes are unknown; choose among the training "
                              f"trials: {_id_ranges(ids[:data.extra['nlb'].n_train])}")
    return indices


def _id_ranges(ids: np.ndarray, shown: int = 4) -> str:
    """Trial ids as runs of consecutive ones, ``0..11, 13..40, 42 (and 3 more runs)``."""
    ids = np.sort(np.asarray(ids, dtype=int))
    breaks = np.flatnonzero(np.diff(ids) != 1) + 1
    runs = [f"{run[0]}..{run[-1]}" if len(run) > 1 else f"{run[0]}"
            for run in np.split(ids, breaks)]
    more = f" (and {len(runs) - shown} more runs)" if len(runs) > shown else ""
    return ", ".join(runs[:shown]) + more


def posterior_data(draws: PosteriorSamples, data: SpikeData, trials: np.ndarray,
                   attrs: dict | None = None):
    """ArviZ data of the draws of ``trials`` (their positions in ``data``; one chain):
    ``posterior`` ``z``, ``v`` (chain, draw, trial, time, latent) and, where the draws kept them,
    ``rates`` (chain, draw, trial, time, neuron; spikes per bin, float32: what each draw decodes
    to, whose means over trials give a credible band of a PSTH, say); ``posterior_predictive`` and
    ``observed_data`` ``spikes`` ((chain, draw,) trial, time, neuron; observed counts NaN where
    not recorded, with :data:`UNRECORDED_DESCRIPTION` as their ``description``, the draws
    everywhere); ``log_likelihood`` ``spikes`` (chain, draw, trial), per trial: the Poisson
    log-likelihood summed over the scored entries (all neurons, observed bins, those recorded);
    ``sample_stats`` ``log_weight`` (chain, draw, trial): the importance log-weight
    ``log p(x, z) - log q(z | x)`` of each draw, whence the k-hat, ELBO and IWELBO of
    ``diagnostics.json``. Labelled as ``inferred.nc`` labels them:
    ``trial`` with :func:`~pyrolf.diagnostics.coords.trial_coords` (split, condition, the trials
    table's columns), ``time`` by :func:`~pyrolf.diagnostics.coords.time_coord` (with
    ``forward``), ``neuron`` by unit id (with ``heldout``). Each group's attributes: ``attrs``
    (what the run's outputs say they are of, :func:`~pyrolf.diagnostics.export.run_attrs`) and,
    of a continuous recording's windows, ``window_start_s`` (each trial's window's start in the
    file)."""
    groups = {
        "posterior": {"z": draws.z[None], "v": draws.v[None],
                      **({} if draws.rate_draws is None else
                         {"rates": draws.rate_draws[None].astype(np.float32, copy=False)})},
        "posterior_predictive": {"spikes": draws.predictive_spikes[None]},
        "log_likelihood": {"spikes": draws.log_likelihood[None]},
        "sample_stats": {"log_weight": draws.log_weights[None]},
        "observed_data": {"spikes": observed_counts(data.spikes[trials])},
    }
    dims = {"z": ["trial", "time", "latent"], "v": ["trial", "time", "latent"],
            "rates": ["trial", "time", "neuron"], "spikes": ["trial", "time", "neuron"],
            "log_weight": ["trial"]}
    coords = {**{name: (dim, np.asarray(values)[trials], *attrs)
                 for name, (dim, values, *attrs) in trial_coords(data).items()},
              "time": time_coord(data), "forward": forward_coord(data),
              **neuron_coords(data)}
    attrs = {**(attrs or {}), **({"window_start_s": window_starts(data)[trials]}
                                 if "chop" in data.extra else {})}
    labelled = with_attrs(with_coords(inference_data(groups, dims), coords), attrs)
    if draws.rate_draws is not None:
        labelled = with_variable_attrs(labelled, "posterior", "rates",
                                       {"units": UNITS["rates"], "description": RATES_DESCRIPTION})
    if np.isnan(groups["observed_data"]["spikes"]).any():
        return with_variable_attrs(labelled, "observed_data", "spikes",
                                   {"description": UNRECORDED_DESCRIPTION})
    return labelled


def observed_counts(spikes: np.ndarray) -> np.ndarray:
    """Counts ``(trials, time, neurons)`` as ``posterior.nc`` holds them: int32, or float32
    with NaN where some were not recorded."""
    return spikes.astype(np.float32 if np.isnan(spikes).any() else np.int32)


def recorded_only(predictive: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Draws ``predictive`` ``(draws, trials, time, neurons)`` where ``counts`` ``(trials, time,
    neurons)`` were recorded, NaN (float32) where not, so that a check compares like with like;
    as they are where every count was recorded."""
    unrecorded = np.isnan(counts)
    if not unrecorded.any():
        return predictive
    return np.where(unrecorded, np.float32(np.nan), predictive.astype(np.float32))


def coupling_kernel_of(flow) -> np.ndarray | None:
    """The coupling kernel ``(channels, channels, taps)`` of the flow's potential, if it has one
    (3 taps: ``oscillators``; 2: ``springs``)."""
    potential = getattr(getattr(getattr(flow, "prior", None), "dynamics", None), "potential", None)
    kernel = getattr(potential, "kernel", None)
    return None if kernel is None else kernel.detach().cpu().numpy()


def diagnose(flow, data: SpikeData, trials: np.ndarray, samples: int, run,
             device: str = "cpu", progress: bool = False, attrs: dict | None = None,
             rates: bool = False) -> dict:
    """Draw ``samples`` posterior samples for ``trials`` of ``data`` and write ``posterior.nc``,
    ``diagnostics.json`` and the figures into ``run`` (a folder, or its
    :class:`~pyrolf.runs.RunFolder`); returns what ``diagnostics.json`` holds.
    ``progress``: a bar of the draws done; ``attrs``: ``posterior.nc``'s groups' attributes
    (see :func:`posterior_data`); ``rates``: ``posterior.nc`` keeps each draw's rates too.

    The encoder sees each trial's held-in spikes of the observed bins (as in prediction, no
    coordinated dropout; those not recorded filled as ``pyrolf infer`` fills them, see
    :func:`~pyrolf.evaluation.report.as_encoded`); the likelihood scores all neurons over the
    observed bins (the counts recorded: NaN ones are not); model and guide run with KL weight 1
    and the networks in eval mode, so the log-weights are the exact ELBO terms. Posterior
    predictive checks use the observed bins (the counts recorded, and the draws of the same
    entries); ``posterior.nc`` holds all bins.

    Raises:
        ConfigError: ``samples`` below the minimum k-hat needs, or draws that would not fit in
            memory (:func:`check_memory`).
    """
    samples = check_samples(samples)
    check_memory(flow, data, len(trials), samples, rates)
    if not isinstance(run, RunFolder):  # a folder given in Python: made where it is not
        Path(run).mkdir(parents=True, exist_ok=True)
        run = RunFolder(run)
    # held-in counts not recorded are filled for the encoder as infer fills them
    inputs = trial_inputs(as_encoded(flow, data, device, trials, progress), trials, device)
    spikes = torch.as_tensor(data.spikes[trials], dtype=torch.float32, device=device)
    spikes, recorded = split_unrecorded(spikes)  # counts not recorded are not scored
    mask = torch.ones_like(spikes, dtype=torch.bool) if recorded is None else recorded
    mask[:, data.n_observed:] = False
    with evaluating(flow):
        draws = sample_posterior(flow.model, flow.guide, inputs, spikes, mask, data.n_bins,
                                 samples, progress="diagnose" if progress else None,
                                 rates=rates)
        try:
            kl = kl_per_dimension(flow.model, flow.guide, inputs, data.n_bins,
                                  samples=min(samples, 20))
        except UnsplitSite as error:
            kl = None
            kl_note = f"no KL per dimension: {error}"

    observed = slice(0, data.n_observed)
    counts = data.spikes[trials][:, observed]
    predictive = recorded_only(draws.predictive_spikes[:, :, observed], counts)
    conditions = None if data.conditions is None else data.conditions[trials]
    names = trial_ids(data)[trials]
    summary = {"trials": names.tolist(), "samples": samples,
               **importance_summary(draws.log_weights),
               **ppc_summary(counts, predictive, conditions), "notes": []}
    if np.isnan(counts).all():
        summary["notes"].append("the trials drawn hold no count recorded: the predictive checks "
                                "have nothing to compare (their coverages are null)")
    if kl is None:
        summary["notes"].append(kl_note)
    else:
        summary.update(kl_per_bin=float(kl.sum()), kl_per_dimension=kl.tolist(),
                       active_dimensions=active_dimensions(kl))
    kernel = coupling_kernel_of(flow)
    if kernel is None:
        summary["notes"].append(f"no {COUPLING_KERNEL}: the potential has no coupling kernel")
    if data.rates is None:
        summary["notes"].append(f"no {RATES_VS_TRUTH}: the data have no true rates")
    else:
        predicted, true = draws.rates[:, observed], data.rates[trials][:, observed]
        summary["rates_r2"] = rates_r2(predicted, true)
    # written together (Ctrl-C waits for them all), the draws first: where they cannot be
    # written, no summary or figure of them is left beside older ones; a kill leaves the draws
    # beside the summary of them
    with holding_interrupts():
        run.write_atomically(POSTERIOR, lambda path: write_netcdf(
            posterior_data(draws, data, trials, attrs), path))
        run.write_json(DIAGNOSTICS, summary)  # NaN and infinities as null
        if kl is not None:
            plots.kl_per_dimension(kl, ACTIVE_KL_PER_BIN, run.path / KL_PER_DIMENSION)
        plots.phase_portraits(draws.z.mean(0), draws.v.mean(0), names,
                              run.path / PHASE_PORTRAITS)
        if kernel is not None:
            plots.coupling_kernel(kernel, run.path / COUPLING_KERNEL)
        lower, upper = predictive_interval(mean_rate(predictive))
        plots.ppc_mean_rate(mean_rate(counts), lower, upper, data.heldout, samples,
                            run.path / PPC_MEAN_RATE)
        if data.rates is not None:
            plots.rates_vs_truth(predicted, true, names, summary["rates_r2"],
                                 run.path / RATES_VS_TRUTH)
    return summary

