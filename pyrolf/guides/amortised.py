"""Amortised guides: a GRU encoder over held-in spikes gives ``q(z_0, v_0 | h)`` and ``q(v_t | ...)``.

Both guides sample exactly the sites of :class:`pyrolf.dynamics.prior.LangevinPrior`: ``z_0``,
``v_0`` and ``v_1 .. v_{T-1}`` (``stepwise=True``) or one trajectory site ``v`` ``(trials, T-1, D)``
whose log-density is that of the same step-by-step draws. Each bin's ``q`` is
``Normal(follow · prior mean(z_{t-1}, v_{t-1}) + loc(h_t), scale(h_t))``: ``loc`` and ``scale`` come
from the encoder alone, so the trajectory site (:class:`~pyrolf.dynamics.langevin.LangevinTrajectory`)
draws every bin's innovation at once and scores a trajectory in one batched call. Bins past the
encoder's data (the NLB forward window) fall back to the prior transition, so they cost no KL.
"""

from __future__ import annotations

import pyro
import torch
from pyro.distributions import Normal
from torch import nn
from torch.nn import functional as F

from pyrolf.dynamics.langevin import LangevinDynamics
from pyrolf.dynamics.prior import velocity_sites
from pyrolf.nets.networks import SpikeEncoder

MIN_SCALE = 1e-4


def positive_scale(raw_scale: torch.Tensor) -> torch.Tensor:
    """A network's unconstrained output ``(..., D)`` as a scale ``(..., D)``, at least
    :data:`MIN_SCALE`."""
    return F.softplus(raw_scale) + MIN_SCALE


def _normal(loc: torch.Tensor, raw_scale: torch.Tensor) -> Normal:
    return Normal(loc, positive_scale(raw_scale)).to_event(1)


class AmortisedGuide(nn.Module):
    """Shared sampling of the latent sites; subclasses say how each bin's ``q`` reads ``h_t``.

    ``follows_prior``: whether ``q``'s mean is the prior transition's mean plus ``loc`` (``True``)
    or ``loc`` alone (``False``) on the observed bins.
    """

    follows_prior = True

    def __init__(self, n_inputs: int, latent_dim: int, hidden: int = 64,
                 bidirectional: bool = True, dropout: float = 0.1):
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = SpikeEncoder(n_inputs, hidden, bidirectional, dropout)
        self.initial = nn.Linear(self.encoder.out_dim, 4 * latent_dim)

    def bins(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each bin's ``loc`` and positive ``scale`` ``(trials, time, D)`` from the encoder's
        states ``h`` ``(trials, time, ·)``."""
        raise NotImplementedError

    def innovations(self, dynamics: LangevinDynamics, h: torch.Tensor, n_bins: int
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | float]:
        """``loc``, ``scale`` ``(trials, n_bins - 1, D)`` and ``follow`` of the bins ``1 .. T-1``
        from the encoder's states ``h`` ``(trials, observed, ·)``; the bins past ``observed`` are
        the prior's (``loc = 0``, ``scale = σ``, ``follow = 1``). ``follow`` is ``1.0`` when every
        bin keeps the prior's mean (one shared step, see
        :func:`~pyrolf.dynamics.langevin.linear_scan`), else ``(n_bins - 1, 1)``."""
        loc, scale = self.bins(h)
        n_observed = h.shape[1]
        forward = loc.new_zeros(h.shape[0], n_bins - n_observed, self.latent_dim)
        loc = torch.cat([loc[:, 1:], forward], 1)
        scale = torch.cat([scale[:, 1:], forward + dynamics.noise_scale.to(forward.dtype)], 1)
        if self.follows_prior:
            return loc, scale, 1.0
        follow = torch.cat([loc.new_zeros(n_observed - 1, 1), loc.new_ones(n_bins - n_observed, 1)])
        return loc, scale, follow

    def forward(self, dynamics: LangevinDynamics, inputs: torch.Tensor, n_bins: int,
                stepwise: bool = False, draws: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample the latent sites given held-in spikes ``inputs`` ``(trials, observed, held_in)``,
        ``draws`` rows per trial (each trial's next to one another): the encoder and the
        networks that read it run once per trial, their outputs repeated per draw.

        Returns positions and velocities ``(trials · draws, n_bins, D)``.
        """
        return self.sample(dynamics, *self.encoder(inputs), n_bins, stepwise, draws)

    def sample(self, dynamics: LangevinDynamics, h: torch.Tensor, summary: torch.Tensor,
               n_bins: int, stepwise: bool = False, draws: int = 1
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward` from what the encoder made of the inputs: its states ``h``
        ``(trials, observed, ·)`` and its summary ``(trials, ·)``."""
        initial = self.initial(summary)
        loc, scale, follow = self.innovations(dynamics, h, n_bins)
        if draws != 1:
            initial, loc, scale = (x.repeat_interleave(draws, 0) for x in (initial, loc, scale))
        loc_z, loc_v, scale_z, scale_v = initial.chunk(4, dim=-1)
        z = pyro.sample("z_0", _normal(loc_z, scale_z))
        v = pyro.sample("v_0", _normal(loc_v, scale_v))
        return velocity_sites(dynamics, z, v, n_bins, stepwise, loc, scale, follow)


class LangevinGuide(AmortisedGuide):
    """``q(v_t | v_{t-1}, z_{t-1}, h_t) = Normal(prior mean + correction(h_t), scale(h_t))``: the
    correction is the external input the data demand beyond the prior's force."""

    def __init__(self, n_inputs: int, latent_dim: int, hidden: int = 64,
                 bidirectional: bool = True, dropout: float = 0.1):
        super().__init__(n_inputs, latent_dim, hidden, bidirectional, dropout)
        self.from_data = nn.Linear(self.encoder.out_dim, hidden)
        self.out = nn.Linear(hidden, 2 * latent_dim)

    def bins(self, h):
        correction, raw_scale = self.out(torch.tanh(self.from_data(h))).chunk(2, dim=-1)
        return correction, positive_scale(raw_scale)


class MeanFieldGuide(AmortisedGuide):
    """``q(v_t | h_t)``: independent over time given the (bidirectional) encoder, no prior mean."""

    follows_prior = False

    def __init__(self, n_inputs: int, latent_dim: int, hidden: int = 64,
                 bidirectional: bool = True, dropout: float = 0.1):
        super().__init__(n_inputs, latent_dim, hidden, bidirectional, dropout)
        self.out = nn.Linear(self.encoder.out_dim, 2 * latent_dim)

    def bins(self, h):
        loc, raw_scale = self.out(h).chunk(2, dim=-1)
        return loc, positive_scale(raw_scale)
