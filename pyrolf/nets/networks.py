"""The neural networks of LangevinFlow: a GRU encoder over spikes and a Transformer decoder to rates."""

from __future__ import annotations

import torch
from torch import nn


class SpikeEncoder(nn.Module):
    """GRU over held-in spike counts ``(trials, time, held_in)``.

    Counts enter as ``log1p``; ``bidirectional`` lets each ``h_t`` see the whole trial. Returns the
    per-bin states ``h`` ``(trials, time, out_dim)`` and a whole-trial summary ``(trials, out_dim)``
    (the last forward state beside the first backward state).
    """

    def __init__(self, n_inputs: int, hidden: int = 64, bidirectional: bool = True,
                 dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.gru = nn.GRU(n_inputs, hidden, batch_first=True, bidirectional=bidirectional)
        self.out_dim = hidden * (2 if bidirectional else 1)

    def forward(self, spikes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Held-in counts ``(trials, time, held_in)`` to the per-bin states ``(trials, time,
        out_dim)`` and the whole-trial summary ``(trials, out_dim)`` (see the class)."""
        return self.encode(spikes, self.gru)

    def encode(self, spikes: torch.Tensor, gru) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward` through ``gru``: ``self.gru``, or a recurrence with its weights that
        reads fewer inputs (a session's, :class:`~pyrolf.models.sessions.SessionEncoder`)."""
        h, last = gru(self.dropout(torch.log1p(spikes)))
        summary = torch.cat(list(last), dim=-1)
        return self.dropout(h), self.dropout(summary)


class TransformerDecoder(nn.Module):
    """Latent tokens ``[z_t, v_t]`` ``(trials, time, 2D)`` to log-rates ``(trials, time, neurons)``.

    One ``nn.TransformerEncoderLayer`` over the whole sequence (no positional encoding, no attention
    mask, as the released LangevinFlow code), then a linear read-out of every neuron's log-rate.
    ``dropout`` acts on the residual and feed-forward paths, not on the attention weights: dropping
    attention weights forces PyTorch's unfused attention kernel (forward and backward at batch 256,
    180 bins, 2 CPU threads: 0.77 s with attention dropout 0.05, 0.45 s without).
    """

    def __init__(self, latent_dim: int, n_neurons: int, width: int = 64, heads: int = 2,
                 feedforward: int = 256, dropout: float = 0.05):
        super().__init__()
        self.embed = nn.Linear(2 * latent_dim, width)
        self.layer = nn.TransformerEncoderLayer(width, heads, feedforward, dropout,
                                                batch_first=True)
        self.layer.self_attn.dropout = 0.0
        self.readout = nn.Linear(width, n_neurons)

    def forward(self, z: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Positions and velocities, each ``(trials, time, D)``, to log-rates ``(trials, time,
        neurons)``."""
        return self.readout(self.features(z, v))

    def features(self, z: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """What the read-out reads: the Transformer's tokens ``(trials, time, width)``."""
        return self.layer(self.embed(torch.cat([z, v], dim=-1)))
