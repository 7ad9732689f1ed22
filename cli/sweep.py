"""``pyrolf sweep``: a hyperparameter sweep of LangevinFlow with Ray Tune (``pyrolf[sweep]``)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from pyrolf.cli.options import with_data_options
from pyrolf.config import ConfigError
from pyrolf.messages import note, typed
from pyrolf.runs import RunInterrupted
from pyrolf.sweep import SEARCH_SPACE, SweepError
from pyrolf.sweep.settings import SCHEDULERS, sweep_settings


@click.command()
@click.option("--data", multiple=True,
              help="'lorenz' (default), an NLB dataset, the path of a .h5/.npz spike file or "
                   "of an own recording; more than once: sessions sharing one dynamics (see "
                   "'pyrolf fit --help').")
@click.option("--trials", type=click.IntRange(min=1), default=None,
              help="Configurations to try (required unless --resume).")
@click.option("--scheduler", type=click.Choice(SCHEDULERS), default=None,
              help="asha (default): stop poor trials early; pbt: population-based training (the "
                   "worst trials take the best ones' weights and perturbed settings).")
@click.option("--address", default=None,
              help="HOST:PORT of a running Ray cluster to join (see 'ray start --head'); "
                   "default: start Ray on this machine.")
@click.option("--cpus-per-trial", type=click.FloatRange(min=0, min_open=True), default=None,
              help="CPU cores each trial holds (and its torch threads; default 1).")
@click.option("--gpus-per-trial", type=click.FloatRange(min=0), default=None,
              help="GPUs each trial holds (a fraction shares one; default 0); above 0 trains "
                   "on cuda.")
@click.option("--max-concurrent", "concurrent", type=click.IntRange(min=1), default=None,
              help="Trials that train at once (default: as many as the CPUs and GPUs take, "
                   "given --cpus-per-trial and --gpus-per-trial).")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Epochs per trial (the most ASHA lets a trial run).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Sweep folder to create (default sweeps/DATA-TIME).")
@click.option("--resume", "resume_dir", type=click.Path(path_type=Path), default=None,
              help="Continue the interrupted sweep in this folder.")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
              help="JSON file of the settings every trial shares (see pyrolf/config.py).")
@click.option("--space", "space_file", type=click.Path(path_type=Path), default=None,
              help='JSON file overriding search-space entries: {"lr": [0.001, 0.01]} new '
                   'bounds, {"latent_dim": [16, 32]} new options, {"damping": 0.3} fixed.')
@click.option("--quiet", is_flag=True,
              help="No progress bars while best/ is scored (Ray Tune's status table is its own).")
@with_data_options
def sweep(data, trials, scheduler, address, cpus_per_trial, gpus_per_trial, concurrent, epochs,
          out, resume_dir, config_file, space_file, quiet, **reading):
    """Sweep hyperparameters with Ray Tune: TRIALS fits scored by validation co-bps, a
    results.csv and the best run as best/ (a run folder 'pyrolf evaluate' accepts). The data
    are read as 'pyrolf fit' reads them, with the same options (--align, --window, --bin, ...)."""
    from pyrolf.cli.main import (_print_metrics, _read_config, build_config,
                                 terminating_as_interrupted)

    data = data or None
    reading = {key: value for key, value in reading.items() if value is not None}
    if resume_dir is not None:
        given = [name for name, value in [("--data", data), ("--trials", trials),
                                          ("--epochs", epochs), ("--out", out),
                                          ("--config", config_file), ("--space", space_file),
                                          ("--max-concurrent", concurrent),
                                          ("--scheduler", scheduler),
                                          ("--cpus-per-trial", cpus_per_trial),
                                          ("--gpus-per-trial", gpus_per_trial)]
                 if value is not None] + [_flag(key) for key in reading]
        if given:
            raise ConfigError(f"--resume continues a sweep with its own settings; drop "
                              f"{', '.join(given)} (only --address and --quiet may be given "
                              "with it)")
        tune = _sweeps()
        with terminating_as_interrupted(as_signal=True):  # as Ctrl-C, which Ray Tune handles
            result = tune.resume_sweep(resume_dir, address, progress=not quiet)
    else:
        if trials is None:
            raise ConfigError("--trials is required: how many configurations to try")
        scheduler = scheduler or "asha"
        cpus_per_trial = 1.0 if cpus_per_trial is None else cpus_per_trial
        gpus_per_trial = 0.0 if gpus_per_trial is None else gpus_per_trial
        config = build_config(data, config_file,
                              {**reading, **({} if epochs is None else {"epochs": epochs})})
        space = _read_config(space_file, "search-space file") if space_file else None
        space = _shared(config, _read_config(config_file) if config_file else {}, space)
        sweep_settings(config, trials, scheduler, space, cpus_per_trial, gpus_per_trial,
                       concurrent)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        folder = out or Path("sweeps") / f"{Path(config.data).stem}-{stamp}"
        tune = _sweeps()
        with terminating_as_interrupted(as_signal=True):
            result = tune.run_sweep(folder, config, trials, scheduler, space, cpus_per_trial,
                                    gpus_per_trial, address, concurrent, progress=not quiet)
    click.echo(f"results: {result.folder / tune.RESULTS} ({len(result.rows)} trials)")
    if result.best is not None:
        click.echo(f"best trial {result.best['trial']}: {tune.BEST_SCORE}="
                   f"{result.best[tune.BEST_SCORE]:.4f} after {result.best['epochs']} epochs")
    if result.unfinished:  # Ray Tune returns from an interrupt: the status says it (130, 143)
        raise RunInterrupted(f"interrupted: {result.unfinished} trials did not finish; continue "
                             f"with: pyrolf sweep --resume {typed(result.folder)}")
    _print_metrics(result.metrics, result.folder / tune.BEST)


def _shared(config, given: dict, space: dict | None) -> dict | None:
    """``space`` with the settings of the ``--config`` file (``given``) that the search space
    would vary fixed at ``config``'s value, as the file's settings are every trial's (an entry of
    ``space`` itself comes first); a note names them."""
    fixed = sorted(name for name in set(given) & set(SEARCH_SPACE) if name not in (space or {}))
    if not fixed:
        return space
    note(f"--config fixes {', '.join(fixed)} for every trial (the search space would vary "
         "them; --space sets what is swept)")
    return {**{name: getattr(config, name) for name in fixed}, **(space or {})}


def _flag(name: str) -> str:
    """The command line's flag of the parameter ``name`` of the running command."""
    return next(param.opts[0] for param in click.get_current_context().command.params
                if param.name == name)


def _sweeps():
    """:mod:`pyrolf.sweep.tune`, or a one-line error when Ray Tune is not installed."""
    try:
        from pyrolf.sweep import tune
    except ModuleNotFoundError as error:
        if error.name is None or error.name.split(".")[0] != "ray":
            raise
        raise SweepError("pyrolf sweep needs Ray Tune, an optional extra: uv sync --extra "
                         "sweep (or, in your own environment, uv pip install 'ray[tune]>=2.9')"
                         ) from None
    return tune
