"""Fit, resume and evaluate, with or without a run folder: what the CLI and the Python API call."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyro
import torch

from pyrolf.caller_state import keeps_caller_state
from pyrolf.config import NLB_OPTIONS, Config, ConfigError
from pyrolf.data import (CUTTING, DANDISETS, TRIAL_OPTIONS, SpikeData, data_file,
                         hold_forward_bins, load_config_data, named_data, session_files)
from pyrolf.data.files import check_data, check_trials, same_data, spikes_fingerprint
from pyrolf.data.recordings import note_overlapping, open_source, recording_format
from pyrolf.data.sessions import (Sessions, check_session, gather_sessions, same_bin_size,
                                  session_list, shared_bin_size)
from pyrolf.data.spikes import DataError, MissingBehavior, NoTrialsTable
from pyrolf.diagnostics.layout import LAYOUT_FORMAT, data_layout, layout_data
from pyrolf.evaluation.collapse import collapse_finding, collapse_warning
from pyrolf.evaluation.report import INTERVAL_SAMPLES, evaluate, model_rates, prepare_scoring
from pyrolf.inference.svi import Trainer, TrainingDiverged, TrainState, steps_per_epoch
from pyrolf.models import ARCHITECTURE, build_flow, shared_weights
from pyrolf.models.sessions import session_views
from pyrolf.plots import training_curve
from pyrolf.messages import note, notes_kept_back, warning
from pyrolf.names import DEVICES
from pyrolf.runs import RunError, RunFolder, holding_interrupts
from pyrolf.threads import use_threads


@dataclass
class FitResult:
    flow: torch.nn.Module
    state: TrainState
    metrics: dict
    config: Config | None = None
    data: SpikeData | Sessions | None = None


@keeps_caller_state
def fit(data: SpikeData | Sessions, config: Config | None = None, flow=None, run_dir=None,
        progress: bool = True) -> FitResult:
    """Fit ``flow`` (default: the one ``config`` describes) to the training trials of ``data``,
    keep the weights of the best validation co-bps, and score the test trials. With
    ``config.init_from`` the fit starts from that run's weights but each neuron's own
    (:func:`start_from_run`).

    With ``run_dir`` the run is saved there (config, checkpoints, history, metrics, plots; see
    :meth:`pyrolf.runs.RunFolder.create`), the folder is locked while the fit runs, and a first
    checkpoint is written before the first epoch, so that a fit stopped at any moment can be
    continued by :func:`resume`. A folder whose run stopped before its first checkpoint is
    started over.

    ``data`` are checked first (:func:`~pyrolf.data.files.check_data`; each session's), and
    given ``config.forward_bins`` where they have no forward bins yet (data read by
    :func:`~pyrolf.data.load_config_data` have them already). A run folder records their
    fingerprint and the model's modules (``fitted.json``), so that whatever reloads the run is
    refused other data, or a model that ``config`` cannot build (one built in Python).

    The fitted flow comes back in eval mode (no dropout), ready for ``pyro.infer.Predictive``.
    Like every public function here, ``fit`` leaves the caller's Pyro param store, random
    streams, thread count and default dtype as they were (:mod:`pyrolf.caller_state`).

    Raises:
        ConfigError: ``flow``'s weights are not float32.
        DataError: unusable data (one line on what is wrong), or forward bins other than
            ``config.forward_bins``.
        RunError: ``run_dir`` is a file, holds a run with a checkpoint, or is in use.
        RunInterrupted: Ctrl-C while fitting into ``run_dir``; says what the folder keeps.
    """
    config = Config() if config is None else config
    if not isinstance(config, Config):
        raise ConfigError(f"config must be a pyrolf.Config, got {type(config).__name__}; build "
                          "one: pyrolf.Config(**settings)")
    check_device(config.device)
    use_threads(config.threads)
    pyro.set_rng_seed(config.seed)
    data = _checked(data, config.forward_bins)
    for own in session_list(data):
        note_overlapping(own)
    if not config.continuous and all("chop" in own.extra for own in session_list(data)):
        # a recording without trials, chopped as such: say so, so that new data are chopped alike
        config = config.replace(continuous=True)
    flow = starting_flow(config, data, flow)
    prepare_scoring(data)
    if run_dir is None:
        return _train(Trainer(flow, data, config), None, progress)
    fitted = fitted_record(data, flow)
    with RunFolder.create(run_dir, config, fitted) as run:
        run.save(RunFolder.LAYOUT, data_layout(data, fitted["data"]))
        prepare_scoring(data, run.path / RunFolder.TARGETS)
        return _train(Trainer(flow, data, config), run, progress)


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


def fitted_record(data: SpikeData | Sessions, flow, fingerprint: dict | None = None) -> dict:
    """What ``fitted.json`` records of a fit of ``flow`` to ``data``: the data's fingerprint
    (``fingerprint`` where it is known, else :func:`~pyrolf.data.files.spikes_fingerprint`), the
    flow's :func:`modules` and the data's bin size (seconds, ``None`` where no source says it)."""
    return {"data": fingerprint or spikes_fingerprint(session_list(data)),
            "modules": modules(flow), "bin_size_s": shared_bin_size(session_list(data))}


def modules(flow) -> dict[str, str]:
    """Each module of ``flow`` by name (``""`` the flow itself): its class, ``module.Class``."""
    return {name: f"{type(module).__module__}.{type(module).__qualname__}"
            for name, module in flow.named_modules()}


def start_from_run(flow, config: Config, bin_size: float | None = None) -> None:
    """Set ``flow``'s weights, all but the per-neuron ones
    (:func:`pyrolf.models.transfer.shared_weights`), to the best weights (see :func:`weights_of`)
    of the run folder ``config.init_from`` (:func:`init_source`), in place. A note says which
    weights (file and epoch) were taken and which start fresh, and whether a process (a fit
    still training) holds that run; another where that run's bins (``fitted.json``) and the
    data's, ``bin_size`` seconds, are known and differ: the step and damping it learned are per
    bin.

    Raises:
        RunError: as :func:`init_source`, or the run's weights do not fit ``flow``.
        ConfigError: as :func:`init_source`.
    """
    source = init_source(config)
    name = weights_of(source)
    saved = source.load(name, config.device)
    weights = shared_weights(saved["flow"], config)
    theirs = source.read_json(RunFolder.FITTED).get("bin_size_s") if source.has(
        RunFolder.FITTED) else None
    if theirs is not None and bin_size is not None and not same_bin_size(theirs, bin_size):
        note(f"--init-from {source.path} was fitted on bins of {theirs * 1000:g} ms, these data "
             f"have {bin_size * 1000:g} ms: the step and damping it learned are per bin and "
             "are taken as they are")
    own = flow.state_dict()
    misfit = [key for key, value in weights.items()
              if key not in own or own[key].shape != value.shape]
    if misfit:
        raise RunError(f"the weights of {config.init_from} do not fit this flow ({misfit[0]}); "
                       "start it from a run of the same model")
    flow.load_state_dict(weights, strict=False)
    busy = (" (a process holds that run, a fit still training?: its weights as they are now)"
            if source.in_use() else "")
    fresh = ", ".join(sorted(set(own) - set(weights)))
    note(f"starting from {source.path}{busy}: {_weights_text(weights_record(name, saved))}, all "
         f"but the per-neuron weights, which start fresh ({fresh})")


def init_source(config: Config) -> RunFolder:
    """The run folder ``config.init_from``, checked to have the network settings of ``config``.

    Raises:
        RunError: no run folder there.
        ConfigError: the run was fitted with other network settings
            (:data:`~pyrolf.models.presets.ARCHITECTURE`) than ``config``.
    """
    run = RunFolder.open(config.init_from)
    source = run.config()
    differ = [name for name in ARCHITECTURE if getattr(source, name) != getattr(config, name)]
    if differ:
        raise ConfigError(
            f"--init-from {run.path} was fitted with {_settings(source, differ)} but this fit "
            f"has {_settings(config, differ)}; give the run's (pyrolf fit takes them from it "
            "unless told otherwise)")
    return run


def starting_flow(config: Config, data: SpikeData | Sessions, flow=None):
    """The flow a fit of ``config`` on ``data`` starts from: ``flow`` (default: the one
    ``config`` describes), with ``config.init_from``'s weights but each neuron's own where it
    names a run (:func:`start_from_run`).

    Raises:
        ConfigError: ``flow``'s weights are not float32, a ``flow`` built in Python does not
            fit the data (:func:`_check_fits`), or as :func:`start_from_run`.
        RunError: as :func:`start_from_run`.
    """
    given = flow is not None
    flow = flow if given else build_flow(config, data.n_neurons, data.n_heldin)
    _check_float32(flow)
    if given and isinstance(data, SpikeData):
        _check_fits(flow, data)
    if config.init_from is not None:
        start_from_run(flow, config, shared_bin_size(session_list(data)))
    return flow


def _check_fits(flow, data: SpikeData) -> None:
    """Rates of two draws each for two training trials of ``data``, and their ELBO, to refuse in
    one line a flow built in Python whose parts do not fit them (an encoder for other inputs, a
    decoder for other neurons, a prior, guide or decoder of other latent sizes, a guide that
    gives one row per trial where it is asked for ``draws``: the validation's passes ask for
    several), before a fit fails deep in Pyro and leaves a run folder of a model that does not
    run."""
    from pyro.infer import Trace_ELBO

    from pyrolf.inference.svi import make_batch, split_unrecorded

    trials = data.splits["train"][:2]
    device = next(flow.parameters()).device  # (a flow built in Python may be on a GPU already)
    refusable = (RuntimeError, ValueError, TypeError, IndexError, NotImplementedError)
    try:
        rates = model_rates(flow, data, trials, 2, str(device))
    except refusable as error:
        raise _not_fitting(error, data) from None
    if rates.shape != (len(trials), data.n_bins, data.n_neurons):
        raise ConfigError(f"the flow built in Python gives rates of shape {rates.shape[1:]} per "
                          f"trial, not (bins, neurons) {(data.n_bins, data.n_neurons)}; its "
                          f"decoder must give rates of all {data.n_neurons} neurons")
    spikes, recorded = split_unrecorded(torch.as_tensor(data.spikes[trials], device=device))
    batch = make_batch(spikes, torch.as_tensor(data.heldin, device=device), data.n_forward,
                       recorded=recorded)
    try:
        with torch.no_grad():
            Trace_ELBO().loss(flow.model, flow.guide, batch.inputs, batch.spikes, batch.mask)
    except refusable as error:
        raise _not_fitting(error, data) from None


def _not_fitting(error: Exception, data: SpikeData) -> ConfigError:
    """The one line that refuses a flow built in Python on ``error``, the first line of what
    its parts raised on ``data``."""
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return ConfigError(f"the flow built in Python does not fit the data ({first}); its encoder "
                       f"reads the {data.n_heldin} held-in neurons, its decoder gives rates of "
                       f"all {data.n_neurons}, its parts share one latent size and its "
                       "guide gives draws rows per trial (trials x draws: LangevinFlow's "
                       "signature)")


def _check_float32(flow) -> None:
    dtype = next(flow.parameters()).dtype
    if dtype != torch.float32:
        raise ConfigError(f"the flow's weights are {str(dtype).removeprefix('torch.')}; pyrolf "
                          "fits in float32: pass flow.float()")


def _settings(config: Config, names: list[str]) -> str:
    return ", ".join(f"{name} {getattr(config, name)}" for name in names)


@keeps_caller_state
def resume(run_dir, epochs: int | None = None, progress: bool = True,
           data: SpikeData | Sessions | None = None, threads: int | None = None,
           device: str | None = None, flow=None) -> FitResult:
    """Continue the run saved in ``run_dir`` from its last checkpoint (to ``epochs`` if given;
    with ``threads`` CPU threads and on ``device``, ``cpu`` or ``cuda``, if given, else the
    run's settings, which then become these), its folder locked meanwhile.
    A run that stopped before its first checkpoint is started over from epoch 0 with its own
    settings (a note on stderr says so; see :func:`fit`).

    ``data`` is needed only when the run was fitted from Python on data that its config's
    ``data`` entry cannot reload; ``flow`` only when it was fitted with a model built in Python
    (a prior, potential or guide of one's own, which ``config.json`` cannot name): a flow of the
    same modules, whose weights are replaced by the run's.

    Raises:
        ConfigError: ``epochs`` is below the epochs the run has trained (``config.json`` is left
            as it is).
        RunError: the folder is in use, its checkpoint damaged or not of its ``config.json``, or
            its data file missing or changed.
    """
    run = RunFolder.open(run_dir)
    with run.locked(), run.telling_what_is_kept():
        config = run.config()
        if threads is not None:
            config = config.replace(threads=threads)
        if device is not None:
            check_device(device)
            config = config.replace(device=device)
        if run.has(RunFolder.CHECKPOINT):
            return _resume(run, config, epochs, progress, data, flow)
    config = config if epochs is None else config.replace(epochs=epochs)
    data = data if data is not None else load_config_data(config)
    return fit(data, config, flow=flow, run_dir=run.path, progress=progress)


def _resume(run: RunFolder, config: Config, epochs: int | None, progress: bool,
            data: SpikeData | Sessions | None, flow=None) -> FitResult:
    """:func:`resume` of a locked run folder that holds a checkpoint."""
    check_device(config.device)
    use_threads(config.threads)
    checkpoint = run.load(RunFolder.CHECKPOINT, config.device)
    done = checkpoint["state"]["epoch"]
    # what the checkpoint's learning-rate decay is planned for (config.json's may be a later
    # --resume's that stopped before its first checkpoint; older checkpoints lack it)
    planned = checkpoint.get("epochs", config.epochs)
    if epochs is not None:
        if epochs < done:
            raise ConfigError(f"epochs (--epochs) {epochs} is below the {done} epochs "
                              f"{run.path} has trained; give {done} or more")
        config = config.replace(epochs=epochs)
    flow, data, fingerprint = _rebuild(run, config, data, flow=flow)
    _add_roles(run, fingerprint)
    layout, wrong = _layout(run)
    if layout is None:  # (a run fitted before pyrolf kept it, or one of no use: said)
        run.save(RunFolder.LAYOUT, data_layout(data, fingerprint))
        if wrong:
            note(f"{wrong}: written again")
    _load_weights(flow, checkpoint["flow"], run, RunFolder.CHECKPOINT)
    prepare_scoring(data, run.path / RunFolder.TARGETS)
    trainer = Trainer(flow, data, config)
    trainer.restore(checkpoint, reschedule=config.epochs != planned)
    history = checkpoint["state"]["history"]
    if config.epochs > max(done, planned) and history and (
            history[-1]["lr"] <= config.lr_final * (1 + 1e-3)):
        note(f"{run.path}'s learning rate reached lr_final ({config.lr_final:g}) at epoch "
             f"{planned}, where its decay was planned to end: its {config.epochs - done} more "
             f"epochs train at it (a new fit with --epochs {config.epochs} decays over them all)")
    trainer.best_flow = _kept_best(run, checkpoint, config.device)
    if trainer.best_flow is None and trainer.state.best_epoch > 0:  # its weights are lost:
        trainer.state.best_score, trainer.state.best_epoch = -math.inf, -1  # (found again)
    run.write_json(RunFolder.CONFIG, config.to_dict())
    result = _train(trainer, run, progress)
    now = {key: result.metrics[key] for key in WEIGHTS_RECORD}
    stale = made_from_other_weights(run, now)
    if stale:
        note(stale)
    return result


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
    name = weights_of(run)
    saved = run.load(name)
    flow, data, _ = _rebuild(run, config, data, layout, flow)
    _load_weights(flow, saved["flow"], run, name)
    record = weights_record(name, saved)
    best = saved["state"].get("best_epoch", 0) if name == RunFolder.CHECKPOINT else 0
    if best > 0:  # (-1: no epoch validated yet)
        note(f"{run.path / RunFolder.BEST} is missing though epoch {best} scored best: the last "
             f"weights, {_weights_text(record)}, are used")
    return flow, config, data, record


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
        commands.append(f"'pyrolf infer {run.path}'")
    commands += [f"'pyrolf infer {run.path} --out {run.path / name}' (and its --data, --session)"
                 for name in stale if name in given]
    for session in dict.fromkeys(diagnosed[name] for name in stale if name in diagnosed):
        commands.append(f"'pyrolf diagnose {run.path}"
                        f"{f' --session {session}' if session else ''}'")
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


def _rebuild(run: RunFolder, config: Config, data: SpikeData | Sessions | None,
             layout: bool = False, flow=None):
    """A run's data (reloaded from its config unless given; a spike file checked against the one
    it was fitted on), an untrained flow for it (``flow``, a model built in Python, where given,
    checked to be of the modules it was fitted with) and the data's :func:`spikes_fingerprint`
    (``None`` for its ``layout``, see :func:`_load_run`)."""
    given = data is not None
    if not given:
        if data_file(config.data) is not None:
            run.check_sources(config)
        data = load_config_data(config)
    fingerprint = None if layout else spikes_fingerprint(session_list(data))
    if not given:
        data, fingerprint = _as_fitted(run, data, fingerprint)
    built = flow is not None
    flow = flow if built else build_flow(config, data.n_neurons, data.n_heldin)
    run.check_fitted(fingerprint, modules(flow), given, built)
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


def _load_weights(flow, weights: dict, run: RunFolder, name: str) -> None:
    """``flow.load_state_dict(weights)``; weights of other shapes or names than the flow that
    ``config.json`` describes are a :class:`RunError`."""
    try:
        flow.load_state_dict(weights)
    except RuntimeError as error:
        first = next((line.strip() for line in str(error).splitlines()[1:] if line.strip()),
                     str(error))
        raise RunError(f"{run.path / name} does not match {run.path / RunFolder.CONFIG}: the "
                       f"weights do not fit the networks it describes ({first}); was config.json "
                       "edited? Put its settings back or fit a new run") from None


@keeps_caller_state
def evaluate_run(run_dir, data: SpikeData | Sessions | None = None, progress: bool = True,
                 device: str | None = None, flow=None) -> dict:
    """Recompute ``metrics.json`` of a run folder from its saved weights (``data`` and ``flow``
    as in :func:`resume`), its folder locked meanwhile, on ``device`` (``cpu`` or ``cuda``; default
    the run's); ``metrics["weights"]`` and ``metrics["weights_epoch"]`` say which weights (see
    :func:`weights_record`); ``progress``: bars of the trial-draws (on stderr)."""
    run = RunFolder.open(run_dir)
    device = run_device(run.config(), device)  # (before the data load)
    run.check_writable("evaluate", RunFolder.METRICS, "copy the run folder somewhere writable "
                       "and evaluate the copy")
    with run.locked():
        flow, config, data, record = _load_run(run.path, data, flow=flow)
        prepare_scoring(data, run.path / RunFolder.TARGETS)  # (NLB: the kept targets, read)
        pyro.set_rng_seed(config.seed)
        metrics = evaluate(flow.to(device), data, config.samples, device,
                           run.path / RunFolder.SUBMISSION, progress,
                           run.path / RunFolder.SMOOTHING)
        metrics.update(record)
        if run.has(RunFolder.CHECKPOINT):
            state = TrainState(**run.load(RunFolder.CHECKPOINT)["state"])
            metrics.update(training_record(state, config))
            metrics.update(collapse_metrics(metrics, state.history, config,
                                            steps_per_epoch(data, config.batch_size)))
        run.write_json(RunFolder.METRICS, metrics)
    return metrics


def training_record(state: TrainState, config: Config) -> dict:
    """What ``metrics.json`` keeps of the training: the last epoch's ``elbo``, ``epochs``,
    ``best_epoch``, its ``valid_co_bps``, ``seconds`` (all epochs', validation included, over
    every ``--resume``), ``seconds_per_epoch`` and the ``device``."""
    seconds = sum(record["seconds"] for record in state.history)
    return {"elbo": state.history[-1]["elbo"] if state.history else None,
            "epochs": state.epoch, "best_epoch": state.best_epoch,
            "valid_co_bps": state.best_score, "seconds": seconds,
            "seconds_per_epoch": seconds / max(len(state.history), 1), "device": config.device}


def collapse_metrics(metrics: dict, history: list[dict], config: Config, steps: int) -> dict:
    """``collapsed`` (and, when true, ``collapse``: what was seen) of a fit from its test
    ``metrics`` (the smoothing baseline's co-bps; on the validation trials where the test
    trials are not scored, an NLB test phase without targets) and its training ``history`` (the
    validation co-bps and KL per bin); see :func:`pyrolf.evaluation.collapse.collapse_finding`.
    Of several sessions, each is checked too, by its test co-bps against its own baseline's
    (pooled, a good session can hide one whose latents predict nothing). A collapse is said in
    one line on stderr (:func:`~pyrolf.evaluation.collapse.collapse_warning`, its advice of
    ``config``'s KL weight, batch size, epochs and KL warm-up, the fit's ``steps`` an epoch and
    the epochs it trained, the last of ``history``)."""
    scores = [r["valid_co_bps"] for r in history if "valid_co_bps" in r]
    kls = [r["kl_per_bin"] for r in history if "kl_per_bin" in r]
    baseline = metrics.get("smoothing_co_bps", metrics.get("smoothing_valid_co_bps"))
    finding = collapse_finding(max(scores) if scores else None, baseline,
                               kls[-1] if kls else None)
    for name, own in metrics.get("sessions", {}).items():
        finding = finding or collapse_finding(own.get("co_bps"), own.get("smoothing_co_bps"),
                                              None, f"session {name}'s test co-bps")
    if finding:
        trained = history[-1]["epoch"] if history else 0  # (a run stopped early: fewer)
        warning(collapse_warning(finding, config.kl_weight, config.batch_size, config.epochs,
                                 steps, config.kl_warmup, trained))
    return {"collapsed": finding is not None, **({"collapse": finding} if finding else {})}


@keeps_caller_state
def diagnose_run(run_dir, samples: int = 100, trials=None,
                 data: SpikeData | Sessions | None = None, progress: bool = True,
                 session: str | None = None, device: str | None = None,
                 rates: bool = False, flow=None) -> dict:
    """Posterior diagnostics of a run folder from its best weights (see
    :func:`pyrolf.diagnostics.diagnose`): ``samples`` posterior draws per trial, written to
    ``posterior.nc``, ``diagnostics.json`` and PNG figures in ``run_dir``, its folder locked
    meanwhile.

    ``trials``: ``None`` for the test trials (on NLB data the ``valid`` trials, since NLB's
    evaluation trials have unknown held-out spikes), a count for the first trials of that split,
    or a sequence of trial indices. ``data`` and ``flow`` as in :func:`resume`. ``progress``: a progress bar
    of the draws (on stderr). ``session``: of a run fitted to several sessions, the one to
    diagnose (needed; see :mod:`pyrolf.data.sessions`), whose files go to its own folder in
    ``run_dir`` (:func:`diagnosed_folder`), so that each session's stay. ``device``: ``cpu`` or
    ``cuda`` (default the run's). ``rates``: ``posterior.nc`` keeps each draw's rates too
    (``posterior/rates``, as large as the predicted counts in floats). Returns what
    ``diagnostics.json`` holds, ``weights`` and ``weights_epoch`` saying which weights (see
    :func:`weights_record`).
    """
    from pyrolf.diagnostics import diagnose, select_trials
    from pyrolf.diagnostics.export import run_attrs
    from pyrolf.diagnostics.report import DIAGNOSTICS, check_samples

    samples = check_samples(samples)  # before the data are read (and their notes printed)
    run = RunFolder.open(run_dir)
    device = run_device(run.config(), device)  # (before the data load)
    run.check_writable("diagnose", DIAGNOSTICS, "copy the run folder somewhere writable and "
                       "diagnose the copy")
    given = data is not None  # (given in Python: their name is their source, not the config's)
    with run.locked():
        flow, config, data, record = _load_run(run.path, data, flow=flow)
        ((flow, data),) = _session_views(flow, data, session, required=True).values()
        target = RunFolder(diagnosed_folder(run.path, session))
        target.path.mkdir(exist_ok=True)
        pyro.set_rng_seed(config.seed)
        attrs = {**run_attrs(data, config.to_dict()), **record,
                 **({} if given else {"source": session_files(config)[session] if session
                                      else config.data}),
                 **({"session": session} if session else {})}
        report = diagnose(flow.to(device), data, select_trials(data, trials), samples,
                          target, device, progress, attrs, rates)
        report.update(record)
        if session is not None:
            report["session"] = session
        target.write_json(DIAGNOSTICS, report)
    return report


def diagnosed_folder(run_dir, session: str | None = None) -> Path:
    """Where ``diagnose`` writes: the run folder, or for a session of a run of several, its
    folder ``diagnose-SESSION`` in it."""
    return Path(run_dir) if session is None else Path(run_dir) / f"diagnose-{session}"


INFERRED, DYNAMICS, SPECTRUM = "inferred.nc", "dynamics.json", "spectrum.png"
#: names of files that say they hold netCDF (netCDF-4 is HDF5)
NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf", ".cdf", ".h5", ".hdf5")


@keeps_caller_state
def infer(run, data=None, samples: int = INTERVAL_SAMPLES, device: str | None = None,
          progress: bool = True, session: str | None = None,
          trials_where: list[str] | None = None,
          fitted_on: SpikeData | Sessions | None = None, flow=None):
    """Every trial's posterior as an ``xarray.Dataset`` (what ``pyrolf infer`` writes to
    ``inferred.nc``; see :func:`pyrolf.diagnostics.export.inferred_dataset`): posterior means and
    central 90 % intervals of ``z``, ``v``, ``inputs`` and ``rates`` from ``samples`` draws per
    trial, with each trial's index, split and condition, and attributes ``weights`` and
    ``weights_epoch`` (see :func:`weights_record`); a continuous recording's windows merged
    into one series ``(time, ...)`` over the whole recording
    (:func:`pyrolf.diagnostics.export.merged_dataset`). Writes nothing.

    Args:
        run: a run folder, or the :class:`FitResult` of :func:`fit`.
        data: the trials to infer: ``None`` for the run's own data (all splits; NLB: every
            training and evaluation trial; a run fitted from Python on a
            :class:`~pyrolf.data.SpikeData` needs it given, as its own), a
            :class:`~pyrolf.data.SpikeData`, a spike file's
            or recording's (``.nwb``, spike-times ``.npz``) path or an NLB name, read with the
            run's config with only ``data`` replaced (the same bins, window, chop). Their
            neurons are the run's, all of them or only the held-in ones, or for a recording
            matched by unit id, held-in units it lacks filled (see
            :func:`~pyrolf.diagnostics.new_trials.new_trials`,
            :mod:`pyrolf.diagnostics.missing`); rates are predicted for all the run's neurons.
        samples: posterior draws per trial (at least 1).
        device: ``cpu`` or ``cuda``; default the run's.
        progress: a progress bar of the trial-draws inferred (on stderr).
        session: of a run fitted to several sessions (:mod:`pyrolf.data.sessions`), the one to
            infer, whose neurons ``data`` hold (needed with ``data``). Without it, such a run
            gives ``{session: Dataset}`` of its own trials, each on its session's neurons.
        trials_where: of a recording given as ``data``, the conditions its trials must meet in
            place of the run's (``[]``: every trial; ``None``: the run's).
        fitted_on: of a run folder fitted from Python (on a :class:`~pyrolf.data.SpikeData`
            or :class:`~pyrolf.data.sessions.Sessions` its config cannot reload), the data it
            was fitted on (as ``data`` of :func:`load_run`), so that ``data`` can be new trials
            (needed only where the run folder has no ``layout.pt``, a run from before it).
        flow: of a run folder fitted with a model built in Python, a flow of the same
            modules, whose weights are replaced by the run's (see :func:`resume`).

    Raises:
        ConfigError: ``data`` for a run of several sessions without ``session``;
            ``trials_where`` without ``data`` read from a file, or a condition that is no
            condition.
        DataError: ``session`` is not one of the run's (or the run has one).
    """
    inferred = _infer(run, data, samples, device, progress, session, trials_where,
                      fitted_on, flow=flow)[1]
    if list(inferred) == [None] or session is not None:
        return next(iter(inferred.values()))[1]
    return {name: dataset for name, (_, dataset) in inferred.items()}


@keeps_caller_state
def infer_run(run_dir, data=None, samples: int = INTERVAL_SAMPLES, out=None,
              device: str | None = None, progress: bool = True,
              session: str | None = None, trials_where: list[str] | None = None,
              fitted_on: SpikeData | Sessions | None = None, flow=None) -> dict:
    """:func:`infer` on a run folder, written to ``out`` (default ``RUN_DIR/inferred.nc``), and,
    where all the run's own trials are inferred (no ``data``, no ``session``), the modes of the
    learned dynamics (:func:`pyrolf.dynamics.spectrum.dynamics_spectrum`) and its fixed points
    (:func:`pyrolf.dynamics.fixed_points.fixed_points`, searched from the inferred positions) to
    ``RUN_DIR/dynamics.json``, and the modes to ``spectrum.png``: they describe the run, so new
    trials or one session leave them as they are (``dynamics`` false). A run of several
    sessions writes one file per session inferred, ``out``'s name with ``-SESSION`` before its
    suffix (``RUN_DIR/inferred-SESSION.nc``), or ``out`` itself where given with ``session``. The
    arguments are checked before anything is computed and every file is written through a
    temporary one, so an error leaves the run folder as it was.
    Returns ``trials`` (a continuous recording's windows; then also ``windows`` and ``bins``, the
    merged series' length, summed over the sessions), ``samples``, ``out`` (the list of files for
    several sessions), ``weights`` and ``weights_epoch`` (which weights, see
    :func:`weights_record`; also attributes of each file and entries of ``dynamics.json``),
    ``dynamics`` (whether ``dynamics.json`` was written) and what it holds. ``fitted_on`` and
    ``flow``: as in :func:`infer`."""
    from pyrolf.diagnostics.export import write_inferred
    from pyrolf.diagnostics.plots import spectrum as plot_spectrum
    from pyrolf.dynamics.fixed_points import fixed_points
    from pyrolf.dynamics.spectrum import dynamics_spectrum

    run = RunFolder.open(run_dir)
    given = out is not None
    named = given and session is not None  # the one file, named
    out = Path(out) if given else run.path / INFERRED
    _check_writable(out, run, given)
    if given and data is None and session is None:  # (the dynamics go into the run folder)
        run.check_writable("infer", DYNAMICS, "infer into a copy of the run folder, or give "
                           "--data or --session (which write no dynamics)")
    if out.suffix.lower() not in NETCDF_SUFFIXES:
        note(f"--out {out} is written as netCDF (xarray.open_dataset reads it), whatever its "
             "name says")
    # new trials into a file elsewhere: nothing need be written into the run folder
    with run.locked(reading=given and data is not None and not _inside(out, run.path)):
        flow, inferred = _infer(run.path, data, samples, device, progress, session,
                                trials_where, fitted_on, mend=os.access(run.path, os.W_OK),
                                flow=flow)
        files = {name: out if name is None or named else
                 out.with_name(f"{out.stem}-{name}{out.suffix}") for name in inferred}
        _, first = next(iter(inferred.values()))
        record, spectrum = {key: first.attrs[key] for key in WEIGHTS_RECORD}, {}
        if data is None and session is None:  # the run's own trials, all of them
            positions = np.concatenate([dataset["z"].values.reshape(-1, dataset.sizes["latent"])
                                        for _, dataset in inferred.values()])
            spectrum = dynamics_spectrum(flow.prior.dynamics, positions,
                                         shared_bin_size(own for own, _ in inferred.values()))
            spectrum["fixed_points"] = fixed_points(flow.prior.dynamics, positions)
        for name, (_, dataset) in inferred.items():
            write_inferred(dataset, files[name])
        if spectrum:
            radius = f"largest |eigenvalue| {spectrum['spectral_radius']:.4f}"
            run.write_json(DYNAMICS, {**record, **spectrum})
            plot_spectrum(spectrum["modes"], radius, run.path / SPECTRUM)
    chopped = all("chop" in own.extra for own, _ in inferred.values())
    counts = ({"windows": sum(len(own.extra["chop"]["starts"]) for own, _ in inferred.values()),
               "bins": sum(dataset.sizes["time"] for _, dataset in inferred.values())}
              if chopped else {})
    written = list(files.values())
    return {"trials": sum(trials.n_trials for trials, _ in inferred.values()), **counts,
            "samples": samples, "out": written[0] if list(files) == [None] else written,
            **record, "dynamics": bool(spectrum), **spectrum}


def _infer(run, data, samples: int, device: str | None, progress: bool,
           session: str | None = None, trials_where: list[str] | None = None,
           fitted_on: SpikeData | Sessions | None = None, mend: bool = False, flow=None):
    """The flow and, per session inferred, the inferred trials laid out on its neurons and the
    Dataset of :func:`infer` (one entry, named ``None``, for a run of one session). ``mend``:
    the run folder is writable and locked (:meth:`RunFolder.locked` locks a writable one), so a
    ``layout.pt`` of no use is written again."""
    from pyrolf.diagnostics.export import check_summary_memory, infer_trials
    from pyrolf.diagnostics.new_trials import new_trials
    from pyrolf.diagnostics.missing import fill_missing_counts
    from pyrolf.diagnostics.report import check_samples

    samples = check_samples(samples, least=1)
    data = str(data) if isinstance(data, Path) else data
    if trials_where is not None and not isinstance(data, str):
        raise ConfigError("--trials-where chooses among new trials read from a file: give "
                          "--data too")
    if data is not None and not isinstance(data, (str, SpikeData)):
        raise DataError(f"data must be a file's path, an NLB name or a pyrolf.data.SpikeData, "
                        f"got {type(data).__name__}")
    if fitted_on is not None and not isinstance(fitted_on, (SpikeData, Sessions)):
        raise DataError(f"fitted_on must be the pyrolf.data.SpikeData (or Sessions) the run was "
                        f"fitted on, got {type(fitted_on).__name__}")
    config = run.config if isinstance(run, FitResult) else RunFolder.open(run).config()
    device = run_device(config, device)  # (before the data load)
    loaded = None  # new trials, read once; laid out on each inferred session's neurons
    if isinstance(data, SpikeData):
        loaded = check_trials(data, f"the data ({data.name})")
    files = {}  # the files of the run's own sessions, by name, where its config names them
    new = _other_than_own(data, config, trials_where)
    # what the run folder keeps to lay new trials out by (where its data would be read)
    layout, wrong = (_layout(RunFolder(run)) if new and fitted_on is None
                     and not isinstance(run, FitResult) else (None, None))
    if isinstance(run, FitResult):
        flow, config, own = run.flow, run.config, run.data
        record = {key: run.metrics[key] for key in WEIGHTS_RECORD}
    elif fitted_on is not None:  # the run's own data, which a run fitted from Python cannot reload
        flow, config, own, record = _load_run(run, fitted_on, flow=flow)
        loaded = None if data is fitted_on else loaded
    elif loaded is not None and _fitted_on(RunFolder.open(run), loaded):  # (the same, as data)
        flow, config, own, record = _load_run(run, loaded, flow=flow)
        loaded = None
    elif layout is not None:
        # laid out by what the run keeps of its data: the file it was fitted on is not read
        flow, config, own, record = _load_run(run, layout, layout=True, flow=flow)
        files = session_files(config)
    else:
        if wrong:
            note(f"{wrong}; the run's own data are read in its place"
                 + (", and it is written again from them" if mend else ""))
        # the run's own data; where others are inferred, what the fit said of them is not said
        with notes_kept_back() if data is not None else nullcontext():
            flow, config, own, record = _load_run(run, flow=flow)
        files = session_files(config)
        if wrong and mend:
            RunFolder(run).save(RunFolder.LAYOUT,
                                data_layout(own, spikes_fingerprint(session_list(own))))
    views = _session_views(flow, own, session, required=data is not None)
    _check_session_file(data, session, files, run)
    if isinstance(data, str) and (new or not isinstance(own, SpikeData)):
        if trials_where is not None:
            config = config.replace(trials_where=trials_where)
        loaded = _new_data(config, data, [mine for _, mine in views.values()],
                           chosen=trials_where is not None)
    inferred = {}
    for name, (view, mine) in views.items():
        trials = mine if loaded is None else new_trials(
            _same_bins(loaded, mine), mine.heldout, mine.extra.get("unit_ids"),
            mine.extra.get("unit_table"), mine.extra.get("unit_descriptions"))
        if loaded is not None and "window" in mine.extra and "window" not in loaded.extra:
            note(f"{loaded.name} says nothing of where its bins lie: their time counts from 0 "
                 f"s, where the run's trials were cut from {mine.extra['window'][0]:g} s around "
                 f"their {config.align}")
        if (loaded is not None and isinstance(data, SpikeData)
                and np.shape(data.heldout) == mine.heldout.shape
                and not np.array_equal(np.asarray(data.heldout, bool), mine.heldout)):
            note(f"{loaded.name} flags other neurons as held out than the run: the run's "
                 f"{int(mine.heldout.sum())} are held out (the encoder reads the others), as it "
                 "was fitted")
        its_own = trials is mine  # (the fill below gives a copy where it fills some counts)
        check_summary_memory(view, trials)  # (before the fill's draws and the output's)
        pyro.set_rng_seed(config.seed)  # (the fill's draws, then the output's, each seeded)
        trials = fill_missing_counts(view.to(device), trials, mine, device, progress=progress)
        if "nlb" in trials.extra:
            from pyrolf.data.nlb import with_behavior  # nlb_tools, pynwb, pandas: NLB data only

            kept = None if isinstance(run, FitResult) or not its_own or mine is not own else (
                Path(run) / RunFolder.TARGETS)
            trials = with_behavior(trials, kept)
        pyro.set_rng_seed(config.seed)
        dataset = infer_trials(view.to(device), trials, samples, config.to_dict(), device,
                               progress=progress)
        dataset.attrs.update(record)
        if isinstance(data, str):
            dataset.attrs["source"] = str(data_file(data).absolute()) if data_file(data) else data
        elif its_own and files:
            dataset.attrs["source"] = files[name] if name is not None else config.data
        if name is not None:
            dataset.attrs["session"] = name
        inferred[name] = trials, dataset
    return flow, inferred


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


def _other_than_own(data, config: Config, trials_where: list[str] | None) -> bool:
    """Whether infer's ``data`` are other trials than the run's own (of ``config``): a file or
    name other than its ``data`` (or chosen by ``trials_where``), or a :class:`SpikeData`."""
    if isinstance(data, str):
        return data != config.data or trials_where is not None or bool(config.sessions)
    return data is not None


def _same_bins(trials: SpikeData | None, run: SpikeData) -> SpikeData | None:
    """New ``trials`` in the ``run``'s bins: refused where they say another bin size (the
    learned dynamics take one step a bin), taken to be in the run's, with a note, where they
    say none."""
    if trials is None or run.bin_size is None:
        return trials
    if trials.bin_size is None:
        note(f"{trials.name} says no bin size (a spike file's bin_size_s, a SpikeData's "
             f"bin_size): its bins are taken to be the run's, {run.bin_size * 1000:g} ms")
        return dataclasses.replace(trials, bin_size=run.bin_size)
    if not same_bin_size(trials.bin_size, run.bin_size):
        raise DataError(f"the trials of {trials.name} are in {trials.bin_size * 1000:g} ms bins, "
                        f"but the run was fitted on {run.bin_size * 1000:g} ms bins, one step of "
                        f"its dynamics each; bin them at {run.bin_size * 1000:g} ms")
    return trials


def _check_session_file(data, session: str | None, files: dict, run) -> None:
    """Refuse ``data``, a file given to infer as ``session``'s trials, where it is the file of
    another of the run's sessions (``files``, by name), or a copy of it (its size and SHA-256
    those the run folder ``run``'s ``source.json`` recorded of that file): its units would be
    read as ``session``'s by id."""
    from pyrolf.data.files import fingerprint  # (here: a name the module's locals use otherwise)

    path = data_file(data) if isinstance(data, str) and session is not None else None
    if path is None or not files or not path.is_file():
        return
    run = RunFolder(run)
    record = run.read_json(RunFolder.SOURCE) if run.has(RunFolder.SOURCE) else {}
    entries = [record, *record.get("sessions", [])] if record else [{}] * len(files)
    size, content = path.stat().st_size, None
    for (name, own), entry in zip(files.items(), entries):
        if name == session:
            continue
        same = Path(own).resolve() == path.resolve()
        copy = not same and entry.get("bytes") == size and entry.get("sha256") == (
            content := content or fingerprint(path)["sha256"])
        if same or copy:
            raise ConfigError(f"{data} is the file of the run's session {name}"
                              f"{' (a copy of it)' if copy else ''}, not of {session}: its units "
                              f"would be read as {session}'s; give --session {name}")


