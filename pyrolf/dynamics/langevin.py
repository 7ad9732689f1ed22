"""Underdamped Langevin dynamics of the latent state: one transition, used step by step and vectorised.

With position ``z_t`` and velocity ``v_t`` (both ``(..., D)``), step ``Δ``, damping ``γ`` and noise
scale ``σ``::

    z_t = z_{t-1} + Δ v_{t-1}
    v_t ~ Normal((1 - γ) (v_{t-1} + Δ F(z_{t-1})), σ² I),     F = -∇U

:meth:`LangevinDynamics.transition` is that step and nothing else. The step-by-step prior (one Pyro
site per bin) calls it in a loop; :class:`LangevinTrajectory` calls it once on a whole trajectory to
get the log-density of all bins in one batched call.
"""

from __future__ import annotations

import math

import torch
from pyro.distributions import Normal, TorchDistribution, constraints
from torch import nn

from pyrolf.dynamics.potentials import force


class LangevinDynamics(nn.Module):
    """Damped, forced, noisy motion in a potential.

    Args:
        potential: module mapping positions ``(..., D)`` to energies ``(...,)``.
        step: integration step ``Δ``.
        damping: ``γ`` in ``(0, 1)``; the velocity keeps ``1 - γ`` of itself per step.
        noise_scale: ``σ``; default ``sqrt(2 γ)`` (unit mass and temperature, as the released code).
        learn: learn ``Δ``, ``γ`` and ``σ`` by SVI instead of keeping them fixed.
    """

    def __init__(self, potential: nn.Module, step: float = 0.01, damping: float = 0.55,
                 noise_scale: float | None = None, learn: bool = False):
        super().__init__()
        if not 0.0 < damping < 1.0:
            raise ValueError(f"damping must lie in (0, 1), got {damping}")
        if step <= 0:
            raise ValueError(f"step must be positive, got {step}")
        noise_scale = math.sqrt(2 * damping) if noise_scale is None else noise_scale
        if noise_scale <= 0:
            raise ValueError(f"noise scale must be positive, got {noise_scale}")
        self.potential = potential
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

    @property
    def step(self) -> torch.Tensor:
        return self.log_step.exp()

    @property
    def damping(self) -> torch.Tensor:
        return torch.sigmoid(self.logit_damping)

    @property
    def noise_scale(self) -> torch.Tensor:
        return self.log_noise_scale.exp()

    def transition(self, z: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, Normal]:
        """One step from ``(z_{t-1}, v_{t-1})``, each ``(..., D)``.

        Returns the next position ``z_t`` ``(..., D)`` and the distribution of the next velocity
        ``v_t`` (a ``Normal`` with event dim 1). Any leading shape works, a time axis included.
        """
        step = self.step.to(z.dtype)
        z_next = z + step * v
        mean = (1 - self.damping.to(z.dtype)) * (v + step * force(self.potential, z))
        return z_next, Normal(mean, self.noise_scale.to(z.dtype).expand(mean.shape)).to_event(1)

    def positions(self, z0: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Positions ``z_{0..T-1}`` ``(..., T, D)`` from ``z_0`` ``(..., D)`` and velocities
        ``v_{0..T-1}`` ``(..., T, D)``: ``z_t = z_0 + Δ Σ_{s<t} v_s``."""
        steps = self.step.to(v.dtype) * v[..., :-1, :]
        zero = torch.zeros_like(z0).unsqueeze(-2)
        return z0.unsqueeze(-2) + torch.cat([zero, steps.cumsum(-2)], dim=-2)

    def rollout(self, z: torch.Tensor, v: torch.Tensor, num_steps: int,
                noise: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the prior forward ``num_steps`` bins from ``(z, v)`` ``(..., D)``.

        Returns positions and velocities of the new bins, each ``(..., num_steps, D)``; with
        ``noise=False`` the velocity follows its mean (the deterministic flow).
        """
        zs, vs = [], []
        for _ in range(num_steps):
            z, velocity = self.transition(z, v)
            v = velocity.rsample() if noise else velocity.mean
            zs.append(z)
            vs.append(v)
        return torch.stack(zs, -2), torch.stack(vs, -2)


class LangevinTrajectory(TorchDistribution):
    """Prior over the velocities ``v_{1..T-1}`` of a whole trial given ``(z_0, v_0)``, as one site.

    ``event_shape = (T - 1, D)``, ``batch_shape`` that of ``z_0`` without its last dim. ``log_prob``
    evaluates every transition at once; ``rsample`` runs the same transition step by step.
    """

    arg_constraints = {}
    support = constraints.independent(constraints.real, 2)
    has_rsample = True

    def __init__(self, dynamics: LangevinDynamics, z0: torch.Tensor, v0: torch.Tensor,
                 num_steps: int, validate_args=None):
        self.dynamics, self.z0, self.v0, self.num_steps = dynamics, z0, v0, num_steps
        super().__init__(z0.shape[:-1], torch.Size([num_steps, z0.shape[-1]]), validate_args)

    def expand(self, batch_shape, _instance=None):
        shape = torch.Size(batch_shape) + self.z0.shape[-1:]
        return LangevinTrajectory(self.dynamics, self.z0.expand(shape), self.v0.expand(shape),
                                  self.num_steps)

    def rsample(self, sample_shape=torch.Size()):
        shape = torch.Size(sample_shape) + self.z0.shape
        _, v = self.dynamics.rollout(self.z0.expand(shape), self.v0.expand(shape), self.num_steps)
        return v

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """``log p(v_{1..T-1} | z_0, v_0)`` ``(...,)`` for velocities ``(..., T - 1, D)``."""
        v0 = self.v0.expand(value.shape[:-2] + self.v0.shape[-1:])
        previous = torch.cat([v0.unsqueeze(-2), value[..., :-1, :]], dim=-2)
        z = self.dynamics.positions(self.z0.expand_as(v0), previous)
        _, velocity = self.dynamics.transition(z, previous)
        return velocity.log_prob(value).sum(-1)
