"""New trials that lack some of a run's held-in counts (a unit lost on another day, or not
recorded throughout it: NaN): the encoder reads every held-in unit, so a missing count is filled
with what the run expects of it, not read as silence.

The fill starts from the unit's mean count per bin over the run's own training trials (its
PSTH, bin by bin) and is then, :data:`PASSES` times, the posterior-mean rate the run infers for
that count from the trials as filled so far: the counts the model expects given those that are
there, as an EM-style imputation. Training read them otherwise: as zeros, as coordinated dropout
hides a count (and so does the validation that picks the best epoch); a fill is no input the
encoder was trained on, but zeros would say the unit was silent, and on a Lorenz fit with a third
of the held-in units unrecorded in the test trials the fill scored a little above the zeros.
Filled counts are predictions only: the output flags them (``in_data`` false for a unit missing,
``recorded`` false per count).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from pyrolf.data.spikes import DataError, SpikeData
from pyrolf.evaluation.metrics import recorded_mean
from pyrolf.evaluation.report import model_rates
from pyrolf.messages import few_ids, note

#: passes of inference that refine the fill after the PSTH start
PASSES = 2
#: draws per trial in each pass (the fill is a posterior mean; the output's draws come after)
PASS_SAMPLES = 20
#: the least share of a run's held-in units the data must hold for the rest to be filled
LEAST_HELD_IN = 0.5


def training_means(run: SpikeData) -> np.ndarray:
    """Each neuron's mean count per bin over the training trials of ``run`` (a run's data),
    ``(observed bins, neurons)`` float64, NaN for a bin no training trial recorded: where the
    fill of a count starts (:func:`fill_missing_counts`)."""
    return recorded_mean(run.spikes[run.splits["train"], :run.n_observed], axis=0)


def fill_missing_counts(flow, trials: SpikeData, run: SpikeData, device: str = "cpu",
                        passes: int = PASSES, samples: int = PASS_SAMPLES,
                        only: np.ndarray | None = None, progress: bool = False) -> SpikeData:
    """``trials`` (laid out on the run's neurons, NaN where a count is not in the data: a unit
    missing, ``extra["in_data"]`` false, see :func:`~pyrolf.diagnostics.new_trials.new_trials`, or
    not recorded in some bins) with each held-in count of the observed bins that is NaN filled
    (module docstring), from ``run`` (the run's own data, for the start) and ``flow`` (on
    ``device``); ``passes`` and ``samples`` per pass; ``only``: the indices of the trials to
    fill (default: all; the others keep their NaN); ``progress``: a bar (``fill``) of each
    pass's trial-draws. ``extra["unrecorded"]`` ``(trials, time, neurons)`` keeps which counts
    were NaN (what the output's ``recorded`` says). Held-out counts, which the encoder never
    reads, stay NaN. Trials without a held-in count to fill come
    back as they are, and only the trials with one are passed through the model."""
    unknown = np.isnan(trials.spikes)
    observed = trials.n_observed
    filled = unknown.copy()
    filled[:, observed:] = False
    filled[..., trials.heldout] = False
    if only is not None:
        filled[np.setdiff1d(np.arange(trials.n_trials), only)] = False
    rows = np.flatnonzero(filled.any(axis=(1, 2)))
    if not len(rows):
        return trials
    note_mostly_filled(trials, filled, rows)
    spikes = trials.spikes.astype(np.float32)  # (a copy)
    # each unit's mean count per bin over the run's train trials, (time, neurons); a bin no train
    # trial recorded: the unit's mean over the others
    start = training_means(run)
    start = np.where(np.isnan(start), recorded_mean(start, axis=0), start)
    start = np.nan_to_num(start)[:min(observed, len(start))]
    start = np.concatenate([start, np.broadcast_to(start.mean(axis=0), (observed - len(start),
                                                                        start.shape[1]))])
    spikes[filled] = np.broadcast_to(start, (trials.n_trials, *start.shape))[filled[:, :observed]]
    for _ in range(passes):
        data = dataclasses.replace(trials, spikes=spikes)
        rates = model_rates(flow, data, rows, samples, device, "fill" if progress else None)
        spikes[rows] = np.where(filled[rows], rates, spikes[rows])
    return dataclasses.replace(trials, spikes=spikes,
                               extra={**trials.extra, "unrecorded": unknown})


def note_mostly_filled(trials: SpikeData, filled: np.ndarray, rows: np.ndarray) -> None:
    """A note naming the trials of ``rows`` in which fewer than :data:`LEAST_HELD_IN` of the
    held-in counts of the observed bins were recorded (``filled`` ``(trials, time, neurons)``
    marks the others): what the encoder reads of them is mostly the fill, so their rates are
    mostly the run's predictions. (Data lacking that many held-in units throughout are refused:
    :func:`check_enough_held_in`.)"""
    held_in = filled[rows][:, :trials.n_observed][..., trials.heldin]
    mostly = rows[held_in.mean(axis=(1, 2)) > 1 - LEAST_HELD_IN]
    if len(mostly):
        from pyrolf.diagnostics.coords import trial_ids

        what = trials.trial_word
        note(f"in {len(mostly)} of the {trials.n_trials} {what} fewer than "
             f"{LEAST_HELD_IN:.0%} of the held-in counts were recorded "
             f"({few_ids(trial_ids(trials)[mostly].tolist(), word=what)}): what the encoder "
             "reads there is mostly filled, so their rates are mostly the run's predictions "
             "(recorded says which counts were data)")


def enough_held_in(ids: np.ndarray, run: SpikeData) -> bool:
    """Whether units of ids ``ids`` hold enough of the held-in units of ``run`` (a run's data,
    with ``unit_ids``) for the rest to be filled (:func:`check_enough_held_in`)."""
    held_in = run.extra["unit_ids"][~run.heldout]
    return _enough(int(np.isin(held_in, ids).sum()), len(held_in))


def _enough(present: int, held_in: int) -> bool:
    return present >= LEAST_HELD_IN * held_in


def check_enough_held_in(present: int, held_in: int, missing_ids, word: str = "ids",
                         strangers=()) -> None:
    """Refuse data that hold fewer than :data:`LEAST_HELD_IN` of the run's ``held_in`` units
    (``present`` of them; ``missing_ids`` named, ``word`` what the names are): filled ones would
    be most of what the encoder reads. ``strangers``: the ids of the data's units the run does
    not have, named too (a new spike sorting's ids).

    Raises:
        DataError: one line naming the count and the missing ids.
    """
    if not _enough(present, held_in):
        others = (f"; the data's units the run has not are {few_ids(strangers)}: the run "
                  "matches units by id, and a new spike sorting's ids name other units"
                  if len(strangers) else "")
        raise DataError(f"the data hold {present} of the run's {held_in} held-in units (they lack "
                        f"{few_ids(missing_ids, word=word)}); a missing one is filled from the "
                        f"others only where at least {LEAST_HELD_IN:.0%} are there: give the "
                        f"units the run was fitted on{others}")
