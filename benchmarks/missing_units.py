"""Another day's session that lost some held-in units: filled by pyrolf, or read as silent (run by
hand)::

    OMP_NUM_THREADS=1 python benchmarks/missing_units.py --folder missing -- --epochs 100

Writes a planted session (:mod:`pyrolf.data.recording_synthetic`) as ``session.nwb`` and fits it
(``pyrolf fit --data session.nwb --align stim_on_time --window W --condition target`` and the
options after ``--``). Then writes the same session twice more, as another day that lost the
run's first ``--lost`` held-in units: ``lost.nwb`` without them (``pyrolf infer`` fills what the
encoder reads of them, :mod:`pyrolf.diagnostics.missing`) and ``silent.nwb`` with them present
but silent (what a lost unit amounts to without the fill). Runs ``pyrolf infer RUN --data F`` on
each file and prints, for each, the R² of the inferred rates against the planted rates on all
trials, of the units still there and of the lost ones, and the seconds ``infer`` took. A folder
that holds the fit already is inferred again (another ``--lost``) without fitting.
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import xarray as xr

from own_recording import (PLANTED_BIN_MS, fit_planted, inferred_and_planted,  # beside this one
                           planted_session_options, pyrolf_in_process)
from pyrolf import load_run
from pyrolf.data.recording_synthetic import simulate_recording, write_recording_nwb
from pyrolf.evaluation.metrics import rates_r2

def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    planted_session_options(parser, "missing", lost=4)
    args = parser.parse_args(argv)
    args.folder.mkdir(parents=True, exist_ok=True)
    session = simulate_recording(n_trials=args.trials, n_units=args.units, seed=args.seed)
    path, run = args.folder / "session.nwb", args.folder / "run"
    if not (run / "metrics.json").exists():  # (a file written again is another file to a run)
        write_recording_nwb(path, session)
        fit_planted(path, run, args.window, args.fit_options)
    _, _, data = load_run(run)
    ids = data.extra["unit_ids"]
    lost = ids[~data.heldout][:args.lost]
    kept = ~np.isin(session.unit_ids, lost)
    files = {"all units": path,
             "lost, filled": write_recording_nwb(args.folder / "lost.nwb", dataclasses.replace(
                 session, rates=session.rates[:, kept], unit_ids=session.unit_ids[kept],
                 spike_times=[t for t, keep in zip(session.spike_times, kept) if keep])),
             "lost, silent": write_recording_nwb(args.folder / "silent.nwb", dataclasses.replace(
                 session, spike_times=[t if keep else t[:0] for t, keep in
                                       zip(session.spike_times, kept)]))}
    window = float(args.window.split(",")[0])
    for name, file in files.items():
        out = args.folder / f"{file.stem}.nc"
        seconds = pyrolf_in_process("infer", str(run), "--data", str(file), "--out", str(out),
                                    "--quiet")
        inferred = xr.open_dataset(out)
        rates, true = inferred_and_planted(inferred, session, window, PLANTED_BIN_MS)
        gone = np.isin(inferred["neuron"].values, lost)
        print(f"{name}: rates_r2 units_there={rates_r2(rates[..., ~gone], true[..., ~gone]):.4f} "
              f"units_lost={rates_r2(rates[..., gone], true[..., gone]):.4f} "
              f"infer_seconds={seconds:.1f}", flush=True)


if __name__ == "__main__":
    main()
