"""Data sources: the embedded Lorenz benchmark, a user's own spike file, and NLB'21."""

from __future__ import annotations

from pathlib import Path

from pyrolf.data.files import load_spike_file, save_spike_file
from pyrolf.data.lorenz import lorenz_dataset
from pyrolf.data.spikes import DataError, SpikeData

FILE_SUFFIXES = (".h5", ".hdf5", ".npz")


def load_data(name: str, seed: int = 0) -> SpikeData:
    """``"lorenz"`` or the path of a ``.h5`` / ``.npz`` spike file (see :mod:`pyrolf.data.files`)."""
    if name == "lorenz":
        return lorenz_dataset(seed=seed)
    if Path(name).suffix.lower() in FILE_SUFFIXES or Path(name).exists():
        return load_spike_file(name, seed=seed)
    raise DataError(f"unknown dataset {name!r}: use 'lorenz' or the path of a .h5/.npz spike file")


__all__ = ["DataError", "SpikeData", "load_data", "load_spike_file", "lorenz_dataset",
           "save_spike_file"]
