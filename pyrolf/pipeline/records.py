"""What a run folder records of its fit and its outputs (the data's fingerprint, the modules,
which weights made each output) and how a run is loaded from it: its flow, config and data, on
the device asked for."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from pyrolf.caller_state import keeps_caller_state
from pyrolf.config import Config, ConfigError
from pyrolf.data import SpikeData, data_file, hold_forward_bins, load_config_data
from pyrolf.data.files import check_data, same_data, spikes_fingerprint
from pyrolf.data.sessions import (Sessions, check_session, gather_sessions, session_list,
                                  shared_bin_size)
from pyrolf.data.spikes import DataError
from pyrolf.diagnostics.layout import LAYOUT_FORMAT, data_layout, layout_data
from pyrolf.messages import note, typed
from pyrolf.models import build_flow
from pyrolf.models.sessions import session_views
from pyrolf.names import DEVICES
from pyrolf.runs import RunError, RunFolder
from pyrolf.threads import use_threads


def fitted_record(data: SpikeData | Sessions, flow, fingerprint: dict | None = None) -> dict:
    """What ``fitted.json`` records of a fit of ``flow`` to ``data``: the data's fingerprint
    (``fingerprint`` where it is known, else :func:`~pyrolf.data.files.spikes_fingerprint`), the
    flow's :func:`modules`, the data's bin size (seconds, ``None`` where no source says it) and
    their names (each session's), which tell data given in Python from the config's."""
    return {"data": fingerprint or spikes_fingerprint(session_list(data)),
            "modules": modules(flow), "bin_size_s": shared_bin_size(session_list(data)),
            "names": data_names(data)}


def data_names(data: SpikeData | Sessions) -> list[str]:
    """Each session's name (one data set's), as text: what ``fitted.json`` keeps of them."""
    return [str(own.name) for own in session_list(data)]


def modules(flow) -> dict[str, str]:
    """Each module of ``flow`` by name (``""`` the flow itself): its class, ``module.Class``."""
    return {name: f"{type(module).__module__}.{type(module).__qualname__}"
            for name, module in flow.named_modules()}


@keeps_caller_state
def load_run(run_dir, data: SpikeData | Sessions | None = None, flow=None):
    """The flow of a run folder with its best weights (``best.pt``; ``checkpoint.pt`` before the
    first validation, see :func:`weights_of`), its config and its data (``data`` and ``flow``
    as in :func:`resume`)."""
    return _load_run(run_dir, data, flow=flow)[:3]


def _load_run(run_dir, data: SpikeData | Sessions | None = None, layout: bool = False,
              flow=None):
    """:func:`load_run`'s flow, config and data, and the :func:`weights_record` of the weights;
    ``layout``: ``data`` are the run's :func:`~pyrolf.diagnostics.layout.layout_data`, not
    checked against the fit's fingerprint."""
    run = RunFolder.open(run_dir)
    config = run.config()
    use_threads(config.threads)
    name, saved = _best_weights(run)
    built = flow is not None
    flow, data, _ = _rebuild(run, config, data, layout, flow)
    _load_weights(flow, saved["flow"], run, name, built)
    return flow, config, data, weights_record(name, saved)


def _best_weights(run: RunFolder) -> tuple[str, dict]:
    """The file :func:`load_run` takes its weights from and what it holds: ``best.pt``, else
    ``checkpoint.pt`` (with a note where an epoch scored best); the checkpoint's where
    ``best.pt`` is not of the epoch the checkpoint calls best and that epoch is the checkpoint's
    own (a write of ``best.pt`` failed, or the fit stopped between the two), with a note either
    way that ``pyrolf fit --resume`` mends it."""
    name = weights_of(run)
    saved = run.load(name)
    if name == RunFolder.CHECKPOINT:
        best = saved["state"].get("best_epoch", 0)
        if best > 0:  # (-1: no epoch validated yet)
            note(f"{run.path / RunFolder.BEST} is missing though epoch {best} scored best: the "
                 f"last weights, {_weights_text(weights_record(name, saved))}, are used")
        return name, saved
    if "epoch" not in saved or not run.has(RunFolder.CHECKPOINT):
        return name, saved
    checkpoint = run.load(RunFolder.CHECKPOINT)
    state = checkpoint["state"]
    best = state.get("best_epoch", 0)
    kept = best_kept_in(saved, state)
    if best <= 0 or kept == RunFolder.BEST:
        return name, saved
    mend = f"'pyrolf fit --resume {typed(run.path)}' mends it"
    if kept == RunFolder.CHECKPOINT:
        note(f"{run.path / RunFolder.BEST} holds epoch {saved['epoch']}, not epoch {best}, which "
             f"scored best (a write of it failed, or the fit stopped between its saves): the "
             f"checkpoint's weights, of epoch {best}, are used; {mend}")
        return RunFolder.CHECKPOINT, checkpoint
    note(f"{run.path / RunFolder.BEST} holds epoch {saved['epoch']}, not epoch {best}, which "
         f"scored best (a write of it failed, or the fit stopped between its saves), and those "
         f"weights are kept nowhere: its own are used; {mend}")
    return name, saved


