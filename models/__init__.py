"""Model assemblies users pick and swap, and hyperparameter presets per dataset."""

from pyrolf.models.langevinflow import LangevinFlow, build_flow
from pyrolf.models.presets import PRESETS, preset

__all__ = ["PRESETS", "LangevinFlow", "build_flow", "preset"]
