"""Run a sweep with Ray Tune: trials that each train a pyrolf run folder and report its validation
co-bps every ``eval_every`` epochs, a results table, and the best trial's run folder as ``best/``.

A sweep folder holds::

    sweep.json     the settings the sweep started with (base config, search space, scheduler...)
                   and its data's fingerprints (``source``, ``data``; checked by --resume)
    tune/          Ray Tune's experiment state and the trials' checkpoints (what --resume reads)
    trials/ID/     one pyrolf run folder per trial (config, checkpoints, best.pt, history.csv,
                   source.json and fitted.json)
    results.csv    one row per trial, best first: score, epochs, hyperparameters, run folder
    best/          a copy of the best trial's run folder, with metrics.json

Each report carries the trial's run folder as a Ray checkpoint, so an interrupted sweep resumes
every unfinished trial where it was, and population-based training can hand one trial's weights
to another. A trial holds its folder's lock while it trains, as a fit does, so ``evaluate`` or
``fit --resume`` of a running trial is refused; a trial Ray moves to a new process (PBT pauses
and restores trials) waits up to :data:`TRIAL_LOCK_WAIT_S` for the old one to end.
"""

from __future__ import annotations

import copy
import csv
import filecmp
import json
import logging
import math
import os
import pickle
import re
import shutil
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

# Trials run in this interpreter's environment (on a cluster, each node's own; see the README).
# Recent Ray otherwise starts every worker of a driver run under `uv run` with that `uv run`
# command, inside an uploaded copy of the current folder, where uv makes a new, empty project venv
# (not synced under UV_NO_SYNC=1): the workers die with "No module named 'ray'" and Tune waits
# for its trial actors for ever. Ray reads the switch when it is first imported.
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")

import pyro
import ray
import torch
from ray import tune
from ray.tune.schedulers import ASHAScheduler, PopulationBasedTraining

from pyrolf.config import Config, ConfigError
from pyrolf.data import DataError, Sessions, SpikeData, load_config_data
from pyrolf.data.files import same_data, spikes_fingerprint
from pyrolf.data.sessions import session_list
from pyrolf.evaluation.report import prepare_scoring
from pyrolf.inference.svi import Trainer, TrainingDiverged
from pyrolf.messages import few_ids, note, typed
from pyrolf.pipeline import check_device, evaluate_run, fitted_record, load_run, starting_flow
from pyrolf.pipeline.records import keep_layout, made_from_other_weights
from pyrolf.pipeline.training import _save, note_fitted, trained_weights
from pyrolf.runs import (NO_ROOM, RunError, RunFolder, RunInterrupted, Unwritten,
                         check_source_record, partial_of, source_record)
from pyrolf.sweep import SweepError
from pyrolf.sweep.ray_compat import checkpoints_registered_once
from pyrolf.sweep.settings import sweep_settings
from pyrolf.sweep.space import Dimension, mutable, search_space

SCORE = "valid_co_bps"
BEST_SCORE = f"best_{SCORE}"
SETTINGS, BEST = RunFolder.SWEEP, RunFolder.SWEEP_BEST
RESULTS, TRIALS, EXPERIMENT = "results.csv", "trials", "tune"
TRIAL_LOCK_WAIT_S = 120.0  # how long a trial waits for its folder's lock
#: Ray Tune's states of a trial that has ended: trained to its end or stopped by the scheduler,
#: and failed; ``results.csv`` says "unfinished" for the others (a stopped sweep's trials, which
#: Ray Tune records as pending)
ENDED = ("TERMINATED", "ERROR")


def score_run(run_dir, data: SpikeData | Sessions | None = None) -> float:
    """The validation co-bps of a run folder's best weights, as its fit scored them: the
    posterior samples averaged are drawn alike at every validation (see
    :meth:`~pyrolf.inference.svi.Trainer.validation_draws`), so ``best/``, scored again, gives
    the number its trial reported (``data`` as in :func:`pyrolf.pipeline.load_run`)."""
    flow, config, data = load_run(run_dir, data)
    trainer = Trainer(flow, data, config)
    with trainer.validation_draws():
        return trainer.validation_score()


