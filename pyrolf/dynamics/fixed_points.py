"""The fixed points of the learned dynamics: the states the prior's mean flow leaves in place.

Both priors' deterministic step (:meth:`~pyrolf.dynamics.langevin.LangevinDynamics.drift` and
the overdamped one) leaves ``s = [z; v]`` in place exactly where ``v = 0`` and the force
``-∇U(z)`` vanishes, so the fixed points are the critical points of the potential ``U``. Each is
described by

- the Hessian ``∇²U`` ``(D, D)`` there: a ``minimum`` (no negative eigenvalue), a ``maximum`` (no
  positive one) or a ``saddle``, whose ``index`` (the number of negative eigenvalues) counts the
  directions the flow leaves it along; its flat directions (eigenvalue 0) make it part of a
  continuous set of fixed points of that ``dimension`` (a line attractor where 1 at a minimum);
- its ``stability`` under the step itself: the spectral radius of the step's Jacobian there
  (:func:`~pyrolf.dynamics.spectrum.step_jacobian`) below 1 (``stable``: every small motion dies
  out), 1 (``marginal``: flat directions neither grow nor shrink) or above (``unstable``). A
  minimum is stable for a small enough step; a saddle or maximum never is.

For a quadratic potential (force ``z @ A``) ``∇²U = -A`` everywhere and the fixed points are the
null space of ``A``: one entry, at the origin, of the null space's dimension. For another potential
they are searched for as Sussillo & Barak (2013) do for RNNs, from many starting positions (the
posterior's): damped Newton steps down ``U`` find the minima the starts lie above, and
Levenberg–Marquardt steps on ``q(z) = ½ |∇U(z)|²`` (Newton's step on ``∇U = 0`` where it lowers
``q``) the nearest critical point of any kind, saddles and maxima too; the searches that reach
``|∇U| ≤ tolerance`` are kept and those that end at one point merged.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from pyrolf.dynamics.langevin import LangevinDynamics
from pyrolf.dynamics.spectrum import UNIT_CIRCLE_TOLERANCE, rowwise_jacobian, step_jacobian

FLAT = 1e-8  # a Hessian eigenvalue within FLAT × the largest |eigenvalue| of 0 is flat
DAMPING_RANGE = (1e-12, 1e12)  # Levenberg–Marquardt damping, from Newton's step to gradient descent
ROUNDING = 1e-12  # relative change of U that float64 rounding can hide, near a minimum
SAME = 1e-3  # searches ending this near (relative to the starts' scale) found one point


def gradient_and_hessian(potential: nn.Module, z: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``U`` ``(N,)``, ``∇U`` ``(N, D)`` and ``∇²U`` ``(N, D, D)`` at the positions ``z``
    ``(N, D)``.

    The rows' energies are independent, so the Hessians are the gradients' row-wise Jacobian
    (:func:`~pyrolf.dynamics.spectrum.rowwise_jacobian`)."""
    z = z.detach().requires_grad_()
    with torch.enable_grad():
        energy = potential(z)
        (gradient,) = torch.autograd.grad(energy.sum(), z, create_graph=True)
        hessian = rowwise_jacobian(gradient, z)
    return energy.detach(), gradient.detach(), hessian.detach()


