"""Model assemblies users pick and swap, and hyperparameter presets per dataset."""

from pyrolf.models.langevinflow import LangevinFlow, build_flow
from pyrolf.models.presets import PRESETS, preset
from pyrolf.models.sessions import session_flow

__all__ = ["PRESETS", "LangevinFlow", "build_flow", "preset", "session_flow"]
