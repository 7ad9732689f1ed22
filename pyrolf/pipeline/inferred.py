"""Every trial's posterior from a fitted run: ``pyrolf infer`` (its own trials, new trials, a
session of several), written to ``inferred.nc`` with the learned dynamics."""

from __future__ import annotations

import dataclasses
import os
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pyro

from pyrolf.caller_state import keeps_caller_state
from pyrolf.config import Config, ConfigError, NLB_OPTIONS
from pyrolf.data import (CUTTING, DANDISETS, SpikeData, TRIAL_OPTIONS, data_file,
                         hold_forward_bins, load_config_data, named_data, session_files)
from pyrolf.data.files import check_trials, same_data, spikes_fingerprint
from pyrolf.data.recordings import open_source, recording_format
from pyrolf.data.sessions import Sessions, same_bin_size, session_list, shared_bin_size
from pyrolf.data.spikes import DataError, MissingBehavior, NoTrialsTable
from pyrolf.diagnostics.layout import data_layout
from pyrolf.evaluation.report import INTERVAL_SAMPLES
from pyrolf.messages import note, notes_kept_back
from pyrolf.pipeline.records import (DYNAMICS, INFERRED, SPECTRUM, WEIGHTS_RECORD, _layout,
                                     _load_run, _session_views, run_device)
from pyrolf.pipeline.training import FitResult
from pyrolf.runs import NAME_MAX, RunFolder, path_text


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
            :class:`~pyrolf.data.SpikeData` or a numpy array of counts ``(trials, time,
            neurons)`` (the run's neurons, all or the held-in ones, in its order), a spike file's
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
        session_too = " or --session" if run.config().sessions else ""  # (one session: none)
        run.check_writable("infer", DYNAMICS, "infer into a copy of the run folder, or give "
                           f"--data{session_too} (which write no dynamics)")
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
    flagged = isinstance(data, SpikeData)  # (an array's neurons carry no flags of their own)
    if isinstance(data, np.ndarray):  # the run's neurons, laid out as new_trials reads them
        data = SpikeData(spikes=data, heldout=np.zeros(data.shape[-1:], bool), splits={},
                         name="the array given")
    if data is not None and not isinstance(data, (str, SpikeData)):
        raise DataError(f"data must be a file's path, an NLB name, a pyrolf.data.SpikeData or a "
                        f"numpy array of counts (trials, time, neurons), got "
                        f"{type(data).__name__}")
    if fitted_on is not None and not isinstance(fitted_on, (SpikeData, Sessions)):
        raise DataError(f"fitted_on must be the pyrolf.data.SpikeData (or Sessions) the run was "
                        f"fitted on, got {type(fitted_on).__name__}")
    config = run.config if isinstance(run, FitResult) else RunFolder.open(run).config()
    device = run_device(config, device)  # (before the data load)
    loaded = None  # new trials, read once; laid out on each inferred session's neurons
    if isinstance(data, SpikeData):
        loaded = check_trials(data, f"the data ({data.name})", fitted=False)
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
        if (loaded is not None and flagged
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
            dataset.attrs["source"] = path_text(data_file(data).absolute() if data_file(data)
                                                else data)
        elif its_own and files:
            dataset.attrs["source"] = path_text(files[name] if name is not None else config.data)
        if name is not None:
            dataset.attrs["session"] = name
        inferred[name] = trials, dataset
    return flow, inferred


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
    of ``run``) cannot be written: its folder missing or read-only, ``path`` a folder, or its
    name longer than a file system takes."""
    if len(os.fsencode(path.name)) > NAME_MAX:
        raise ConfigError(f"--out {path}: a name of {len(os.fsencode(path.name))} bytes is "
                          f"longer than a file system takes ({NAME_MAX}); give a shorter one")
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