def train_trial(hyperparameters: dict, *, base: dict, data: SpikeData | Sessions, folder: str,
                threads: int, fingerprint: dict | None = None) -> None:
    """One trial: train the config ``base`` + ``hyperparameters`` on ``data`` into the run folder
    ``folder/trials/TRIAL_ID``, reporting to Ray Tune at every validation; from
    ``init_from``'s weights where the config names a run, as ``pyrolf fit`` starts. The folder
    records its data as a fit's does (``source.json``, ``fitted.json``; ``fingerprint``: the
    data's, where known), so a changed data file is refused there as in any run folder, and
    keeps their ``layout.pt``, so new trials need not them.

    A trial that starts from a Ray checkpoint (a resumed sweep, or population-based training
    handing it another trial's weights) continues from it. A ``metrics.json`` and
    ``submission.h5`` in the folder (``pyrolf evaluate`` of an interrupted sweep's trial) are of
    an earlier epoch and go; what ``infer`` and ``diagnose`` made there is named in a note, as
    after ``pyrolf fit --resume``. A ``layout.pt`` of no use (damaged, of an older pyrolf) is
    written again."""
    torch.set_num_threads(threads)
    logging.getLogger("ray.train").setLevel(logging.WARNING)  # no line per saved checkpoint
    data = copy.deepcopy(data)  # Ray hands the arrays over read-only; torch wants its own
    config = Config.from_dict({**base, **hyperparameters, "threads": threads})  # no adapting
    check_device(config.device)
    pyro.set_rng_seed(config.seed)
    run = RunFolder(Path(folder) / TRIALS / tune.get_context().get_trial_id())
    run.path.mkdir(parents=True, exist_ok=True)
    # locked as a fit's folder is (evaluate and fit --resume are refused meanwhile); a trial Ray
    # moves to a new process waits for the old one, which Ray stops without waiting
    with run.locked(wait_s=TRIAL_LOCK_WAIT_S):
        flow = starting_flow(config, data)
        trainer = Trainer(flow, data, config, on_checkpoint=partial(_report, run))
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            _restore(trainer, run, checkpoint)
        for scored in (RunFolder.METRICS, RunFolder.SUBMISSION):  # pyrolf evaluate's: stale
            (run.path / scored).unlink(missing_ok=True)
        fitted = fitted_record(data, flow, fingerprint)
        run.record(config, fitted)
        keep_layout(run, data, fitted["data"])  # new trials are laid out by it (best/ copies it)
        try:
            trainer.fit(progress=False)
        except TrainingDiverged:
            return  # the trial ends with its last report; its best weights are in its folder
    stale = made_from_other_weights(run, trained_weights(trainer))  # (infer of a stopped trial)
    if stale:
        note(stale)


def _report(run: RunFolder, trainer: Trainer, is_best: bool) -> None:
    """Save the run folder and report its score, the folder riding along as the checkpoint."""
    _save(run, trainer, is_best)
    state = trainer.state
    tune.report({"epoch": state.epoch, SCORE: state.history[-1]["valid_co_bps"],
                 BEST_SCORE: state.best_score},
                checkpoint=tune.Checkpoint.from_directory(run.path))


def _restore(trainer: Trainer, run: RunFolder, checkpoint: tune.Checkpoint) -> None:
    """Continue from a checkpoint (a copy of a run folder, possibly another trial's).

    Population-based training may have changed ``lr`` since the checkpoint's weights trained:
    the decayed learning rate the optimiser holds is scaled by the same factor."""
    with checkpoint.as_directory() as snapshot:
        shutil.copytree(snapshot, run.path, dirs_exist_ok=True)
    state = run.load(RunFolder.CHECKPOINT)
    factor = trainer.config.lr / run.config().lr
    for optimizer in state["optimizer"].values():
        for group in optimizer["param_groups"]:
            group["lr"] *= factor
    trainer.restore(state)
    if run.has(RunFolder.BEST):
        trainer.best_flow = run.load(RunFolder.BEST)["flow"]


