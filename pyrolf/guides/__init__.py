"""Variational posteriors (guides) over the Langevin latent sites. A guide of one's own
subclasses :class:`AmortisedGuide` (the encoder and the sampling of the sites) and says how each
bin's ``q`` reads the encoder's states (``bins``), as :class:`LangevinGuide` does."""

from pyrolf.guides.amortised import AmortisedGuide, LangevinGuide, MeanFieldGuide

GUIDES = {"langevin": LangevinGuide, "meanfield": MeanFieldGuide}

__all__ = ["AmortisedGuide", "GUIDES", "LangevinGuide", "MeanFieldGuide"]