def newton_steps(potential: nn.Module, starts: torch.Tensor, descend: bool = False,
                 iterations: int = 100, tolerance: float = 1e-8
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions ``(N, D)`` reached from ``starts`` ``(N, D)`` by damped Newton steps, and their
    ``|∇U|`` ``(N,)``, after ``iterations`` steps or once every start's ``|∇U| ≤ tolerance``.

    ``descend=False`` solves ``∇U = 0`` by Levenberg–Marquardt steps on ``½ |∇U|²``,
    ``(H² + μ I) δ = -H ∇U`` (``H = ∇²U``), taken where they lower ``|∇U|``: a critical point of
    any kind. ``descend=True`` takes ``(H + (μ + s) I) δ = -∇U``, ``s`` lifting ``H``'s lowest
    eigenvalue above 0, where it lowers ``U`` (or, once ``U`` is flat to rounding, ``|∇U|``): a
    minimum downhill. A step taken shrinks that start's ``μ`` tenfold (towards Newton's step), a
    step refused grows it tenfold (towards a short descent step). Only the starts still moving
    are computed on."""
    z = starts.detach().clone()
    eye = torch.eye(z.shape[-1], dtype=z.dtype)
    damping = torch.full(z.shape[:1], 1e-3, dtype=z.dtype)
    energy, gradient, hessian = gradient_and_hessian(potential, z)
    norm = gradient.norm(dim=-1)
    for _ in range(iterations):
        moving = torch.nonzero(norm > tolerance).flatten()
        if not len(moving):
            break
        at, slope, curvature, mu = energy[moving], gradient[moving], hessian[moving], damping[moving]
        if descend:
            lift = mu - torch.linalg.eigvalsh(curvature)[:, 0].clamp_max(0)
            delta = -torch.linalg.solve(curvature + lift[:, None, None] * eye, slope)
        else:
            system = curvature @ curvature + mu[:, None, None] * eye
            delta = -torch.linalg.solve(system, (curvature @ slope[..., None]))[..., 0]
        trial = z[moving] + delta
        trial_energy, trial_gradient, trial_hessian = gradient_and_hessian(potential, trial)
        trial_norm = trial_gradient.norm(dim=-1)
        lower = trial_norm < norm[moving]
        if descend:
            flat = trial_energy <= at + ROUNDING * (1 + at.abs())
            lower = (trial_energy < at) | (flat & lower)
        taken = moving[lower]
        z[taken], energy[taken], norm[taken] = trial[lower], trial_energy[lower], trial_norm[lower]
        gradient[taken], hessian[taken] = trial_gradient[lower], trial_hessian[lower]
        damping[moving] = torch.where(lower, mu / 10, mu * 10).clamp(*DAMPING_RANGE)
    return z, norm


def merge(points: np.ndarray, distance: float) -> tuple[np.ndarray, np.ndarray]:
    """The distinct points of ``points`` ``(N, D)`` (in their order) and how many of ``points``
    lie within ``distance`` of each: a point joins the first distinct one it is that near."""
    distinct, counts = [], []
    for point in points:
        near = [i for i, other in enumerate(distinct) if np.linalg.norm(point - other) <= distance]
        if near:
            counts[near[0]] += 1
        else:
            distinct.append(point)
            counts.append(1)
    return np.reshape(distinct, (len(distinct), points.shape[-1])), np.asarray(counts, int)


def describe(dynamics: LangevinDynamics, positions: torch.Tensor, hessians: np.ndarray
             ) -> list[dict]:
    """The fixed points at ``positions`` ``(K, D)`` with their ``∇²U`` ``(K, D, D)``, each
    ``position``, ``energy``, ``kind``, ``index``, ``dimension``, ``stability`` and
    ``spectral_radius`` (see the module's docstring)."""
    curvatures = np.linalg.eigvalsh((hessians + np.swapaxes(hessians, -1, -2)) / 2)
    flat = np.abs(curvatures) <= FLAT * np.abs(curvatures).max(-1, keepdims=True)
    falling = (~flat & (curvatures < 0)).sum(-1)
    rising = (~flat & (curvatures > 0)).sum(-1)
    radii = np.abs(np.linalg.eigvals(step_jacobian(dynamics, positions))).max(-1, initial=0.0)
    with torch.no_grad():
        energies = dynamics.potential(positions.to(torch.float64)).reshape(-1).tolist()
    points = []
    for k, position in enumerate(positions.tolist()):
        kind = "minimum" if falling[k] == 0 else "maximum" if rising[k] == 0 else "saddle"
        radius = float(radii[k])
        stability = ("stable" if radius < 1 - UNIT_CIRCLE_TOLERANCE else
                     "marginal" if radius <= 1 + UNIT_CIRCLE_TOLERANCE else "unstable")
        points.append({"position": position, "energy": energies[k], "kind": kind,
                       "index": int(falling[k]), "dimension": int(flat[k].sum()),
                       "stability": stability, "spectral_radius": radius})
    return points


def fixed_points(dynamics: LangevinDynamics, positions: np.ndarray, starts: int = 256,
                 iterations: int = 100, tolerance: float = 1e-8, seed: int = 0) -> dict:
    """What ``dynamics.json``'s ``fixed_points`` holds: the fixed points of ``dynamics``' mean
    flow (see the module's docstring), lowest energy first, each described by :func:`describe`
    with ``searches``, how many of the searches ended there (``None`` in closed form). Two
    searches leave each start: one down ``U`` to a minimum, then on to ``∇U = 0``; one straight
    to ``∇U = 0``, which may end at a saddle or maximum (:func:`newton_steps`).

    Args:
        dynamics: the prior's dynamics.
        positions: posterior-mean positions ``(..., D)``; the search starts from the origin and
            ``starts - 1`` of them drawn at random (all where fewer).
        starts: search starts, at most.
        iterations: Newton steps of each search, at most.
        tolerance: ``|∇U|`` at most, for a search to count as having reached a fixed point;
            searches that end within ``SAME × (1 + the starts' RMS norm)`` of each other are
            merged (a degenerate point, flat to third order, is reached only to about the cube
            root of ``tolerance``).
        seed: of the draw of starting positions.

    Returns ``method``, ``starts`` (used), ``searches``, ``reached`` (the searches that ended at
    a fixed point), ``tolerance`` and ``points``.
    """
    dynamics = copy.deepcopy(dynamics).double()
    potential = dynamics.potential
    positions = torch.as_tensor(np.asarray(positions, np.float64).reshape(
        -1, np.shape(positions)[-1]))
    size = positions.shape[-1]
    if getattr(potential, "quadratic", False):
        with torch.no_grad():
            hessian = -dynamics.force_matrix(positions).numpy()
        (point,) = describe(dynamics, torch.zeros(1, size, dtype=torch.float64), hessian[None])
        return {"method": "closed form: the potential is quadratic, its fixed points the null "
                          "space of its force matrix (dimension)",
                "starts": 0, "searches": 0, "reached": 0, "tolerance": None,
                "points": [{**point, "searches": None}]}
    chosen = torch.randperm(len(positions), generator=torch.Generator().manual_seed(seed))
    origin = torch.zeros(1, size, dtype=torch.float64)
    start = torch.cat([origin, positions[chosen[:max(starts - 1, 0)]]])
    downhill = newton_steps(potential, start, True, iterations, tolerance)[0]
    runs = [newton_steps(potential, begin, False, iterations, tolerance)
            for begin in (downhill, start)]
    reached, norm = (torch.cat(parts) for parts in zip(*runs))
    kept = (norm <= tolerance).numpy()
    scale = float(start.square().sum(-1).mean().sqrt())
    points, counts = merge(reached.numpy()[kept], SAME * (1 + scale))
    points = torch.as_tensor(points)
    hessians = gradient_and_hessian(potential, points)[2].numpy()
    found = [{**point, "searches": int(count)}
             for point, count in zip(describe(dynamics, points, hessians), counts)]
    return {"method": "search: from the origin and posterior-mean positions, Newton steps down "
                      "U to a minimum and Levenberg-Marquardt steps on |grad U|^2 / 2 from both",
            "starts": len(start), "searches": len(reached), "reached": int(kept.sum()),
            "tolerance": tolerance,
            "points": sorted(found, key=lambda point: point["energy"])}


def summary(report: dict) -> str:
    """One line of :func:`fixed_points`' report: how many points of each kind, how many of them
    stable, and the largest dimension of a set of them."""
    parts = []
    for kind, plural in (("minimum", "minima"), ("saddle", "saddles"), ("maximum", "maxima")):
        points = [point for point in report["points"] if point["kind"] == kind]
        if points:
            stable = sum(point["stability"] == "stable" for point in points)
            dimension = max(point["dimension"] for point in points)
            parts.append(f"{len(points)} {kind if len(points) == 1 else plural} ({stable} stable"
                         + (f"; sets of dimension {dimension}" if dimension else "") + ")")
    return ", ".join(parts) or f"none reached from {report['starts']} starts"
