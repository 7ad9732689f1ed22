"""Data sources: the embedded Lorenz benchmark, a user's own spike file or recording (NWB or
spike times), and NLB'21."""

from __future__ import annotations

from pathlib import Path

from pyrolf.data.dandi import DANDISETS
from pyrolf.data.event_locked import event_locked_dataset
from pyrolf.data.files import flags_heldout, load_spike_file, save_spike_file
from pyrolf.data.lorenz import lorenz_dataset
from pyrolf.data.recordings import (CHOP_OPTIONS, TRIAL_OPTIONS, UNIT_OPTIONS, load_recording,
                                    recording_format)
from pyrolf.data.sessions import Sessions, gather_sessions, session_names
from pyrolf.data.spikes import DataError, SpikeData
from pyrolf.lazy import lazy_names
from pyrolf.messages import note

FILE_SUFFIXES = (".h5", ".hdf5", ".npz", ".nwb")


def load_data(name: str, seed: int = 0, data_dir=None, bin_size_ms: int | None = None,
              phase: str = "val", targets=None) -> SpikeData:
    """``"lorenz"``, an NLB'21 dataset name (see :mod:`pyrolf.data.nlb`; ``data_dir``,
    ``bin_size_ms`` (default 20), ``phase`` and ``targets`` apply to it), the path of a ``.h5`` /
    ``.npz`` spike file (see :mod:`pyrolf.data.files`) or of an own recording, an ``.nwb`` or
    spike-times ``.npz`` file (see :mod:`pyrolf.data.recordings`; ``bin_size_ms`` default 10),
    cut with the defaults of :class:`~pyrolf.config.Config` (:func:`load_config_data` takes them
    all)."""
    from pyrolf.config import Config  # pyrolf.config imports pyrolf.data

    return load_config_data(Config(
        data=str(name), data_seed=seed, bin_size_ms=bin_size_ms, phase=phase,
        data_dir=None if data_dir is None else str(data_dir),
        targets=None if targets is None else str(targets)))


def named_data(name: str | None) -> bool:
    """Whether the ``data`` entry ``name`` names a data set pyrolf knows by name (the embedded
    Lorenz data or an NLB dataset), not a file."""
    return name == "lorenz" or name in DANDISETS


def data_file(name: str) -> Path | None:
    """The file the ``data`` entry ``name`` names, a spike file or a recording (it has the
    extension of one, or something of that name exists); ``None`` for a :func:`named_data`."""
    if named_data(name):
        return None
    path = Path(name)
    return path if path.suffix.lower() in FILE_SUFFIXES or path.exists() else None


def load_config_data(config) -> SpikeData | Sessions:
    """The data a :class:`~pyrolf.config.Config` names (see :func:`load_data`), their last
    ``config.forward_bins`` bins of each trial held back from the encoder (see
    :func:`hold_forward_bins`); with ``config.sessions``, ``data`` and each of them read with the
    same settings and gathered (:func:`pyrolf.data.sessions.gather_sessions`), named by
    ``config.session_names`` or else :func:`~pyrolf.data.sessions.session_names`. Among
    recordings, a binned spike file is read without the settings that cut and bin spike times
    (:data:`CUTTING`): they are the recordings'."""
    if config.sessions:
        paths = session_files(config)
        binned = {name: _binned(path) for name, path in paths.items()}
        mixed = not all(binned.values())
        flagged = _flagging_their_own(config, paths, binned)
        return gather_sessions({
            name: load_config_data(config.alone(path, **(config.defaults(CUTTING)
                                                          if mixed and binned[name] else {}),
                                                **(config.defaults(["heldout_fraction"])
                                                   if name in flagged else {})))
            for name, path in paths.items()})
    return hold_forward_bins(_source_data(config), config.forward_bins)


def session_files(config) -> dict[str, str]:
    """The files of a :class:`~pyrolf.config.Config`'s sessions (``data``, then ``sessions``) by
    name: ``config.session_names``, or else :func:`~pyrolf.data.sessions.session_names`."""
    paths = [config.data, *config.sessions]
    return dict(zip(config.session_names or session_names(paths), paths))


