"""pyrolf: LangevinFlow, a sequential VAE with underdamped Langevin latent dynamics, in Pyro."""

from pyrolf.config import Config
from pyrolf.pipeline import diagnose_run, evaluate_run, fit, infer, load_run, resume

__all__ = ["Config", "diagnose_run", "evaluate_run", "fit", "infer", "load_run", "resume"]
__version__ = "0.1.0"
