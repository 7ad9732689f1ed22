"""New trials that lack some of a run's held-in units (a unit lost on another day): the encoder
reads every held-in unit, so a missing one's counts are filled with what the run expects of it.

The fill starts from the unit's mean count per bin over the run's own training trials (its
PSTH, bin by bin) and is then, :data:`PASSES` times, the posterior-mean rate the run infers for
that unit from the trials as filled so far: the counts the model expects given the units that
are there, as an EM-style imputation (coordinated dropout trains the encoder on inputs with
entries hidden, so a filled input is within what it has seen). Filled units are predictions
only: the output flags them (``in_data`` false).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from pyrolf.data.spikes import DataError, SpikeData
from pyrolf.evaluation.metrics import recorded_mean
from pyrolf.evaluation.report import model_rates
from pyrolf.messages import few_ids

#: passes of inference that refine the fill after the PSTH start
PASSES = 2
#: draws per trial in each pass (the fill is a posterior mean; the output's draws come after)
PASS_SAMPLES = 20
#: the least share of a run's held-in units the data must hold for the rest to be filled
LEAST_HELD_IN = 0.5


def fill_missing_units(flow, trials: SpikeData, run: SpikeData, device: str = "cpu",
                       passes: int = PASSES, samples: int = PASS_SAMPLES) -> SpikeData:
    """``trials`` (laid out on the run's neurons, NaN where a unit is missing and
    ``extra["in_data"]`` false, see :func:`~pyrolf.diagnostics.export.new_trials`) with each
    missing held-in unit's counts ``(trials, time)`` filled (module docstring), from ``run``
    (the run's own data, for the start) and ``flow`` (on ``device``); ``passes`` and ``samples``
    per pass. Missing held-out units, which the encoder never reads, stay NaN (unknown), as do
    the counts a unit in the data was not recorded in (the encoder reads those as zeros, as in
    training). Trials without a missing unit come back as they are."""
    in_data = trials.extra.get("in_data")  # (new_trials says which units the data hold)
    if in_data is None or in_data.all():
        return trials
    missing = ~np.asarray(in_data, dtype=bool)
    filled = missing & ~trials.heldout
    if not filled.any():  # only held-out units missing: nothing the encoder reads
        return trials
    spikes = trials.spikes.astype(np.float32)  # (a copy)
    observed = trials.n_observed
    # (time, filled units); a bin no train trial recorded: the unit's mean over the others
    start = recorded_mean(run.spikes[run.splits["train"]][..., filled], axis=0)
    start = np.where(np.isnan(start), recorded_mean(start, axis=0), start)
    bins = min(observed, len(start))
    spikes[:, :bins, filled] = start[:bins]
    spikes[:, bins:observed, filled] = start[:bins].mean(axis=0)  # trials longer than the run's
    every = np.arange(trials.n_trials)
    for _ in range(passes):
        data = dataclasses.replace(trials, spikes=spikes)
        rates = model_rates(flow, data, every, samples, device)
        spikes[:, :observed, filled] = rates[:, :observed, filled]
    return dataclasses.replace(trials, spikes=spikes)


def enough_held_in(ids: np.ndarray, run: SpikeData) -> bool:
    """Whether units of ids ``ids`` hold enough of the held-in units of ``run`` (a run's data,
    with ``unit_ids``) for the rest to be filled (:func:`check_enough_held_in`)."""
    held_in = run.extra["unit_ids"][~run.heldout]
    return _enough(int(np.isin(held_in, ids).sum()), len(held_in))


def _enough(present: int, held_in: int) -> bool:
    return present >= LEAST_HELD_IN * held_in


def check_enough_held_in(present: int, held_in: int, missing_ids) -> None:
    """Refuse data that hold fewer than :data:`LEAST_HELD_IN` of the run's ``held_in`` units
    (``present`` of them; ``missing_ids`` named): filled ones would be most of what the encoder
    reads.

    Raises:
        DataError: one line naming the count and the missing ids.
    """
    if not _enough(present, held_in):
        raise DataError(f"the data hold {present} of the run's {held_in} held-in units (they lack "
                        f"{few_ids(missing_ids)}); a missing one is filled from the others only "
                        f"where at least {LEAST_HELD_IN:.0%} are there: give the units the run "
                        "was fitted on")
