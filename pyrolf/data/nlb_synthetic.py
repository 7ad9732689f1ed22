"""Small NLB'21-format NWB files driven by a planted latent dynamical system.

:func:`write_nlb_files` writes a train file and a test file in the folder layout ``dandi
download`` gives (``<data_dir>/<dandiset>/<subject>/...``), with every field nlb_tools 0.0.4
reads, so that its ``NWBDataset``, ``make_*_tensors`` and ``evaluation.evaluate`` run on them
unmodified; :func:`simulate_nlb` gives the same recordings with their ground truth.

The generative model, at 1 ms resolution:

- The latent state is a few complex channels, each a damped oscillator (a 2-D rotation of
  frequency ``f`` and decay time ``tau``; ``f = 0`` is a leaky integrator) driven by task events:
  impulses (a movement kick) and boxcars (a held input, e.g. movement preparation), whose complex
  amplitudes depend on the trial's condition, plus ongoing noise.  Its real and imaginary parts
  are smoothed (Gaussian, ``SMOOTH_MS``) and scaled so that the largest norm of the latent vector
  in the train recording is 1.
- Rates are ``exp(latents @ weights + bias)``: each neuron's weights point in a random direction
  with a norm in ``LOG_RATE_NORM`` (so its log-rate moves at most that far from its bias), and
  ``bias`` sets its mean rate in the train recording to 10-30 Hz; spikes are Poisson counts of
  each 1 ms bin.
- Reaching layouts (mc_maze, mc_rtt, area2_bump): channels prep, vel x, vel y and two slower
  ones (mc_maze: slower, longer-lasting ones, ``MAZE_CHANNELS``, so that a reach's activity
  lasts into NLB's forward window, as real reaches do).  A reach in direction ``theta`` kicks
  vel x / vel y by ``cos theta`` / ``sin theta`` (so their imaginary parts trace ``e^(-t/tau) sin(2 pi f t)`` in that direction) and the slow ones
  by a random mixing of both; while a reach is prepared, a boxcar holds prep at ``e^(i theta)``.
  The hand (finger) velocity is ``SPEED_GAIN`` times the imaginary parts of vel x and vel y,
  ``lag`` ms later (nlb_tools' ``PARAMS[dataset]["lag"]``), so the neural state leads behaviour
  exactly as the benchmark's decoder assumes; the kick is at ``move_onset_time - lag``.
- dmfc_rsg: channels context (held over the trial), set (kicked at set), timing (driven from
  set to go with an input ``RSG_TIMING_DRIVE / tp``, so the neural state moves along the same arc
  faster when the produced interval ``tp`` is shorter) and ready/go (a fast transient kicked at
  ready and at go); every amplitude depends on the (is_eye, theta, is_short) group.

Trials per layout (times from the trial's start, ms):

- mc_maze (and mc_maze_large/medium/small): target on at 100, go cue 300-600 later, move onset
  250-350 after that, stop 750 after move onset (1.4-1.8 s).  Condition ``c`` of ``C`` reaches
  in direction ``2 pi c / C``; ``trial_type = c // 3 + 1`` and ``trial_version = c % 3``, each
  version with its own mixing and reach extent.
- mc_rtt: back-to-back 600 ms trials over continuous reaching (a reach every 350-900 ms in a
  random direction); no conditions.
- area2_bump: active reaches (target on at 200, move onset 300-500 later) and passive bumps
  (move onset 400-700, a smaller kick with its own mixing), stop 800 after move onset;
  condition = (cond_dir, ctr_hold_bump) over 8 directions x {active, bump}.
- dmfc_rsg: fixation, ready, set ``ts`` later, go ``tp`` after set, stop 700 after go (at least
  1.7 s from start to go); ``ts`` from the short prior (480-800 ms) or the long one
  (800-1200 ms), ``tp`` pulled 30 % towards the prior's mean with 8 % scalar noise; about 5 % of
  the train-split trials are early-press outliers (``is_outlier``).  Condition group = (is_eye,
  theta, is_short).

Trials are separated by 100-300 ms (mc_rtt: none); the recording starts ``LEAD_MS`` before the
first trial and ends ``TAIL_MS`` after the last, and ``obs_intervals`` covers all of it.  The
number of conditions (groups for dmfc_rsg) is ``n_trials // 10`` between 2 and the dataset's
maximum, so each has at least 10 train-file trials and, by the stratified 80/20 train/val split,
at least 2 val trials (psth R2 and tp corr need them).  The test file's trials have the same
columns as the train file's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from hdmf.common import VectorData, VectorIndex
from nlb_tools.make_tensors import PARAMS
from pynwb import NWBHDF5IO, NWBFile, TimeSeries
from pynwb.epoch import TimeIntervals
from pynwb.file import Subject
from pynwb.misc import Units
from scipy.ndimage import gaussian_filter1d
from scipy.signal import lfilter

from pyrolf.data.files import split_trials
from pyrolf.data.dandi import DANDISETS

#: the trial structure each dataset follows
LAYOUTS = {"mc_maze": "mc_maze", "mc_rtt": "mc_rtt", "area2_bump": "area2_bump",
           "dmfc_rsg": "dmfc_rsg", "mc_maze_large": "mc_maze", "mc_maze_medium": "mc_maze",
           "mc_maze_small": "mc_maze"}
#: most conditions (dmfc_rsg: condition groups) a dataset gets
MAX_CONDITIONS = {"mc_maze": 108, "mc_rtt": 1, "area2_bump": 16, "dmfc_rsg": 8,
                  "mc_maze_large": 27, "mc_maze_medium": 27, "mc_maze_small": 27}
TRIALS_PER_CONDITION = 10
MIN_TRIALS = 2 * TRIALS_PER_CONDITION
VAL_FRACTION = 0.2

#: (frequency Hz, decay time s) of the channels prep, vel x, vel y and two slower ones
REACH_CHANNELS = ((0.0, 0.2), (1.2, 0.16), (1.2, 0.16), (2.0, 0.3), (0.5, 0.6))
#: the same for mc_maze: slower, longer reaches whose activity lasts past the evaluation window
#: (450 ms after move onset) into the forward window (200 ms more), as real ones do
MAZE_CHANNELS = ((0.0, 0.2), (1.2, 0.35), (1.2, 0.35), (1.5, 1.5), (0.7, 3.0))
#: (frequency Hz, decay time s) of the channels context, set, timing and ready/go
RSG_CHANNELS = ((0.0, 0.5), (2.0, 0.25), (0.3, 1.0), (1.5, 0.15))
LEAD_MS, TAIL_MS = 500, 500
GAP_MS = (100, 300)
SMOOTH_MS = 20.0  # sd of the Gaussian the latent state is smoothed with
NOISE_SD = 0.05  # stationary sd of each channel's ongoing noise (a reach kick is about 1)
LOG_RATE_NORM = (3.0, 4.5)  # range of the norms of the neurons' log-rate weights
MEAN_RATE_HZ = (10.0, 30.0)
SPEED_GAIN = 1000.0  # mm/s per unit of the vel x / vel y channels
DIRECTION_JITTER = np.deg2rad(5.0)
MAZE_EXTENTS = (1.0, 0.75, 1.25)  # reach extent of trial_version 0, 1, 2
BUMP_SIZE = 0.6  # a passive bump's kick relative to an active reach
RTT_PREP_MS = 150
AREA2_DIRECTIONS = (0.0, 180.0, 90.0, 270.0, 45.0, 225.0, 135.0, 315.0)  # spread first
RSG_GROUPS = tuple((is_eye, theta, is_short) for theta in (0.0, 180.0)
                   for is_eye in (False, True) for is_short in (False, True))
RSG_TS = {True: (480.0, 560.0, 640.0, 720.0, 800.0), False: (800.0, 900.0, 1000.0, 1100.0, 1200.0)}
RSG_PRIOR_PULL, RSG_TP_CV, RSG_OUTLIERS = 0.3, 0.08, 0.05
RSG_TIMING_DRIVE = 2.0  # total input into the timing channel from set to go
RSG_MIN_TO_GO_MS = 1700  # start to go: the train window (1500 ms) plus a margin

TRIAL_DESCRIPTIONS = {
    "start_time": "start of the trial (s)",
    "stop_time": "end of the trial (s)",
    "split": "benchmark split: train, val or test",
    "target_on_time": "target onset (s)",
    "go_cue_time": "go cue (s)",
    "move_onset_time": "movement onset (s)",
    "trial_type": "maze: a group of three neighbouring reach directions",
    "trial_version": "version of the maze (reach extent and path)",
    "ctr_hold_bump": "whether the trial is a passive bump during centre hold",
    "cond_dir": "reach or bump direction (degrees)",
    "ready_time": "ready cue (s)",
    "set_time": "set cue (s)",
    "go_time": "response (s)",
    "is_outlier": "whether tp is an outlier (an early response)",
    "is_eye": "whether the response is a saccade (else a joystick movement)",
    "theta": "target direction (degrees)",
    "is_short": "whether ts comes from the short prior",
    "ts": "sample interval, ready to set (ms)",
    "tp": "produced interval, set to go (ms)",
}
SESSION_START = datetime(2021, 1, 1, tzinfo=timezone.utc)


@dataclass
class SyntheticSession:
    """One simulated recording at 1 ms resolution; time 0 is the file's time 0.

    Attributes:
        trials: the trials table as written, one row per trial (``*_time`` in seconds).
        latents: latent state ``(time, latent dims)`` (real parts, then imaginary parts of the
            channels), float32, scaled as the module docstring says.
        weights: ``(latent dims, neurons)`` map to log-rates.
        bias: ``(neurons,)`` log-rate offset (spikes per ms).
        heldout: ``(neurons,)`` bool, the held-out neurons.
        spike_times: per neuron, sorted spike times (s).
        behavior: ``{"hand_vel" or "finger_vel": (time, 2)}`` velocity (mm/s), x then y; empty
            for dmfc_rsg.
    """

    trials: pd.DataFrame
    latents: np.ndarray
    weights: np.ndarray
    bias: np.ndarray
    heldout: np.ndarray
    spike_times: list[np.ndarray]
    behavior: dict[str, np.ndarray]

    @property
    def duration(self) -> float:
        """Length of the recording (s)."""
        return self.latents.shape[0] / 1000.0

    @property
    def rates(self) -> np.ndarray:
        """True rates ``(time, neurons)`` in spikes per ms."""
        return np.exp(self.latents @ self.weights + self.bias)


def write_nlb_files(data_dir, dataset: str, n_trials: int = 40, n_heldin: int = 12,
                    n_heldout: int = 4, seed: int = 0) -> tuple[Path, Path]:
    """Write <data_dir>/<dandiset>/<subject>/<subject>_ses-synthetic_desc-train_behavior+ecephys.nwb
    and ..._desc-test_ecephys.nwb; return (train_path, test_path).

    The train file holds ``n_trials`` trials split 80/20 into ``train``/``val`` (stratified by
    condition), all ``n_heldin + n_heldout`` units (``heldout`` marks ``n_heldout`` of them) and
    the behaviour; the test file holds ``n_trials // 4`` ``test`` trials of a second recording
    with the same neurons and dynamics, only the held-in units (same ids, ``heldout`` all False)
    and no behaviour.  Everything is determined by ``seed`` (see :func:`simulate_nlb`).

    Raises:
        ValueError: unknown ``dataset``, fewer than 20 trials or no held-in / held-out units.
    """
    train, test = simulate_nlb(dataset, n_trials, n_heldin, n_heldout, seed)
    dandiset, subject = DANDISETS[dataset]
    folder = Path(data_dir) / dandiset / subject
    folder.mkdir(parents=True, exist_ok=True)
    train_path = folder / f"{subject}_ses-synthetic_desc-train_behavior+ecephys.nwb"
    test_path = folder / f"{subject}_ses-synthetic_desc-test_ecephys.nwb"
    _write_nwb(train_path, train, dataset, subject, f"train-{seed}",
               units=np.arange(len(train.heldout)), with_behavior=True)
    _write_nwb(test_path, test, dataset, subject, f"test-{seed}",
               units=np.flatnonzero(~test.heldout), with_behavior=False)
    return train_path, test_path


def simulate_nlb(dataset: str, n_trials: int = 40, n_heldin: int = 12, n_heldout: int = 4,
                 seed: int = 0) -> tuple[SyntheticSession, SyntheticSession]:
    """Simulate the train-file and test-file recordings :func:`write_nlb_files` writes.

    Both share the neurons (``weights``, ``bias``, ``heldout``) and the dynamics; the latent
    scale and the biases come from the train recording.

    Returns:
        ``(train, test)`` sessions; ``train.trials.split`` is ``train``/``val``,
        ``test.trials.split`` is ``test``.
    """
    if dataset not in DANDISETS:
        raise ValueError(f"unknown NLB dataset {dataset!r}; choose one of {', '.join(DANDISETS)}")
    if n_trials < MIN_TRIALS or n_heldin < 1 or n_heldout < 1:
        raise ValueError(f"need n_trials >= {MIN_TRIALS} and at least one held-in and one "
                         f"held-out unit (got {n_trials}, {n_heldin}, {n_heldout})")
    layout = LAYOUTS[dataset]
    rng = np.random.default_rng(seed)
    n_conditions = int(np.clip(n_trials // TRIALS_PER_CONDITION, 1 if layout == "mc_rtt" else 2,
                               MAX_CONDITIONS[dataset]))
    lag = PARAMS[dataset].get("lag", 0)
    # condition-dependent input amplitudes: reach mixings (maze version; area2 active, bump;
    # rtt) into the two slow channels, and one per dmfc_rsg group and input
    mixings = (rng.standard_normal((3, 2, 2)) + 1j * rng.standard_normal((3, 2, 2))) / 2.0
    group_amplitudes = np.exp(2j * np.pi * rng.random((len(RSG_GROUPS), 5)))
    n_neurons = n_heldin + n_heldout
    heldout = np.zeros(n_neurons, dtype=bool)
    heldout[rng.choice(n_neurons, n_heldout, replace=False)] = True

    recordings = []
    for n, part in ((n_trials, "train"), (n_trials // 4, "test")):
        conditions = rng.permutation(np.arange(n) % n_conditions)
        if part == "train":
            splits = split_trials(rng, n, (1.0 - VAL_FRACTION, VAL_FRACTION, 0.0), conditions)
            split = np.where(np.isin(np.arange(n), splits["train"]), "train", "val")
        else:
            split = np.full(n, "test")
        if layout == "dmfc_rsg":
            trials, inputs = _rsg_trials(rng, conditions, split, group_amplitudes)
            channels = RSG_CHANNELS
        else:
            build = {"mc_maze": _maze_trials, "mc_rtt": _rtt_trials,
                     "area2_bump": _area2_trials}[layout]
            trials, inputs = build(rng, conditions, n_conditions, lag, mixings)
            channels = MAZE_CHANNELS if layout == "mc_maze" else REACH_CHANNELS
        trials["split"] = split
        recordings.append((trials, _latent_state(rng, inputs, channels)))

    peak = np.linalg.norm(recordings[0][1], axis=1).max()
    latents = [(state / peak).astype(np.float32) for _, state in recordings]
    weights = rng.standard_normal((latents[0].shape[1], n_neurons))
    weights *= rng.uniform(*LOG_RATE_NORM, n_neurons) / np.linalg.norm(weights, axis=0)
    mean_rate = rng.uniform(*MEAN_RATE_HZ, n_neurons) / 1000.0
    bias = np.empty(n_neurons)
    spike_times = ([], [])
    for neuron in range(n_neurons):  # one neuron at a time: (time, neurons) arrays can be large
        drives = [state @ weights[:, neuron] for state in latents]
        bias[neuron] = np.log(mean_rate[neuron]) - np.log(np.mean(np.exp(drives[0])))
        for times, drive in zip(spike_times, drives):
            times.append(_poisson_spike_times(rng, np.exp(drive + bias[neuron])))

    sessions = []
    for (trials, state), scaled, times in zip(recordings, latents, spike_times):
        behavior = {}
        if layout != "dmfc_rsg":
            # the imaginary parts of vel x and vel y, lag ms later
            velocity = SPEED_GAIN * state[:, [len(REACH_CHANNELS) + 1, len(REACH_CHANNELS) + 2]]
            earlier = np.clip(np.arange(len(state)) - lag, 0, len(state) - 1)
            behavior[PARAMS[dataset]["behavior_field"]] = velocity[earlier].astype(np.float32)
        sessions.append(SyntheticSession(trials=_to_seconds(trials), latents=scaled,
                                         weights=weights, bias=bias, heldout=heldout,
                                         spike_times=times, behavior=behavior))
    return sessions[0], sessions[1]


def _trial_starts(rng: np.random.Generator, durations: np.ndarray) -> np.ndarray:
    """Start (ms) of consecutive trials of ``durations`` (ms), ``GAP_MS`` apart, after ``LEAD_MS``."""
    gaps = rng.integers(*GAP_MS, len(durations), endpoint=True)
    return LEAD_MS + np.concatenate([[0], np.cumsum(durations + gaps)[:-1]])


def _reach_kicks(angle: np.ndarray, size: np.ndarray, mixing: np.ndarray) -> np.ndarray:
    """Impulse amplitudes ``(reaches, channels)`` of reaches in direction ``angle`` (rad).

    ``mixing`` is ``(2, 2)`` or ``(reaches, 2, 2)``: (cos, sin) of the direction into the two
    slow channels; the prep channel gets nothing.
    """
    direction = np.stack([np.cos(angle), np.sin(angle)], axis=-1)
    extra = np.einsum("...ij,...j->...i", mixing, direction)
    return size[:, None] * np.column_stack([np.zeros(len(angle)), direction, extra])


def _prep_input(angle: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Boxcar amplitudes ``(reaches, channels)`` holding the prep channel at ``size e^(i angle)``."""
    amplitudes = np.zeros((len(angle), len(REACH_CHANNELS)), dtype=complex)
    amplitudes[:, 0] = size * np.exp(1j * angle) / (REACH_CHANNELS[0][1] * 1000.0)
    return amplitudes


