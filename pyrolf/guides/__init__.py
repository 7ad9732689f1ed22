"""Variational posteriors (guides) over the Langevin latent sites."""

from pyrolf.guides.amortised import LangevinGuide, MeanFieldGuide

GUIDES = {"langevin": LangevinGuide, "meanfield": MeanFieldGuide}

__all__ = ["GUIDES", "LangevinGuide", "MeanFieldGuide"]
