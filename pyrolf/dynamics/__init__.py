"""Latent dynamics: potentials, the Langevin transition, and the prior built on it."""

from pyrolf.lazy import lazy_names

# torch and Pyro on first use: pyrolf.names, which settings are checked against, needs neither
__getattr__, __dir__ = lazy_names(globals(), {
    "langevin": ("DYNAMICS", "LangevinDynamics", "LangevinTrajectory", "OverdampedDynamics"),
    "potentials": ("POTENTIALS", "AnharmonicOscillators", "CoupledOscillators", "CoupledSprings",
                   "FreeParticle", "force"),
    "prior": ("LangevinPrior",)})

__all__ = ["DYNAMICS", "POTENTIALS", "AnharmonicOscillators", "CoupledOscillators",
           "CoupledSprings", "FreeParticle", "LangevinDynamics", "LangevinPrior",
           "LangevinTrajectory", "OverdampedDynamics", "force"]
