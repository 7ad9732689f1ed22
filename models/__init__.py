"""Model assemblies users pick and swap, and hyperparameter presets per dataset."""

from pyrolf.models.langevinflow import LangevinFlow, build_flow
from pyrolf.models.presets import PRESETS, preset
from pyrolf.models.sessions import session_flow
from pyrolf.models.transfer import ARCHITECTURE, per_neuron, shared_weights

__all__ = ["ARCHITECTURE", "PRESETS", "LangevinFlow", "build_flow", "per_neuron", "preset",
           "session_flow", "shared_weights"]
