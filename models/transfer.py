"""Start a fit from another run's weights: all of them but each neuron's own.

A run fitted on one session (or several) has learned dynamics, an encoder's recurrence and a
decoder's Transformer that do not depend on which neurons were recorded. A fit of another session
(``init_from``) starts from those and learns only its neurons' read-in (the encoder's input
weights) and read-out (the decoder's rows) from scratch; it then trains everything as usual.
"""

from __future__ import annotations

import torch

from pyrolf.config import Config
from pyrolf.models.langevinflow import build_flow


def per_neuron(config: Config) -> set[str]:
    """The names of the weights of the flow ``config`` describes (:func:`build_flow`) that have a
    row or column per neuron: the encoder's read-in of the held-in neurons, the decoder's
    read-out of all. They are found as the weights whose shapes change with the neuron count."""
    few, more = (build_flow(config, n_neurons, n_neurons - 1).state_dict()
                 for n_neurons in (2, 3))
    return {name for name, value in few.items() if value.shape != more[name].shape}


def shared_weights(weights: dict[str, torch.Tensor], config: Config) -> dict[str, torch.Tensor]:
    """``weights`` (a flow's ``state_dict``) without the per-neuron ones (:func:`per_neuron`)."""
    own = per_neuron(config)
    return {name: value for name, value in weights.items() if name not in own}
