"""A system driven by unobserved input pulses: a damped rotation kicked once per trial.

The latent state ``x_t`` ``(2,)`` turns by ``2π / period`` and shrinks by ``decay`` each bin, and
at one random bin of each trial (the pulse) it is kicked by ``kick`` in a random direction::

    x_t = decay · R(2π / period) x_{t-1} + kick · [cos a, sin a] · (t == pulse)

Rates are ``exp(x @ W + b)`` spikes per bin, with ``b`` setting the mean rate; spikes are Poisson.
Between pulses the dynamics are autonomous, so what a model must infer as an input lies at the
pulse: the test case for ``pyrolf infer``'s ``inputs``.
"""

from __future__ import annotations

import numpy as np

from pyrolf.data.files import split_trials
from pyrolf.data.spikes import SpikeData


def kicked_rotation_dataset(seed: int = 0, n_trials: int = 400, n_bins: int = 50,
                            n_neurons: int = 40, n_heldout: int = 8, period: float = 12.0,
                            decay: float = 0.95, kick: float = 2.5, initial_sd: float = 0.3,
                            mean_rate: float = 0.4, margin: int = 8,
                            split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
                            ) -> SpikeData:
    """Simulate the kicked rotation (module docstring); everything is determined by ``seed``.

    Each trial starts from ``Normal(0, initial_sd²)`` and is kicked at a bin drawn uniformly
    from ``margin .. n_bins - margin - 1``. ``W ~ Normal(0, 1/2)`` ``(2, neurons)``.

    Returns:
        :class:`SpikeData` named ``"kicked_rotation"`` with float32 ``spikes`` and ``rates``
        ``(trials, time, neurons)`` and ``extra`` holding ``latents`` ``(trials, time, 2)``
        (float32) and ``pulse_bins`` ``(trials,)``, the bin of each trial's kick.
    """
    rng = np.random.default_rng(seed)
    turn = 2 * np.pi / period
    step = decay * np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    pulse_bins = rng.integers(margin, n_bins - margin, n_trials)
    direction = rng.uniform(0, 2 * np.pi, n_trials)
    kicks = kick * np.stack([np.cos(direction), np.sin(direction)], -1)
    latents = np.zeros((n_trials, n_bins, 2))
    latents[:, 0] = initial_sd * rng.standard_normal((n_trials, 2))
    for t in range(1, n_bins):
        latents[:, t] = latents[:, t - 1] @ step.T + kicks * (pulse_bins == t)[:, None]
    weights = rng.standard_normal((2, n_neurons)) / np.sqrt(2.0)
    drive = latents @ weights
    rates = np.exp(drive + np.log(mean_rate) - np.log(np.mean(np.exp(drive))))
    heldout = np.zeros(n_neurons, dtype=bool)
    heldout[rng.choice(n_neurons, n_heldout, replace=False)] = True
    splits = split_trials(rng, n_trials, split_fractions)
    return SpikeData(spikes=rng.poisson(rates).astype(np.float32), heldout=heldout,
                     splits=splits, rates=rates.astype(np.float32), name="kicked_rotation",
                     extra={"latents": latents.astype(np.float32), "pulse_bins": pulse_bins})


def pulse_hit_share(inputs: np.ndarray, pulse_bins: np.ndarray, within: int = 2) -> float:
    """Share of trials whose largest inferred input ``‖inputs_t‖`` (over the latent dims) lies
    within ``within`` bins of the true pulse; ``inputs`` ``(trials, time, latent)``,
    ``pulse_bins`` ``(trials,)``."""
    peaks = np.linalg.norm(inputs, axis=-1).argmax(-1)
    return float(np.mean(np.abs(peaks - pulse_bins) <= within))
