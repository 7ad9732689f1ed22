"""The caller's global state, left as pyrolf found it.

A notebook runs pyrolf in the same process as the user's own work, so the public functions
(:func:`pyrolf.fit`, :func:`pyrolf.infer`, ...) must not change what the process shares: Pyro's
param store (a fit needs it empty, and ``pyro.module`` fills it under names every flow shares),
the random streams they seed (torch's, NumPy's and Python's), torch's thread count and its
default dtype (pyrolf computes in float32 whatever the caller's default).
"""

from __future__ import annotations

import functools
import random

import numpy as np
import pyro
import torch


def keeps_caller_state(function):
    """``function`` run with an empty param store, float32 as torch's default dtype and random
    streams of its own (forked from the caller's), and the caller's param store, random
    states, thread count and default dtype put back after it, however it ends. CUDA's streams
    are kept where CUDA was in use when it was called (reading them would start CUDA)."""

    @functools.wraps(function)
    def kept(*args, **kwargs):
        store = pyro.get_param_store()
        params, threads = store.get_state(), torch.get_num_threads()
        dtype = torch.get_default_dtype()
        numpy_state, python_state = np.random.get_state(), random.getstate()
        devices = range(torch.cuda.device_count()) if torch.cuda.is_initialized() else []
        store.clear()
        torch.set_default_dtype(torch.float32)
        try:
            with torch.random.fork_rng(devices=devices):
                return function(*args, **kwargs)
        finally:
            store.clear()
            store.set_state(params)
            torch.set_num_threads(threads)
            torch.set_default_dtype(dtype)
            np.random.set_state(numpy_state)
            random.setstate(python_state)

    return kept