def best_kept_in(best: dict | None, state: dict) -> str | None:
    """Which file holds the weights of the epoch a checkpoint's ``state`` calls best:
    ``best.pt`` where ``best`` (what it holds; ``None``: there is none) is of that epoch, else
    ``checkpoint.pt`` where that epoch is the checkpoint's own (a write of ``best.pt`` failed,
    or the fit stopped between the two), else none (no epoch validated yet, or those weights
    are kept nowhere)."""
    best_epoch = state.get("best_epoch", -1)
    if best is not None and best.get("epoch") == best_epoch:
        return RunFolder.BEST
    if best_epoch == state["epoch"] > 0:
        return RunFolder.CHECKPOINT
    return None


def weights_of(run: RunFolder) -> str:
    """The file whose weights :func:`load_run` takes: ``best.pt``, else ``checkpoint.pt``."""
    return RunFolder.BEST if run.has(RunFolder.BEST) else RunFolder.CHECKPOINT


#: the keys of :func:`weights_record`
WEIGHTS_RECORD = ("weights", "weights_epoch")


def weights_record(name: str, saved: dict) -> dict:
    """What says which weights a result was made from: ``weights``, the run folder's file
    ``name`` (see :func:`weights_of`), and ``weights_epoch``, the epoch of its content ``saved``
    (``best.pt``'s own, a checkpoint's state's)."""
    return {"weights": name,
            "weights_epoch": int(saved["epoch"] if "epoch" in saved else saved["state"]["epoch"])}


def made_from_other_weights(run: RunFolder, record: dict) -> str | None:
    """What ``infer`` and ``diagnose`` made in ``run`` from other weights than ``record`` (see
    :func:`weights_record`), as one line naming each file, the weights it records, and the
    commands that make it again; ``None`` where there is none. ``posterior.nc`` is of the
    weights ``diagnostics.json`` records, written with it; other netCDF files in the folder
    that record weights are ``infer --out``'s."""
    from pyrolf.diagnostics.report import DIAGNOSTICS, POSTERIOR

    inferred = Path(INFERRED)
    made, given = {}, {}  # given: what infer wrote there under another name (--out)
    for path in sorted(run.path.glob(f"*{inferred.suffix}")):
        of = None if path.name == POSTERIOR else _netcdf_record(path)
        if path.name.startswith(inferred.stem):
            made[path.name] = of
        elif of is not None:
            made[path.name] = given[path.name] = of
    if run.has(DYNAMICS):
        made[DYNAMICS] = _json_record(run.path / DYNAMICS)
    diagnosed = {}  # of each folder diagnose wrote: its files in ``made``, their session
    for folder in [run.path, *sorted(run.path.glob(diagnosed_folder("", "*").name))]:
        prefix = "" if folder == run.path else f"{folder.name}/"
        if (folder / DIAGNOSTICS).is_file():
            made[prefix + DIAGNOSTICS] = _json_record(folder / DIAGNOSTICS)
            diagnosed[prefix + DIAGNOSTICS] = (made[prefix + DIAGNOSTICS] or {}).get("session")
        if (folder / POSTERIOR).is_file():
            made[prefix + POSTERIOR] = made.get(prefix + DIAGNOSTICS)
            diagnosed[prefix + POSTERIOR] = diagnosed.get(prefix + DIAGNOSTICS)
    stale = {name: of for name, of in made.items()
             if of is None or {key: of.get(key) for key in WEIGHTS_RECORD} != record}
    if not stale:
        return None
    files = ", ".join(f"{name} ({_weights_text(of) if of else 'weights not recorded'})"
                      for name, of in stale.items())
    commands = []
    if set(stale) - set(diagnosed) - set(given):
        commands.append(f"'pyrolf infer {typed(run.path)}'")
    commands += [f"'pyrolf infer {typed(run.path)} --out {typed(run.path / name)}' "
                 "(and its --data, --session)"
                 for name in stale if name in given]
    for session in dict.fromkeys(diagnosed[name] for name in stale if name in diagnosed):
        commands.append(f"'pyrolf diagnose {typed(run.path)}"
                        f"{f' --session {typed(session)}' if session else ''}'")
    return (f"made from other weights than the run's now, {_weights_text(record)}: {files} in "
            f"{run.path}; to make them again: {' and '.join(commands)}")


