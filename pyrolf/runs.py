"""A run folder: ``config.json``, ``checkpoint.pt`` (last), ``best.pt`` (best validation score),
``history.csv``, ``metrics.json``, plots, ``source.json`` for a spike file's data and, for NLB data,
``submission.h5``. Every file is written atomically, so an interrupted or failed run never leaves a
half-written checkpoint and never overwrites another run; a process that writes into a run folder
holds its lock (``.lock``), so no two write into one at once."""

from __future__ import annotations

import csv
import errno
import fcntl
import hashlib
import io
import json
import os
import pickle
import re
import signal
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pyrolf.config import Config, ConfigError
from pyrolf.data import data_file, session_files
from pyrolf.data.files import fingerprint, same_counts, same_data
from pyrolf.data.sessions import check_session
from pyrolf.messages import note, typed

LOCK_POLL_S = 0.1  # how often a lock that waits tries again
NAME_MAX = 255  # the longest file name (in bytes) of the file systems pyrolf runs on


class RunError(ValueError):
    """A run folder is missing, incomplete, damaged, in use, or would overwrite another run."""


#: the errors of a file system out of room: no block (or no inode) left, over its quota, or a
#: file-size limit
NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class Unwritten(OSError):
    """A file that could not be written (:func:`unwritten`); ``reason``: the system's words.
    Copied and pickled as an ``OSError`` is (Ray hands a trial's error to the sweep so): made
    again from the number, message and path, then given its ``reason`` back."""

    def __init__(self, number: int, message: str, path: str, reason: str | None = None):
        super().__init__(number, message, path)
        self.reason = message if reason is None else reason


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a fit into a run folder; the message says what the folder keeps and how to
    go on."""


def path_text(path) -> str:
    """``path`` as text any file's attribute holds: bytes of its name that are no UTF-8 (a name
    made under another locale, read by Python as lone surrogates) as ``\\xNN``."""
    return os.fsencode(str(path)).decode("utf-8", "backslashreplace")


def unwritten(path: Path, error: BaseException) -> Unwritten:
    """The ``OSError`` of a failed write of ``path``, its ``reason`` the system's (an
    ``OSError``'s, or HDF5's ``error message`` within a ``RuntimeError``), else the error's first
    line."""
    text = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
    found = re.search(r"error message = '([^']+)'", text)
    reason = found.group(1) if found else text.splitlines()[0] if text else type(error).__name__
    where = getattr(error, "filename", None)
    if where and Path(where) not in (path, partial_of(path)):
        reason = f"{where}: {reason}"
    return unwritten_again(getattr(error, "errno", None) or errno.EIO, reason, str(path))


def partial_of(path: Path) -> Path:
    """The temporary file ``path`` is written to before it is moved onto ``path``:
    ``NAME.partial``, or, where that name is longer than a file system takes (``NAME`` of 248 to
    255 bytes), one made of its hash, so that a name the system takes is written."""
    name = path.name + ".partial"
    if len(os.fsencode(name)) > NAME_MAX:
        name = hashlib.sha256(os.fsencode(path.name)).hexdigest()[:16] + ".partial"
    return path.with_name(name)


def unwritten_again(number: int, reason: str, path: str,
                    then: str = "run the command again") -> Unwritten:
    """:func:`unwritten`'s error of ``path`` (``number``: its errno), advising ``then`` once
    there is room."""
    return Unwritten(number, f"cannot be written ({reason}) and is as it was (no file is left "
                             f"half written); free space or mend the folder and {then}", path,
                     reason)


@contextmanager
def holding_interrupts():
    """Ctrl-C and SIGTERM held while the block runs and delivered as it ends: files written
    together (a checkpoint and ``best.pt``; ``posterior.nc``, ``diagnostics.json`` and the
    figures) are all written or none is replaced, and an interrupt never lands inside HDF5's
    clean-up, where Python drops it (Ctrl-C during ``posterior.nc``'s write was ignored and a
    traceback printed: an interruption test). Held ones nest; outside the main thread (a Ray
    trial), where no handler can be set, nothing is held."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = []
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {number: signal.signal(number, lambda number, frame: held.append(number))
                for number in signals}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        for number in sorted(set(held), key=signals.index, reverse=True):  # SIGTERM first
            signal.raise_signal(number)


