"""The LFADS-style synthetic Lorenz benchmark: Poisson spikes driven by a Lorenz attractor.

Each condition is a stretch of the Lorenz attractor starting from its own random point on it;
its 3 latent dimensions, standardised over all conditions and bins, drive log-linear Poisson
rates of every neuron.  All trials of a condition share the latent trajectory and rates and
differ only in their Poisson spikes.
"""

from __future__ import annotations

import numpy as np

from pyrolf.data.files import split_trials
from pyrolf.data.spikes import SpikeData

LORENZ_DEFAULTS = {
    # data set size and statistics (the defaults of `lorenz_dataset`)
    "n_conditions": 65,
    "trials_per_condition": 20,
    "n_bins": 50,
    "n_neurons": 30,
    "n_heldout": 6,
    "mean_rate": 0.3,  # spikes per bin, averaged over trials, bins and neurons
    "split_fractions": (0.7, 0.15, 0.15),
    # the attractor and its integration (fixed)
    "sigma": 10.0,
    "rho": 28.0,
    "beta": 8.0 / 3.0,
    "dt_step": 0.005,  # RK4 step, Lorenz time units
    "steps_per_bin": 4,  # so one bin is 0.02 time units and 50 bins about 1.3 loops
    "burn_in_steps": 2000,  # 10 time units from the random start onto the attractor
    "initial_sd": 10.0,  # spread of the random starts around (0, 0, rho - 1)
}


def lorenz_vector_field(state: np.ndarray, sigma: float = 10.0, rho: float = 28.0,
                        beta: float = 8.0 / 3.0) -> np.ndarray:
    """Time derivative of Lorenz states ``(..., 3)`` (x, y, z), same shape."""
    x, y, z = state[..., 0], state[..., 1], state[..., 2]
    return np.stack([sigma * (y - x), x * (rho - z) - y, x * y - beta * z], axis=-1)


def lorenz_trajectory(initial: np.ndarray, n_steps: int, dt: float, sigma: float = 10.0,
                      rho: float = 28.0, beta: float = 8.0 / 3.0) -> np.ndarray:
    """Integrate the Lorenz system with classical RK4.

    Args:
        initial: starting states ``(..., 3)``.
        n_steps: number of RK4 steps of size ``dt``.

    Returns:
        states ``(..., n_steps + 1, 3)``, the first being ``initial``.
    """
    def field(state):
        return lorenz_vector_field(state, sigma, rho, beta)

    states = [np.asarray(initial, dtype=np.float64)]
    for _ in range(n_steps):
        s = states[-1]
        k1 = field(s)
        k2 = field(s + 0.5 * dt * k1)
        k3 = field(s + 0.5 * dt * k2)
        k4 = field(s + dt * k3)
        states.append(s + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4))
    return np.stack(states, axis=-2)


def lorenz_dataset(seed: int = 0,
                   n_conditions: int = LORENZ_DEFAULTS["n_conditions"],
                   trials_per_condition: int = LORENZ_DEFAULTS["trials_per_condition"],
                   n_bins: int = LORENZ_DEFAULTS["n_bins"],
                   n_neurons: int = LORENZ_DEFAULTS["n_neurons"],
                   n_heldout: int = LORENZ_DEFAULTS["n_heldout"],
                   mean_rate: float = LORENZ_DEFAULTS["mean_rate"],
                   split_fractions: tuple[float, float, float] = LORENZ_DEFAULTS["split_fractions"],
                   ) -> SpikeData:
    """Simulate the Lorenz benchmark; everything is determined by ``seed``.

    Rates are ``exp(latent @ W + b)`` spikes per bin with ``W ~ Normal(0, 1/3)`` ``(3, neurons)``
    and the scalar ``b`` set so that the mean rate over all trials, bins and neurons is exactly
    ``mean_rate``.  Trials are ordered by condition; ``n_heldout`` random neurons are held out;
    the splits are stratified by condition.

    Returns:
        :class:`SpikeData` named ``"lorenz"`` with float32 ``spikes`` and ``rates``
        ``(trials, time, neurons)``, ``conditions`` ``(trials,)`` and ``extra`` holding
        ``latents`` (standardised, ``(trials, time, 3)``, float32), ``latent_mean`` and
        ``latent_std`` (``(3,)``, un-normalised = latents * std + mean), ``weights`` ``(3,
        neurons)``, ``bias`` and the attractor parameters (``dt_bin`` is the Lorenz time per bin;
        ``bin_size`` is a nominal 0.01).
    """
    if not 1 <= n_heldout < n_neurons:
        raise ValueError(f"n_heldout={n_heldout} must be between 1 and n_neurons - 1 "
                         f"= {n_neurons - 1}.")
    p = LORENZ_DEFAULTS
    dynamics = {"sigma": p["sigma"], "rho": p["rho"], "beta": p["beta"]}
    dt_step, steps_per_bin = p["dt_step"], p["steps_per_bin"]
    rng = np.random.default_rng(seed)

    centre = np.array([0.0, 0.0, p["rho"] - 1.0])
    starts = centre + p["initial_sd"] * rng.standard_normal((n_conditions, 3))
    on_attractor = lorenz_trajectory(starts, p["burn_in_steps"], dt_step, **dynamics)[:, -1]
    fine = lorenz_trajectory(on_attractor, (n_bins - 1) * steps_per_bin, dt_step, **dynamics)
    raw = fine[:, ::steps_per_bin]  # (conditions, time, 3)
    latent_mean, latent_std = raw.mean(axis=(0, 1)), raw.std(axis=(0, 1))
    latents = (raw - latent_mean) / latent_std

    weights = rng.standard_normal((3, n_neurons)) / np.sqrt(3.0)
    drive = latents @ weights
    bias = np.log(mean_rate) - np.log(np.mean(np.exp(drive)))
    condition_rates = np.exp(drive + bias)  # (conditions, time, neurons)

    heldout = np.zeros(n_neurons, dtype=bool)
    heldout[rng.choice(n_neurons, n_heldout, replace=False)] = True
    conditions = np.repeat(np.arange(n_conditions), trials_per_condition)
    splits = split_trials(rng, len(conditions), split_fractions, conditions)
    rates = condition_rates[conditions]
    spikes = rng.poisson(rates).astype(np.float32)

    extra = {
        "latents": latents[conditions].astype(np.float32),
        "latent_mean": latent_mean,
        "latent_std": latent_std,
        "weights": weights,
        "bias": float(bias),
        "dt_bin": dt_step * steps_per_bin,
        "dt_step": dt_step,
        "burn_in_steps": p["burn_in_steps"],
        **dynamics,
    }
    return SpikeData(spikes=spikes, heldout=heldout, splits=splits, rates=rates.astype(np.float32),
                     conditions=conditions, name="lorenz", extra=extra)