def _weights_text(record: dict) -> str:
    return f"epoch {record.get('weights_epoch')} of {record.get('weights')}"


def _json_record(path: Path) -> dict | None:
    """The weights record of a JSON file a command wrote (``None`` where it holds none)."""
    try:
        made = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return made if isinstance(made, dict) and "weights" in made else None


def _netcdf_record(path: Path) -> dict | None:
    """The weights record in the attributes of a netCDF file ``infer`` wrote."""
    import h5py

    try:
        with h5py.File(path, "r") as file:
            attrs = dict(file.attrs)
    except OSError:
        return None
    if "weights" not in attrs:
        return None
    name = attrs["weights"]
    return {"weights": name.decode() if isinstance(name, bytes) else str(name),
            "weights_epoch": int(np.asarray(attrs.get("weights_epoch", -1)).item())}


def _checked(data, forward_bins: int, one_of: int = 1):
    """``data`` (a :class:`SpikeData` or :class:`Sessions`) checked, each session with
    ``forward_bins`` forward bins (see :func:`fit`); ``one_of``: of how many sessions."""
    if isinstance(data, Sessions):
        return gather_sessions({name: _checked(own, forward_bins, len(data.sessions))
                                for name, own in data.sessions.items()})
    data = check_data(data, f"the data ({getattr(data, 'name', 'given')})", one_of)
    if forward_bins and data.n_forward != forward_bins:
        if data.n_forward:
            raise DataError(f"{data.name} has {data.n_forward} forward bins but the settings ask "
                            f"for {forward_bins}; give forward_bins {data.n_forward} or 0")
        data = hold_forward_bins(data, forward_bins)
    return data


def _rebuild(run: RunFolder, config: Config, data: SpikeData | Sessions | None,
             layout: bool = False, flow=None):
    """A run's data (reloaded from its config unless given; a spike file checked against the one
    it was fitted on), an untrained flow for it (``flow``, a model built in Python, where given,
    checked to be of the modules it was fitted with) and the data's :func:`spikes_fingerprint`
    (``None`` for its ``layout``, see :func:`_load_run`)."""
    if flow is not None and not isinstance(flow, torch.nn.Module):
        raise ConfigError(f"flow must be the model the run was fitted with, a LangevinFlow (a "
                          f"torch.nn.Module), got {type(flow).__name__}")
    given = data is not None
    if given and not layout:  # checked and given their forward bins, as the fit's were
        data = _checked(data, config.forward_bins)
    if not given:
        if data_file(config.data) is not None:
            run.check_sources(config)
        data = load_config_data(config)
    fingerprint = None if layout else spikes_fingerprint(session_list(data))
    if not given:
        data, fingerprint = _as_fitted(run, data, fingerprint)
    built = flow is not None
    flow = flow if built else build_flow(config, data.n_neurons, data.n_heldin)
    run.check_fitted(fingerprint, modules(flow), given, built, data_names(data))
    return flow, data, fingerprint


def _add_roles(run: RunFolder, fingerprint: dict) -> None:
    """Give the ``fitted.json`` of a run fitted before pyrolf kept the data's ``roles`` (its
    held-out flags and splits) those of the data it is resumed on (found of its counts by
    :meth:`RunFolder.check_fitted`), so that later reads of it check them too."""
    if not run.has(RunFolder.FITTED):
        return
    fitted = run.read_json(RunFolder.FITTED)
    if "roles" not in fitted["data"]:
        fitted["data"]["roles"] = fingerprint["roles"]
        run.write_json(RunFolder.FITTED, fitted)


def _as_fitted(run: RunFolder, data: SpikeData | Sessions, fingerprint: dict):
    """``data`` (of ``fingerprint``, :func:`spikes_fingerprint`) reloaded for ``run`` as it was
    fitted on them, and their fingerprint: a run fitted before pyrolf read the counts a unit was
    not recorded in (its ``obs_intervals``) as unknown, NaN, read them as zeros, and
    ``fitted.json``'s fingerprint is of those; where it is, they are read so again, with a note.
    Other data are given back as they are (:meth:`RunFolder.check_fitted` judges them)."""
    if not run.has(RunFolder.FITTED) or not any(np.isnan(own.spikes).any()
                                                 for own in session_list(data)):
        return data, fingerprint
    fitted = run.read_json(RunFolder.FITTED)["data"]
    if same_data(fitted, fingerprint):
        return data, fingerprint
    zeros = (lambda own: dataclasses.replace(own, spikes=np.nan_to_num(own.spikes)))
    as_then = (dataclasses.replace(data, sessions={name: zeros(own) for name, own in
                                                   data.sessions.items()})
               if isinstance(data, Sessions) else zeros(data))
    zeros_fingerprint = spikes_fingerprint(session_list(as_then))
    if not same_data(fitted, zeros_fingerprint):
        return data, fingerprint
    note(f"{run.path} was fitted when pyrolf read the counts a unit was not recorded in (its "
         "obs_intervals) as zeros, silence; they are read so for it, whatever a note above says "
         "of them (a new fit reads them as unknown)")
    return as_then, zeros_fingerprint


