"""pyrolf: LangevinFlow, a sequential VAE with underdamped Langevin latent dynamics, in Pyro."""

from pyrolf.config import Config
from pyrolf.lazy import lazy_names

# pyrolf.pipeline imports torch, Pyro and the evaluation stack: on first use, not on import
__getattr__, __dir__ = lazy_names(globals(), {"pipeline": ("diagnose_run", "evaluate_run", "fit",
                                                          "infer", "load_run", "resume")})

__all__ = ["Config", "diagnose_run", "evaluate_run", "fit", "infer", "load_run", "resume"]
__version__ = "0.1.0"
