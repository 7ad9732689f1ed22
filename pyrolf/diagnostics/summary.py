"""Every trial's posterior reduced to its mean and central 90 % interval: what ``pyrolf infer``
writes (:mod:`pyrolf.diagnostics.export`) and its scores read.

Each trial gets ``samples`` posterior draws (the guide sampled, each draw decoded by the model:
:func:`~pyrolf.inference.svi.posterior_passes`), and each of ``z``, ``v``, ``inputs`` and
``rates`` is reduced to its posterior mean and central 90 % interval. The reduction goes group of
trials by group of trials: only one group's draws (``draws_per_pass`` trial-draws, or all draws of
one trial where ``samples`` is larger) are held at a time, so memory grows with the trials'
summaries, not with ``samples``; each trial's interval comes from all its own draws at once, so it
is the exact sample quantile.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

from pyrolf.data.chop import merge_cuts, merge_into
from pyrolf.diagnostics.ppc import INTERVAL_PROB, predictive_interval, quantile_ranks
from pyrolf.inference.svi import posterior_passes


VARIABLES = ("z", "v", "inputs", "rates")


def inferred_inputs(dynamics, z: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The inferred input of every bin ``(..., time, D)`` from positions and velocities
    ``(..., time, D)``: ``v_t - mean(z_{t-1}, v_{t-1})``
    (:meth:`~pyrolf.dynamics.langevin.LangevinDynamics.innovations`) for ``t >= 1``, 0 at
    ``t = 0``."""
    return torch.cat([torch.zeros_like(v[..., :1, :]), dynamics.innovations(z, v)], -2)


def reduce_draws(draws: torch.Tensor, on_device: bool | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and central 90 % interval over the draws of ``draws`` ``(trials, draws, ...)``:
    three arrays ``(trials, ...)`` on the host.

    ``on_device`` (default: where ``draws`` are not on the CPU): the draws are sorted and the
    bounds interpolated where they lie, so only the summaries cross to the host; else (and
    where a draw is NaN) numpy sorts them on the host (:func:`predictive_interval`), several
    times faster than torch's CPU sort. Both give the same bounds to rounding."""
    on_device = draws.device.type != "cpu" if on_device is None else on_device
    if not on_device or torch.isnan(draws).any():
        values = draws.cpu().numpy()
        return (values.mean(1), *predictive_interval(values, INTERVAL_PROB, axis=1))
    ordered = torch.sort(draws, dim=1).values
    tail = (1 - INTERVAL_PROB) / 2
    bounds = []
    for quantile in (tail, 1 - tail):
        below, above, weight = quantile_ranks(draws.shape[1], quantile)
        low = ordered[:, int(below)].double()
        bounds.append((low + (ordered[:, int(above)] - low) * float(weight)).cpu().numpy())
    return (draws.mean(1).cpu().numpy(), *bounds)


@torch.no_grad()
def posterior_summary(flow, inputs: torch.Tensor, n_bins: int, samples: int,
                      draws_per_pass: int | None = None, progress: str | None = None,
                      chop: dict | None = None) -> dict[str, np.ndarray]:
    """Posterior mean and central 90 % interval of ``z``, ``v``, ``inputs`` (see
    :func:`inferred_inputs`) and ``rates`` (spikes per bin) of the trials whose encoder inputs
    are ``inputs`` ``(trials, observed, held_in)``: keys ``NAME``, ``NAME_lower``, ``NAME_upper``,
    each float32 ``(trials, n_bins, latent)`` or, for rates, ``(trials, n_bins, neurons)``.
    ``chop``: the trials are a continuous recording's windows, cut as
    ``data.extra["chop"]`` says (with ``observed``, the windows' observed bins); each summary
    then comes merged into one series ``(time, ...)`` (:func:`~pyrolf.data.chop.merge`),
    each group's windows merged as they are reduced, so no window's summary is kept.

    ``flow`` is a LangevinFlow (its guide returns ``(z, v)``, its prior has ``dynamics``);
    ``samples`` draws per trial, ``draws_per_pass`` and ``progress`` as in
    :func:`~pyrolf.inference.svi.posterior_passes`, reduced group by group (module docstring).
    """
    dynamics = flow.prior.dynamics
    summary = {}
    if chop is not None:
        starts, n_time = np.asarray(chop["starts"]), int(chop["n_time"])
        cuts = merge_cuts(starts, n_time, n_bins, chop["observed"])
    passes = posterior_passes(flow, inputs, n_bins, samples, draws_per_pass, progress)
    for trials, group in itertools.groupby(passes, key=lambda one_pass: one_pass[0]):
        group = list(group)
        z, v = (torch.cat([latents[i] for _, latents, _ in group], 1) for i in (0, 1))
        log_rates = torch.cat([log_rates for _, _, log_rates in group], 1)
        draws = {"z": z, "v": v, "inputs": inferred_inputs(dynamics, z, v),
                 "rates": log_rates.exp()}
        for name, values in draws.items():
            reduced = reduce_draws(values.float())
            for key, value in zip((name, f"{name}_lower", f"{name}_upper"), reduced):
                if key not in summary:
                    summary[key] = np.empty((inputs.shape[0] if chop is None else n_time,
                                             *value.shape[1 if chop is None else 2:]),
                                            np.float32)
                if chop is None:
                    summary[key][trials] = value
                else:
                    merge_into(summary[key], value, trials.start, starts, cuts)
    return summary