def _load_weights(flow, weights: dict, run: RunFolder, name: str, built: bool = False) -> None:
    """``flow.load_state_dict(weights)``; weights of other shapes or names than the flow that
    ``config.json`` describes (``built``: the flow given) are a :class:`RunError`."""
    try:
        flow.load_state_dict(weights)
    except RuntimeError as error:
        first = next((line.strip() for line in str(error).splitlines()[1:] if line.strip()),
                     str(error))
        if built:
            raise RunError(f"{run.path / name} does not fit the flow given ({first}): give the "
                           "model the run was fitted with, of its sizes") from None
        raise RunError(f"{run.path / name} does not match {run.path / RunFolder.CONFIG}: the "
                       f"weights do not fit the networks it describes ({first}); was config.json "
                       "edited? Put its settings back or fit a new run") from None


def diagnosed_folder(run_dir, session: str | None = None) -> Path:
    """Where ``diagnose`` writes: the run folder, or for a session of a run of several, its
    folder ``diagnose-SESSION`` in it."""
    return Path(run_dir) if session is None else Path(run_dir) / f"diagnose-{session}"


INFERRED, DYNAMICS, SPECTRUM = "inferred.nc", "dynamics.json", "spectrum.png"


def _layout(run: RunFolder) -> tuple[SpikeData | Sessions | None, str | None]:
    """The run's :func:`~pyrolf.diagnostics.layout.layout_data`, from its ``layout.pt``, and
    ``None``; or ``None`` and, where it has one that cannot be read, is of an older pyrolf or
    of other data (counts, held-out flags, splits) than the run was fitted on, what is wrong
    with it."""
    if not run.has(RunFolder.LAYOUT):
        return None, None
    path = run.path / RunFolder.LAYOUT
    try:
        kept = run.load(RunFolder.LAYOUT)
        if kept.get("format") != LAYOUT_FORMAT:
            return None, f"{path} is of another version of pyrolf"
        layout = layout_data(kept)
    except (RunError, KeyError, TypeError, AttributeError, ValueError):
        return None, f"{path} cannot be read (damaged?)"
    if run.has(RunFolder.FITTED) and not same_data(run.read_json(RunFolder.FITTED)["data"],
                                                    kept["fitted"]):
        return None, f"{path} is of other data than {run.path} was fitted on"
    return layout, None


def keep_layout(run: RunFolder, data: SpikeData | Sessions, fingerprint: dict) -> None:
    """Write the ``layout.pt`` of ``data`` (``fingerprint``: their
    :func:`~pyrolf.data.files.spikes_fingerprint`) into ``run`` where it has none of use
    (:func:`_layout`), with a note where the one it had was wrong."""
    layout, wrong = _layout(run)
    if layout is None:  # (a run fitted before pyrolf kept it, or one of no use: said)
        run.save(RunFolder.LAYOUT, data_layout(data, fingerprint))
        if wrong:
            note(f"{wrong}: written again")


def _session_views(flow, own: SpikeData | Sessions, session: str | None,
                   required: bool) -> dict:
    """:func:`~pyrolf.models.sessions.session_views` of the sessions asked for (all, or
    ``session``; ``required``: one must be named), or ``{None: (flow, own)}`` for a run of one
    session (then ``session`` must be ``None``)."""
    check_session(list(own.sessions) if isinstance(own, Sessions) else [own.name], session,
                  required)
    return session_views(flow, own, None if session is None else [session])


def run_device(config: Config, device: str | None) -> str:
    """The device a command on a run works on: ``device`` where given, else the run's
    (``config``'s), checked (:func:`check_device`)."""
    device = device or config.device
    check_device(device)
    return device


def check_device(device: str) -> None:
    """Refuse, in one line, a device that is none of ``cpu``, ``cuda``, or ``cuda`` where
    PyTorch sees no GPU."""
    if device not in DEVICES:
        raise ConfigError(f"device (--device) must be cpu or cuda, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device cuda (--device, or a run's config.json) was asked for, but "
                          "PyTorch sees no GPU here; give --device cpu (in Python device='cpu') "
                          "or install a CUDA build of torch")
