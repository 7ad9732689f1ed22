"""Units lost part-way through a session: their counts after it unknown (pyrolf), or read as
silence (run by hand, one fit after another)::

    OMP_NUM_THREADS=2 python benchmarks/unrecorded_units.py --folder unrecorded -- --epochs 150

Writes a planted session (:mod:`pyrolf.data.recording_synthetic`) whose first ``--lost`` units
stop being recorded ``--at`` of the way through it, twice: ``unknown.nwb`` says so in the Units
table's ``obs_intervals`` (pyrolf reads their counts after it as unknown: NaN, neither fitted nor
scored), ``silent.nwb`` does not (the same spikes, read as silence: what a lost unit amounts to
where the file has no ``obs_intervals``). Fits each (``pyrolf fit --data F --align stim_on_time
--window W --condition target`` and the options after ``--``), runs ``pyrolf infer`` on it and
prints, for each, the R² of the inferred rates against the planted rates of the lost units in
the trials they missed and in those they were recorded in, of the other units in all trials,
and the run's co-bps. A folder that holds a fit already infers it again without fitting.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import xarray as xr

from own_recording import (PLANTED_BIN_MS, fit_planted, inferred_and_planted,  # beside this one
                           planted_session_options, pyrolf_in_process)
from pyrolf.data.recording_synthetic import simulate_recording, write_recording_nwb
from pyrolf.evaluation.metrics import rates_r2

def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    planted_session_options(parser, "unrecorded", lost=8)
    parser.add_argument("--at", type=float, default=0.5, help="share of the session recorded")
    args = parser.parse_args(argv)
    args.folder.mkdir(parents=True, exist_ok=True)
    session = simulate_recording(n_trials=args.trials, n_units=args.units, seed=args.seed)
    at_s = args.at * len(session.rates) / 1000.0
    lost = session.lose_units(np.arange(args.lost), at_s)
    files = {"unknown": lost, "silent": lost.__class__(**{**lost.__dict__, "obs_intervals": None})}
    window = float(args.window.split(",")[0])
    for name, recording in files.items():
        path, run = args.folder / f"{name}.nwb", args.folder / f"run-{name}"
        if not (run / "metrics.json").exists():  # (a file written again is another file to a run)
            write_recording_nwb(path, recording)
            fit_planted(path, run, args.window, args.fit_options)
        out = args.folder / f"{name}.nc"
        pyrolf_in_process("infer", str(run), "--out", str(out), "--quiet")
        inferred = xr.open_dataset(out)
        rates, true = inferred_and_planted(inferred, session, window, PLANTED_BIN_MS)
        align = session.trials.stim_on_time.to_numpy()[inferred["trial"].values]
        gone = np.isin(inferred["neuron"].values, session.unit_ids[:args.lost])
        missed = align + window + inferred.sizes["time"] * PLANTED_BIN_MS / 1000 > at_s
        co_bps = json.loads((run / "metrics.json").read_text())["co_bps"]
        print(f"{name}: rates_r2 lost_units_missed_trials="
              f"{rates_r2(rates[missed][..., gone], true[missed][..., gone]):.4f} "
              f"lost_units_recorded_trials="
              f"{rates_r2(rates[~missed][..., gone], true[~missed][..., gone]):.4f} "
              f"other_units={rates_r2(rates[..., ~gone], true[..., ~gone]):.4f} "
              f"co_bps={co_bps:.4f}", flush=True)


if __name__ == "__main__":
    main()
