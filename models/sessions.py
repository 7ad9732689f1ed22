"""One session's view of a LangevinFlow fitted to several (see :mod:`pyrolf.data.sessions`).

:func:`session_flow` is a :class:`~pyrolf.models.langevinflow.LangevinFlow` made of the fitted
flow's own prior, decoder and guide (the same parameters), whose guide takes the session's
held-in counts and whose decoder gives the session's rates only: it reads, scores and trains on
a session's :class:`~pyrolf.data.spikes.SpikeData` as a flow fitted to that session alone would.
With pyrolf's networks it computes with the session's own columns of the encoder's input weights
(:class:`SessionEncoder`) and rows of the decoder's read-out alone, so its networks cost what a
flow of the session's size costs; a guide or decoder of one's own (one that computes its
``forward`` otherwise) is handed the counts laid out among all sessions' columns (zeros
elsewhere), and its rates are picked from all sessions' rows.
"""

from __future__ import annotations

import warnings
from functools import partial

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from pyrolf.data.sessions import Sessions
from pyrolf.data.spikes import SpikeData
from pyrolf.guides.amortised import AmortisedGuide
from pyrolf.models.langevinflow import LangevinFlow
from pyrolf.nets.networks import SpikeEncoder, TransformerDecoder


def _computes_as(module: nn.Module, cls: type) -> bool:
    """Whether ``module`` is a ``cls`` whose ``forward`` is ``cls``'s own."""
    return isinstance(module, cls) and type(module).forward is cls.forward


class SessionDecoder(nn.Module):
    """``decoder``'s log-rates of the session's neurons, the slice ``neurons`` of those of all
    sessions: ``(trials, T, session neurons)``. A
    :class:`~pyrolf.nets.networks.TransformerDecoder` reads out those rows alone."""

    def __init__(self, decoder: nn.Module, neurons: slice):
        super().__init__()
        self.decoder, self.neurons = decoder, neurons
        self.rows_alone = _computes_as(decoder, TransformerDecoder)

    def forward(self, z: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``z``, ``v`` ``(trials, T, D)`` to the session's log-rates ``(trials, T, session
        neurons)``."""
        if self.rows_alone:
            readout = self.decoder.readout
            return F.linear(self.decoder.features(z, v), readout.weight[self.neurons],
                            readout.bias[self.neurons])
        return self.decoder(z, v)[..., self.neurons]


class SessionEncoder(nn.Module):
    """``encoder`` reading a session's held-in counts ``(trials, time, session held_in)``
    through its GRU's input-weight columns ``inputs`` (a slice of all sessions' held-in neurons)
    alone: what ``encoder`` makes of the counts laid out at those columns, zeros elsewhere (a zero
    count adds nothing to the GRU's input), at the cost of the session's own width."""

    def __init__(self, encoder: SpikeEncoder, inputs: slice):
        super().__init__()
        self.encoder, self.inputs = encoder, inputs
        gru = encoder.gru
        # a GRU of the session's input size with no weights of its own (on the meta device, kept
        # out of the module tree) that runs with the encoder's, its input weights' columns cut.
        # It must not flatten the weights it is handed: on a GPU that moves the encoder's own
        # parameters to new memory at every call, under a recorded CUDA graph's feet
        shell = nn.GRU(inputs.stop - inputs.start, gru.hidden_size, gru.num_layers, gru.bias,
                       gru.batch_first, gru.dropout, gru.bidirectional, device="meta")
        shell.flatten_parameters = lambda: None
        self.__dict__["shell"] = shell

    def forward(self, spikes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The session's held-in counts ``(trials, time, session held_in)`` to what
        :meth:`SpikeEncoder.forward <pyrolf.nets.networks.SpikeEncoder.forward>` gives."""
        gru, shell = self.encoder.gru, self.shell
        shell.training = gru.training  # dropout between layers, cuDNN's training path
        weights = {name: value[:, self.inputs] if name.startswith("weight_ih_l0") else value
                   for name, value in gru.named_parameters()}
        with warnings.catch_warnings():  # cuDNN copies the unflattened weights, as it must
            warnings.filterwarnings("ignore", "RNN module weights are not part of single")
            return self.encoder.encode(spikes, partial(functional_call, shell, weights))


class SessionGuide(nn.Module):
    """``guide`` fed the session's held-in counts ``(trials, observed, session held_in)``, the
    columns ``inputs`` (a slice) among the ``n_inputs`` held-in neurons of all sessions: an
    :class:`~pyrolf.guides.amortised.AmortisedGuide` that computes its ``forward`` as its class
    does, through a :class:`SessionEncoder`; any other guide with the counts laid out at those
    columns, zeros elsewhere."""

    def __init__(self, guide: nn.Module, inputs: slice, n_inputs: int):
        super().__init__()
        self.guide, self.inputs, self.n_inputs = guide, inputs, n_inputs
        self.encoder = (SessionEncoder(guide.encoder, inputs)
                        if _computes_as(guide, AmortisedGuide)
                        and _computes_as(guide.encoder, SpikeEncoder) else None)

    def forward(self, dynamics, inputs: torch.Tensor, n_bins: int, stepwise: bool = False,
                draws: int = 1):
        if self.encoder is not None:
            return self.guide.sample(dynamics, *self.encoder(inputs), n_bins, stepwise, draws)
        laid_out = inputs.new_zeros(inputs.shape[:-1] + (self.n_inputs,))
        laid_out[..., self.inputs] = inputs
        return self.guide(dynamics, laid_out, n_bins, stepwise, draws)


def session_flow(flow: LangevinFlow, data: Sessions, name: str) -> LangevinFlow:
    """The view of ``flow``, fitted to the sessions ``data``, that takes session ``name``'s
    data (``data.sessions[name]``) as its own, in ``flow``'s mode (training or not).

    Raises:
        DataError: ``data`` has no session ``name``.
    """
    view = LangevinFlow(flow.prior, SessionDecoder(flow.decoder, data.neurons(name)),
                        SessionGuide(flow.posterior, data.inputs(name), data.n_heldin),
                        flow.stepwise)
    view.training = flow.training  # the shared networks keep the modes they have
    return view


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