def _maze_trials(rng, conditions, n_conditions, lag, mixings):
    """Maze reaches with a delay period; returns (trials table in ms, inputs ``(time, channels)``)."""
    n = len(conditions)
    trial_type, trial_version = conditions // 3 + 1, conditions % 3
    angle = 2 * np.pi * conditions / n_conditions + DIRECTION_JITTER * rng.standard_normal(n)
    size = np.asarray(MAZE_EXTENTS)[trial_version] * rng.uniform(0.8, 1.2, n)
    delay = rng.integers(300, 600, n, endpoint=True)
    reaction = rng.integers(250, 350, n, endpoint=True)
    start = _trial_starts(rng, 100 + delay + reaction + 750)
    target_on = start + 100
    go_cue = target_on + delay
    move_onset = go_cue + reaction
    trials = pd.DataFrame({"start_time": start, "stop_time": move_onset + 750,
                           "target_on_time": target_on, "go_cue_time": go_cue,
                           "move_onset_time": move_onset, "trial_type": trial_type,
                           "trial_version": trial_version})
    inputs = np.zeros((trials.stop_time.iloc[-1] + TAIL_MS, len(REACH_CHANNELS)), dtype=complex)
    kick = move_onset - lag
    _add_boxcars(inputs, target_on, kick, _prep_input(angle, size))
    np.add.at(inputs, kick, _reach_kicks(angle, size, mixings[trial_version]))
    return trials, inputs


