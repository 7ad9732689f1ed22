"""Model assemblies users pick and swap, and hyperparameter presets per dataset."""

from pyrolf.models.langevinflow import LangevinFlow, build_flow

__all__ = ["LangevinFlow", "build_flow"]
