"""Latent dynamics: potentials, the Langevin transition, and the prior built on it."""

from pyrolf.dynamics.langevin import (DYNAMICS, LangevinDynamics, LangevinTrajectory,
                                      OverdampedDynamics)
from pyrolf.dynamics.potentials import (POTENTIALS, AnharmonicOscillators, CoupledOscillators,
                                        FreeParticle, force)
from pyrolf.dynamics.prior import LangevinPrior

__all__ = ["DYNAMICS", "POTENTIALS", "AnharmonicOscillators", "CoupledOscillators", "FreeParticle",
           "LangevinDynamics", "LangevinPrior", "LangevinTrajectory", "OverdampedDynamics", "force"]