@dataclass
class SweepResult:
    """What a sweep left in ``folder``: the rows of ``results.csv`` (best first), the best row
    (``None`` if no trial has reported yet) and the best run's ``metrics.json``.

    An interrupted sweep has ``unfinished`` trials; ``best/`` is written only once all finish
    (a running trial's folder can be ahead of its last report), so ``metrics`` is then empty."""

    folder: Path
    rows: list[dict]
    best: dict | None
    metrics: dict
    unfinished: int = 0


def run_sweep(folder, config: Config, trials: int, scheduler: str = "asha",
              space: dict | None = None, cpus_per_trial: float = 1, gpus_per_trial: float = 0,
              address: str | None = None, concurrent: int | None = None,
              progress: bool = True) -> SweepResult:
    """Sweep ``trials`` configs drawn from the search space (``space``: overrides of
    :data:`~pyrolf.sweep.space.SEARCH_SPACE`) around ``config`` with ASHA early stopping or
    population-based training, at most ``concurrent`` at once (``None``: as many as the
    resources take), and write ``folder`` (see the module's docstring).

    Without ``address`` Ray starts on this machine (unless it is already running in this
    process); with it, the sweep joins that Ray cluster. ``progress``: progress bars while
    ``best/`` is scored (Ray Tune's status table is its own). Bad settings raise
    :class:`~pyrolf.config.ConfigError` before Ray starts."""
    folder = Path(folder)
    settings = sweep_settings(config, trials, scheduler, space, cpus_per_trial, gpus_per_trial,
                              concurrent)
    base = Config.from_dict(settings["config"])
    dimensions = search_space(settings["space"], base)
    with _new_sweep(folder) as sweep:
        data = load_config_data(base)
        note_fitted(data)
        prepare_scoring(data)  # (NLB's targets and scored bins, made once for every trial)
        # what the trials are fitted on, checked again by --resume (as a run folder's
        # source.json and fitted.json)
        settings.update(source=source_record(base), data=spikes_fingerprint(session_list(data)))
        with _connected(address):
            sweep.write_json(SETTINGS, settings)
            tuner = tune.Tuner(
            _trainable(settings, folder, data),
                param_space={name: dimension.domain()
                             for name, dimension in dimensions.items()},
                tune_config=tune.TuneConfig(metric=SCORE, mode="max", num_samples=trials,
                                            scheduler=_scheduler(settings, dimensions),
                                            max_concurrent_trials=concurrent,
                                            reuse_actors=True),
                run_config=tune.RunConfig(
                    name=EXPERIMENT, storage_path=str(folder.resolve()),
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=4)))
            with _tuning(folder):
                tuner.fit()
        return _summarise(folder, settings, data, progress)


def resume_sweep(folder, address: str | None = None, progress: bool = True) -> SweepResult:
    """Continue the interrupted sweep in ``folder``: unfinished and failed trials resume from
    their last checkpoint, trials not yet started start; then the table is rewritten, and
    ``best/`` as :func:`_write_best` says (``address``, ``progress`` as in :func:`run_sweep`)."""
    folder = Path(folder)
    if not (folder / SETTINGS).exists():
        raise SweepError(f"{folder} holds no sweep to resume; give the folder 'pyrolf sweep' "
                         "wrote (it has sweep.json and tune/)")
    # (locked first: a sweep starting there is in use, not one that stopped before its trials)
    with RunFolder(folder).locked():  # (a second sweep or resume there is refused)
        restorable = _restorable(folder)
        if not restorable and (folder / RESULTS).exists():
            raise SweepError(f"{folder / EXPERIMENT}, Ray Tune's record of the sweep, is gone, "
                             f"so the sweep cannot be resumed; what it found stays in {RESULTS}, "
                             f"{TRIALS}/ and {BEST}/")
        if not restorable:
            raise SweepError(f"{folder}'s sweep stopped before its first trial began, so there "
                             "is nothing to resume; start it again with the same 'pyrolf sweep' "
                             "command (it starts over in that folder)")
        settings = _read_settings(folder)
        data = _sweep_data(folder, settings)
        prepare_scoring(data)
        _check_state(folder)
        with _connected(address), _tuning(folder):
            tune.Tuner.restore(str(folder.resolve() / EXPERIMENT),
                               _trainable(settings, folder, data), resume_unfinished=True,
                               resume_errored=True).fit()
        return _summarise(folder, settings, data, progress)


