"""One session's view of a LangevinFlow fitted to several (see :mod:`pyrolf.data.sessions`).

:func:`session_flow` is a :class:`~pyrolf.models.langevinflow.LangevinFlow` made of the fitted
flow's own prior, decoder and guide (the same parameters), whose guide takes the session's
held-in counts and whose decoder gives the session's rates only: it reads and scores a session's
:class:`~pyrolf.data.spikes.SpikeData` as a flow fitted to that session alone would.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pyrolf.data.sessions import SESSIONS, session_data
from pyrolf.data.spikes import SpikeData
from pyrolf.models.langevinflow import LangevinFlow


class SessionDecoder(nn.Module):
    """``decoder``'s log-rates ``(trials, T, neurons of all sessions)`` at the session's columns
    ``neurons`` ``(session neurons,)``."""

    def __init__(self, decoder: nn.Module, neurons: np.ndarray):
        super().__init__()
        self.decoder = decoder
        self.register_buffer("neurons", torch.as_tensor(neurons, dtype=torch.long),
                             persistent=False)

    def forward(self, z: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self.decoder(z, v)[..., self.neurons]


class SessionGuide(nn.Module):
    """``guide`` fed the session's held-in counts ``(trials, observed, session held_in)`` at their
    columns ``inputs_at`` among the ``n_inputs`` held-in neurons of all sessions, zeros elsewhere
    (what the guide saw of the session's trials in training)."""

    def __init__(self, guide: nn.Module, inputs_at: np.ndarray, n_inputs: int):
        super().__init__()
        self.guide, self.n_inputs = guide, n_inputs
        self.register_buffer("inputs_at", torch.as_tensor(inputs_at, dtype=torch.long),
                             persistent=False)

    def forward(self, dynamics, inputs: torch.Tensor, n_bins: int, stepwise: bool = False,
                draws: int = 1):
        laid_out = inputs.new_zeros(inputs.shape[:-1] + (self.n_inputs,))
        laid_out[..., self.inputs_at] = inputs
        return self.guide(dynamics, laid_out, n_bins, stepwise, draws)


def session_flow(flow: LangevinFlow, data: SpikeData, name: str) -> LangevinFlow:
    """The view of ``flow``, fitted to the stacked sessions ``data``, that takes session
    ``name``'s data (:func:`~pyrolf.data.sessions.session_data`) as its own.

    Raises:
        DataError: ``data`` has no session ``name``.
    """
    session_data(data, name)
    neurons = data.extra[SESSIONS][name]["neurons"]
    heldin = np.flatnonzero(data.heldin)
    inputs_at = np.searchsorted(heldin, neurons[data.heldin[neurons]])
    view = LangevinFlow(flow.prior, SessionDecoder(flow.decoder, neurons),
                        SessionGuide(flow.posterior, inputs_at, len(heldin)), flow.stepwise)
    device = next(flow.parameters()).device
    return view.to(device).train(flow.training)
