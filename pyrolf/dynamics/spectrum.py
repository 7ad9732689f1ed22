"""The learned dynamics in numbers: the modes of the linearised deterministic step.

The deterministic part of a step (:meth:`~pyrolf.dynamics.langevin.LangevinDynamics.drift`) maps
``s = [z; v]`` ``(2D,)`` to ``[z'; mean of v']``. For a quadratic potential (force ``F(z) = z @ A``)
it is linear, ``z' = z + Δ v``, ``v' = (1 - γ)(v + Δ Aᵀ z)`` as columns::

    J = [[I,            Δ I     ],
         [(1 - γ) Δ Aᵀ, (1 - γ) I]]

and its eigenvalues are the modes of the prior's mean flow: each eigenvalue ``λ`` turns by
``arg λ`` and shrinks by ``|λ|`` per bin. For another potential the step is linearised (its
Jacobian, by autograd) at a minimum of the potential, where the force vanishes.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn

from pyrolf.dynamics.langevin import LangevinDynamics

UNIT_CIRCLE_TOLERANCE = 1e-12


def step_jacobian(dynamics: LangevinDynamics, z: torch.Tensor, v: torch.Tensor | None = None
                  ) -> np.ndarray:
    """Jacobian ``(..., 2D, 2D)`` (float64) of the deterministic step at the states ``(z, v)``,
    each ``(..., D)`` (``v`` default 0), in the column convention ``[dz'; dv'] = J [dz; dv]``;
    for a quadratic potential it is the step itself, the same at every state. The states step
    independently, so one backward pass per output gives that row of every state's Jacobian."""
    dynamics = copy.deepcopy(dynamics).double()
    z = torch.as_tensor(z, dtype=torch.float64).detach()
    v = torch.zeros_like(z) if v is None else torch.as_tensor(v, dtype=torch.float64).detach()
    size = z.shape[-1]
    state = torch.cat([z, v], -1).reshape(-1, 2 * size).requires_grad_()
    with torch.enable_grad():
        step = torch.cat(dynamics.drift(state[:, :size], state[:, size:]), -1)
        jacobian = rowwise_jacobian(step, state)
    return jacobian.reshape(*z.shape[:-1], 2 * size, 2 * size).numpy()


def rowwise_jacobian(outputs: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """``d outputs[n] / d inputs[n]`` ``(N, M, K)`` of ``outputs`` ``(N, M)`` computed from
    ``inputs`` ``(N, K)`` row by row: the rows are independent, so one backward pass per output
    gives that row of every Jacobian at once; zeros where an output does not depend on the
    inputs. Call it where the graph of ``outputs`` is recorded."""
    rows = [torch.autograd.grad(outputs[:, i].sum(), inputs, retain_graph=True,
                                allow_unused=True)[0] if outputs.requires_grad else None
            for i in range(outputs.shape[1])]
    return torch.stack([torch.zeros_like(inputs) if row is None else row for row in rows], 1)


def potential_minimum(potential: nn.Module, start: torch.Tensor, iterations: int = 100
                      ) -> torch.Tensor:
    """A local minimum ``(D,)`` of the potential downhill from ``start`` ``(D,)``, by the damped
    Newton descent the fixed-point searches take
    (:func:`~pyrolf.dynamics.fixed_points.newton_steps`); float64."""
    from pyrolf.dynamics.fixed_points import newton_steps  # which builds on this module

    start = torch.as_tensor(start, dtype=torch.float64).detach()[None]
    return newton_steps(copy.deepcopy(potential).double(), start, descend=True,
                        iterations=iterations)[0][0]


def eigen_modes(jacobian: np.ndarray, bin_size: float | None = None) -> list[dict]:
    """Each eigenvalue ``λ`` of ``jacobian`` ``(2D, 2D)`` as a mode, largest ``|λ|`` first:
    ``real``, ``imag``, ``magnitude`` ``|λ|``, ``frequency`` ``|arg λ| / 2π`` per bin (in Hz with
    ``bin_size`` in seconds) and ``decay_time`` ``-1 / ln |λ|`` bins (in seconds with
    ``bin_size``): the time to shrink by ``e``; negative for a growing mode (the time to grow by
    ``e``), ``None`` on the unit circle (neither), 0 for ``λ = 0``."""
    scale = 1.0 if bin_size is None else bin_size
    eigenvalues = np.linalg.eigvals(np.asarray(jacobian, dtype=np.float64))
    modes = []
    for value in sorted(eigenvalues, key=lambda x: (-abs(x), -abs(np.angle(x)))):
        magnitude = float(abs(value))
        if abs(magnitude - 1) <= UNIT_CIRCLE_TOLERANCE:
            decay = None
        else:
            decay = 0.0 if magnitude == 0 else -scale / math.log(magnitude)
        modes.append({"real": float(value.real), "imag": float(value.imag),
                      "magnitude": magnitude,
                      "frequency": abs(float(np.angle(value))) / (2 * math.pi) / scale,
                      "decay_time": decay})
    return modes


def dynamics_spectrum(dynamics: LangevinDynamics, mean_positions: np.ndarray,
                      bin_size: float | None = None) -> dict:
    """What ``dynamics.json`` holds: the modes (:func:`eigen_modes`) of the step linearised
    where it says (``linearised_at``: how it was chosen, ``linearised_position``: the ``D``
    coordinates of the point), with the units, the step, the damping and the largest
    ``|λ|`` (``spectral_radius``).

    Args:
        dynamics: the prior's dynamics.
        mean_positions: posterior-mean positions ``(trials, time, D)``; a non-quadratic potential
            is linearised at its minimum downhill from their mean (:func:`potential_minimum`).
        bin_size: seconds per bin, or ``None`` (frequencies per bin, times in bins).
    """
    start = torch.as_tensor(np.asarray(mean_positions, np.float64).reshape(
        -1, mean_positions.shape[-1]).mean(0))
    if getattr(dynamics.potential, "quadratic", False):
        at = torch.zeros_like(start)
        where = "anywhere: the potential is quadratic, so the step is linear"
    else:
        at = potential_minimum(dynamics.potential, start)
        where = ("the potential's minimum downhill from the mean posterior position (damped "
                 "Newton descent from it; the modes hold for small motions about that point)")
    modes = eigen_modes(step_jacobian(dynamics, at), bin_size)
    return {
        "linearised_at": where,
        "linearised_position": at.tolist(),
        "potential": type(dynamics.potential).__name__,
        "dynamics": type(dynamics).__name__,
        "step": float(dynamics.step.detach()), "damping": float(dynamics.damping.detach()),
        "frequency_unit": "cycles per bin" if bin_size is None else "Hz",
        "time_unit": "bins" if bin_size is None else "s",
        "bin_size_s": bin_size,
        "spectral_radius": modes[0]["magnitude"],
        "modes": modes,
    }
