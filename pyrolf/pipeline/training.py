"""Fit, resume and evaluate, with or without a run folder."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyro
import torch

from pyrolf.caller_state import keeps_caller_state
from pyrolf.config import Config, ConfigError
from pyrolf.data import SpikeData, load_config_data
from pyrolf.data.files import note_few_scored
from pyrolf.data.recordings import note_overlapping
from pyrolf.data.sessions import Sessions, same_bin_size, session_list, shared_bin_size
from pyrolf.diagnostics.layout import data_layout
from pyrolf.evaluation.collapse import collapse_finding, collapse_warning
from pyrolf.evaluation.report import evaluate, model_rates, prepare_scoring
from pyrolf.inference.svi import TrainState, Trainer, TrainingDiverged, steps_per_epoch
from pyrolf.messages import note, typed, warning
from pyrolf.models import ARCHITECTURE, build_flow, shared_weights
from pyrolf.pipeline.records import (WEIGHTS_RECORD, _add_roles, _checked, _load_run,
                                     _load_weights, _rebuild, _weights_text, best_kept_in,
                                     check_device, fitted_record, keep_layout,
                                     made_from_other_weights, run_device, weights_of,
                                     weights_record)
from pyrolf.plots import training_curve
from pyrolf.runs import RunError, RunFolder, Unwritten, holding_interrupts
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
    note_fitted(data)
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


def note_fitted(data: SpikeData | Sessions) -> None:
    """What a fit (or a sweep) says of each session of the data it fits: scored trials whose
    windows overlap training ones, and too few of them to score."""
    for own in session_list(data):
        note_overlapping(own)
        note_few_scored(own)


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
        RunError: the folder is in use or not writable, its checkpoint damaged or not of its
            ``config.json``, or its data file missing or changed.
    """
    run = RunFolder.open(run_dir)
    run.check_writable("fit --resume", RunFolder.CHECKPOINT, "copy the run folder somewhere "
                       "writable and resume the copy")  # (before its data are read)
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
    built = flow is not None
    flow, data, fingerprint = _rebuild(run, config, data, flow=flow)
    _add_roles(run, fingerprint)
    keep_layout(run, data, fingerprint)
    _load_weights(flow, checkpoint["flow"], run, RunFolder.CHECKPOINT, built)
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
def evaluate_run(run_dir, data: SpikeData | Sessions | None = None, progress: bool = True,
                 device: str | None = None, flow=None, sweep: bool = False) -> dict:
    """Recompute ``metrics.json`` of a run folder from its saved weights (``data`` and ``flow``
    as in :func:`resume`), its folder locked meanwhile, on ``device`` (``cpu`` or ``cuda``; default
    the run's); ``metrics["weights"]`` and ``metrics["weights_epoch"]`` say which weights (see
    :func:`weights_record`); ``progress``: bars of the trial-draws (on stderr); ``sweep``: the
    run is a sweep's best trial (a collapse's advice names the sweep's options)."""
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
                                            steps_per_epoch(data, config.batch_size), sweep))
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


def collapse_metrics(metrics: dict, history: list[dict], config: Config, steps: int,
                     sweep: bool = False) -> dict:
    """``collapsed`` (and, when true, ``collapse``: what was seen) of a fit from its test
    ``metrics`` (the smoothing baseline's co-bps; on the validation trials where the test
    trials are not scored, an NLB test phase without targets) and its training ``history`` (the
    validation co-bps and KL per bin); see :func:`pyrolf.evaluation.collapse.collapse_finding`.
    Of several sessions, each is checked too, by its test co-bps against its own baseline's
    (pooled, a good session can hide one whose latents predict nothing). A collapse is said in
    one line on stderr (:func:`~pyrolf.evaluation.collapse.collapse_warning`, its advice of
    ``config``'s KL weight, batch size, epochs and KL warm-up, the fit's ``steps`` an epoch and
    the epochs it trained, the last of ``history``; ``sweep``: in a sweep's options)."""
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
                                 steps, config.kl_warmup, trained, sweep))
    return {"collapsed": finding is not None, **({"collapse": finding} if finding else {})}


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
    metrics.update(trained_weights(trainer))
    metrics.update(collapse_metrics(metrics, state.history, config, trainer.steps_per_epoch))
    if run is not None:
        run.write_history(state.history)  # also when a resumed run had none left to train
        run.write_json(RunFolder.METRICS, metrics)
        try:
            training_curve(state.history, run.path / "training.png")
        except Unwritten as error:  # the fit is whole: its scores are said
            warning(f"{error.filename}: cannot be written ({error.reason}); the fit's weights "
                    "and scores are kept, and once there is room 'pyrolf fit --resume "
                    f"{typed(run.path)}' draws the figure")
    if config.epochs < config.kl_warmup and not metrics["collapsed"]:  # (flagged: said there)
        note(f"{config.epochs} epochs end within the KL warm-up of {config.kl_warmup}: the KL "
             f"weight reaches {trainer.kl_weight(config.epochs):.3g} of its "
             f"{config.kl_weight:g}, and the scores of so short a fit say little (train "
             f"{config.kl_warmup} or more; kl_warmup in a --config file or Config sets it)")
    return FitResult(trainer.flow.eval(), state, metrics, config, trainer.data)


def trained_weights(trainer: Trainer) -> dict:
    """The :func:`~pyrolf.pipeline.records.weights_record` of the weights a fit ends with: its
    best epoch's (``best.pt``), else its last (``checkpoint.pt``)."""
    if trainer.best_flow is not None:
        return {"weights": RunFolder.BEST, "weights_epoch": trainer.state.best_epoch}
    return {"weights": RunFolder.CHECKPOINT, "weights_epoch": trainer.state.epoch}


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
    state = checkpoint["state"]
    best = run.load(RunFolder.BEST, device) if run.has(RunFolder.BEST) else None
    kept = best_kept_in(best, state)
    if kept == RunFolder.BEST:
        return best["flow"]
    if kept == RunFolder.CHECKPOINT:
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
