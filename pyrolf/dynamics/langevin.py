"""Underdamped Langevin dynamics of the latent state: one transition, used step by step and vectorised.

With position ``z_t`` and velocity ``v_t`` (both ``(..., D)``), step ``Δ``, damping ``γ`` and noise
scale ``σ``::

    z_t = z_{t-1} + Δ v_{t-1}
    v_t ~ Normal((1 - γ) (v_{t-1} + Δ F(z_{t-1})), σ² I),     F = -∇U

:meth:`LangevinDynamics.drift` is the step's deterministic part and :meth:`~LangevinDynamics.transition`
the whole step; both are written once. The step-by-step sites (one Pyro site per bin) call
``transition`` in a loop; :class:`LangevinTrajectory`, one site for a whole trial, calls ``drift`` once
on all bins to score a trajectory and bin by bin (no sampling inside the loop) to draw one. For a
quadratic potential the step is linear in ``(z, v)``, so a trajectory can also be drawn by a parallel
prefix scan over the bins (:func:`linear_scan`, the step's matrix read off ``drift``): about
``2 log2 T`` batched products instead of ``T`` small steps, the same values, and far fewer GPU kernels.
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import torch
from pyro.distributions import Normal, TorchDistribution, constraints
from torch import nn

from pyrolf.names import INTEGRATORS
from pyrolf.dynamics.potentials import force


class StepTerms(NamedTuple):
    """What every step of a trajectory shares: ``Δ``, ``1 - γ`` and the force matrix ``A``
    (``F(z) = z @ A``; ``None`` for autograd's force)."""

    step: torch.Tensor
    keep: torch.Tensor
    force_matrix: torch.Tensor | None


class LangevinDynamics(nn.Module):
    """Damped, forced, noisy motion in a potential.

    Its defaults are the released code's (Δ = 0.01, γ = 0.55, fixed); ``pyrolf fit`` builds it
    with :class:`~pyrolf.config.Config`'s (``step=0.05, damping=0.2, learn=True``:
    :func:`pyrolf.models.build_flow`).

    Args:
        potential: module mapping positions ``(..., D)`` to energies ``(...,)``.
        step: integration step ``Δ``.
        damping: ``γ`` in ``(0, 1)``; the velocity keeps ``1 - γ`` of itself per step.
        noise_scale: ``σ``; default ``sqrt(2 γ)`` (unit mass and temperature, as the released code).
        learn: learn ``Δ``, ``γ`` and ``σ`` by SVI instead of keeping them fixed.
        integrator: how :meth:`integrate` runs a trajectory: ``"loop"`` (bin by bin), ``"scan"``
            (:func:`linear_scan`; a quadratic potential only) or ``"auto"``: the scan on a GPU,
            where the loop's many small kernels, not its arithmetic, set the time, when the
            potential is quadratic and every bin shares one step (a numeric ``follow``: the prior
            and the langevin guide; per-bin steps cost ``T`` matrix products a round); else the
            loop.
    """

    def __init__(self, potential: nn.Module, step: float = 0.01, damping: float = 0.55,
                 noise_scale: float | None = None, learn: bool = False, integrator: str = "auto"):
        super().__init__()
        self.integrator = integrator  # checked by __setattr__
        if not 0.0 < damping < 1.0:
            raise ValueError(f"damping must lie in (0, 1), got {damping}")
        if step <= 0:
            raise ValueError(f"step must be positive, got {step}")
        noise_scale = math.sqrt(2 * damping) if noise_scale is None else noise_scale
        if noise_scale <= 0:
            raise ValueError(f"noise scale must be positive, got {noise_scale}")
        self.potential = potential  # checked by __setattr__, as a later one is
        raw = {
            "log_step": math.log(step),
            "logit_damping": math.log(damping / (1 - damping)),
            "log_noise_scale": math.log(noise_scale),
        }
        for name, value in raw.items():
            if learn:
                self.register_parameter(name, nn.Parameter(torch.tensor(value)))
            else:
                self.register_buffer(name, torch.tensor(value))

    def __setattr__(self, name, value):
        if name == "integrator" and value not in INTEGRATORS:
            raise ValueError(f"integrator must be one of {', '.join(INTEGRATORS)}, got {value!r}")
        if name == "integrator" and "potential" in self._modules:  # (a later one)
            self.check_potential(self.potential, value)
        if name == "potential":
            self.check_potential(value)
        super().__setattr__(name, value)

    def check_potential(self, potential: nn.Module, integrator: str | None = None) -> None:
        """Raise ``ValueError`` for a potential these dynamics cannot integrate with their
        ``integrator`` (or the one given), given to the constructor or put in later as
        ``dynamics.potential = ...`` or ``dynamics.integrator = ...``."""
        if (integrator or self.integrator) == "scan" and not getattr(potential, "quadratic",
                                                                     False):
            raise ValueError("the scan integrator needs a quadratic potential (a linear force); "
                             "use the loop")

    @property
    def step(self) -> torch.Tensor:
        return self.log_step.exp()

    @property
    def damping(self) -> torch.Tensor:
        return torch.sigmoid(self.logit_damping)

    @property
    def noise_scale(self) -> torch.Tensor:
        return self.log_noise_scale.exp()

    def terms(self, like: torch.Tensor, linear: bool = True) -> StepTerms:
        """The constants of every step, computed once per trajectory in ``like``'s dtype; the force
        matrix only when ``linear`` and the potential is quadratic (see :meth:`force_matrix`)."""
        return StepTerms(self.step.to(like.dtype), 1 - self.damping.to(like.dtype),
                         self.force_matrix(like) if linear else None)

    def drift(self, z: torch.Tensor, v: torch.Tensor, terms: StepTerms | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """The deterministic part of one step from ``(z_{t-1}, v_{t-1})``, each ``(..., D)``.

        Returns ``z_t`` and the mean of ``v_t``, ``(1 - γ) (v_{t-1} + Δ F(z_{t-1}))``. ``terms``
        (from :meth:`terms`) saves recomputing the constants bin by bin; with its force matrix
        ``A`` the force is ``z @ A``, else autograd's.
        """
        step, keep, matrix = self.terms(z, linear=False) if terms is None else terms
        pull = force(self.potential, z) if matrix is None else z @ matrix
        return torch.addcmul(z, step, v), keep * torch.addcmul(v, step, pull)

    def innovations(self, z: torch.Tensor, v: torch.Tensor,
                    follow: torch.Tensor | float = 1.0) -> torch.Tensor:
        """What each step adds beyond ``follow`` times its mean, ``v_t - follow · mean(z_{t-1},
        v_{t-1})`` (:meth:`drift`), ``(..., T - 1, D)`` from positions and velocities
        ``(..., T, D)``: the noise under the prior, the inferred input under a posterior."""
        _, mean = self.drift(z[..., :-1, :], v[..., :-1, :], self.terms(z))
        return v[..., 1:, :] - follow * mean

    def transition(self, z: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, Normal]:
        """One step from ``(z_{t-1}, v_{t-1})``, each ``(..., D)``.

        Returns the next position ``z_t`` ``(..., D)`` and the distribution of the next velocity
        ``v_t`` (a ``Normal`` with event dim 1). Any leading shape works, a time axis included.
        """
        z_next, mean = self.drift(z, v)
        return z_next, Normal(mean, self.noise_scale.to(z.dtype).expand(mean.shape)).to_event(1)

    def force_matrix(self, like: torch.Tensor) -> torch.Tensor | None:
        """``A`` ``(D, D)`` with ``F(z) = z @ A`` when the potential is quadratic (its force is
        linear), else ``None``: the potential's own closed form where it has one, else the force
        on the unit vectors. Either keeps the graph to the potential's parameters."""
        if not getattr(self.potential, "quadratic", False):
            return None
        if getattr(self.potential, "force_matrix", None) is not None:
            return self.potential.force_matrix(like)
        return force(self.potential, torch.eye(like.shape[-1], dtype=like.dtype, device=like.device))

    def integrate(self, z0: torch.Tensor, v0: torch.Tensor, innovations: torch.Tensor,
                  follow: torch.Tensor | float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Trajectory driven by given innovations: ``v_t = follow_t · mean(z_{t-1}, v_{t-1}) + u_t``.

        ``z0``, ``v0`` ``(..., D)``; ``innovations`` ``u_{1..T-1}`` ``(..., T-1, D)``; ``follow``
        1 (the transition's mean plus an external input ``u``), 0 (``v_t = u_t``) or a ``(T-1, 1)``
        mix. Returns positions and velocities ``(..., T, D)``; zero innovations give the deterministic
        flow. The loop does no sampling and, for a quadratic potential, one matrix product per bin;
        the scan (see ``integrator``) gives the same values in ``O(log T)`` batched steps.
        """
        terms = self.terms(z0)
        shared = terms.force_matrix is not None and isinstance(follow, numbers.Real)
        if self.integrator == "scan" or (self.integrator == "auto" and shared and z0.is_cuda):
            return self._scan(z0, v0, innovations, follow, terms)
        follow = as_follow(follow, z0).expand(innovations.shape[-2], 1)
        z, v, zs, vs = z0, v0, [z0], [v0]
        for follow_t, innovation in zip(follow.unbind(0), innovations.unbind(-2)):
            z, mean = self.drift(z, v, terms)
            v = torch.addcmul(innovation, follow_t, mean)
            zs.append(z)
            vs.append(v)
        return torch.stack(zs, -2), torch.stack(vs, -2)

    def step_matrices(self, follow: torch.Tensor | float, terms: StepTerms) -> torch.Tensor:
        """The linear step ``[z_t, v_t] = [z_{t-1}, v_{t-1}] @ M_t + [0, u_t]`` of a quadratic
        potential, read off :meth:`drift` on the unit positions and velocities: one ``M``
        ``(2D, 2D)`` for a scalar ``follow`` (the velocity mean's share), ``M_t`` ``(T-1, 2D, 2D)``
        for one per bin ``(T-1, 1)``."""
        matrix = terms.force_matrix
        eye = torch.eye(matrix.shape[-1], dtype=matrix.dtype, device=matrix.device)
        zero = torch.zeros_like(eye)
        rows = [self.drift(eye, zero, terms), self.drift(zero, eye, terms)]  # from z, from v
        per_bin = torch.is_tensor(follow) and follow.dim() > 0
        share = follow.unsqueeze(-1) if per_bin else follow  # (T-1, 1, 1) or a scalar
        bins = share.shape[:1] if per_bin else ()
        return torch.cat([torch.cat([position.expand(bins + position.shape), share * mean], -1)
                          for position, mean in rows], -2)

    def _scan(self, z0: torch.Tensor, v0: torch.Tensor, innovations: torch.Tensor,
              follow: torch.Tensor | float, terms: StepTerms) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`integrate` by :func:`linear_scan`; ``follow`` a scalar or ``(T-1, 1)``."""
        if torch.is_tensor(follow) and follow.dim():
            follow = as_follow(follow, z0).expand(innovations.shape[-2], 1)
        offsets = torch.cat([torch.zeros_like(innovations), innovations], -1)
        states = linear_scan(torch.cat([z0, v0], -1), self.step_matrices(follow, terms), offsets)
        return states.chunk(2, dim=-1)

    def positions(self, z0: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Positions ``z_{0..T-1}`` ``(..., T, D)`` from ``z_0`` ``(..., D)`` and velocities
        ``v_{0..T-1}`` ``(..., T, D)``: ``z_t = z_0 + Δ Σ_{s<t} v_s``."""
        steps = self.step.to(v.dtype) * v[..., :-1, :]
        zero = torch.zeros_like(z0).unsqueeze(-2)
        return z0.unsqueeze(-2) + torch.cat([zero, steps.cumsum(-2)], dim=-2)


def as_follow(follow: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    """``follow`` as a tensor of ``like``'s dtype and device; a number is filled in on the device
    rather than copied from the host, which a CUDA graph could not record."""
    if torch.is_tensor(follow):
        return follow.to(like)
    return like.new_full((), follow)


def linear_scan(x0: torch.Tensor, matrices: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """The states of ``x_t = x_{t-1} @ A_t + b_t``, ``t = 1 .. T-1``, by a parallel prefix scan.

    Args:
        x0: first state ``(..., n)``.
        matrices: one ``A`` ``(n, n)`` for every bin, or ``A_t`` ``(T-1, n, n)``; shared by the
            leading dims.
        offsets: ``b_t`` ``(..., T-1, n)``.

    Returns:
        ``x_0 .. x_{T-1}`` ``(..., T, n)``. Each of the ``ceil(log2(T-1))`` rounds composes every
        bin's affine map with the one ``2^k`` bins before it (Hillis and Steele's scan), so the
        work is batched over the bins instead of spent one bin after another. With one shared
        ``A`` a round is one product by ``A^(2^k)`` (squared from round to round); with ``A_t``
        it also multiplies the bins' matrices.
    """
    n_steps = offsets.shape[-2]
    if n_steps == 0:
        return x0.unsqueeze(-2)
    shared = matrices.dim() == 2
    first = x0 @ (matrices if shared else matrices[0]) + offsets[..., 0, :]
    sums = torch.cat([first.unsqueeze(-2), offsets[..., 1:, :]], -2)  # x_1, then b_2 .. b_{T-1}
    products, shift = matrices, 1
    while shift < n_steps:
        earlier = sums[..., :-shift, :]
        moved = (earlier @ products if shared
                 else torch.einsum("...ti,tij->...tj", earlier, products[shift:]))
        sums = torch.cat([sums[..., :shift, :], moved + sums[..., shift:, :]], -2)
        products = (products @ products if shared
                    else torch.cat([products[:shift], products[:-shift] @ products[shift:]]))
        shift *= 2
    return torch.cat([x0.unsqueeze(-2), sums], -2)


class OverdampedDynamics(LangevinDynamics):
    """Overdamped (Brownian) Langevin dynamics: the velocity keeps no memory of itself.

    ``v_t ~ Normal(F(z_t), σ² I)`` with ``z_t = z_{t-1} + Δ v_{t-1}``, i.e. the Euler–Maruyama step
    ``z_{t+1} = z_t + Δ F(z_t) + Δ σ ξ`` of ``dz = F(z) dt + noise``: the large-damping limit of
    :class:`LangevinDynamics`. ``damping`` only sets the default ``σ = sqrt(2 γ)``. With the
    ``free`` potential (``F = 0``) the positions are a Gaussian random walk. The potential must be
    bounded below: in :class:`~pyrolf.dynamics.potentials.CoupledOscillators`, whose quadratic form
    is indefinite, the flow grows exponentially along its repulsive directions (at initialisation
    ``(1 + 0.05 · 6.8)^49 ≈ 10^6`` over a 50-bin Lorenz trial) and training diverges.
    """

    def check_potential(self, potential: nn.Module, integrator: str | None = None) -> None:
        super().check_potential(potential, integrator)
        if not getattr(potential, "bounded_below", True):  # (one that does not say: the user's)
            raise ValueError(f"the overdamped prior diverges in {type(potential).__name__}, whose "
                             "energy is not bounded below; use CoupledSprings, FreeParticle or "
                             "AnharmonicOscillators")

    def drift(self, z, v, terms=None):
        """``z_t = z_{t-1} + Δ v_{t-1}`` and the mean of ``v_t``, ``F(z_t)``; each ``(..., D)``."""
        step, _, matrix = self.terms(z, linear=False) if terms is None else terms
        z_next = torch.addcmul(z, step, v)
        return z_next, force(self.potential, z_next) if matrix is None else z_next @ matrix


DYNAMICS = {"langevin": LangevinDynamics, "overdamped": OverdampedDynamics}


class LangevinTrajectory(TorchDistribution):
    """The velocities ``v_{1..T-1}`` of a whole trial given ``(z_0, v_0)``, as one site.

    Each bin is ``v_t = follow_t · mean(z_{t-1}, v_{t-1}) + u_t`` with independent innovations
    ``u_t ~ Normal(loc_t, scale_t)``. The defaults (``loc = 0``, ``scale = σ``, ``follow = 1``)
    make it the Langevin prior; the guides pass the encoder's ``loc`` and ``scale``.
    ``event_shape = (T - 1, D)``; ``batch_shape`` that of ``z_0`` without its last dim.

    ``rsample`` runs the transition bin by bin (:meth:`LangevinDynamics.integrate`); ``log_prob``
    recovers every innovation at once from the velocities (positions by a cumulative sum, the
    transition's mean on all bins in one call), so it is exact and batched.

    Args:
        dynamics: the transition.
        z0, v0: initial state ``(..., D)``.
        num_steps: ``T - 1``.
        loc, scale: innovation mean and positive scale ``(..., T - 1, D)``.
        follow: 1, 0 or ``(T - 1, 1)``: how much of the transition's mean each bin keeps.
    """

    arg_constraints = {}
    support = constraints.independent(constraints.real, 2)
    has_rsample = True

    def __init__(self, dynamics: LangevinDynamics, z0: torch.Tensor, v0: torch.Tensor,
                 num_steps: int, loc: torch.Tensor | None = None,
                 scale: torch.Tensor | None = None, follow: torch.Tensor | float = 1.0,
                 validate_args=None):
        shape = z0.shape[:-1] + (num_steps, z0.shape[-1])
        self.dynamics, self.z0, self.v0 = dynamics, z0, v0
        self.loc = z0.new_zeros(()).expand(shape) if loc is None else loc
        self.scale = dynamics.noise_scale.to(z0.dtype).expand(shape) if scale is None else scale
        self.follow = (follow if isinstance(follow, numbers.Real)  # a number or (T-1, 1)
                       else as_follow(follow, z0))
        super().__init__(z0.shape[:-1], torch.Size(shape[-2:]), validate_args)

    def expand(self, batch_shape, _instance=None):
        batch_shape = torch.Size(batch_shape)
        state, steps = batch_shape + self.z0.shape[-1:], batch_shape + self.event_shape
        return LangevinTrajectory(self.dynamics, self.z0.expand(state), self.v0.expand(state),
                                  self.event_shape[0], self.loc.expand(steps),
                                  self.scale.expand(steps), self.follow)

    def rsample(self, sample_shape=torch.Size()):
        shape = self._extended_shape(sample_shape)
        innovations = self.loc + self.scale * torch.randn(shape, dtype=self.loc.dtype,
                                                          device=self.loc.device)
        state = shape[:-2] + self.z0.shape[-1:]
        _, v = self.dynamics.integrate(self.z0.expand(state), self.v0.expand(state),
                                       innovations, self.follow)
        return v[..., 1:, :]

    def log_prob_terms(self, value: torch.Tensor) -> torch.Tensor:
        """The log-density of every bin and dimension ``(..., T - 1, D)`` of velocities
        ``(..., T - 1, D)``: ``log Normal(u_t; loc_t, scale_t)`` of each innovation ``u_t``."""
        v0 = self.v0.expand(value.shape[:-2] + self.v0.shape[-1:])
        v = torch.cat([v0.unsqueeze(-2), value], dim=-2)
        z = self.dynamics.positions(self.z0.expand_as(v0), v)
        return Normal(self.loc, self.scale).log_prob(self.dynamics.innovations(z, v, self.follow))

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """``log q(v_{1..T-1} | z_0, v_0)`` ``(...,)`` for velocities ``(..., T - 1, D)``."""
        return self.log_prob_terms(value).sum((-2, -1))
