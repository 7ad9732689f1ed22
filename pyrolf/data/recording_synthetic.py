"""Own recordings with known rates: NWB sessions in no NLB layout, and spike-times ``.npz`` files,
driven by a planted latent system, for tests and benchmarks of :mod:`pyrolf.data.recordings`.

The latent state follows :mod:`pyrolf.data.nlb_synthetic`'s model at 1 ms (damped oscillators,
:data:`CHANNELS`, smoothed and scaled to a largest norm of 1, with ongoing noise; log-rates
``latents @ weights + bias``, each neuron's weights of a norm in ``LOG_RATE_NORM``, its mean rate
10-30 Hz; Poisson spike times), kicked by events:

- **Trials** (:func:`simulate_recording` with ``n_trials``): trials ``start_time`` to
  ``stop_time`` with their own column names: ``stim_on_time`` 200-400 ms after the start, when
  the channels are kicked in the direction of the trial's ``target`` (``"left"``, ``"right"``,
  ``"up"``, ``"down"``, in turn, shuffled), ``stop_time`` 1 s after it; ``outcome`` is
  ``"correct"`` in 4 of 5 trials, else ``"error"``; ``response_time`` 300-500 ms after the
  onset, NaN in error trials. Trials are 100-300 ms apart; the recording starts 500 ms before
  the first and ends ``TAIL_MS`` after the last.
- **Continuous** (``duration_s``): no trials table; kicks of random direction and size every
  300-900 ms.

Both carry a behavioural series :data:`BEHAVIOR` ``(time, 2)`` sampled every ms, a seeded linear
map of the latent state (a hand velocity the population encodes): in NWB a TimeSeries in the
``behavior`` processing module, in a spike-times file the arrays ``hand_vel`` and
``hand_vel_times``.

Units have ids ``100, 107, 114, ...`` (not their positions), so tests see that ids are kept.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from hdmf.common import VectorData, VectorIndex
from pynwb import NWBHDF5IO, NWBFile, TimeSeries
from pynwb.epoch import TimeIntervals
from pynwb.misc import Units

from pyrolf.data.nlb_synthetic import (LOG_RATE_NORM, MEAN_RATE_HZ, SESSION_START, _latent_state,
                                       _poisson_spike_times, _to_seconds, _trial_starts)

#: (frequency Hz, decay time s) of the latent channels
CHANNELS = ((1.5, 0.3), (3.0, 0.2), (0.0, 0.4))
TARGETS = {"left": 180.0, "right": 0.0, "up": 90.0, "down": 270.0}
TAIL_MS = 300
ERROR_SHARE = 0.2
UNIT_IDS = (100, 7)  # first id, step
BEHAVIOR = "hand_vel"
TRIAL_DESCRIPTIONS = {"start_time": "start of the trial (s)", "stop_time": "end of the trial (s)",
                      "stim_on_time": "stimulus onset (s)",
                      "response_time": "response (s), NaN without one",
                      "target": "the stimulus' target", "outcome": "correct or error"}


@dataclass
class PlantedRecording:
    """A simulated recording at 1 ms resolution; time 0 is the file's time 0.

    Attributes:
        trials: the trials table (times in s), or ``None`` for a continuous recording.
        rates: true rates ``(time, units)`` in spikes per ms.
        spike_times: per unit, sorted spike times (s).
        unit_ids: ``(units,)`` the units' ids.
        behavior: the behavioural series ``(time, 2)``, one sample per ms at ``t`` ms.
        obs_intervals: per unit, the intervals ``(intervals, 2)`` s it was recorded in (NWB's
            Units ``obs_intervals``), or ``None``: the file says nothing of them.
    """

    trials: pd.DataFrame | None
    rates: np.ndarray
    spike_times: list[np.ndarray]
    unit_ids: np.ndarray
    behavior: np.ndarray
    obs_intervals: list[np.ndarray] | None = None

    def lose_units(self, lost: np.ndarray, at_s: float) -> "PlantedRecording":
        """This recording with the units at positions ``lost`` recorded only until ``at_s`` s
        (their spikes after it gone; ``obs_intervals`` say so), every other unit throughout."""
        end = len(self.rates) / 1000.0
        stops = np.where(np.isin(np.arange(len(self.unit_ids)), lost), at_s, end)
        return dataclasses.replace(
            self, spike_times=[times[times < stop] for times, stop in zip(self.spike_times,
                                                                            stops)],
            obs_intervals=[np.array([[0.0, stop]]) for stop in stops])

    def binned_rates(self, starts: np.ndarray, n_bins: int, bin_ms: int) -> np.ndarray:
        """True rates ``(windows, n_bins, units)`` in spikes per bin of the windows that start at
        ``starts`` ``(windows,)`` seconds (whole milliseconds)."""
        first = np.round(np.asarray(starts) * 1000).astype(np.int64)
        if not np.allclose(first, np.asarray(starts) * 1000, atol=1e-6):
            raise ValueError("window starts must be whole milliseconds")
        total = np.concatenate([np.zeros((1, self.rates.shape[1])), np.cumsum(self.rates, 0)])
        edges = first[:, None] + bin_ms * np.arange(n_bins + 1)
        return np.diff(total[edges], axis=1)


def simulate_recording(n_trials: int | None = 120, n_units: int = 30, seed: int = 0,
                       duration_s: float | None = None) -> PlantedRecording:
    """Simulate a trials session of ``n_trials`` or, with ``duration_s`` (and ``n_trials=None``),
    a continuous recording that long (module docstring); everything is determined by ``seed``."""
    if (n_trials is None) == (duration_s is None):
        raise ValueError("give n_trials (a trials session) or duration_s (a continuous one)")
    rng = np.random.default_rng(seed)
    mixing = np.exp(2j * np.pi * rng.random(len(CHANNELS)))
    if n_trials is not None:
        trials, kicks, angles = _trials(rng, n_trials)
        n_time = int(trials.stop_time.iloc[-1]) + TAIL_MS
        sizes = np.ones(len(kicks))
    else:
        n_time = int(duration_s * 1000)
        kicks = np.cumsum(rng.integers(300, 900, n_time // 300 + 1, endpoint=True))
        kicks = kicks[kicks < n_time]
        angles, sizes = rng.uniform(0, 2 * np.pi, len(kicks)), rng.uniform(0.5, 1.5, len(kicks))
        trials = None
    inputs = np.zeros((n_time, len(CHANNELS)), dtype=complex)
    np.add.at(inputs, kicks, (sizes * np.exp(1j * angles))[:, None] * mixing)
    latents = _latent_state(rng, inputs, CHANNELS)
    latents /= np.linalg.norm(latents, axis=1).max()
    weights = rng.standard_normal((latents.shape[1], n_units))
    weights *= rng.uniform(*LOG_RATE_NORM, n_units) / np.linalg.norm(weights, axis=0)
    drive = latents @ weights
    bias = np.log(rng.uniform(*MEAN_RATE_HZ, n_units) / 1000.0) - np.log(np.exp(drive).mean(0))
    rates = np.exp(drive + bias)
    spike_times = [_poisson_spike_times(rng, rates[:, unit]) for unit in range(n_units)]
    unit_ids = UNIT_IDS[0] + UNIT_IDS[1] * np.arange(n_units)
    behavior = latents @ rng.standard_normal((latents.shape[1], 2))
    return PlantedRecording(trials=None if trials is None else _to_seconds(trials), rates=rates,
                            spike_times=spike_times, unit_ids=unit_ids, behavior=behavior)


def _trials(rng: np.random.Generator, n_trials: int):
    """The trials table (ms), the onsets (ms) and the targets' directions (rad)."""
    targets = rng.permutation(np.resize(list(TARGETS), n_trials))
    to_onset = rng.integers(200, 400, n_trials, endpoint=True)
    start = _trial_starts(rng, to_onset + 1000)
    onset = start + to_onset
    correct = rng.random(n_trials) >= ERROR_SHARE
    response = np.where(correct, onset + rng.integers(300, 500, n_trials, endpoint=True), np.nan)
    trials = pd.DataFrame({"start_time": start, "stop_time": onset + 1000, "stim_on_time": onset,
                           "response_time": response, "target": targets,
                           "outcome": np.where(correct, "correct", "error")})
    return trials, onset, np.deg2rad([TARGETS[target] for target in targets])


