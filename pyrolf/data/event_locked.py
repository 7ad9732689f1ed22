"""Sparse, event-locked sessions: the shape of many real recordings, with known rates.

Each trial is a baseline followed by a stimulus. During the baseline the population is at rest;
at stimulus onset its latent state jumps to a condition's point on two planes and rotates in each
plane at its own frequency while it decays back to rest::

    x_t = 0                                                       t < onset
    x_t = a exp(-(t - onset) / τ) [cos(2π f₁ s + φ_c), sin(2π f₁ s + φ_c),
                                   cos(2π f₂ s + ψ_c), sin(2π f₂ s + ψ_c)]   s = t - onset ≥ 0
    rates = exp(x W + b)  spikes per bin            (W random, b per neuron, mean rate fixed)

Trials of a condition share their rates and differ in their Poisson spikes. Firing is sparse
(0.15 spikes per bin by default: 15 spikes/s in 10 ms bins), so most of each trial's
information is in a short transient after onset.
"""

from __future__ import annotations

import numpy as np

from pyrolf.data.files import split_trials
from pyrolf.data.spikes import SpikeData

EVENT_LOCKED_DEFAULTS = {
    "n_conditions": 8,
    "trials_per_condition": 45,
    "n_bins": 100,           # 1 s in 10 ms bins
    "bin_size": 0.01,        # seconds
    "onset_bin": 20,         # 0.2 s of baseline
    "n_neurons": 60,
    "n_heldout": 12,
    "mean_rate": 0.15,       # spikes per bin over all trials, bins and neurons
    "frequencies": (2.0, 3.5),  # Hz, of the two planes
    "decay": 0.35,           # τ in seconds
    "amplitude": 1.6,        # a, in units of the latent (the weights have unit norm per neuron)
    "bias_sd": 0.5,          # spread of the neurons' log baseline rates
    "split_fractions": (0.7, 0.15, 0.15),
}


def event_locked_latents(n_conditions: int, n_bins: int, bin_size: float, onset_bin: int,
                         frequencies: tuple[float, float], decay: float, amplitude: float,
                         rng: np.random.Generator) -> np.ndarray:
    """The latent states of every condition, ``(conditions, time, 4)``: zero before ``onset_bin``,
    then a decaying rotation in two planes from each condition's phases (the first plane's phases
    evenly spaced over the conditions, the second's at random)."""
    elapsed = (np.arange(n_bins) - onset_bin) * bin_size            # (time,)
    first = 2 * np.pi * np.arange(n_conditions) / n_conditions       # (conditions,)
    second = rng.uniform(0, 2 * np.pi, n_conditions)
    phases = [2 * np.pi * f * elapsed[None] + p[:, None]
              for f, p in zip(frequencies, (first, second))]         # each (conditions, time)
    envelope = np.where(elapsed >= 0, amplitude * np.exp(-np.clip(elapsed, 0, None) / decay), 0.0)
    planes = [np.stack([np.cos(phase), np.sin(phase)], -1) for phase in phases]
    return np.concatenate(planes, -1) * envelope[None, :, None]


def event_locked_dataset(seed: int = 0, **settings) -> SpikeData:
    """Simulate a sparse event-locked session; everything is determined by ``seed``.

    ``settings`` override :data:`EVENT_LOCKED_DEFAULTS` (the names there). Each neuron's weights
    ``(4,)`` are a random direction, its log baseline ``b_n ~ Normal(c, bias_sd²)`` with ``c`` set so
    that the mean rate over all trials, bins and neurons is ``mean_rate``.

    Returns:
        :class:`SpikeData` named ``"event_locked"`` with float32 ``spikes`` and ``rates``
        ``(trials, time, neurons)``, ``conditions`` ``(trials,)``, ``bin_size`` and ``extra``
        holding ``latents`` ``(trials, time, 4)`` (float32), ``weights`` ``(4, neurons)``,
        ``bias`` ``(neurons,)`` and ``onset_bin``.
    """
    unknown = sorted(set(settings) - set(EVENT_LOCKED_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(unknown)}; "
                         f"known: {', '.join(EVENT_LOCKED_DEFAULTS)}")
    p = {**EVENT_LOCKED_DEFAULTS, **settings}
    if not 1 <= p["n_heldout"] < p["n_neurons"]:
        raise ValueError(f"n_heldout={p['n_heldout']} must be between 1 and n_neurons - 1")
    if not 0 <= p["onset_bin"] < p["n_bins"]:
        raise ValueError(f"onset_bin={p['onset_bin']} must lie in 0..n_bins - 1")
    rng = np.random.default_rng(seed)
    latents = event_locked_latents(p["n_conditions"], p["n_bins"], p["bin_size"], p["onset_bin"],
                                   p["frequencies"], p["decay"], p["amplitude"], rng)
    n_neurons = p["n_neurons"]
    weights = rng.standard_normal((4, n_neurons))
    weights /= np.linalg.norm(weights, axis=0, keepdims=True)
    offsets = p["bias_sd"] * rng.standard_normal(n_neurons)
    drive = latents @ weights + offsets
    bias = offsets + np.log(p["mean_rate"]) - np.log(np.mean(np.exp(drive)))
    condition_rates = np.exp(latents @ weights + bias)             # (conditions, time, neurons)

    heldout = np.zeros(n_neurons, dtype=bool)
    heldout[rng.choice(n_neurons, p["n_heldout"], replace=False)] = True
    conditions = np.repeat(np.arange(p["n_conditions"]), p["trials_per_condition"])
    splits = split_trials(rng, len(conditions), p["split_fractions"], conditions)
    rates = condition_rates[conditions]
    spikes = rng.poisson(rates).astype(np.float32)
    extra = {"latents": latents[conditions].astype(np.float32), "weights": weights,
             "bias": bias, "onset_bin": p["onset_bin"]}
    return SpikeData(spikes=spikes, heldout=heldout, splits=splits,
                     rates=rates.astype(np.float32), conditions=conditions,
                     name="event_locked", bin_size=p["bin_size"], extra=extra)
