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
from pyro.poutine.messenger import Messenger
from pyro.poutine.runtime import get_plates
from pyro.poutine.trace_struct import Trace
from torch import nn

from pyrolf.config import Config
from pyrolf.dynamics.langevin import DYNAMICS
from pyrolf.dynamics.potentials import POTENTIALS
from pyrolf.dynamics.prior import LangevinPrior
from pyrolf.guides import GUIDES
from pyrolf.messages import progress_bar
from pyrolf.nets.networks import TransformerDecoder

#: the log-rates the model's Poisson takes, spikes per bin: above, a rate no neuron fires at;
#: below, exp underflows float32's normal numbers (about -87.3), where the log-likelihood of a
#: spike went to -inf and its gradient to inf (a statistics review): rates of 1e-35 and less
#: count as 1e-35
MAX_LOG_RATE, MIN_LOG_RATE = 10.0, -80.0
#: trial-draws per pass of :func:`traced_passes`: on a GPU a pass costs about the same for few
#: rows as for thousands (the time goes to launching kernels), on a CPU it grows with them
DRAWS_PER_PASS = {"cpu": 256, "cuda": 2048}
#: the model's one observed site: the spike counts ``(trials, T, neurons)``
OBSERVATION_SITE = "spikes"


class RatesOnly(Messenger):
    """The model's observation site (:data:`OBSERVATION_SITE`) left undrawn where no counts are
    given: its value is the distribution's mean, the rates, and no counts are simulated. For
    passes that read only the model's log-rates or its latent sites' densities."""

    def _pyro_sample(self, msg):
        if msg["name"] == OBSERVATION_SITE and msg["value"] is None:
            msg["value"] = msg["fn"].mean


def guide_and_model_traces(model, guide, *args, **kwargs) -> tuple[Trace, Trace]:
    """One draw of ``guide(*args, **kwargs)`` and ``model`` replayed on it with the same
    arguments, under :class:`RatesOnly` (where no counts are given, none are drawn): the traces
    ``(guide, model)``."""
    guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
    with RatesOnly():
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(
            *args, **kwargs)
    return guide_trace, model_trace


def traced_passes(model, guide, inputs: torch.Tensor, samples: int,
                  draws_per_pass: int | None = None, progress: str | None = None, **kwargs):
    """``samples`` draws of every trial of ``inputs`` ``(trials, observed, held_in)``, traced
    (:func:`guide_and_model_traces`) pass by pass: yields ``(trials, drawn, guide_trace,
    model_trace)``, ``trials`` a slice of ``inputs``' trials and ``drawn`` the slice of each
    one's draws (of ``range(samples)``) the pass holds; the traces' ``trials`` plate holds
    ``len(trials) · len(drawn)`` rows, each trial's draws next to one another.

    The draws of several trials go through the guide and the model together,
    ``draws_per_pass`` rows at a time (default: by device, :data:`DRAWS_PER_PASS`), through the
    ``draws`` argument of LangevinFlow's signature: the encoder reads each trial once per pass.
    The passes of one slice of trials come one after another and hold ``samples`` draws of each
    of its trials in all. ``kwargs`` go to the guide and the model; ``spikes`` and ``mask``
    among them ``(trials, T, neurons)`` are cut to the pass's trials and repeated for its rows.
    ``progress``: the label of a progress bar of the trial-draws done (on stderr), or ``None``.
    """
    default = DRAWS_PER_PASS.get(inputs.device.type, DRAWS_PER_PASS["cpu"])
    draws_per_pass = draws_per_pass or default
    per_trial = min(samples, draws_per_pass)        # draws of one trial in one pass
    n_trials = inputs.shape[0]
    step = max(1, draws_per_pass // per_trial)      # trials in one pass
    with progress_bar(total=n_trials * samples, desc=progress, unit="draw",
                      disable=progress is None) as bar:
        for start in range(0, n_trials, step):
            trials = slice(start, min(start + step, n_trials))
            for done in range(0, samples, per_trial):
                drawn = slice(done, min(done + per_trial, samples))
                draws = drawn.stop - drawn.start
                rows = {name: kwargs[name][trials].repeat_interleave(draws, 0)
                        for name in ("spikes", "mask") if kwargs.get(name) is not None}
                traces = guide_and_model_traces(model, guide, inputs[trials],
                                                **{**kwargs, **rows}, draws=draws)
                yield (trials, drawn, *traces)
                bar.update((trials.stop - trials.start) * draws)


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
    which the first-listed ``n_heldin`` inputs feed the encoder (the config has checked the
    names of its prior, potential and guide)."""
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
