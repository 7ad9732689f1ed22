"""PNG figures of a diagnosed run: phase portraits, the coupling kernel, a posterior predictive
check of the mean rates, predicted against true rates, and the spectrum of the learned dynamics."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pyrolf.plots import save_png, subplots

TAP_NAMES = {3: ("left neighbour (-1)", "same site (0)", "right neighbour (+1)"),
             2: ("bond's left site", "bond's right site")}


def phase_portraits(z: np.ndarray, v: np.ndarray, trials: np.ndarray, path: Path,
                    n_dims: int = 4, n_trials: int = 3) -> None:
    """Position ``z_d`` against velocity ``v_d`` of the posterior mean for the first ``n_dims``
    latent dims and the first ``n_trials`` trials; ``z``, ``v`` ``(trials, time, latent)``,
    ``trials`` their ids (as ``inferred.nc`` names them)."""
    n_dims = min(n_dims, z.shape[-1])
    fig, axes = subplots(1, n_dims, figsize=(3.2 * n_dims, 3.4), squeeze=False,
                             layout="constrained")
    for d, axis in enumerate(axes[0]):
        for k in range(min(n_trials, len(trials))):
            line, = axis.plot(z[k, :, d], v[k, :, d], lw=1.2, label=f"trial {trials[k]}")
            axis.plot(z[k, 0, d], v[k, 0, d], "o", color=line.get_color(), ms=4)
        axis.set_xlabel(f"position z[{d}]")
        axis.set_ylabel(f"velocity v[{d}]")
        axis.set_title(f"latent dim {d}")
    axes[0, 0].legend(fontsize=8, title="dot: first bin", title_fontsize=8)
    fig.suptitle("Phase portraits of the posterior-mean latent trajectory (z against v)")
    save_png(fig, path)


def coupling_kernel(kernel: np.ndarray, path: Path) -> None:
    """Heat maps of a learned coupling kernel ``(channels, channels, taps)``, one per lattice
    offset: entry (i, j) couples input channel j at that offset to output channel i (3 taps:
    the oscillators' neighbours -1, 0, +1; 2 taps: the springs' two ends of a bond)."""
    limit = float(np.abs(kernel).max()) or 1.0
    taps = kernel.shape[-1]
    fig, axes = subplots(1, taps, figsize=(3.7 * taps, 3.8), layout="constrained")
    for tap, axis in enumerate(axes):
        image = axis.imshow(kernel[:, :, tap], cmap="RdBu_r", vmin=-limit, vmax=limit)
        axis.set_title(TAP_NAMES[taps][tap])
        axis.set_xlabel("input channel")
        axis.set_xticks(range(kernel.shape[1]))
        axis.set_yticks(range(kernel.shape[0]))
    axes[0].set_ylabel("output channel")
    fig.colorbar(image, ax=axes, shrink=0.8, label="kernel weight")
    fig.suptitle("Learned coupling kernel K of the potential, per lattice offset")
    save_png(fig, path)


def ppc_mean_rate(observed: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                  heldout: np.ndarray, samples: int, path: Path) -> None:
    """Per-neuron mean rate: the observed value against the 90 % posterior predictive interval
    of ``samples`` draws; all arrays ``(neurons,)``, ``heldout`` bool."""
    neurons = np.arange(len(observed))
    inside = (observed >= lower) & (observed <= upper)
    fig, axis = subplots(figsize=(max(8.0, 0.25 * len(neurons)), 4.8), layout="constrained")
    axis.vlines(neurons, lower, upper, color="0.6", lw=4, label="90 % predictive interval")
    for group, marker, name in ((~heldout, "o", "held-in"), (heldout, "s", "held-out")):
        for hit, color, where in ((True, "C0", "inside"), (False, "C3", "outside")):
            pick = group & (inside == hit)
            if pick.any():
                axis.plot(neurons[pick], observed[pick], marker, color=color, ms=5, ls="",
                          label=f"observed, {name}, {where}")
    axis.set_xlabel("neuron")
    axis.set_ylabel("spikes per bin (mean over trials and bins)")
    axis.legend(fontsize=8, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    axis.set_title(f"Posterior predictive check of the mean rate per neuron\n90 % interval of "
                   f"{samples} predictive draws vs observed: {inside.mean():.0%} of neurons "
                   "covered", fontsize=11)
    save_png(fig, path)


def kl_per_dimension(kl: np.ndarray, threshold: float, path: Path) -> None:
    """Bars of the KL of the posterior from the prior per latent dimension ``(D,)`` in nats per
    bin, the first half the position ``z`` dims' order of the lattice, with the ``threshold``
    above which a dimension counts as used."""
    dims = np.arange(len(kl))
    used = kl > threshold
    fig, axis = subplots(figsize=(max(6.0, 0.22 * len(kl)), 3.8), layout="constrained")
    axis.bar(dims[used], kl[used], color="C0", label="used")
    axis.bar(dims[~used], kl[~used], color="0.6", label="at the prior")
    axis.axhline(threshold, color="k", ls="--", lw=1, label=f"threshold {threshold:g}")
    axis.set_xlabel("latent dimension")
    axis.set_ylabel("KL (nats per observed bin)")
    axis.legend(fontsize=8)
    axis.set_title(f"KL of the posterior from the prior per latent dimension: {used.sum()} of "
                   f"{len(kl)} used, {kl.sum():.3f} nats per observed bin in all")
    save_png(fig, path)


def rates_vs_truth(predicted: np.ndarray, true: np.ndarray, trials: np.ndarray, r2: float,
                   path: Path, n_neurons: int = 3, max_points: int = 5000) -> None:
    """Posterior-mean rates against the true rates, both ``(trials, time, neurons)`` in spikes
    per bin: a scatter of all entries (at most ``max_points``, evenly thinned) and the time
    course of the ``n_neurons`` most modulated neurons in the first trial."""
    fig, (scatter, course) = subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    step = max(1, predicted.size // max_points)
    x, y = true.ravel()[::step], predicted.ravel()[::step]
    scatter.plot(x, y, ".", ms=2, alpha=0.4)
    top = float(max(x.max(), y.max()))
    scatter.plot([0, top], [0, top], "k--", lw=1, label="predicted = true")
    scatter.set_xlabel("true rate (spikes per bin)")
    scatter.set_ylabel("posterior-mean rate (spikes per bin)")
    scatter.legend(fontsize=8)
    scatter.set_title("all trials, bins and neurons")
    modulated = np.argsort(true[0].std(axis=0))[::-1][:n_neurons]
    for n in modulated:
        line, = course.plot(true[0, :, n], lw=1.5, label=f"neuron {n} true")
        course.plot(predicted[0, :, n], "--", color=line.get_color(), lw=1.5,
                    label=f"neuron {n} predicted")
    course.set_xlabel("bin")
    course.set_ylabel("rate (spikes per bin)")
    course.legend(fontsize=8)
    course.set_title(f"trial {trials[0]}, most modulated neurons")
    fig.suptitle(f"Posterior-mean rates against the true rates (R² = {r2:.3f}, mean over neurons)")
    save_png(fig, path)


def spectrum(modes: list[dict], radius_note: str, path: Path) -> None:
    """The eigenvalues of the linearised step (``modes`` as
    :func:`pyrolf.dynamics.spectrum.eigen_modes` gives them) in the complex plane with the unit
    circle (inside it a mode decays, outside it grows): the whole plane, and a close-up of where
    the eigenvalues lie."""
    values = np.array([complex(m["real"], m["imag"]) for m in modes])
    fig, axes = subplots(1, 2, figsize=(10, 5), layout="constrained")
    angle = np.linspace(0, 2 * np.pi, 2000)
    limit = max(1.1, float(np.abs(values).max()) * 1.05)
    spread = max(float(np.ptp(values.real)), float(np.ptp(values.imag)), 0.02) * 0.6
    centre = complex((values.real.max() + values.real.min()) / 2,
                     (values.imag.max() + values.imag.min()) / 2)
    for axis, (x_centre, y_centre, half) in zip(axes, [(0.0, 0.0, limit),
                                                        (centre.real, centre.imag, spread)]):
        axis.plot(np.cos(angle), np.sin(angle), "k-", lw=0.8, label="unit circle")
        axis.plot(values.real, values.imag, "o", ms=5, mfc="none", color="C0",
                  label=f"{len(values)} eigenvalues")
        axis.axhline(0, color="0.8", lw=0.6)
        axis.axvline(0, color="0.8", lw=0.6)
        axis.set_xlim(x_centre - half, x_centre + half)
        axis.set_ylim(y_centre - half, y_centre + half)
        axis.set_aspect("equal")
        axis.set_xlabel("real part")
        axis.set_ylabel("imaginary part")
    axes[0].legend(fontsize=8, loc="lower left")
    axes[0].set_title("complex plane")
    axes[1].set_title("close-up of the eigenvalues")
    fig.suptitle(f"Eigenvalues of the linearised step: {radius_note}")
    save_png(fig, path)