@contextmanager
def _tuning(folder: Path):
    """What Ray Tune's fit of the sweep in ``folder`` runs within: :func:`_rays_log`,
    PBT's checkpoints registered once, pyrolf's signal handlers put back after; Ray Tune unable
    to read back what a failed trial left (a full disk leaves its error file empty or cut: an
    ``EOFError`` or ``UnpicklingError`` through pages of Ray's tracebacks) is one line."""
    with _rays_log(), checkpoints_registered_once(), _handlers_kept():
        try:
            yield
        except (EOFError, pickle.UnpicklingError):
            raise SweepError(f"Ray Tune cannot read back what a failed trial wrote in "
                             f"{folder / EXPERIMENT} (a full disk cut it short); free space "
                             f"and run 'pyrolf sweep --resume {typed(folder)}'") from None


def _check_state(folder: Path) -> None:
    """Raise :class:`SweepError` where Ray Tune's latest record of the sweep in ``folder`` is
    damaged (cut by a full disk): Ray Tune would start the sweep over from nothing, with a
    trial of none of the searched settings."""
    states, record = _latest_record(folder)
    if states and record is None:
        then = ("remove it, and --resume goes on from the record before it" if len(states) > 1
                else "start a new sweep with another --out")
        raise SweepError(f"{states[-1]}, Ray Tune's record of the sweep, is damaged (a full "
                         f"disk cut it short), and Ray Tune would start the sweep over from "
                         f"nothing; {then}")


def _restorable(folder: Path) -> bool:
    """Whether Ray Tune's state in ``folder`` can be restored: the sweep began a trial, which
    Ray Tune's latest record of it holds (one it cut short counts: :func:`_check_state` says
    so). Ray Tune's own check asks only for the file it writes as it is set up, and restored
    from that alone it would start one trial of none of the searched settings."""
    if not tune.Tuner.can_restore(folder.resolve() / EXPERIMENT):
        return False
    states, record = _latest_record(folder)
    return bool(states) and (record is None or bool(record.get("trial_data")))


def _latest_record(folder: Path) -> tuple[list[Path], dict | None]:
    """Ray Tune's records of the sweep in ``folder``, oldest first, and the latest one read
    (``None`` where there is none, or it is damaged)."""
    states = sorted((folder / EXPERIMENT).glob("experiment_state-*.json"))  # (named by time)
    try:
        record = json.loads(states[-1].read_text()) if states else None
    except (ValueError, OSError):
        return states, None
    return states, record if isinstance(record, dict) else None


@contextmanager
def _new_sweep(folder: Path) -> Iterator[RunFolder]:
    """``folder`` made for a new sweep and locked while the block runs (a second sweep or a
    resume there is refused). Refused: a file, a folder that cannot be made, one that holds a
    sweep (continued with ``--resume``) or files of its own (a sweep writes ``best/``,
    ``trials/`` and ``results.csv`` there, and would replace a ``best/``). A sweep that stopped
    before its first trial began (``sweep.json`` written, no state of Ray Tune's) is started
    over, with a note."""
    if folder.exists() and not folder.is_dir():
        raise SweepError(f"{folder} is a file, not a folder; give --out a folder to create")
    made = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SweepError(f"cannot make a sweep folder at {folder}: {error.strerror or error}; "
                         "give --out another path") from None
    sweep = RunFolder(folder)
    if not made:
        _refuse_taken(sweep)  # (before the lock, which would clear the folder's *.partial files)
    try:
        with sweep.locked():
            _refuse_taken(sweep)  # (again, now that no other sweep can start there)
            _check_new(sweep)
            yield sweep
    except BaseException:
        if made and {entry.name for entry in folder.iterdir()} <= {RunFolder.LOCK}:
            shutil.rmtree(folder, ignore_errors=True)  # (the data, say, could not be read)
        raise