def _rtt_trials(rng, conditions, n_conditions, lag, mixings):
    """Back-to-back 600 ms trials over continuous random reaching; (trials in ms, inputs)."""
    start = LEAD_MS + 600 * np.arange(len(conditions))
    trials = pd.DataFrame({"start_time": start, "stop_time": start + 600})
    n_time = trials.stop_time.iloc[-1] + TAIL_MS
    onsets = lag + RTT_PREP_MS + np.cumsum(rng.integers(350, 900, n_time // 350 + 1, endpoint=True))
    onsets = onsets[onsets < n_time]
    angle = rng.uniform(0.0, 2 * np.pi, len(onsets))
    size = rng.uniform(0.5, 1.5, len(onsets))
    inputs = np.zeros((n_time, len(REACH_CHANNELS)), dtype=complex)
    kick = onsets - lag
    _add_boxcars(inputs, kick - RTT_PREP_MS, kick, _prep_input(angle, size))
    np.add.at(inputs, kick, _reach_kicks(angle, size, mixings[0]))
    return trials, inputs


def _area2_trials(rng, conditions, n_conditions, lag, mixings):
    """Active reaches and passive bumps; (trials table in ms, inputs ``(time, channels)``)."""
    n = len(conditions)
    cond_dir = np.asarray(AREA2_DIRECTIONS)[conditions // 2]
    bump = conditions % 2 == 1
    angle = np.deg2rad(cond_dir) + DIRECTION_JITTER * rng.standard_normal(n)
    size = np.where(bump, BUMP_SIZE, 1.0) * rng.uniform(0.8, 1.2, n)
    to_onset = np.where(bump, rng.integers(400, 700, n, endpoint=True),
                        200 + rng.integers(300, 500, n, endpoint=True))
    start = _trial_starts(rng, to_onset + 800)
    move_onset = start + to_onset
    trials = pd.DataFrame({"start_time": start, "stop_time": move_onset + 800,
                           "move_onset_time": move_onset, "ctr_hold_bump": bump,
                           "cond_dir": cond_dir})
    inputs = np.zeros((trials.stop_time.iloc[-1] + TAIL_MS, len(REACH_CHANNELS)), dtype=complex)
    kick = move_onset - lag
    active = ~bump
    _add_boxcars(inputs, start[active] + 200, kick[active], _prep_input(angle[active], size[active]))
    np.add.at(inputs, kick, _reach_kicks(angle, size, mixings[bump.astype(int)]))
    return trials, inputs


def _rsg_trials(rng, groups, split, group_amplitudes):
    """Ready-set-go trials; (trials table in ms, inputs ``(time, channels)``)."""
    n = len(groups)
    is_eye, theta, is_short = (np.array(column) for column in zip(*(RSG_GROUPS[g] for g in groups)))
    ts = np.where(is_short, np.take(RSG_TS[True], rng.integers(0, 5, n)),
                  np.take(RSG_TS[False], rng.integers(0, 5, n)))
    prior_mean = np.where(is_short, np.mean(RSG_TS[True]), np.mean(RSG_TS[False]))
    tp = ((1 - RSG_PRIOR_PULL) * ts + RSG_PRIOR_PULL * prior_mean) * (
        1 + RSG_TP_CV * rng.standard_normal(n))
    is_outlier = (split == "train") & (rng.random(n) < RSG_OUTLIERS)
    tp = np.round(np.where(is_outlier, ts * rng.uniform(0.3, 0.5, n), tp)).astype(np.int64)
    for group, part in set(zip(groups, split)):  # tp corr needs tp to vary within a group
        members = np.flatnonzero((groups == group) & (split == part))
        tp[members] = _distinct(tp[members])
    ts = ts.astype(np.int64)
    fixation = np.maximum(rng.integers(400, 700, n, endpoint=True), RSG_MIN_TO_GO_MS - ts - tp)
    start = _trial_starts(rng, fixation + ts + tp + 700)
    ready = start + fixation
    set_ = ready + ts
    go = set_ + tp
    trials = pd.DataFrame({"start_time": start, "stop_time": go + 700, "ready_time": ready,
                           "set_time": set_, "go_time": go, "is_outlier": is_outlier,
                           "is_eye": is_eye, "theta": theta, "is_short": is_short,
                           "ts": ts.astype(float), "tp": tp.astype(float)})
    amplitude = group_amplitudes[groups]  # context, ready, set, timing, go
    inputs = np.zeros((trials.stop_time.iloc[-1] + TAIL_MS, len(RSG_CHANNELS)), dtype=complex)
    context_hold = amplitude[:, 0] / (RSG_CHANNELS[0][1] * 1000.0)
    _add_boxcars(inputs[:, :1], start, go + 700, context_hold[:, None])
    np.add.at(inputs[:, 3], ready, amplitude[:, 1])
    np.add.at(inputs[:, 1], set_, amplitude[:, 2])
    _add_boxcars(inputs[:, 2:3], set_, go, (RSG_TIMING_DRIVE * amplitude[:, 3] / tp)[:, None])
    np.add.at(inputs[:, 3], go, amplitude[:, 4])
    return trials, inputs


def _distinct(values: np.ndarray) -> np.ndarray:
    """Integers ``values`` ``(n,)`` with ties moved up, 1 at a time, until all differ."""
    order = np.argsort(values, kind="stable")
    steps = np.arange(len(values))
    moved = np.empty_like(values)
    moved[order] = np.maximum.accumulate(values[order] - steps) + steps
    return moved


def _add_boxcars(inputs: np.ndarray, starts: np.ndarray, stops: np.ndarray,
                 amplitudes: np.ndarray) -> None:
    """Add ``amplitudes`` ``(events, channels)`` to ``inputs`` ``(time, channels)`` over
    ``[starts, stops)`` (ms), in place."""
    steps = np.zeros_like(inputs)
    np.add.at(steps, starts, amplitudes)
    np.add.at(steps, stops, -amplitudes)
    inputs += np.cumsum(steps, axis=0)


def _latent_state(rng: np.random.Generator, inputs: np.ndarray,
                  channels: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Damped oscillators driven by ``inputs`` ``(time, channels)`` (complex, per ms) plus noise.

    Returns:
        ``(time, 2 * channels)``: real parts then imaginary parts, Gaussian-smoothed.
    """
    frequency, decay = np.array(channels).T
    poles = np.exp(-1.0 / (decay * 1000.0) + 2j * np.pi * frequency / 1000.0)
    noise_scale = NOISE_SD * np.sqrt((1.0 - np.abs(poles) ** 2) / 2.0)
    drive = inputs + noise_scale * (rng.standard_normal(inputs.shape)
                                    + 1j * rng.standard_normal(inputs.shape))
    state = np.column_stack([lfilter([1.0], [1.0, -pole], column)
                             for pole, column in zip(poles, drive.T)])
    return gaussian_filter1d(np.concatenate([state.real, state.imag], axis=1), SMOOTH_MS, axis=0)


def _poisson_spike_times(rng: np.random.Generator, rate: np.ndarray) -> np.ndarray:
    """Sorted spike times (s) of Poisson counts of ``rate`` ``(time,)`` spikes per 1 ms bin."""
    counts = rng.poisson(rate)
    bins = np.repeat(np.flatnonzero(counts), counts[counts > 0])
    return np.sort(bins + rng.uniform(0.05, 0.95, len(bins))) / 1000.0


def _to_seconds(trials: pd.DataFrame) -> pd.DataFrame:
    """``trials`` with its ``*_time`` columns from ms to s."""
    times = [name for name in trials.columns if name.endswith("_time")]
    return trials.assign(**{name: trials[name] / 1000.0 for name in times})


def _write_nwb(path: Path, session: SyntheticSession, dataset: str, subject: str,
               identifier: str, units: np.ndarray, with_behavior: bool) -> None:
    """Write ``session`` as an NLB NWB file: its trials, its ``units`` (neuron indices, also the
    unit ids) with ``spike_times``, ``obs_intervals`` (the whole recording) and ``heldout``, and
    (``with_behavior``) its behaviour in ``processing/behavior``.

    The tables are built from whole columns: adding rows one by one is slow in hdmf.
    """
    trials = session.trials
    trial_columns = [VectorData(name=name, description=TRIAL_DESCRIPTIONS[name],
                                data=list(trials[name]) if name == "split" else trials[name].to_numpy())
                     for name in trials.columns]
    spike_times = VectorData(name="spike_times", description="spike times (s)",
                             data=np.concatenate([session.spike_times[unit] for unit in units]))
    observed = VectorData(name="obs_intervals", description="observation intervals (s)",
                          data=np.tile([0.0, session.duration], (len(units), 1)))
    unit_columns = [
        spike_times,
        VectorIndex(name="spike_times_index", target=spike_times,
                    data=np.cumsum([len(session.spike_times[unit]) for unit in units])),
        observed,
        VectorIndex(name="obs_intervals_index", target=observed, data=np.arange(1, len(units) + 1)),
        VectorData(name="heldout", description="whether the unit is held out (scored by co-bps)",
                   data=session.heldout[units]),
    ]
    nwbfile = NWBFile(session_description=f"synthetic {dataset} (pyrolf.data.nlb_synthetic)",
                      identifier=f"pyrolf-synthetic-{dataset}-{identifier}",
                      session_start_time=SESSION_START,
                      subject=Subject(subject_id=subject.removeprefix("sub-"),
                                      species="Macaca mulatta"),
                      trials=TimeIntervals(name="trials", description="trials",
                                           id=np.arange(len(trials)), columns=trial_columns),
                      units=Units(name="units", description="sorted units", id=units,
                                  columns=unit_columns))
    if with_behavior and session.behavior:
        behavior = nwbfile.create_processing_module(name="behavior", description="behaviour")
        for name, values in session.behavior.items():
            behavior.add(TimeSeries(name=name, data=values, unit="mm/s", rate=1000.0,
                                    starting_time=0.0, comments="columns=[x,y]",
                                    description=f"{name.split('_')[0]} velocity, x and y"))
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
