"""Amortised guides: a GRU encoder over held-in spikes gives ``q(z_0, v_0 | h)`` and ``q(v_t | ...)``.

Both guides sample exactly the sites of :class:`pyrolf.dynamics.prior.LangevinPrior`: ``z_0``,
``v_0`` and ``v_1 .. v_{T-1}`` (``stepwise=True``) or one trajectory site ``v`` ``(trials, T-1, D)``
whose log-density is that of the same step-by-step draws. Bins past the encoder's data (the NLB
forward window) fall back to the prior transition, so they cost no KL.
"""

from __future__ import annotations

import pyro
import torch
from pyro.distributions import Delta, Normal
from torch import nn
from torch.nn import functional as F

from pyrolf.dynamics.langevin import LangevinDynamics
from pyrolf.nets.networks import SpikeEncoder

MIN_SCALE = 1e-4


def _normal(loc: torch.Tensor, raw_scale: torch.Tensor) -> Normal:
    return Normal(loc, F.softplus(raw_scale) + MIN_SCALE).to_event(1)


class AmortisedGuide(nn.Module):
    """Shared sampling loop; subclasses say how ``q(v_t)`` uses the encoder's state ``h_t``."""

    def __init__(self, n_inputs: int, latent_dim: int, hidden: int = 64,
                 bidirectional: bool = True, dropout: float = 0.1):
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = SpikeEncoder(n_inputs, hidden, bidirectional, dropout)
        self.initial = nn.Linear(self.encoder.out_dim, 4 * latent_dim)

    def drive(self, h: torch.Tensor) -> torch.Tensor:
        """Per-bin features ``(trials, time, ·)`` computed once for all bins."""
        raise NotImplementedError

    def posterior_step(self, drive: torch.Tensor, z: torch.Tensor, v: torch.Tensor,
                       prior: Normal) -> Normal:
        """``q(v_t)`` from the bin's drive, ``(z_{t-1}, v_{t-1})`` and the prior transition."""
        raise NotImplementedError

    def forward(self, dynamics: LangevinDynamics, inputs: torch.Tensor, n_bins: int,
                stepwise: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample the latent sites given held-in spikes ``inputs`` ``(trials, observed, held_in)``.

        Returns positions and velocities ``(trials, n_bins, D)``.
        """
        h, summary = self.encoder(inputs)
        loc_z, loc_v, scale_z, scale_v = self.initial(summary).chunk(4, dim=-1)
        z = pyro.sample("z_0", _normal(loc_z, scale_z))
        v = pyro.sample("v_0", _normal(loc_v, scale_v))
        drive = self.drive(h)
        zs, vs, log_q = [z], [v], 0.0
        for t in range(1, n_bins):
            z_next, prior = dynamics.transition(z, v)
            q = self.posterior_step(drive[:, t], z, v, prior) if t < inputs.shape[1] else prior
            if stepwise:
                v = pyro.sample(f"v_{t}", q)
            else:
                v = q.rsample()
                log_q = log_q + q.log_prob(v)
            z = z_next
            zs.append(z)
            vs.append(v)
        z, v = torch.stack(zs, 1), torch.stack(vs, 1)
        if not stepwise:
            pyro.sample("v", Delta(v[:, 1:], log_density=log_q, event_dim=2))
        return z, v


class LangevinGuide(AmortisedGuide):
    """``q(v_t | v_{t-1}, z_{t-1}, h_t) = Normal(prior mean + correction, scale)``: the correction
    is the external input the data demand beyond the prior's force."""

    def __init__(self, n_inputs: int, latent_dim: int, hidden: int = 64,
                 bidirectional: bool = True, dropout: float = 0.1):
        super().__init__(n_inputs, latent_dim, hidden, bidirectional, dropout)
        self.from_data = nn.Linear(self.encoder.out_dim, hidden)
        self.from_state = nn.Linear(2 * latent_dim, hidden, bias=False)
        self.out = nn.Linear(hidden, 2 * latent_dim)

    def drive(self, h):
        return self.from_data(h)

    def posterior_step(self, drive, z, v, prior):
        u = torch.tanh(drive + self.from_state(torch.cat([z, v], -1)))
        correction, raw_scale = self.out(u).chunk(2, dim=-1)
        return _normal(prior.mean + correction, raw_scale)


class MeanFieldGuide(AmortisedGuide):
    """``q(v_t | h_t)``: independent over time given the (bidirectional) encoder, no prior mean."""

    def __init__(self, n_inputs: int, latent_dim: int, hidden: int = 64,
                 bidirectional: bool = True, dropout: float = 0.1):
        super().__init__(n_inputs, latent_dim, hidden, bidirectional, dropout)
        self.out = nn.Linear(self.encoder.out_dim, 2 * latent_dim)

    def drive(self, h):
        return self.out(h)

    def posterior_step(self, drive, z, v, prior):
        return _normal(*drive.chunk(2, dim=-1))
