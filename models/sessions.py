"""One session's view of a LangevinFlow fitted to several (see :mod:`pyrolf.data.sessions`).

:func:`session_flow` is a :class:`~pyrolf.models.langevinflow.LangevinFlow` made of the fitted
flow's own prior, decoder and guide (the same parameters), whose guide takes the session's
held-in counts and whose decoder gives the session's rates only: it reads, scores and trains on
a session's :class:`~pyrolf.data.spikes.SpikeData` as a flow fitted to that session alone would.
With pyrolf's networks it computes with the session's own columns of the encoder's input weights
(:class:`SessionEncoder`) and rows of the decoder's read-out alone, so its cost is that of a flow
of the session's size; a swapped-in guide is handed the counts laid out among all sessions'
columns (zeros elsewhere), and a swapped-in decoder's rates are picked from all sessions' rows.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from pyrolf.data.sessions import Sessions
from pyrolf.data.spikes import SpikeData
from pyrolf.guides.amortised import AmortisedGuide
from pyrolf.models.langevinflow import LangevinFlow
from pyrolf.nets.networks import SpikeEncoder, TransformerDecoder


def _index(indices: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(indices, dtype=torch.long)


class SessionDecoder(nn.Module):
    """``decoder``'s log-rates of the session's neurons ``neurons`` ``(session neurons,)``
    among those of all sessions: ``(trials, T, session neurons)``. A
    :class:`~pyrolf.nets.networks.TransformerDecoder` reads out those rows alone."""

    def __init__(self, decoder: nn.Module, neurons: np.ndarray):
        super().__init__()
        self.decoder = decoder
        self.register_buffer("neurons", _index(neurons), persistent=False)

    def forward(self, z: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if isinstance(self.decoder, TransformerDecoder):
            readout = self.decoder.readout
            return F.linear(self.decoder.features(z, v), readout.weight[self.neurons],
                            readout.bias[self.neurons])
        return self.decoder(z, v)[..., self.neurons]


class SessionEncoder(nn.Module):
    """``encoder`` reading a session's held-in counts ``(trials, time, session held_in)``
    through the columns ``inputs_at`` of its GRU's input weights alone: what ``encoder`` makes
    of the counts laid out at those columns among all sessions' held-in neurons, zeros elsewhere
    (a zero count adds nothing to the GRU's input), at the cost of the session's own width."""

    def __init__(self, encoder: SpikeEncoder, inputs_at: np.ndarray):
        super().__init__()
        self.encoder = encoder
        self.register_buffer("inputs_at", _index(inputs_at), persistent=False)
        gru = encoder.gru
        # a GRU of the session's input size with no weights of its own (on the meta device, kept
        # out of the module tree): it runs with the encoder's, its input weights' columns picked
        self.__dict__["shell"] = nn.GRU(len(inputs_at), gru.hidden_size, gru.num_layers,
                                        gru.bias, gru.batch_first, 0.0, gru.bidirectional,
                                        device="meta")

    def forward(self, spikes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weights = {name: value[:, self.inputs_at] if name.startswith("weight_ih_l0") else value
                   for name, value in self.encoder.gru.named_parameters()}
        return self.encoder.encode(spikes, partial(functional_call, self.shell, weights))


class SessionGuide(nn.Module):
    """``guide`` fed the session's held-in counts ``(trials, observed, session held_in)``, the
    columns ``inputs_at`` among the ``n_inputs`` held-in neurons of all sessions: an
    :class:`~pyrolf.guides.amortised.AmortisedGuide` through a :class:`SessionEncoder`, any other
    guide with the counts laid out at those columns, zeros elsewhere."""

    def __init__(self, guide: nn.Module, inputs_at: np.ndarray, n_inputs: int):
        super().__init__()
        self.guide, self.n_inputs = guide, n_inputs
        self.register_buffer("inputs_at", _index(inputs_at), persistent=False)
        self.encoder = (SessionEncoder(guide.encoder, inputs_at)
                        if isinstance(guide, AmortisedGuide) else None)

    def forward(self, dynamics, inputs: torch.Tensor, n_bins: int, stepwise: bool = False,
                draws: int = 1):
        if self.encoder is not None:
            return self.guide.sample(dynamics, *self.encoder(inputs), n_bins, stepwise, draws)
        laid_out = inputs.new_zeros(inputs.shape[:-1] + (self.n_inputs,))
        laid_out[..., self.inputs_at] = inputs
        return self.guide(dynamics, laid_out, n_bins, stepwise, draws)


def session_flow(flow: LangevinFlow, data: Sessions, name: str) -> LangevinFlow:
    """The view of ``flow``, fitted to the sessions ``data``, that takes session ``name``'s
    data (``data.sessions[name]``) as its own.

    Raises:
        DataError: ``data`` has no session ``name``.
    """
    neurons = data.neurons(name)
    heldin = np.flatnonzero(data.heldin)
    inputs_at = np.searchsorted(heldin, neurons[data.heldin[neurons]])
    view = LangevinFlow(flow.prior, SessionDecoder(flow.decoder, neurons),
                        SessionGuide(flow.posterior, inputs_at, len(heldin)), flow.stepwise)
    device = next(flow.parameters()).device
    return view.to(device).train(flow.training)


def session_views(flow: LangevinFlow, data: Sessions | SpikeData, names=None) -> dict:
    """``{session: (its view of flow, its data)}`` of the sessions ``names`` of ``data`` (default
    all), or ``{None: (flow, data)}`` for the data of one session.

    Raises:
        DataError: ``data`` has no session of one of ``names``.
    """
    if not isinstance(data, Sessions):
        return {None: (flow, data)}
    return {name: (session_flow(flow, data, name), data.sessions[name])
            for name in (data.sessions if names is None else names)}