def _refuse_taken(sweep: RunFolder) -> None:
    """:func:`_new_sweep`'s refusals of its folder, which change nothing: one that holds a
    sweep, or files of its own."""
    folder = sweep.path
    restorable = sweep.has(SETTINGS) and _restorable(folder)
    if restorable or (sweep.has(SETTINGS) and sweep.has(RESULTS)):
        then = (f"continue it with 'pyrolf sweep --resume {typed(folder)}' or" if restorable
                else f"its {EXPERIMENT}/ is gone, so it cannot go on:")
        raise SweepError(f"{folder} already holds a sweep; {then} choose another --out")
    allowed = (RunFolder.LOCK, SETTINGS, EXPERIMENT) if sweep.has(SETTINGS) else (RunFolder.LOCK,)
    own = sorted(entry.name for entry in folder.iterdir() if entry.name not in allowed)
    if own:
        raise SweepError(f"{folder} is not empty ({few_ids(own, 3, 'holding')}) and holds no "
                         "sweep; give --out a new or empty folder (a sweep writes best/, trials/ "
                         "and results.csv there)")


def _check_new(sweep: RunFolder) -> None:
    """:func:`_new_sweep`'s start in its folder (locked, :func:`_refuse_taken` passed): a sweep
    that stopped before its first trial began is started over."""
    folder = sweep.path
    if sweep.has(SETTINGS):
        note(f"{folder} holds a sweep that stopped before its first trial began: started over")
        (folder / SETTINGS).unlink()
        shutil.rmtree(folder / EXPERIMENT, ignore_errors=True)


def _read_settings(folder: Path) -> dict:
    """The ``sweep.json`` of ``folder``, checked to hold what a sweep writes there."""
    settings = RunFolder(folder).read_json(SETTINGS)
    wanted = ("config", "space", "trials", "scheduler", "cpus_per_trial", "gpus_per_trial")
    missing = [key for key in wanted if not isinstance(settings, dict) or key not in settings]
    if missing:
        raise SweepError(f"{folder / SETTINGS} is not what a sweep writes (it holds no "
                         f"{missing[0]!r}); restore it or start a new sweep")
    return settings