class RunFolder:
    (CONFIG, CHECKPOINT, BEST, METRICS, HISTORY, SUBMISSION, TARGETS, SMOOTHING, SOURCE, FITTED,
     LOCK) = ("config.json", "checkpoint.pt", "best.pt", "metrics.json", "history.csv",
              "submission.h5", "eval_targets.h5", "smoothing.npz", "source.json", "fitted.json",
              ".lock")
    #: what new trials are laid out by (:mod:`pyrolf.diagnostics.layout`), written by the fit
    LAYOUT = "layout.pt"
    #: a sweep's settings and its best trial's run folder (:mod:`pyrolf.sweep.tune`): a sweep's
    #: folder holds run folders but is none
    SWEEP, SWEEP_BEST = "sweep.json", "best"
    #: what each weights' file holds at least (see :meth:`load`)
    SAVED = {CHECKPOINT: ("flow", "optimizer", "state", "rng"), BEST: ("flow",)}
    # What a run that stopped before its first checkpoint may have left of itself: a run started
    # over in its folder removes them, since they are not of the new run.
    LEFT_OVER = (BEST, METRICS, HISTORY, SUBMISSION, TARGETS, SMOOTHING, SOURCE, FITTED, LAYOUT)

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def check_new(self) -> None:
        """Raise :class:`RunError` unless a new run may start here: ``path`` is no file, holds no
        run with a checkpoint (that one is continued with ``--resume``), and is not locked by
        another process. A folder whose run stopped before its first checkpoint may be started
        over. Changes nothing in an existing run folder. Refuses, too, a folder that cannot be
        made: under a file, in a folder not writable, or a name the system refuses."""
        try:
            self._refuse_overwrite()
            if self.has(self.LOCK):
                with self.locked():
                    pass
            existing = next(path for path in (self.path, *self.path.parents) if path.exists())
        except OSError as error:
            raise RunError(f"cannot make a run folder at {self.path}: "
                           f"{error.strerror or error}; give --out another path") from None
        if not existing.is_dir():
            raise RunError(f"cannot make a run folder at {self.path}: {existing} is a file; "
                           "give --out another path")
        if existing != self.path and not os.access(existing, os.W_OK | os.X_OK):
            raise RunError(f"cannot make a run folder at {self.path}: {existing} is not "
                           "writable; give --out another path")

    def _refuse_overwrite(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise RunError(f"{self.path} is a file, not a folder; give --out a folder to create")
        if self.has(self.SWEEP):
            raise RunError(f"{self.path} holds a sweep (its {self.SWEEP}); choose another "
                           "folder (--out)")
        if self.has(self.CHECKPOINT):
            raise RunError(f"{self.path} already holds a run; continue it with 'pyrolf fit "
                           f"--resume {typed(self.path)}' (in Python: "
                           f"pyrolf.resume({str(self.path)!r})) "
                           "or choose another folder (--out)")

    @classmethod
    @contextmanager
    def create(cls, path, config: Config, fitted: dict | None = None
               ) -> Iterator["RunFolder"]:
        """The new run folder ``path``, locked while the block runs, with ``config.json``
        (:func:`kept_config`), for a spike file ``source.json`` (its path, size and
        SHA-256) and ``fitted.json``: ``fitted``, what the run is fitted on, ``data`` (the
        fingerprint of the data, :func:`~pyrolf.data.files.spikes_fingerprint`) and ``modules``
        (the model's modules and their classes; see :meth:`check_fitted`). Refuses what
        :meth:`check_new` refuses; a folder whose run stopped before its first checkpoint is
        started over (the files of :attr:`LEFT_OVER` removed). Ctrl-C in the block: see
        :meth:`telling_what_is_kept`."""
        run = cls(path)
        run.check_new()
        try:
            run.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RunError(f"cannot make a run folder at {run.path}: "
                           f"{error.strerror or error}; give --out another path") from None
        with run.locked(), run.telling_what_is_kept():
            run._refuse_overwrite()  # again, now that no other process can start a run here
            if run.has(cls.CONFIG):
                note(f"{run.path} holds a run that stopped before its first checkpoint: starting "
                     "it over from epoch 0")
                for name in cls.LEFT_OVER:
                    (run.path / name).unlink(missing_ok=True)
            run.record(kept_config(config), fitted)
            yield run

    def record(self, config: Config, fitted: dict | None = None) -> None:
        """Write ``config.json`` (``config``, as :func:`kept_config` gives it), ``source.json``
        (:func:`source_record`, where the data are a file) and ``fitted.json`` (``fitted``, if
        given; see :meth:`create`)."""
        self.write_json(self.CONFIG, config.to_dict())
        source = source_record(config)
        if source is not None:
            self.write_json(self.SOURCE, source)
        if fitted is not None:
            self.write_json(self.FITTED, fitted)

    @classmethod
    def open(cls, path) -> "RunFolder":
        if not isinstance(path, (str, os.PathLike)):
            raise RunError(f"a run folder is given by its path, got {type(path).__name__} "
                           f"{path!r}")
        run = cls(path)
        if not run.path.is_dir():
            raise RunError(f"no run folder at {run.path}; give the folder 'pyrolf fit' wrote")
        if not run.has(cls.CONFIG):
            if run.has(cls.SWEEP):
                raise RunError(f"{run.path} is a sweep's folder, not a run folder; its best "
                               f"trial's run folder is {run.path / cls.SWEEP_BEST} (written once "
                               "every trial has finished: 'pyrolf sweep --resume "
                               f"{typed(run.path)}' finishes an interrupted sweep)")
            if run.has(cls.LOCK):
                raise RunError(f"{run.path} has no {cls.CONFIG}: its fit stopped before saving "
                               "its settings; start it again with 'pyrolf fit --out "
                               f"{typed(run.path)}'")
            raise RunError(f"{run.path} has no {cls.CONFIG}; it is not a pyrolf run folder")
        return run

    def check_writable(self, command: str, name: str, instead: str) -> None:
        """Stop before any work when the folder is read-only: ``command`` (``infer``) writes
        ``name`` (``inferred.nc``) into it; ``instead``: what to do (``give --out FILE``)."""
        if not os.access(self.path, os.W_OK):
            raise RunError(f"the run folder {self.path}, where {command} writes {name}, is not "
                           f"writable; {instead}")

    def check_session(self, session: str | None, required: bool = False) -> "RunFolder":
        """The run folder, ``session`` checked against the names of the sessions its
        ``config.json`` fits (:func:`~pyrolf.data.sessions.check_session`): a command answers a
        wrong name before reading any data."""
        config = self.config()
        check_session(list(session_files(config)) if config.sessions
                      else [Path(config.data).stem], session, required)
        return self

    @contextmanager
    def locked(self, wait_s: float = 0.0, reading: bool = False) -> Iterator["RunFolder"]:
        """Hold the folder's lock while the block runs: an advisory ``flock`` on ``.lock``, which
        the system releases when the process ends, however it ends. Raises :class:`RunError` if
        another process (or another block of this one) holds it for more than ``wait_s``
        seconds (a sweep's trial waits for the process Ray stops when it moves the trial).
        ``reading``: the block only reads the folder, so a read-only folder without ``.lock`` (a
        copy that left hidden files out) is read unlocked (its files are replaced whole, never
        written in place)."""
        handle = None
        try:
            handle = os.open(self.path / self.LOCK, os.O_RDONLY | os.O_CREAT, 0o644)
        except IsADirectoryError:
            raise RunError(f"cannot lock {self.path}: its {self.LOCK} is a folder; remove it and "
                           "try again") from None
        except OSError as error:
            if not (reading and not self.has(self.LOCK) and not os.access(self.path, os.W_OK)):
                full = error.errno in NO_ROOM
                advice = ("free space (or files: a file system's count may run out first) on "
                          "its file system" if full else "check that the folder is writable")
                raise RunError(f"cannot lock {self.path} ({error.strerror}); {advice} and try "
                               "again") from None
        if handle is None:  # (read-only, read unlocked)
            yield self
            return
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(LOCK_POLL_S)
                    continue
            except OSError as error:  # (ENOLCK, ENOSYS: Lustre without flock, NFS without lockd)
                os.close(handle)
                raise RunError(f"cannot lock {self.path}: its file system gives no file locks "
                               f"({error.strerror}), which keep two pyrolf processes out of one "
                               "run folder; put the run folder on a file system that has them "
                               "(a local disk, or a scratch mounted with flock)") from None
            os.close(handle)
            raise RunError(f"{self.path} is in use by another pyrolf process (fit, evaluate, "
                           "diagnose, infer, a sweep or its trial); wait until it ends, or stop "
                           "it, and try again") from None
        for partial in self.path.glob("*.partial"):  # left by a process killed while writing
            if partial.is_file():
                try:
                    partial.unlink()
                except OSError:
                    pass  # a read-only folder: nothing to tidy, nothing to write
        try:
            yield self
        finally:
            os.close(handle)

    def in_use(self) -> bool:
        """Whether another process holds the folder's lock (see :meth:`locked`)."""
        try:
            handle = os.open(self.path / self.LOCK, os.O_RDONLY)
        except OSError:
            return False  # no lock file: never locked
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(handle)

    @contextmanager
    def telling_what_is_kept(self) -> Iterator[None]:
        """Ctrl-C in the block becomes :class:`RunInterrupted`, saying how the run goes on from
        what the folder holds now; a failed write of a folder with a checkpoint says to go on
        with ``--resume`` (a new fit there is refused)."""
        try:
            yield
        except RunInterrupted:
            raise
        except Unwritten as error:  # go on from the checkpoint
            if not self.has(self.CHECKPOINT):
                raise
            raise unwritten_again(error.errno, error.reason, error.filename,
                                  "continue the fit from its last checkpoint: 'pyrolf fit "
                                  f"--resume {typed(self.path)}'") from None
        except KeyboardInterrupt:
            if not self.has(self.CONFIG):
                kept, command = "holds no settings yet: start it again with", "--out"
                python = f"pyrolf.fit(..., run_dir={str(self.path)!r})"
            else:
                kept = ("keeps its last checkpoint: continue it with" if self.has(self.CHECKPOINT)
                        else "has saved no checkpoint yet: start it over with")
                command, python = "--resume", f"pyrolf.resume({str(self.path)!r})"
            raise RunInterrupted(f"interrupted; {self.path} {kept} 'pyrolf fit {command} "
                                 f"{typed(self.path)}' (in Python: {python})") from None

    def config(self) -> Config:
        path = self.path / self.CONFIG
        values = self.read_json(self.CONFIG)
        if not isinstance(values, dict):
            raise RunError(f"{path} must hold one JSON object of settings")
        try:
            return Config.from_dict(values)
        except ConfigError as error:
            raise ConfigError(f"{path}: {error}") from None

    def check_sources(self, config: Config) -> None:
        """Raise :class:`RunError` if a data file of ``config`` (its ``data``, and each of its
        ``sessions``) is missing or is not the one ``source.json`` recorded when the run was
        fitted (:func:`check_source_record`); a run folder without ``source.json`` (its data not
        a file, or saved before pyrolf kept one) passes."""
        if self.has(self.SOURCE):
            check_source_record(config, self.read_json(self.SOURCE), str(self.path),
                                str(self.path / self.CONFIG), "fit a new run")

    def check_fitted(self, data: dict | None, modules: dict, given: bool,
                     built: bool = False, names: list[str] | None = None) -> None:
        """Raise :class:`RunError` if the data a run is given (``given``) or reloads from its
        ``config.json`` (named ``names``, each session's) have another fingerprint ``data``
        (``None``: the run's own layout, not checked), or the model ``config.json`` builds
        (``built``: the flow given) other ``modules``, than ``fitted.json`` recorded at the fit
        (a run folder without one, saved before pyrolf kept it, passes)."""
        if not self.has(self.FITTED):
            return
        recorded = self.read_json(self.FITTED)
        if data is not None:
            self._check_data(recorded, data, given, names)
        differ = sorted(name for name in {*modules, *recorded["modules"]}
                        if modules.get(name) != recorded["modules"].get(name))
        if differ:
            name = differ[0]
            this = "the flow given is" if built else "config.json's settings build"
            raise RunError(f"{self.path} was fitted with a model built in Python "
                           f"({name or 'flow'}: {recorded['modules'].get(name, 'none')}, where "
                           f"{this} {modules.get(name, 'none')}); build that model and give it: "
                           "flow= of load_run, resume, evaluate_run, diagnose_run and infer")

    def _check_data(self, fitted: dict, data: dict, given: bool,
                    names: list[str] | None) -> None:
        """:meth:`check_fitted`'s check of the data's fingerprint ``data`` against the one
        ``fitted.json`` recorded at the fit (``fitted``)."""
        recorded = fitted["data"]
        if same_counts(recorded, data) and not same_data(recorded, data):
            raise RunError(f"the data {'given' if given else 'its config.json loads now'} hold "
                           f"the counts {self.path} was fitted on but other held-out neurons or "
                           "train/valid/test splits, so its scores would be of other neurons or "
                           "trials; give the data with the held-out flags and splits of the fit "
                           "(inferred.nc's heldout and split say them)"
                           + ("" if given else " or fit it again"))
        if not same_data(recorded, data):
            shapes = " and ".join("x".join(map(str, shape)) for shape in recorded["shapes"])
            if given:
                raise RunError(f"the data given are not those {self.path} was fitted on "
                               f"({shapes}, by their counts' SHA-256); give those")
            if names is not None and fitted.get("names", names) != names:  # given in Python
                raise RunError(f"{self.path} was fitted on data given in Python "
                               f"({', '.join(fitted['names'])}: {shapes}), not on its "
                               f"config.json's \"data\" ({', '.join(names)}), so the command "
                               "line cannot reload them (new trials, pyrolf infer --data, need "
                               "not them); in Python give them again: data= of "
                               "load_run, resume, evaluate_run and diagnose_run, fitted_on= of "
                               "infer with new trials as data= (or save them with "
                               "pyrolf.data.save_spike_file and fit that file with --data)")
            raise RunError(f"{self.path} was fitted on other data ({shapes}) than its "
                           "config.json's \"data\" loads now: data given in Python (give them: "
                           "data= of load_run, resume, evaluate_run and diagnose_run, fitted_on= "
                           "of infer with new trials as data=), a source changed since, or a "
                           "newer pyrolf reads it otherwise (fit it again)")

    def has(self, name: str) -> bool:
        return (self.path / name).exists()

    def write_atomically(self, name: str, write) -> None:
        """``write(path)`` to a temporary file in the folder (:func:`partial_of`), then move it
        onto ``name``; a write that fails leaves no temporary file behind, and the system's
        refusal (a full disk, a file-size limit; HDF5 raises ``RuntimeError`` for them) is an
        ``OSError`` naming ``name``. Ctrl-C and SIGTERM wait for the file
        (:func:`holding_interrupts`). A link in ``name``'s place is replaced by the file, not
        written through: a run folder made of links to another's files (``cp -s``) never
        overwrites that run; a note says so (link the run folder itself to keep it elsewhere)."""
        target = self.path / name
        partial = partial_of(target)
        linked = target.is_symlink()
        try:
            with holding_interrupts():
                write(partial)
                os.replace(partial, target)
        except BaseException as error:
            try:
                partial.unlink(missing_ok=True)
            except OSError:
                pass  # (no such file can be there: a folder of that name is none of pyrolf's)
            if isinstance(error, (OSError, RuntimeError)):
                raise unwritten(target, error) from None
            raise
        if linked:
            note(f"{target} was a link to another file, which is left as it was; it is now a "
                 "file of its own (to keep a run's files elsewhere, link its folder, not its "
                 "files)")

    def write_image(self, name: str, make) -> None:
        """``make(image)`` into a file object in memory, whose bytes are then written as ``name``
        (:meth:`write_atomically`): a full disk or a file-size limit is one ``OSError`` of a
        plain write, with the system's reason. Writers for which that is not so: HDF5, whose
        write to a full disk fails in its close (the process then crashed at exit, a
        segmentation fault), and torch, whose says only ``unexpected pos 64 vs 0``."""
        def write(path):
            image = io.BytesIO()
            make(image)
            path.write_bytes(image.getbuffer())

        self.write_atomically(name, write)

    def save(self, name: str, obj) -> None:
        """``obj`` saved by ``torch.save`` as ``name``, made in memory (:meth:`write_image`)."""
        import torch  # not on import: the CLI checks run folders before it needs torch

        self.write_image(name, lambda image: torch.save(obj, image))

    def load(self, name: str, device: str = "cpu"):
        path = self.path / name
        if not path.exists():
            raise RunError(f"{path} is missing; the run has saved no checkpoint yet: start it "
                           f"over with 'pyrolf fit --resume {typed(self.path)}'")
        import torch  # not on import: the CLI checks run folders before it needs torch

        try:
            saved = torch.load(path, map_location=device, weights_only=False)
        except IsADirectoryError:
            raise RunError(f"{path} is a folder; remove it or start a new run") from None
        except (RuntimeError, EOFError, OSError, pickle.UnpicklingError,
                zipfile.BadZipFile) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else error
            raise RunError(f"{path} is damaged and cannot be read ({reason}); "
                           "restore it or start a new run") from None
        missing = [key for key in self.SAVED.get(name, ()) if not (isinstance(saved, dict) and
                                                                   key in saved)]
        if missing:
            raise RunError(f"{path} is not a pyrolf {name} (it holds no {missing[0]!r}); restore "
                           "it or start a new run")
        return saved

    def write_json(self, name: str, obj) -> None:
        """``obj`` as strict JSON: NaN and infinite numbers (which strict readers refuse) become
        ``null``."""
        strict = json.loads(json.dumps(obj), parse_constant=lambda constant: None)
        text = json.dumps(strict, indent=2, allow_nan=False) + "\n"
        self.write_atomically(name, lambda path: path.write_text(text))

    def read_json(self, name: str):
        path = self.path / name
        try:
            return json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise RunError(f"{path} is not valid JSON ({error}); restore it or start a new "
                           "run") from None

    def write_history(self, history: list[dict]) -> None:
        columns = sorted({key for record in history for key in record},
                         key=["epoch", "elbo", "valid_co_bps", "kl_per_bin", "lr", "seconds",
                              "threads"].index)

        def write(path):
            with open(path, "w", newline="") as handle:
                writer = csv.DictWriter(handle, columns)
                writer.writeheader()
                writer.writerows(history)

        self.write_atomically(self.HISTORY, write)


def source_record(config: Config) -> dict | None:
    """What ``source.json`` records of the data files of ``config`` (paths absolute): the path,
    size and SHA-256 of ``data`` and of each of ``sessions``; ``None`` where ``data`` names no
    file."""
    source = data_file(config.data)
    if source is None or not source.is_file():
        return None
    sessions = [{"path": str(path), **fingerprint(Path(path))} for path in config.sessions]
    return {"path": str(source), **fingerprint(source),
            **({"sessions": sessions} if sessions else {})}


def check_source_record(config: Config, recorded: dict, owner: str, settings: str,
                        instead: str) -> None:
    """Raise :class:`RunError` if a data file of ``config`` is missing or other than
    ``recorded`` (:func:`source_record`) says. The message names the files' ``owner`` (a run
    folder, a sweep), the ``settings`` that hold their paths, and what to do ``instead`` of
    restoring a changed file."""
    files = [(data_file(config.data), recorded, "data"),
             *((Path(path), entry, "sessions")
               for path, entry in zip(config.sessions, recorded.get("sessions", [])))]
    for path, entry, setting in files:
        if not path.is_file():
            raise RunError(f"{path}, a data file of {owner}, is missing (moved or deleted?); put "
                           f"it back, or set \"{setting}\" in {settings} to where it is now")
        now = fingerprint(path)
        if now == {key: entry[key] for key in now}:
            continue
        then = f"{entry['bytes']} bytes, SHA-256 {entry['sha256'][:12]}..."
        fitted = Path(entry.get("path", path))
        if fitted.resolve() != path.resolve():  # (another file named in the settings)
            raise RunError(f"{path} is not the file {owner} was fitted on ({fitted}, {then}); "
                           f"set \"{setting}\" in {settings} to where that file is now, or "
                           f"{instead}")
        raise RunError(f"{path} has changed since {owner} was fitted on it (then {then}, now "
                       f"{now['bytes']} bytes, {now['sha256'][:12]}...); restore that file or "
                       f"{instead}")


def kept_config(config: Config) -> Config:
    """``config`` as a run folder (or a sweep) keeps it: its file and folder paths (``data`` when
    it names a file, ``sessions``, ``data_dir``, ``targets``, ``init_from``) absolute, so that it
    works from any directory, and its sessions' names fixed (``session_names``: their files'
    stems now), so that a session keeps its name when its file is moved or renamed."""
    paths = {"data": data_file(config.data), "data_dir": config.data_dir, "targets": config.targets,
             "init_from": config.init_from}
    absolute = {name: _absolute(path) for name, path in paths.items() if path is not None}
    names = list(session_files(config)) if config.sessions else []
    return config.replace(**absolute, sessions=[_absolute(path) for path in config.sessions],
                          session_names=names)


def _absolute(path) -> str:
    return os.path.abspath(os.path.expanduser(path))
