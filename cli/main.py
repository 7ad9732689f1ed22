"""``pyrolf``: fit LangevinFlow to spikes, evaluate a run.

Importing this module imports no torch, Pyro or evaluation stack (``tests/test_startup.py``): each
command imports :mod:`pyrolf.pipeline` when it runs, so that help, a mistyped option and a bad
setting answer at once (``benchmarks/startup.py``).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

try:  # Ctrl-C in the third of a second these take stops the command as later: one line
    import click

    from pyrolf.cli.options import run_device, with_overrides
    from pyrolf.cli.sweep import sweep
    from pyrolf.config import Config, ConfigError
    from pyrolf.data import DataError, data_file, load_config_data
    from pyrolf.data.files import check_file
    from pyrolf.data.dandi import (DANDISETS, DATA_DIR_ENV, DEFAULT_DATA_DIR, data_dir,
                                   download_command)
    from pyrolf.inference import TrainingDiverged
    from pyrolf.messages import typed
    from pyrolf.models.presets import ARCHITECTURE, preset
    from pyrolf.runs import RunError, RunFolder, RunInterrupted
except KeyboardInterrupt:
    sys.stderr.write("interrupted\n")
    raise SystemExit(128 + signal.SIGINT) from None

USER_ERRORS = (DataError, ConfigError, RunError, TrainingDiverged)

@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pyrolf")
def cli():
    """LangevinFlow for spiking neural populations: fit it, score it, infer every trial's
    posterior and check it."""


@cli.command()
@click.option("--data", multiple=True,
              help=f"'lorenz' (default), an NLB dataset ({', '.join(DANDISETS)}), the path of a "
                   ".h5/.npz spike file or of an own recording (.nwb, spike-times .npz). Give it "
                   "more than once to fit several sessions (recordings or spike files, each with "
                   "its own neurons) with one shared dynamics.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Run folder to create (default runs/DATA-TIME).")
@click.option("--resume", "resume_dir", type=click.Path(path_type=Path), default=None,
              help="Continue the run in this folder from its last checkpoint.")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
              help="JSON file of settings (see pyrolf/config.py); options given here win.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@with_overrides
def fit(data, out, resume_dir, config_file, quiet, **overrides):
    """Fit LangevinFlow and write a run folder (config, checkpoints, metrics.json, plots)."""
    overrides = {key: value for key, value in overrides.items() if value is not None}
    data = data or None
    if resume_dir is not None:
        if data is not None or config_file is not None or set(overrides) - {"epochs", "threads",
                                                                             "device"}:
            raise ConfigError("--resume continues a run with its own settings; only --epochs, "
                              "--threads and --device may be given with it")
        RunFolder.open(resume_dir)  # (a wrong folder is said before torch, Pyro and the data)
        from pyrolf import pipeline  # torch, Pyro: once the options and the folder are checked

        result = pipeline.resume(resume_dir, overrides.get("epochs"), progress=not quiet,
                                 threads=overrides.get("threads"),
                                 device=overrides.get("device"))
        run_dir = resume_dir
    else:
        config = build_config(data, config_file, overrides)
        run_dir = out or Path("runs") / f"{Path(config.data).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
        RunFolder(run_dir).check_new()  # before the data, which may take minutes to load
        if config.init_from is not None:
            from pyrolf import pipeline

            pipeline.init_source(config)  # so is the run it starts from
        dataset = load_config_data(config)  # before torch (5 s): a data error is said at once
        from pyrolf import pipeline  # torch, Pyro: once the settings and the data are read

        result = pipeline.fit(dataset, config, run_dir=run_dir, progress=not quiet)
    _print_metrics(result.metrics, run_dir)


@cli.command()
@click.argument("name", type=click.Choice(list(DANDISETS)))
@click.option("--data-dir", "folder", default=None,
              help=f"Where to put it (default ${DATA_DIR_ENV}, else {DEFAULT_DATA_DIR}).")
def download(name, folder):
    """Download NLB dataset NAME from the DANDI archive with the dandi client."""
    folder = data_dir(folder)
    client = shutil.which("dandi")
    if client is None:
        raise DataError(f"the dandi client is not installed; run: {download_command(name, folder)}")
    folder.mkdir(parents=True, exist_ok=True)
    command = [client, "download", "--existing", "skip", f"DANDI:{DANDISETS[name][0]}"]
    if subprocess.run(command, cwd=folder).returncode != 0:
        raise DataError(f"dandi download of {name} failed (see its messages above); files it "
                        f"finished are kept in {folder}, run the same command again to go on")
    click.echo(f"{name} is in {folder}; fit it with: pyrolf fit --data {name} --data-dir "
               f"{typed(folder)}")


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@run_device
@click.option("--quiet", is_flag=True, help="No progress bar.")
def evaluate(run_dir, device, quiet):
    """Recompute metrics.json of RUN_DIR from its saved weights."""
    RunFolder.open(run_dir)  # (a wrong folder is said before torch, Pyro and the data load)
    from pyrolf import pipeline  # torch, Pyro: when the command runs

    _print_metrics(pipeline.evaluate_run(run_dir, progress=not quiet, device=device), run_dir)


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--samples", type=int, default=None,
              help="Posterior samples per trial (default 100, at least 25 for Pareto k-hat).")
@click.option("--trials", default=None,
              help="A count N (the first N trials of the default split) or comma-separated trials "
                   "as inferred.nc's `trial` coordinate names them (an NWB session's: rows of its "
                   "trials table, not `trial_id`; e.g. 3,8,12; one: 7,). "
                   "Default: the test trials, on NLB data the valid trials (NLB's evaluation "
                   "trials have unknown held-out spikes).")
@click.option("--session", default=None,
              help="Of a run fitted to several sessions, the one to diagnose (its name: its "
                   "file's stem).")
@click.option("--rates", is_flag=True,
              help="Keep each draw's rates in posterior.nc too (posterior/rates: credible "
                   "intervals of anything the rates make, e.g. a PSTH; 4 bytes per trial, "
                   "sample, bin and neuron more).")
@run_device
@click.option("--quiet", is_flag=True, help="No progress bar.")
def diagnose(run_dir, samples, trials, session, rates, device, quiet):
    """Posterior diagnostics of RUN_DIR: posterior.nc (ArviZ), diagnostics.json (Pareto k-hat,
    ELBO, IWELBO, posterior predictive coverage) and PNG figures."""
    trials = _parse_trials(trials)
    RunFolder.open(run_dir).check_session(session, required=True)
    from pyrolf import pipeline  # torch, Pyro: once the options and the folder are checked

    options = {} if samples is None else {"samples": samples}
    report = pipeline.diagnose_run(run_dir, trials=trials, progress=not quiet, session=session,
                                   device=device, rates=rates, **options)
    for note in report["notes"]:
        click.echo(f"note: {note}")
    _print_metrics(report, pipeline.diagnosed_folder(run_dir, session))


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--data", default=None,
              help="The trials to infer: a .h5/.npz spike file, an .nwb or spike-times .npz "
                   "recording (cut with the run's options) or the run's NLB dataset name, holding "
                   "the run's neurons in its order (all of them, or only the held-in ones; a "
                   "recording's by unit id, a lost held-in one filled). Default: the run's own "
                   "data, every split.")
@click.option("--samples", type=int, default=None,
              help="Posterior samples per trial (default 100).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="netCDF file to write (default RUN_DIR/inferred.nc).")
@run_device
@click.option("--session", default=None,
              help="Of a run fitted to several sessions, the one to infer (its name: its file's "
                   "stem), whose neurons --data hold. Default: every session, each to "
                   "inferred-SESSION.nc.")
@click.option("--trials-where", metavar="CONDITION", multiple=True,
              help="With --data: only the new trials that meet CONDITION (as fit's "
                   "--trials-where; repeat it for several), in place of the run's conditions; "
                   "`all` for every trial.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def infer(run_dir, data, samples, out, device, session, trials_where, quiet):
    """Every trial's posterior from RUN_DIR's best weights: inferred.nc (posterior means and 90 %
    intervals of z, v, the inferred inputs and the rates, with trial indices, splits and
    conditions), and the modes and fixed points of the learned dynamics: dynamics.json and
    spectrum.png."""
    RunFolder.open(run_dir).check_session(session, required=data is not None)
    given = None if data is None else data_file(data)
    if given is not None:  # (a file not there: said at once, not after torch and the run load)
        check_file(given, "spike file or recording")
    from pyrolf import pipeline  # torch, Pyro: once the folder, session and file are checked
    from pyrolf.dynamics.fixed_points import summary

    options = {} if samples is None else {"samples": samples}
    if trials_where:
        options["trials_where"] = [] if list(trials_where) == ["all"] else list(trials_where)
    report = pipeline.infer_run(run_dir, data, out=out, device=device, progress=not quiet,
                                session=session, **options)
    files = report["out"] if isinstance(report["out"], list) else [report["out"]]
    what = (f"{report['windows']} windows merged into {report['bins']} bins"
            if "windows" in report else f"{report['trials']} trials")
    if len(files) > 1:
        what += f" of {len(files)} sessions"
    samples = f"{report['samples']} posterior sample{'s' if report['samples'] != 1 else ''}"
    click.echo(f"inferred {what} from {samples} each: "
               f"{', '.join(map(str, files))}")
    if report["dynamics"]:
        click.echo(f"dynamics: {len(report['modes'])} modes of the linearised step, largest "
                   f"|eigenvalue| {report['spectral_radius']:.4f}; fixed points: "
                   f"{summary(report['fixed_points'])}")
    else:
        click.echo(f"dynamics: {pipeline.DYNAMICS} and {pipeline.SPECTRUM} left as they are "
                   f"(`pyrolf infer {typed(run_dir)}` writes them, from all the run's own "
                   "trials)")
    click.echo(f"weights: {report['weights']}")
    written = f" ({pipeline.DYNAMICS}, {pipeline.SPECTRUM})" if report["dynamics"] else ""
    click.echo(f"run folder: {run_dir}{written}")


def _parse_trials(text: str | None):
    """``None``, a count (``"20"``) or a list of indices (``"3,8,12"``, ``"7,"``)."""
    if text is None:
        return None
    try:
        if "," not in text:
            return int(text)
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--trials must be a count (e.g. 20) or comma-separated trial indices "
                          f"(e.g. 3,8,12), got {text!r}") from None


def build_config(data: str | tuple[str, ...] | None, config_file: Path | None,
                 options: dict) -> Config:
    """The settings of a fit or a sweep: the preset of the data (``data``, else the config file's
    or the default), then the network settings of the ``init_from`` run where one is given, then
    the config file's entries, then the command-line ``options``. Several ``data`` are sessions:
    the first is ``data``, the others ``sessions``."""
    values = _read_config(config_file) if config_file else {}
    values.update(options)
    if isinstance(data, tuple):
        data, values["sessions"] = data[0], list(data[1:])
    if data is not None:
        values["data"] = data
    name = values.get("data", Config.data)  # not a string: Config says so in one line
    base = preset(name) if isinstance(name, str) else {}
    start = values.get("init_from")
    if isinstance(start, str):  # the run's network settings, beneath what is given
        source = RunFolder.open(start).config()
        base.update({key: getattr(source, key) for key in ARCHITECTURE})
    return Config.from_dict({**base, **values})


def _read_config(path: Path, what: str = "config file") -> dict:
    """The JSON object of settings in ``path`` (``what`` it is, for the errors)."""
    try:
        values = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{what} {path} is not valid JSON ({error})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{what} {path} must hold one JSON object of settings")
    return values


def _scores(metrics: dict) -> str:
    """The numbers of ``metrics`` on one line, ``key=value`` each."""
    return "  ".join(f"{key}={value:.4f}" for key, value in metrics.items()
                     if isinstance(value, float))


def _print_metrics(metrics: dict, run_dir) -> None:
    click.echo(_scores(metrics))
    for name, scores in metrics.get("sessions", {}).items():
        click.echo(f"session {name}: {_scores(scores)}")
    if "weights" in metrics:
        click.echo(f"weights: {metrics['weights']}")
    click.echo(f"run folder: {run_dir}")


cli.add_command(sweep)


#: set when SIGTERM stopped the command: it then exits with status 143 (128 + 15), as a batch
#: system expects, where Ctrl-C exits with 130
TERMINATED = threading.Event()


@contextmanager
def terminating_as_interrupted(as_signal: bool = False):
    """SIGTERM (``kill``, a batch system's time limit or preemption) stops the command as Ctrl-C
    does, so a fit's run folder is left as after Ctrl-C and the user is told how to go on;
    ``as_signal``: by sending SIGINT, for a block whose library handles Ctrl-C itself (Ray Tune
    saves its state and returns)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        TERMINATED.set()
        # (a handler of Python's: a job started in the background of a script ignores Ctrl-C,
        # and SIGTERM must stop it all the same)
        if as_signal and callable(signal.getsignal(signal.SIGINT)):
            signal.raise_signal(signal.SIGINT)
            return
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _invoke() -> None:
    """Run the command line as ``cli.main(standalone_mode=False)`` does, but without the blank
    line it writes to stderr at Ctrl-C: errors, Abort and KeyboardInterrupt propagate to
    :func:`main`, and an exit with a status (``--help``, ``--version``: 0) ends the process."""
    try:
        with cli.make_context(Path(sys.argv[0]).name or "pyrolf", sys.argv[1:]) as context:
            cli.invoke(context)
    except click.exceptions.Exit as done:
        if done.exit_code:
            sys.exit(done.exit_code)


def main() -> None:
    """Entry point: user errors become one line on stderr and exit status 1, no traceback;
    Ctrl-C and SIGTERM one line and exit status 130 and 143."""
    TERMINATED.clear()
    try:
        with terminating_as_interrupted():
            _invoke()
    except click.exceptions.NoArgsIsHelpError as error:  # 'pyrolf' alone: its help, no error
        click.echo(error.format_message())
    except click.ClickException as error:  # a bad command, option or value: one line, no usage
        context = getattr(error, "ctx", None)
        hint = f" (see '{context.command_path} --help')" if context is not None else ""
        click.echo(f"error: {error.format_message()}{hint}", err=True)
        sys.exit(error.exit_code)
    except USER_ERRORS as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    except MemoryError:  # numpy's _ArrayMemoryError too
        click.echo("error: out of memory; ask for less at once (fewer --samples or --trials, a "
                   "smaller --batch-size) or use a machine with more; no file is left half-written",
                   err=True)
        sys.exit(1)
    except OSError as error:  # what the system refused: a name too long, a full disk, a device
        where = f"{error.filename}: " if error.filename else ""
        click.echo(f"error: {where}{error.strerror or error}", err=True)
        sys.exit(1)
    except (click.exceptions.Abort, KeyboardInterrupt) as error:  # click turns Ctrl-C into Abort
        cause = error.__cause__ if isinstance(error, click.exceptions.Abort) else error
        click.echo(str(cause) if isinstance(cause, RunInterrupted) else "interrupted", err=True)
        sys.exit(128 + (signal.SIGTERM if TERMINATED.is_set() else signal.SIGINT))
