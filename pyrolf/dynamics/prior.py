"""The Langevin prior as Pyro sample sites, step by step or as one trajectory site.

Sites (inside the caller's ``trials`` plate): ``z_0`` and ``v_0`` ``(trials, D)``, then either
``v_1 .. v_{T-1}`` ``(trials, D)`` each (``stepwise=True``) or one site ``v`` ``(trials, T-1, D)``.
"""

from __future__ import annotations

import pyro
import torch
from pyro.distributions import Normal
from torch import nn

from pyrolf.dynamics.langevin import LangevinDynamics, LangevinTrajectory


def initial_state(name: str, like: torch.Tensor, batch_size: int, latent_dim: int) -> torch.Tensor:
    """``z_0`` or ``v_0`` ``~ Normal(0, I)``, ``(trials, D)``."""
    zero = like.new_zeros(batch_size, latent_dim)
    return pyro.sample(name, Normal(zero, torch.ones_like(zero)).to_event(1))


class LangevinPrior(nn.Module):
    """``p(z_0) p(v_0) Π_t p(v_t | z_{t-1}, v_{t-1})`` with the transition of ``dynamics``."""

    def __init__(self, dynamics: LangevinDynamics, latent_dim: int):
        super().__init__()
        self.dynamics = dynamics
        self.latent_dim = latent_dim

    def forward(self, batch_size: int, n_bins: int, stepwise: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample the prior's sites; returns positions and velocities, each ``(trials, T, D)``."""
        like = self.dynamics.log_step
        z0 = initial_state("z_0", like, batch_size, self.latent_dim)
        v0 = initial_state("v_0", like, batch_size, self.latent_dim)
        if stepwise:
            z, v, zs, vs = z0, v0, [z0], [v0]
            for t in pyro.markov(range(1, n_bins)):
                z, velocity = self.dynamics.transition(z, v)
                v = pyro.sample(f"v_{t}", velocity)
                zs.append(z)
                vs.append(v)
            return torch.stack(zs, 1), torch.stack(vs, 1)
        rest = pyro.sample("v", LangevinTrajectory(self.dynamics, z0, v0, n_bins - 1))
        v = torch.cat([v0.unsqueeze(1), rest], 1)
        return self.dynamics.positions(z0, v), v