@contextmanager
def _handlers_kept():
    """The handlers of Ctrl-C and SIGTERM as they were before the block, put back after it:
    Ray's start sets its own for SIGTERM, which aborts the process with a stack dump (pyrolf's
    stops a sweep as Ctrl-C does), and Ray Tune's fit leaves its own for Ctrl-C, which said the
    run was ending and went on (while ``best/`` was scored). Outside the main thread nothing is
    changed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    kept = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in kept.items():
            if handler is not None:  # (None: set outside Python)
                signal.signal(number, handler)


#: Ray Tune's warnings that pyrolf says otherwise: how to resume after Ctrl-C (``Tuner.restore``;
#: pyrolf names ``pyrolf sweep --resume``), and trials with no results yet (not started); and its
#: advice on settings of its own that pyrolf makes (snapshots of its state, forced where trials
#: report often, ``num_to_keep``)
RAYS_HINTS = {"ray.tune.tune": "Resume experiment with",
              "ray.tune.analysis.experiment_analysis": "Failed to fetch metrics",
              "ray.tune.execution.experiment_state": "Experiment state snapshotting has been "
                                                     "triggered multiple times"}
#: the loggers of Ray Tune's failed trials and of its own failed writes, each with a traceback
RAYS_FAILURES = ("ray.tune.execution.tune_controller", "ray.tune.execution.experiment_state",
                 "ray.train._internal.syncer")


@contextmanager
def _rays_log():
    """Ray Tune's log while the block runs: :data:`RAYS_HINTS` dropped, and a write that failed
    (a full disk) or a trial's error the user can mend said in one line, not in pages of
    tracebacks (:func:`_in_one_line`)."""
    filters = [(name, _dropping(text)) for name, text in RAYS_HINTS.items()]
    filters += [(name, _in_one_line) for name in RAYS_FAILURES]
    for name, kept in filters:
        logging.getLogger(name).addFilter(kept)
    try:
        yield
    finally:
        for name, kept in filters:
            logging.getLogger(name).removeFilter(kept)


def _dropping(text: str):
    """A log filter that drops the records whose message holds ``text``."""
    return lambda record: text not in record.getMessage()


def _in_one_line(record: logging.LogRecord) -> bool:
    """A log filter that gives a record of a failed write or of a trial stopped by what the user
    can mend its first line and the error's, in place of the traceback: a trial's file it could
    not write (:class:`~pyrolf.runs.Unwritten`) and its errors of data, settings or run folders
    (a GPU asked for where a node has none, a trial's folder in use), within Ray's error of the
    trial; and Ray Tune's own writes on a disk out of room (:data:`~pyrolf.runs.NO_ROOM`; its
    syncer puts the traceback in the message). It lets every record through, other records as
    they are."""
    error = record.exc_info[1] if record.exc_info else None
    error = getattr(error, "cause", error)  # (Ray's error of a trial: the trial's is its cause)
    lines = record.getMessage().splitlines() or [""]
    if isinstance(error, Unwritten):
        said = f"{error.filename} cannot be written ({error.reason})"
    elif isinstance(error, (ConfigError, DataError, RunError)):
        said = str(error)
    elif isinstance(error, OSError) and error.errno in NO_ROOM:
        said = str(error).splitlines()[0]
    elif len(lines) > 1 and re.search(r"Error: \[Errno (%s)\]" % "|".join(map(str, NO_ROOM)),
                                      lines[-1]):
        said = lines[-1]
    else:
        return True
    record.msg = f"{lines[0].rstrip(': ')}: {said}"
    record.args, record.exc_info, record.exc_text = (), None, None
    return True


def _sweep_data(folder: Path, settings: dict) -> SpikeData | Sessions:
    """The data of the sweep in ``folder`` (``settings``: its ``sweep.json``), checked to be
    those it started on (a sweep that recorded them).

    Raises:
        RunError: a data file missing or changed, or the data loaded are others."""
    config = Config.from_dict(settings["config"])
    owner, where = f"the sweep {folder}", f'the "config" of {folder / SETTINGS}'
    if settings.get("source"):
        check_source_record(config, settings["source"], owner, where, "start a new sweep")
    data = load_config_data(config)
    if settings.get("data") is not None and not same_data(settings["data"],
                                                           spikes_fingerprint(session_list(data))):
        raise RunError(f"{owner} was fitted on other data than {where} loads now; give it "
                       "those or start a new sweep")
    return data


@contextmanager
def _connected(address: str | None):
    """Ray for the sweep: this process's if it already runs, else a new local instance, else
    (``address``) the cluster there; what this call started or joined is shut down after."""
    if ray.is_initialized():
        yield
        return
    try:
        with _handlers_kept():
            if address is None:
                ray.init(include_dashboard=False)
            else:
                _check_listening(address)
                ray.init(address=address)
    except ConnectionError as error:
        raise SweepError(f"cannot join a Ray cluster at {address} ({error}); start one with "
                         "'ray start --head', or leave out --address; a cluster with token "
                         "authentication (ray start's default since Ray 2.59) also needs "
                         "RAY_AUTH_MODE=token here") from None
    except Exception as error:  # Ray's own start failed (its processes died: see its logs)
        if address is not None:
            raise
        raise SweepError(f"Ray could not start on this machine ({str(error).splitlines()[0]}); "
                         "a file-size limit (ulimit -f) or a full /tmp or /dev/shm stops it: "
                         "see its logs in /tmp/ray/session_latest/logs") from None
    try:
        yield
    finally:
        ray.shutdown()


def _check_listening(address: str) -> None:
    """Raise :class:`ConnectionError` at once when nothing listens at ``HOST:PORT`` (Ray itself
    retries for minutes)."""
    host, _, port = address.rpartition(":")
    if host and port.isdigit():
        try:
            socket.create_connection((host, int(port)), timeout=10).close()
        except OSError as error:
            raise ConnectionError(f"nothing answers there: {error.strerror or error}") from None


def _trainable(settings: dict, folder: Path, data: SpikeData | Sessions):
    """:func:`train_trial` with the shared settings and data bound, and its resources."""
    cpus, gpus = settings["cpus_per_trial"], settings["gpus_per_trial"]
    trainable = tune.with_parameters(train_trial, base=settings["config"], data=data,
                                     folder=str(folder.resolve()), threads=max(1, int(cpus)),
                                     fingerprint=settings.get("data"))
    return tune.with_resources(trainable, {"cpu": cpus, "gpu": gpus})


def _clip(space: dict[str, Dimension], config: dict) -> dict:
    """Population-based training's explore step, kept inside the search space's ranges."""
    return {name: space[name].clip(value) if name in space else value
            for name, value in config.items()}


def _scheduler(settings: dict, space: dict[str, Dimension]):
    """ASHA (successive halving of the trials at rungs of epochs) or population-based training
    (every ``interval`` epochs the worst quarter of trials copies the weights and settings of the
    best quarter and perturbs the mutable settings, as AutoLFADS does)."""
    config = Config.from_dict(settings["config"])
    # a tenth of the epochs, in whole validation periods (decisions need a fresh report)
    interval = max(config.eval_every, config.epochs // 10 // config.eval_every * config.eval_every)
    if settings["scheduler"] == "asha":
        return ASHAScheduler(time_attr="epoch", max_t=config.epochs,
                             grace_period=min(config.epochs, interval), reduction_factor=3)
    mutations = {name: dimension.domain() for name, dimension in mutable(space).items()}
    return PopulationBasedTraining(time_attr="epoch", perturbation_interval=interval,
                                   hyperparam_mutations=mutations,
                                   custom_explore_fn=partial(_clip, space))


def _summarise(folder: Path, settings: dict, data: SpikeData | Sessions,
               progress: bool) -> SweepResult:
    """Write ``results.csv`` from Ray Tune's record of the trials and ``best/`` from the best."""
    with _rays_log():
        trials = tune.ExperimentAnalysis(str(folder.resolve() / EXPERIMENT)).trials
    if not trials:  # (Ray Tune stopped before it made the first)
        raise RunInterrupted(f"interrupted before the sweep's first trial began; the same "
                             f"'pyrolf sweep' command starts it over in {typed(folder)}")
    names = list(search_space(settings["space"], Config.from_dict(settings["config"])))
    rows = sorted((_row(trial, names, folder) for trial in trials),
                  key=lambda row: -row[BEST_SCORE] if math.isfinite(row[BEST_SCORE]) else math.inf)

    def write(path):
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    RunFolder(folder).write_atomically(RESULTS, write)
    unfinished = sum(row["status"] not in ENDED for row in rows)
    best = rows[0] if math.isfinite(rows[0][BEST_SCORE]) else None
    if unfinished:  # the trials' folders may be ahead of their last report: best/ waits
        return SweepResult(folder, rows, best, {}, unfinished)
    if best is None:
        raise SweepError(f"no trial reported a validation score; see the trials' errors in "
                         f"{folder / EXPERIMENT}")
    try:
        return SweepResult(folder, rows, best, _write_best(folder, best, data, progress))
    except RunInterrupted:
        raise
    except KeyboardInterrupt:  # (SIGTERM too: pyrolf's handler makes it Ctrl-C)
        raise RunInterrupted(f"interrupted while {folder / BEST} was written; every trial has "
                             f"finished: 'pyrolf sweep --resume {typed(folder)}' writes "
                             "it") from None


