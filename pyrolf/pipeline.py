"""Fit, resume and evaluate, with or without a run folder: what the CLI and the Python API call."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pyro
import torch

from pyrolf.config import Config, ConfigError
from pyrolf.data import SpikeData, load_config_data
from pyrolf.evaluation.collapse import collapse_finding
from pyrolf.evaluation.report import evaluate, prepare_scoring
from pyrolf.inference.svi import Trainer, TrainingDiverged, TrainState
from pyrolf.models import build_flow
from pyrolf.plots import training_curve
from pyrolf.runs import RunFolder


@dataclass
class FitResult:
    flow: torch.nn.Module
    state: TrainState
    metrics: dict


def fit(data: SpikeData, config: Config | None = None, flow=None, run_dir=None,
        progress: bool = True) -> FitResult:
    """Fit ``flow`` (default: the one ``config`` describes) to the training trials of ``data``,
    keep the weights of the best validation co-bps, and score the test trials.

    With ``run_dir`` the run is saved there (config, checkpoints, history, metrics, plots) and
    can be continued by :func:`resume`.
    """
    config = config or Config()
    check_device(config.device)
    pyro.set_rng_seed(config.seed)
    flow = flow if flow is not None else build_flow(config, data.n_neurons, data.n_heldin)
    prepare_scoring(data)
    run = RunFolder.create(run_dir, config) if run_dir is not None else None
    if run is not None:
        prepare_scoring(data, run.path / RunFolder.TARGETS)
    return _train(Trainer(flow, data, config), run, progress)


def resume(run_dir, epochs: int | None = None, progress: bool = True,
           data: SpikeData | None = None) -> FitResult:
    """Continue the run saved in ``run_dir`` from its last checkpoint (to ``epochs`` if given).

    ``data`` is needed only when the run was fitted from Python on data that its config's
    ``data`` entry cannot reload."""
    run = RunFolder.open(run_dir)
    config = run.config()
    if epochs is not None:
        config = config.replace(epochs=epochs)
    check_device(config.device)
    checkpoint = run.load(RunFolder.CHECKPOINT, config.device)
    flow, data = _rebuild(config, data)
    prepare_scoring(data, run.path / RunFolder.TARGETS)
    trainer = Trainer(flow, data, config)
    trainer.restore(checkpoint)
    if run.has(RunFolder.BEST):
        trainer.best_flow = run.load(RunFolder.BEST, config.device)["flow"]
    run.write_json(RunFolder.CONFIG, config.to_dict())
    return _train(trainer, run, progress)


def load_run(run_dir, data: SpikeData | None = None):
    """The flow of a run folder with its best weights, its config and its data (``data`` as in
    :func:`resume`)."""
    run = RunFolder.open(run_dir)
    config = run.config()
    flow, data = _rebuild(config, data)
    name = RunFolder.BEST if run.has(RunFolder.BEST) else RunFolder.CHECKPOINT
    flow.load_state_dict(run.load(name)["flow"])
    return flow, config, data


def _rebuild(config: Config, data: SpikeData | None):
    """A run's data (reloaded from its config unless given) and an untrained flow for it."""
    data = data if data is not None else load_config_data(config)
    return build_flow(config, data.n_neurons, data.n_heldin), data


def evaluate_run(run_dir, data: SpikeData | None = None) -> dict:
    """Recompute ``metrics.json`` of a run folder from its saved weights (``data`` as in
    :func:`resume`)."""
    flow, config, data = load_run(run_dir, data)
    pyro.set_rng_seed(config.seed)
    run = RunFolder(run_dir)
    metrics = evaluate(flow, data, config.samples, config.device, run.path / RunFolder.SUBMISSION)
    if run.has(RunFolder.CHECKPOINT):
        metrics.update(collapse_metrics(metrics, run.load(RunFolder.CHECKPOINT)["state"]["history"]))
    run.write_json(RunFolder.METRICS, metrics)
    return metrics


def collapse_metrics(metrics: dict, history: list[dict]) -> dict:
    """``collapsed`` (and, when true, ``collapse``: what was seen) of a fit from its test
    ``metrics`` (the smoothing baseline's co-bps) and its training ``history`` (the validation
    co-bps and KL per bin); see :func:`pyrolf.evaluation.collapse.collapse_finding`."""
    scores = [r["valid_co_bps"] for r in history if "valid_co_bps" in r]
    finding = collapse_finding(max(scores) if scores else None, metrics.get("smoothing_co_bps"),
                               [r["kl_per_bin"] for r in history if "kl_per_bin" in r])
    return {"collapsed": finding is not None, **({"collapse": finding} if finding else {})}


def diagnose_run(run_dir, samples: int = 100, trials=None, data: SpikeData | None = None) -> dict:
    """Posterior diagnostics of a run folder from its best weights (see
    :func:`pyrolf.diagnostics.diagnose`): ``samples`` posterior draws per trial, written to
    ``posterior.nc``, ``diagnostics.json`` and PNG figures in ``run_dir``.

    ``trials``: ``None`` for the test trials (on NLB data the ``valid`` trials, since NLB's
    evaluation trials have unknown held-out spikes), a count for the first trials of that split,
    or a sequence of trial indices. ``data`` as in :func:`resume`. Returns what
    ``diagnostics.json`` holds.
    """
    from pyrolf.diagnostics import diagnose, select_trials

    flow, config, data = load_run(run_dir, data)
    check_device(config.device)
    pyro.set_rng_seed(config.seed)
    return diagnose(flow.to(config.device), data, select_trials(data, trials), samples,
                    RunFolder(run_dir), config.device)


def check_device(device: str) -> None:
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but PyTorch sees no GPU here; "
                          "use --device cpu or install a CUDA build of torch")


def _train(trainer: Trainer, run: RunFolder | None, progress: bool = True) -> FitResult:
    if run is not None:
        trainer.on_checkpoint = lambda t, is_best: _save(run, t, is_best)
    started = time.perf_counter()
    try:
        state = trainer.fit(progress)
    except TrainingDiverged as error:
        where = f"; the last good checkpoint is in {run.path}" if run is not None else ""
        raise TrainingDiverged(f"{error}{where}; lower the learning rate (--lr) and try again") from None
    seconds = time.perf_counter() - started
    if trainer.best_flow is not None:
        trainer.flow.load_state_dict(trainer.best_flow)
    config = trainer.config
    pyro.set_rng_seed(config.seed)
    submission = run.path / RunFolder.SUBMISSION if run is not None else None
    metrics = evaluate(trainer.flow, trainer.data, config.samples, config.device, submission)
    metrics.update({
        "elbo": state.history[-1]["elbo"] if state.history else None,
        "epochs": state.epoch, "best_epoch": state.best_epoch,
        "valid_co_bps": state.best_score,
        "seconds": seconds,
        "seconds_per_epoch": sum(r["seconds"] for r in state.history) / max(len(state.history), 1),
        "device": config.device,
    })
    metrics.update(collapse_metrics(metrics, state.history))
    if run is not None:
        run.write_json(RunFolder.METRICS, metrics)
        training_curve(state.history, run.path / "training.png")
    return FitResult(trainer.flow, state, metrics)


def _save(run: RunFolder, trainer: Trainer, is_best: bool) -> None:
    if is_best:
        run.save(RunFolder.BEST, {"flow": trainer.best_flow, "epoch": trainer.state.epoch})
    run.save(RunFolder.CHECKPOINT, trainer.checkpoint())
    run.write_history(trainer.state.history)
