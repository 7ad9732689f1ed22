"""pyrolf: LangevinFlow, a sequential VAE with underdamped Langevin latent dynamics, in Pyro."""

from pyrolf.lazy import lazy_names

# pyrolf.pipeline imports torch, Pyro and the evaluation stack, pyrolf.config numpy and h5py:
# on first use, not on import (the command line's own imports then answer Ctrl-C)
__getattr__, __dir__ = lazy_names(globals(), {"config": ("Config",),
                                              "pipeline": ("diagnose_run", "evaluate_run", "fit",
                                                           "infer", "load_run", "resume")})

__all__ = ["Config", "diagnose_run", "evaluate_run", "fit", "infer", "load_run", "resume"]
__version__ = "0.1.0"