def _copy_of(best: RunFolder, folder: Path, first: Path) -> Path | None:
    """The trial's run folder whose checkpoint ``best/``'s is, byte for byte (``first``, the
    best trial's, tried first); ``None`` where it has none or it is no trial's: trained on
    since the sweep copied it (``pyrolf fit --resume``; ``metrics.json`` need not say its trial:
    ``pyrolf evaluate`` rewrites it without)."""
    if not best.has(RunFolder.CHECKPOINT):
        return None
    trials = [first, *(path.parent for path in (folder / TRIALS).glob(f"*/{RunFolder.CHECKPOINT}")
                       if path.parent != first)]
    return next((trial for trial in trials if (trial / RunFolder.CHECKPOINT).is_file()
                 and filecmp.cmp(best.path / RunFolder.CHECKPOINT, trial / RunFolder.CHECKPOINT,
                                 shallow=False)), None)


def _row(trial, names: list[str], folder: Path) -> dict:
    """One line of ``results.csv`` (``run_folder`` empty for a trial that has none yet)."""
    last = trial.last_result or {}
    run = f"{TRIALS}/{trial.trial_id}"
    return {"trial": trial.trial_id, BEST_SCORE: last.get(BEST_SCORE, math.nan),
            "epochs": last.get("epoch", 0), **{name: trial.config.get(name) for name in names},
            "status": trial.status if trial.status in ENDED else "unfinished",
            "run_folder": run if (folder / run).is_dir() else ""}


