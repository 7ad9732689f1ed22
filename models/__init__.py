"""Model assemblies users pick and swap, and hyperparameter presets per dataset."""

from pyrolf.lazy import lazy_names
from pyrolf.models.presets import ARCHITECTURE, PRESETS, preset

# the assemblies import torch and Pyro: on first use, since a fit's settings need the presets alone
__getattr__, __dir__ = lazy_names(globals(), {"langevinflow": ("LangevinFlow", "build_flow"),
                                              "sessions": ("session_flow",),
                                              "transfer": ("per_neuron", "shared_weights")})

__all__ = ["ARCHITECTURE", "PRESETS", "LangevinFlow", "build_flow", "per_neuron", "preset",
           "session_flow", "shared_weights"]
