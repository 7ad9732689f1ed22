"""The Langevin prior as Pyro sample sites, step by step or as one trajectory site.

Sites (inside the caller's ``trials`` plate): ``z_0`` and ``v_0`` ``(trials, D)``, then either
``v_1 .. v_{T-1}`` ``(trials, D)`` each (``stepwise=True``) or one site ``v`` ``(trials, T-1, D)``.
The guides sample the same velocity sites through :func:`velocity_sites`.
"""

from __future__ import annotations

import pyro
import torch
from pyro.distributions import Normal
from torch import nn

from pyrolf.dynamics.langevin import LangevinDynamics, LangevinTrajectory, as_follow


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
        return velocity_sites(self.dynamics, z0, v0, n_bins, stepwise)


def velocity_sites(dynamics: LangevinDynamics, z0: torch.Tensor, v0: torch.Tensor, n_bins: int,
                   stepwise: bool = False, loc: torch.Tensor | None = None,
                   scale: torch.Tensor | None = None, follow: torch.Tensor | float = 1.0
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """The velocity sites after ``z0``, ``v0`` ``(trials, D)``: ``v_1 .. v_{T-1}`` one transition
    at a time (``stepwise``) or the one trajectory site ``v``, each velocity
    ``Normal(follow · transition mean + loc, scale)``; the prior's where ``loc`` is ``None``
    (the guide's corrections ``loc``, ``scale`` ``(trials, T-1, D)`` and ``follow`` as
    :class:`~pyrolf.dynamics.langevin.LangevinTrajectory` takes them). The prior and the guide
    sample their trajectories here, so the two paths are the same in both.

    Returns positions and velocities, each ``(trials, T, D)``.
    """
    if not stepwise:
        rest = pyro.sample("v", LangevinTrajectory(dynamics, z0, v0, n_bins - 1, loc, scale,
                                                   follow))
        v = torch.cat([v0.unsqueeze(1), rest], 1)
        return dynamics.positions(z0, v), v
    follow = as_follow(follow, z0).expand(n_bins - 1, 1)
    z, v, zs, vs = z0, v0, [z0], [v0]
    for t in pyro.markov(range(1, n_bins)):
        z, velocity = dynamics.transition(z, v)
        if loc is not None:
            velocity = Normal(follow[t - 1] * velocity.mean + loc[:, t - 1],
                              scale[:, t - 1]).to_event(1)
        v = pyro.sample(f"v_{t}", velocity)
        zs.append(z)
        vs.append(v)
    return torch.stack(zs, 1), torch.stack(vs, 1)