def _fitted_on(run: RunFolder, data: SpikeData) -> bool:
    """Whether ``run`` was fitted on ``data`` (by ``fitted.json``'s fingerprint)."""
    return (run.has(RunFolder.FITTED) and
            same_data(run.read_json(RunFolder.FITTED)["data"], spikes_fingerprint([data])))


def _session_views(flow, own: SpikeData | Sessions, session: str | None,
                   required: bool) -> dict:
    """:func:`~pyrolf.models.sessions.session_views` of the sessions asked for (all, or
    ``session``; ``required``: one must be named), or ``{None: (flow, own)}`` for a run of one
    session (then ``session`` must be ``None``)."""
    check_session(list(own.sessions) if isinstance(own, Sessions) else [own.name], session,
                  required)
    return session_views(flow, own, None if session is None else [session])


def _new_data(config: Config, data: str, runs: list[SpikeData], chosen: bool = False
              ) -> SpikeData:
    """``data`` read with the run's ``config`` (as one session), the run's forward bins held
    back; without the run's behavioural series (which only scoring and the ``behavior`` variable
    read) a note says so and it is read without. Of a recording, only the units of the run
    (of ``runs``, the data of each session inferred) are read, with a note naming the others,
    and its trials are cut by the run's window (a run fitted without ``--window`` has the one its
    own shortest trial gave, not the new file's); a binned spike file is read without the
    settings that cut recordings, as among a run's sessions. ``chosen``: the trials' conditions
    are the caller's, not the run's (errors they cause are not said to be the run's).

    Raises:
        DataError: a named data set (NLB, Lorenz) other than the run's, a recording given to a
            run binned in fractions of a ms, trials no longer than the run's forward bins, or
            as :func:`~pyrolf.data.load_config_data`, the message of a recording's saying that
            the run's settings were used."""
    # the run's held-out neurons apply to new trials (its units picked by id, not by the
    # Units-table conditions that chose them, which another day's labels may not meet), and its
    # NLB settings only to NLB data
    if named_data(data) and data != config.data:
        what = "the embedded Lorenz benchmark" if data == "lorenz" else "an NLB dataset"
        raise DataError(f"{data} is {what}, but the run was fitted on {config.data}: the "
                        f"neurons of {data} are not the run's; give trials of the run's own units")
    windows = [run.extra["window"] for run in runs if "window" in run.extra]
    path = data_file(data)
    binned = path is not None and path.is_file() and recording_format(path) is None
    as_run = config.alone(data, forward_bins=0, **Config.defaults(
        ("heldout_fraction", *(() if data in DANDISETS else NLB_OPTIONS),
         *(CUTTING if binned else ()))))  # binned counts: as a binned session among recordings
    if not binned:
        as_run = as_run.replace(
            units_where=_run_units(path, runs, config.units_where),
            window=config.window or (",".join(repr(float(edge)) for edge in windows[0])
                                     if windows else None))
        bins = {round(run.bin_size * 1000, 6) for run in runs if run.bin_size}
        if config.bin_size_ms is None and len(bins) == 1:  # (a run of binned data: its bins)
            ms = bins.pop()
            if not ms.is_integer():
                raise DataError(f"the run's bins are {ms:g} ms, and pyrolf bins recordings in "
                                f"whole ms; bin {data} at {ms:g} ms yourself and give it as a "
                                "spike file with bin_size_s")
            as_run = as_run.replace(bin_size_ms=int(ms))
    try:
        try:
            loaded = load_config_data(as_run)
        except MissingBehavior as missing:
            note(f"{missing}; inferring without it (no `behavior` in the output)")
            loaded = load_config_data(as_run.replace(behavior=None, behavior_lag_ms=0))
    except NoTrialsTable:
        raise DataError(f"{data} has no trials table, but the run was fitted on trials cut by "
                        f"its settings ({', '.join(as_run.changed(TRIAL_OPTIONS))}): it infers "
                        "trials alike; fit a run on the file as a continuous recording (--chop) "
                        "to infer it") from None
    except DataError as error:
        if binned or chosen and str(error).startswith("--trials-where"):
            raise  # (a binned file's errors are of its counts: the run's settings do not cut it)
        raise DataError(f"{error} ({data} is read with the run's settings, its config.json's)"
                        ) from None
    forward = config.forward_bins
    if forward and not loaded.n_forward and forward >= loaded.n_bins:
        raise DataError(f"the run holds back the last {forward} bins of each trial as forward "
                        f"bins (fitted with --forward-bins {forward}), but the trials of {data} "
                        f"have {loaded.n_bins} bins; give trials longer than {forward} bins")
    return hold_forward_bins(loaded, forward)