def hold_forward_bins(data: SpikeData, n_forward: int) -> SpikeData:
    """``data`` with its last ``n_forward`` bins of each trial made forward bins
    (``data.n_forward``; the encoder never sees them, fp-bps scores them), in place.

    Raises:
        DataError: ``n_forward`` leaves no observed bin, or the data have forward bins already.
    """
    if n_forward == 0:
        return data
    if data.n_forward:
        raise DataError(f"{data.name} has {data.n_forward} forward bins of its own; leave out "
                        "--forward-bins")
    if n_forward >= data.n_bins:
        raise DataError(f"--forward-bins {n_forward} leaves no observed bin: the trials of "
                        f"{data.name} have {data.n_bins} bins; give fewer")
    lag = abs(data.extra.get("behavior_lag_bins", 0))
    if "behavior" in data.extra and lag >= data.n_bins - n_forward:
        raise DataError(f"--forward-bins {n_forward} leaves {data.n_bins - n_forward} observed "
                        f"bins, not more than the behaviour's lag of {lag} bins, which is "
                        "decoded in them; give fewer forward bins or a shorter lag")
    data.n_forward = n_forward
    return data


#: the settings that cut and bin a recording's spike times and behaviour
CUTTING = (*TRIAL_OPTIONS, *UNIT_OPTIONS, *CHOP_OPTIONS, "behavior", "behavior_lag_ms",
           "bin_size_ms")


def _flagging_their_own(config, paths: dict[str, str], binned: dict[str, bool]) -> list[str]:
    """The sessions (``paths`` by name; ``binned``: which are spike files) that flag their own
    held-out neurons, where ``config`` gives a ``--heldout`` fraction: it applies to the others
    (a note says so), and to none is one line."""
    if config.heldout_fraction == config.defaults(["heldout_fraction"])["heldout_fraction"]:
        return []
    flagged = [name for name, path in paths.items()
               if binned[name] and flags_heldout(data_file(path))]
    if len(flagged) == len(paths):
        raise DataError(f"every session flags its own held-out neurons (`heldout`), so --heldout "
                        f"{config.heldout_fraction:g} applies to none; leave it out")
    if flagged:
        note(f"{', '.join(flagged)} {'flags its' if len(flagged) == 1 else 'flag their'} own "
             f"held-out neurons (`heldout`): --heldout {config.heldout_fraction:g} applies to "
             "the other sessions")
    return flagged


def _binned(name: str) -> bool:
    """Whether ``name`` is a binned spike file (not a recording; see
    :func:`~pyrolf.data.recordings.recording_format`)."""
    path = data_file(name)
    return path is not None and path.is_file() and recording_format(path) is None


def _source_data(config) -> SpikeData:
    """The data a :class:`~pyrolf.config.Config` names, as their source gives them."""
    path = data_file(config.data)
    if path is not None:
        if recording_format(path) is not None:
            return load_recording(path, config)
        cutting = config.changed(CUTTING)
        if cutting:
            raise DataError(f"{path} holds binned counts, so {', '.join(cutting)} cannot apply; "
                            "they cut and bin the spike times and behaviour of recordings (.nwb "
                            "or spike-times .npz files)")
        return load_spike_file(path, seed=config.data_seed,
                               heldout_fraction=config.heldout_fraction)
    if config.data == "lorenz":
        return lorenz_dataset(seed=config.data_seed)
    if config.data in DANDISETS:
        from pyrolf.data.nlb import load_nlb

        return load_nlb(config.data, config.data_dir, config.bin_ms(), config.phase,
                        config.data_seed, config.targets)
    raise DataError(f"unknown dataset {config.data!r}: use 'lorenz', an NLB dataset "
                    f"({', '.join(DANDISETS)}), the path of a .h5/.npz spike file or of a "
                    "recording (.nwb, spike-times .npz)")


# NLB loading imports nlb_tools, pynwb and pandas (about 3 s): on first use, since the Lorenz data
# and spike files do not need them
__getattr__, __dir__ = lazy_names(globals(), {"nlb": ("load_nlb",)})


__all__ = ["DANDISETS", "DataError", "Sessions", "SpikeData", "event_locked_dataset", "data_file", "hold_forward_bins", "load_config_data", "load_data", "load_nlb", "load_recording", "load_spike_file", "lorenz_dataset", "named_data",
           "save_spike_file", "session_files"]
