"""Posterior diagnostics of a run folder: ``pyrolf diagnose``."""

from __future__ import annotations

import pyro

from pyrolf.caller_state import keeps_caller_state
from pyrolf.data import SpikeData, session_files
from pyrolf.data.sessions import Sessions
from pyrolf.pipeline.records import _load_run, _session_views, diagnosed_folder, run_device
from pyrolf.runs import RunFolder, path_text


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
                 **({} if given else {"source": path_text(session_files(config)[session]
                                                          if session else config.data)}),
                 **({"session": session} if session else {})}
        report = diagnose(flow.to(device), data, select_trials(data, trials), samples,
                          target, device, progress, attrs, rates)
        report.update(record)
        if session is not None:
            report["session"] = session
        target.write_json(DIAGNOSTICS, report)
    return report
