"""LangevinFlow: the model and the guide, one signature, ready for ``pyro.infer.SVI``.

``model(inputs, spikes, mask, n_bins, kl_weight, draws)``::

    with plate("trials"):
        z_0, v_0, v_{1..T-1} ~ Langevin prior            (scaled by kl_weight)
        log λ = TransformerDecoder(z, v)                  (trials, T, neurons)
        spikes ~ Poisson(exp(log λ)), masked to the entries that are scored

``guide(...)`` samples the same latent sites from an amortised posterior (a GRU encoder over the
held-in spikes ``inputs``). Swap any piece: ``LangevinFlow(prior, decoder, guide)``.
"""

from __future__ import annotations

import pyro
import torch
from pyro import poutine
from pyro.distributions import Poisson
from pyro.poutine.runtime import get_plates
from torch import nn

from pyrolf.config import Config
from pyrolf.dynamics.langevin import DYNAMICS
from pyrolf.dynamics.potentials import POTENTIALS
from pyrolf.dynamics.prior import LangevinPrior
from pyrolf.guides import GUIDES
from pyrolf.nets.networks import TransformerDecoder

#: the log-rates the model's Poisson takes, spikes per bin: above, a rate no neuron fires at;
#: below, exp underflows float32's normal numbers (about -87.3), where the log-likelihood of a
#: spike went to -inf and its gradient to inf (a statistics review): rates of 1e-35 and less
#: count as 1e-35
MAX_LOG_RATE, MIN_LOG_RATE = 10.0, -80.0
#: the model's one observed site: the spike counts ``(trials, T, neurons)``
OBSERVATION_SITE = "spikes"


class LangevinFlow(nn.Module):
    """A sequential VAE with a Langevin latent prior.

    Args:
        prior: samples the latent sites and returns ``(z, v)`` ``(trials, T, D)``; it owns the
            ``dynamics`` whose transition the guide builds on.
        decoder: ``(z, v) -> log-rates (trials, T, neurons)``.
        guide: samples the same sites given held-in spikes (see :mod:`pyrolf.guides`), called
            as ``guide(dynamics, inputs, n_bins, stepwise, draws)`` and returning ``(z, v)``
            ``(trials · draws, T, D)``.
        stepwise: one Pyro site per bin instead of one trajectory site (same density, slower).

    The guide module is kept as ``flow.posterior`` (its weights' names in a checkpoint begin
    with ``posterior.``); ``flow.guide`` is the Pyro guide, the function SVI calls.
    """

    def __init__(self, prior: LangevinPrior, decoder: nn.Module, guide: nn.Module,
                 stepwise: bool = False):
        super().__init__()
        self.prior, self.decoder, self.posterior = prior, decoder, guide
        self.stepwise = stepwise

    def model(self, inputs: torch.Tensor, spikes: torch.Tensor | None = None,
              mask: torch.Tensor | None = None, n_bins: int | None = None,
              kl_weight: float = 1.0, draws: int = 1) -> torch.Tensor:
        """Generative model.

        Args:
            inputs: held-in counts the encoder sees, ``(trials, observed, held_in)`` (the model
                only reads its batch size and length).
            spikes: counts of all neurons over all bins ``(trials, T, neurons)``, or ``None`` to
                sample them (posterior predictive).
            mask: bool ``(trials, T, neurons)``, the entries of ``spikes`` that are scored.
            n_bins: ``T``, observed plus forward bins; default ``spikes``' or ``inputs``' length.
            kl_weight: scale of the latent sites (KL warm-up).
            draws: rows per trial of ``inputs``: the ``trials`` plate holds ``trials · draws``
                rows, each trial's draws next to one another (``spikes`` and ``mask``, where
                given, have as many rows). Posterior passes draw a trial many times in one go.

        Returns:
            log-rates ``(trials · draws, T, neurons)``.
        """
        _one_batch("model")
        pyro.module("prior", self.prior)
        pyro.module("decoder", self.decoder)
        n_bins = _length(inputs, spikes, n_bins)
        rows = inputs.shape[0] * draws
        with pyro.plate("trials", rows):
            with poutine.scale(scale=kl_weight):
                z, v = self.prior(rows, n_bins, self.stepwise)
            log_rates = self.decoder(z, v).clamp(MIN_LOG_RATE, MAX_LOG_RATE)
            rates = Poisson(log_rates.exp())
            if mask is not None:
                rates = rates.mask(mask)
            pyro.sample(OBSERVATION_SITE, rates.to_event(2), obs=spikes)
        return log_rates

    def guide(self, inputs: torch.Tensor, spikes: torch.Tensor | None = None,
              mask: torch.Tensor | None = None, n_bins: int | None = None,
              kl_weight: float = 1.0, draws: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Amortised posterior over the latent sites; same arguments as :meth:`model`.

        Returns positions and velocities ``(trials · draws, T, D)``.
        """
        _one_batch("guide")
        pyro.module("guide", self.posterior)
        n_bins = _length(inputs, spikes, n_bins)
        with pyro.plate("trials", inputs.shape[0] * draws), poutine.scale(scale=kl_weight):
            return self.posterior(self.prior.dynamics, inputs, n_bins, self.stepwise, draws)


def _one_batch(part: str) -> None:
    """Refuse a vectorised plate around the ``part`` (model or guide): its tensors are laid out
    ``(trials, T, ...)``, with no dims for a plate's to the left of them."""
    outer = [frame.name for frame in get_plates() if frame.vectorized]
    if outer:
        raise ValueError(f"LangevinFlow's {part} cannot run inside the vectorised plate "
                         f"{outer[0]!r} (Trace_ELBO's vectorize_particles, Predictive's "
                         "parallel=True): draw several particles with its draws argument, which "
                         "draws each trial that many times in one pass, or with num_particles or "
                         "Predictive without vectorising")


def _length(inputs: torch.Tensor, spikes: torch.Tensor | None, n_bins: int | None) -> int:
    if n_bins is not None:
        return n_bins
    return (spikes if spikes is not None else inputs).shape[1]


def build_flow(config: Config, n_neurons: int, n_heldin: int) -> LangevinFlow:
    """The LangevinFlow a :class:`~pyrolf.config.Config` names, for ``n_neurons`` neurons of
    which ``n_heldin`` are held in: the encoder reads those (the data's ``heldout`` flags say
    which, wherever they lie), the decoder gives rates of all (the config has checked the names
    of its prior, potential and guide)."""
    potential = POTENTIALS[config.potential](config.latent_dim, config.channels)
    dynamics = DYNAMICS[config.prior](potential, config.step, config.damping, config.noise_scale,
                                      config.learn_dynamics, config.integrator)
    decoder = TransformerDecoder(config.latent_dim, n_neurons, config.decoder_width,
                                 config.decoder_heads, config.decoder_feedforward,
                                 config.decoder_dropout)
    guide = GUIDES[config.guide](n_heldin, config.latent_dim, config.encoder_hidden,
                                 config.bidirectional, config.encoder_dropout)
    return LangevinFlow(LangevinPrior(dynamics, config.latent_dim), decoder, guide,
                        stepwise=config.sites == "stepwise")
