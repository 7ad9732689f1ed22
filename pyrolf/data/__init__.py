"""Data sources: the embedded Lorenz benchmark, a user's own spike file, and NLB'21."""

from __future__ import annotations

from pathlib import Path

from pyrolf.data.dandi import DANDISETS
from pyrolf.data.event_locked import event_locked_dataset
from pyrolf.data.files import load_spike_file, save_spike_file
from pyrolf.data.lorenz import lorenz_dataset
from pyrolf.data.spikes import DataError, SpikeData

FILE_SUFFIXES = (".h5", ".hdf5", ".npz")


def load_data(name: str, seed: int = 0, data_dir=None, bin_size_ms: int = 20,
              phase: str = "val", targets=None) -> SpikeData:
    """``"lorenz"``, an NLB'21 dataset name (see :mod:`pyrolf.data.nlb`; ``data_dir``,
    ``bin_size_ms``, ``phase`` and ``targets`` apply to it) or the path of a ``.h5`` / ``.npz`` spike file
    (see :mod:`pyrolf.data.files`)."""
    path = data_file(name)
    if path is not None:
        return load_spike_file(path, seed=seed)
    if name == "lorenz":
        return lorenz_dataset(seed=seed)
    if name in DANDISETS:
        from pyrolf.data.nlb import load_nlb

        return load_nlb(name, data_dir, bin_size_ms, phase, seed, targets)
    raise DataError(f"unknown dataset {name!r}: use 'lorenz', an NLB dataset "
                    f"({', '.join(DANDISETS)}) or the path of a .h5/.npz spike file")


def data_file(name: str) -> Path | None:
    """The spike file the ``data`` entry ``name`` names (it has a spike file's extension, or
    something of that name exists); ``None`` for ``"lorenz"`` and NLB dataset names."""
    if name == "lorenz" or name in DANDISETS:
        return None
    path = Path(name)
    return path if path.suffix.lower() in FILE_SUFFIXES or path.exists() else None


def load_config_data(config) -> SpikeData:
    """The data a :class:`~pyrolf.config.Config` names."""
    return load_data(config.data, config.data_seed, config.data_dir, config.bin_size_ms,
                     config.phase, config.targets)


def __getattr__(name: str):
    """``load_nlb`` on first use: NLB loading imports nlb_tools, pynwb and pandas (about 3 s), which
    the Lorenz data and spike files do not need."""
    if name == "load_nlb":
        from pyrolf.data.nlb import load_nlb

        return load_nlb
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DANDISETS", "DataError", "SpikeData", "event_locked_dataset", "data_file", "load_config_data", "load_data", "load_nlb", "load_spike_file", "lorenz_dataset",
           "save_spike_file"]
