"""The one container every data source produces: binned spike counts of many trials."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class DataError(ValueError):
    """Input data a user supplied is unusable; the message says what is wrong and what to do."""


class MissingBehavior(DataError):
    """A recording lacks the behavioural series asked for (``--behavior``)."""


class NoTrialsTable(DataError):
    """A recording without trials is asked to be cut into trials (``--align``, ``--window``)."""


class HeldOut:
    """The held-in neurons of data whose ``heldout`` ``(neurons,)`` bool flags the neurons never
    shown to the encoder."""

    heldout: np.ndarray

    @property
    def heldin(self) -> np.ndarray:
        return ~self.heldout

    @property
    def n_heldin(self) -> int:
        return int(self.heldin.sum())


@dataclass
class SpikeData(HeldOut):
    """Binned spike counts of a population over trials.

    Attributes:
        spikes: counts, ``(trials, time, neurons)`` (``time`` = observed + forward bins): whole,
            non-negative numbers of any numeric type (a fit makes them float32), NaN where a
            neuron was not recorded (neither scored nor shown to the encoder there).
        heldout: ``(neurons,)`` bool, neurons never shown to the encoder (scored by co-bps).
        splits: trial indices per split, keys ``train``, ``valid``, ``test``.
        rates: ground-truth rates in spikes per bin, same shape as ``spikes``, or ``None``.
        conditions: ``(trials,)`` int condition label per trial, or ``None``.
        n_forward: trailing bins of ``time`` that the encoder never sees (NLB forward prediction).
        name: where the data came from.
        bin_size: seconds per bin where the source says it (NLB data, own recordings, a spike
            file's ``bin_size_s``, data built in Python that give it), else ``None``: times are
            then in bins and PSTHs, smoothed in seconds, are not scored (the Lorenz data's bins
            are nominal).
        extra: what the source adds. Data built in Python may give ``behavior``
            ``(trials, time, dims)`` (or ``(trials, time)``), a series recorded beside the
            spikes, NaN where unknown: decoded from the rates (``behavior_r2``) and kept in
            ``inferred.nc``, with ``behavior_lag_bins`` (default 0: how many bins after the
            rates' bin it is decoded) and ``behavior_name`` (default ``"behavior"``). Loaders
            add more (``unit_ids``, ``trial_table``, ``nlb``, ``chop``, ...).
    """

    spikes: np.ndarray
    heldout: np.ndarray
    splits: dict[str, np.ndarray]
    rates: np.ndarray | None = None
    conditions: np.ndarray | None = None
    n_forward: int = 0
    name: str = "spikes"
    bin_size: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def n_trials(self) -> int:
        return self.spikes.shape[0]

    @property
    def n_bins(self) -> int:
        """All bins, observed and forward."""
        return self.spikes.shape[1]

    @property
    def n_observed(self) -> int:
        return self.spikes.shape[1] - self.n_forward

    @property
    def n_neurons(self) -> int:
        return self.spikes.shape[2]

    def scored_bins(self, trials: np.ndarray) -> np.ndarray | None:
        """Which observed bins of ``trials`` a held-out score counts ``(trials, observed bins)``
        bool, of NLB's training trials (``extra["nlb"]``; NLB's DMFC_RSG scores the bins from
        set to go only, see :func:`pyrolf.data.nlb.scored_bins`); ``None`` where it counts every
        observed bin."""
        nlb = self.extra.get("nlb")
        scored = None if nlb is None else nlb.scored()
        return None if scored is None else scored[trials]

    @property
    def trial_word(self) -> str:
        """What messages call the trials: ``"windows"`` of a chopped continuous recording,
        else ``"trials"``."""
        return "windows" if "chop" in self.extra else "trials"

    @property
    def neuron_ids(self) -> np.ndarray:
        """``(neurons,)``: the unit ids where the source names its units (NLB, own recordings),
        else the neurons' indices."""
        nlb = self.extra.get("nlb")
        if nlb is not None:
            return nlb.unit_ids
        return np.asarray(self.extra.get("unit_ids", np.arange(self.n_neurons)))