def _write_best(folder: Path, row: dict, data: SpikeData | Sessions,
                progress: bool) -> dict:
    """Copy the best trial's run folder to ``best/`` and write its ``metrics.json``: the test
    metrics of ``pyrolf evaluate`` (the trial's training record among them) with the
    validation co-bps scored again and the trial's number. A ``best/`` that is in use is
    refused; one that is that trial's copy already (a sweep resumed once it had finished) is
    kept with what ``infer`` and ``diagnose`` made in it, and only scored where its
    ``metrics.json`` is not the sweep's; one trained on since the sweep wrote it (``pyrolf fit
    --resume``) is left as it is, with a note, and its metrics returned. A copy that fails (a
    full disk) leaves the old ``best/`` as it was."""
    if not row["run_folder"]:
        raise SweepError(f"the best trial {row['trial']}'s run folder is not in "
                         f"{folder / TRIALS}, so {folder / BEST} cannot be written; was it moved?")
    best, trial = RunFolder(folder / BEST), folder / row["run_folder"]
    if not best.path.exists():
        _copy_folder(trial, best.path, folder)
    else:
        with best.locked():  # no other process works in it, while it is judged and replaced
            source = _copy_of(best, folder, trial)
            copied = source == trial
            continued = best.has(RunFolder.CHECKPOINT) and source is None
            metrics = best.read_json(RunFolder.METRICS) if best.has(RunFolder.METRICS) else {}
            if not copied and not continued:
                _copy_folder(trial, best.path, folder)
        if continued:
            note(f"{best.path} was trained on since the sweep wrote it: left as it is (the "
                 f"best trial's run folder is {trial})")
            return metrics
        if copied and metrics.get("trial") == row["trial"] and SCORE in metrics:
            return metrics
    # the sweep's data: not loaded (and scored) again
    metrics = evaluate_run(best.path, data, progress=progress, sweep=True)
    metrics.update({SCORE: score_run(best.path, data), "trial": row["trial"]})
    best.write_json(RunFolder.METRICS, metrics)
    return metrics


def _copy_folder(source: Path, target: Path, folder: Path) -> None:
    """``source`` copied to ``target`` (the folder ``best/``), replacing it only once the copy is
    whole: a full disk leaves the old one as it was, and says so in one line. What was made in
    an old ``target`` alone (``infer``'s and ``diagnose``'s files, of other weights) is named in
    a note as it goes."""
    made = set() if not target.is_dir() else (
        {entry.name for entry in target.iterdir()} - {entry.name for entry in source.iterdir()}
        - {RunFolder.METRICS, RunFolder.SUBMISSION, RunFolder.TARGETS, RunFolder.SMOOTHING,
           RunFolder.LOCK})  # (what best/'s scoring writes: written again)
    partial = partial_of(target)
    shutil.rmtree(partial, ignore_errors=True)
    try:
        shutil.copytree(source, partial)
    except OSError as error:
        shutil.rmtree(partial, ignore_errors=True)
        if isinstance(error, shutil.Error):  # [(source, target, "[Errno 27] File too large: ...")]
            reason = re.sub(r"^\[Errno \d+\] ([^:]*).*", r"\1", str(error.args[0][0][2]))
        else:
            reason = error.strerror or str(error)
        raise SweepError(f"{target} cannot be written ({reason}) and is as it was; "
                         f"free space and run 'pyrolf sweep --resume {typed(folder)}', which "
                         "writes it") from None
    shutil.rmtree(target, ignore_errors=True)
    os.replace(partial, target)
    if made:
        note(f"{target} now holds another trial's run, the best: what was made in it from the "
             f"old weights went with them ({few_ids(sorted(made), 5, 'files')}); make them "
             f"again with 'pyrolf infer {typed(target)}' or 'pyrolf diagnose {typed(target)}'")