def write_recording_nwb(path, recording: PlantedRecording) -> Path:
    """Write ``recording`` as an NWB file: a Units table (``spike_times``, the unit ids and, where
    the recording has them, ``obs_intervals``), the behavioural TimeSeries :data:`BEHAVIOR` (1
    kHz from time 0) in a ``behavior`` processing module and, for a trials session, its trials
    table; nothing NLB's layout adds. Returns the path."""
    columns = _ragged("spike_times", "spike times (s)", recording.spike_times)
    if recording.obs_intervals is not None:
        columns += _ragged("obs_intervals", "the intervals (s) the unit was recorded in",
                           recording.obs_intervals)
    units = Units(name="units", description="sorted units", id=recording.unit_ids,
                  columns=columns)
    trials = None
    if recording.trials is not None:
        columns = [VectorData(name=name, description=TRIAL_DESCRIPTIONS[name],
                              data=values.tolist() if values.dtype == object else values.to_numpy())
                   for name, values in recording.trials.items()]
        trials = TimeIntervals(name="trials", description="trials",
                               id=np.arange(len(recording.trials)), columns=columns)
    nwbfile = NWBFile(session_description="planted latent system (pyrolf.data.recording_synthetic)",
                      identifier=f"pyrolf-recording-{Path(path).stem}",
                      session_start_time=SESSION_START, units=units, trials=trials)
    module = nwbfile.create_processing_module("behavior", "behavioural series")
    module.add(TimeSeries(name=BEHAVIOR, data=recording.behavior, unit="a.u.", rate=1000.0,
                          starting_time=0.0, description="planted: a linear map of the latents"))
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
    return Path(path)


def write_spike_times_npz(path, recording: PlantedRecording) -> Path:
    """Write ``recording`` as a spike-times ``.npz`` (``spike_times``, ``unit_ids`` per spike,
    the behaviour :data:`BEHAVIOR` and its ``_times``, ``trial_start``, ``trial_stop`` and the
    other trial columns). Returns the path."""
    arrays = {"spike_times": np.concatenate(recording.spike_times),
              "unit_ids": np.repeat(recording.unit_ids, [len(t) for t in recording.spike_times]),
              BEHAVIOR: recording.behavior,
              f"{BEHAVIOR}_times": np.arange(len(recording.behavior)) / 1000.0}
    if recording.trials is not None:
        table = recording.trials.rename(columns={"start_time": "trial_start",
                                                 "stop_time": "trial_stop"})
        arrays.update({name: values.to_numpy(dtype=str if values.dtype == object else None)
                       for name, values in table.items()})
    np.savez(path, **arrays)
    return Path(path)


def _ragged(name: str, description: str, rows: list[np.ndarray]) -> list:
    """A ragged column: its flat ``VectorData`` and its ``VectorIndex`` of row ends."""
    data = VectorData(name=name, description=description, data=np.concatenate(rows))
    return [data, VectorIndex(name=f"{name}_index", target=data,
                              data=np.cumsum([len(row) for row in rows]))]