def _run_units(path: Path | None, runs: list[SpikeData], units_where: list[str]) -> list[str]:
    """The ``units_where`` that keeps the units of the recording at ``path`` that ``runs`` (the
    data of a run's sessions, chosen by the run's ``units_where``) have, by id, with a note
    naming the others; none (all units) where ``path`` is no recording, a run has no unit ids or
    the recording holds fewer than two of its units or too few of a session's held-in ones
    (:func:`~pyrolf.diagnostics.new_trials.in_run_order` then says which it lacks)."""
    if (path is None or not path.is_file() or recording_format(path) is None
            or any("unit_ids" not in run.extra for run in runs)):
        return []
    from pyrolf.diagnostics.new_trials import note_strangers
    from pyrolf.diagnostics.missing import enough_held_in

    with open_source(path) as source:
        ids = np.asarray(source.unit_ids)
    theirs = np.isin(ids, np.concatenate([run.extra["unit_ids"] for run in runs]))
    if theirs.sum() < 2 or not all(enough_held_in(ids, run) for run in runs):
        return []
    note_strangers(ids[~theirs], units_where)
    return [f"id={','.join(str(unit) for unit in ids[theirs])}"]


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` lies in ``folder``."""
    return path.resolve().parent == folder.resolve()


def _check_writable(path: Path, run: RunFolder, given: bool = True) -> None:
    """Stop before any work when ``path`` (``--out``, or where not ``given`` the ``inferred.nc``
    of ``run``) cannot be written: its folder missing or read-only, or ``path`` a folder."""
    if path.is_dir():
        raise ConfigError(f"--out {path} is a folder; give a file name such as {path / INFERRED}"
                          if given else f"{path}, where infer writes, is a folder; move it away "
                          "or give --out FILE")
    if not given:
        run.check_writable("infer", INFERRED, "give --out FILE (out= in Python) elsewhere")
    elif not path.parent.is_dir():
        raise ConfigError(f"--out {path}: folder {path.parent} does not exist; create it first")
    elif not os.access(path.parent, os.W_OK):
        raise ConfigError(f"--out {path}: folder {path.parent} is not writable")


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


def _train(trainer: Trainer, run: RunFolder | None, progress: bool = True) -> FitResult:
    if run is not None:
        trainer.on_checkpoint = lambda t, is_best: _save(run, t, is_best)
        if not run.has(RunFolder.CHECKPOINT):  # at once: from here on the run can be continued
            run.save(RunFolder.CHECKPOINT, trainer.checkpoint())
    try:
        state = trainer.fit(progress)
    except TrainingDiverged as error:
        where = f"; the last good checkpoint is in {run.path}" if run is not None else ""
        raise TrainingDiverged(f"{error}{where}; fit again with a lower learning rate (--lr and "
                               "another --out; in Python Config's lr)") from None
    if trainer.best_flow is not None:
        trainer.flow.load_state_dict(trainer.best_flow)
    config = trainer.config
    pyro.set_rng_seed(config.seed)
    submission, kept = ((run.path / RunFolder.SUBMISSION, run.path / RunFolder.SMOOTHING)
                         if run is not None else (None, None))
    metrics = evaluate(trainer.flow, trainer.data, config.samples, config.device, submission,
                       progress, kept)
    metrics.update(training_record(state, config))
    best = trainer.best_flow is not None
    metrics.update(weights=RunFolder.BEST if best else RunFolder.CHECKPOINT,
                   weights_epoch=state.best_epoch if best else state.epoch)
    metrics.update(collapse_metrics(metrics, state.history, config, trainer.steps_per_epoch))
    if run is not None:
        run.write_history(state.history)  # also when a resumed run had none left to train
        run.write_json(RunFolder.METRICS, metrics)
        training_curve(state.history, run.path / "training.png")
    if config.epochs < config.kl_warmup and not metrics["collapsed"]:  # (flagged: said there)
        note(f"{config.epochs} epochs end within the KL warm-up of {config.kl_warmup}: the KL "
             f"weight reaches {trainer.kl_weight(config.epochs):.3g} of its "
             f"{config.kl_weight:g}, and the scores of so short a fit say little (train "
             f"{config.kl_warmup} or more; kl_warmup in a --config file or Config sets it)")
    return FitResult(trainer.flow.eval(), state, metrics, config, trainer.data)


def _save(run: RunFolder, trainer: Trainer, is_best: bool) -> None:
    """The checkpoint, then (where this epoch scored best) ``best.pt``, and the history, with
    Ctrl-C and SIGTERM held till all are written; a fit killed between the two leaves a
    checkpoint whose own weights are its best epoch's, and a resume writes ``best.pt`` from
    them (:func:`_kept_best`)."""
    with holding_interrupts():
        run.save(RunFolder.CHECKPOINT, trainer.checkpoint())
        if is_best:
            run.save(RunFolder.BEST, {"flow": trainer.best_flow, "epoch": trainer.state.epoch})
        run.write_history(trainer.state.history)


def _kept_best(run: RunFolder, checkpoint: dict, device: str) -> dict | None:
    """The best weights a resumed fit goes on from: ``best.pt``'s, where they are of the epoch
    the checkpoint's state calls best; else the checkpoint's own, where that epoch is the
    checkpoint's (the fit was stopped between writing the two: ``best.pt`` is written again
    from them); else none, and a ``best.pt`` of an epoch the checkpoint has not reached (written
    before the checkpoint, by a pyrolf that wrote it first) is removed: the resumed fit then
    takes its next validated epoch as the best so far, and what the run reports as its
    weights' epoch is theirs."""
    state, best = checkpoint["state"], None
    if run.has(RunFolder.BEST):
        best = run.load(RunFolder.BEST, device)
        if best.get("epoch") == state["best_epoch"]:
            return best["flow"]
    if state["best_epoch"] == state["epoch"] > 0:
        run.save(RunFolder.BEST, {"flow": checkpoint["flow"], "epoch": state["epoch"]})
        note(f"{run.path / RunFolder.BEST} was not of epoch {state['epoch']}, which scored best "
             "(the fit was stopped between its saves): written again from the checkpoint")
        return checkpoint["flow"]
    if best is not None:
        (run.path / RunFolder.BEST).unlink()
        note(f"{run.path / RunFolder.BEST} held epoch {best.get('epoch')}, not the checkpoint's "
             f"best, {state['best_epoch']} (the fit was stopped between its saves): removed; "
             "the next epoch validated is the best so far")
    return None

