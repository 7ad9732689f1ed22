"""Own recordings lose nothing: the NWB path against binning by hand, and merged windows against
the windows themselves (run by hand, one fit after another)::

    OMP_NUM_THREADS=1 python benchmarks/own_recording.py --folder own-recording -- --epochs 100

1. **Trials.** Writes a planted session of ``--trials`` trials
   (:mod:`pyrolf.data.recording_synthetic`) as ``session.nwb`` and fits it (``pyrolf fit --data
   session.nwb --align stim_on_time --window W --bin B --condition target``); bins the same
   trials by hand (``np.histogram`` of each unit's spike times) into ``by_hand.h5`` with the true
   rates, that run's held-out units and its conditions (so the splits come out the same) and
   fits it (``pyrolf fit --data by_hand.h5``), both with the options after ``--``. Prints each
   run's rates R² against the planted rates on its test trials, computed here from its
   predictions (:func:`pyrolf.load_run`, :func:`pyrolf.evaluation.report.model_rates`), and its
   co-bps; for the NWB run (fitted with ``--behavior hand_vel``, the planted hand velocity, which
   only scoring reads) also its ``psth_r2``, ``behavior_r2`` and the smoothing baseline's
   ``smoothing_behavior_r2``.
2. **Continuous.** Writes a ``--seconds`` long recording without trials, fits it chopped into
   windows (``--chop``, ``--overlap``), runs ``pyrolf infer RUN --samples S`` (``--samples``,
   default the run's ``samples``), which merges the windows into one series over the session,
   and prints the R² of ``inferred.nc``'s merged ``rates`` against the planted rates beside the
   R² of the windows themselves (the same windows, scored as trials, from the run's predictions).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pyro
import xarray as xr

from pyrolf import load_run
from pyrolf.cli.main import main as pyrolf_main
from pyrolf.data import SpikeData, save_spike_file
from pyrolf.data.recording_synthetic import BEHAVIOR, simulate_recording, write_recording_nwb
from pyrolf.evaluation.metrics import rates_r2
from pyrolf.evaluation.report import model_rates


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=Path("own-recording"))
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--units", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--window", default="-0.2,0.8")
    parser.add_argument("--bin", type=int, default=10)
    parser.add_argument("--chop", type=float, default=1.0)
    parser.add_argument("--overlap", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=None,
                        help="pyrolf infer --samples (default: the run's samples)")
    parser.add_argument("fit_options", nargs="*", help="pyrolf fit options (after --), e.g. "
                        "--epochs 100")
    args = parser.parse_args(argv)
    args.folder.mkdir(parents=True, exist_ok=True)
    results = {"trials": _trials(args), "continuous": _continuous(args)}
    print(json.dumps(results, indent=2))
    return results


def pyrolf_in_process(*args: str) -> float:
    """``pyrolf ARGS`` in this process; its seconds."""
    sys.argv = ["pyrolf", *args]
    print(" ".join(sys.argv))
    started = time.perf_counter()
    try:
        pyrolf_main()
    except SystemExit as exit_info:
        if exit_info.code:
            raise
    return time.perf_counter() - started


#: the bins of the benchmarks of another day's session (missing_units.py, unrecorded_units.py)
PLANTED_BIN_MS = 10


def planted_session_options(parser: argparse.ArgumentParser, folder: str, lost: int) -> None:
    """Add the options of a benchmark of a planted session's units lost (``--folder``,
    ``--trials``, ``--units``, ``--lost``, ``--window``, ``--seed`` and the fit's options after
    ``--``) to ``parser``."""
    parser.add_argument("--folder", type=Path, default=Path(folder))
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--units", type=int, default=40)
    parser.add_argument("--lost", type=int, default=lost)
    parser.add_argument("--window", default="-0.2,0.8")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("fit_options", nargs="*", help="pyrolf fit options (after --)")


def fit_planted(path: Path, run: Path, window: str, fit_options: list[str]) -> float:
    """``pyrolf fit`` of a planted session's file ``path`` into ``run``: its trials around
    ``stim_on_time`` cut by ``window``, in bins of :data:`PLANTED_BIN_MS`, conditions from
    ``target``, and ``fit_options``; its seconds."""
    return pyrolf_in_process("fit", "--data", str(path), "--align", "stim_on_time",
                             f"--window={window}", "--bin", str(PLANTED_BIN_MS), "--condition",
                             "target", "--out", str(run), "--quiet", *fit_options)


def inferred_and_planted(inferred: xr.Dataset, session, window: float, bin_ms: int):
    """``(rates, true)`` ``(trials, time, neurons)``: an ``inferred.nc``'s rates of trials of
    the planted ``session`` cut ``window`` s after its ``stim_on_time``, and the planted rates
    of the same bins and units."""
    align = session.trials.stim_on_time.to_numpy()[inferred["trial"].values]
    true = session.binned_rates(align + window, inferred.sizes["time"], bin_ms)
    order = np.searchsorted(session.unit_ids, inferred["neuron"].values)
    return inferred["rates"].values, true[..., order]


def _fitted(name: str, fit_args: list[str], folder: Path):
    """``pyrolf fit FIT_ARGS --out folder/run-NAME`` (once); the run's flow, config, data and
    metrics."""
    run = folder / f"run-{name}"
    if not (run / "metrics.json").exists():
        seconds = pyrolf_in_process("fit", *fit_args, "--out", str(run), "--quiet")
        print(f"fitted {name} in {seconds:.0f} s")
    flow, config, data = load_run(run)
    return flow, config, data, json.loads((run / "metrics.json").read_text())


def _predicted(flow, config, data, trials):
    """Posterior-mean rates ``(trials, time, neurons)`` of ``trials``, seeded by the run."""
    pyro.set_rng_seed(config.seed)
    return model_rates(flow, data, trials, config.samples, config.device)


def _trials(args) -> dict:
    session = simulate_recording(args.trials, args.units, seed=args.seed)
    nwb = write_recording_nwb(args.folder / "session.nwb", session)
    runs = {"nwb": _fitted("nwb", ["--data", str(nwb), "--align", "stim_on_time",
                                   f"--window={args.window}", "--bin", str(args.bin),
                                   "--condition", "target", "--behavior", BEHAVIOR,
                                   *args.fit_options], args.folder)}
    _, _, by_nwb, _ = runs["nwb"]
    starts = by_nwb.extra["align_times"] + by_nwb.extra["window"][0]
    edges = starts[:, None] + args.bin / 1000 * np.arange(by_nwb.n_bins + 1)
    by_hand = np.stack([np.stack([np.histogram(times, trial_edges)[0]
                                  for times in session.spike_times], -1) for trial_edges in edges])
    truth = session.binned_rates(starts, by_nwb.n_bins, args.bin)
    h5 = args.folder / "by_hand.h5"
    save_spike_file(h5, SpikeData(spikes=by_hand.astype(np.float32), heldout=by_nwb.heldout,
                                  splits=by_nwb.splits, rates=truth.astype(np.float32),
                                  conditions=by_nwb.conditions))
    runs["by_hand"] = _fitted("by_hand", ["--data", str(h5), *args.fit_options], args.folder)
    results = {"same_counts": bool(np.array_equal(by_hand, by_nwb.spikes))}
    for name, (flow, config, data, metrics) in runs.items():
        test = data.splits["test"]
        results[name] = {"rates_r2": rates_r2(_predicted(flow, config, data, test), truth[test]),
                         "co_bps": metrics["co_bps"],
                         "smoothing_co_bps": metrics["smoothing_co_bps"],
                         "test_trials": len(test)}
    results["same_test_trials"] = bool(np.array_equal(runs["nwb"][2].splits["test"],
                                                      runs["by_hand"][2].splits["test"]))
    results["rates_r2_difference"] = results["nwb"]["rates_r2"] - results["by_hand"]["rates_r2"]
    metrics = runs["nwb"][3]
    results["nwb"].update({key: metrics[key] for key in ("psth_r2", "behavior_r2",
                                                         "smoothing_behavior_r2")})
    return results


def _continuous(args) -> dict:
    recording = simulate_recording(None, args.units, seed=args.seed + 1, duration_s=args.seconds)
    nwb = write_recording_nwb(args.folder / "continuous.nwb", recording)
    flow, config, data, metrics = _fitted(
        "continuous", ["--data", str(nwb), "--bin", str(args.bin), "--chop", str(args.chop),
                       "--overlap", str(args.overlap), *args.fit_options], args.folder)
    run = args.folder / "run-continuous"
    samples = args.samples or config.samples
    seconds = pyrolf_in_process("infer", str(run), "--samples", str(samples))
    inferred = xr.open_dataset(run / "inferred.nc")
    plan = data.extra["chop"]
    merged_truth = recording.binned_rates(inferred["time"].values[:1], inferred.sizes["time"],
                                          args.bin)[0]
    every = np.arange(data.n_trials)
    rates = _predicted(flow, config, data, every)
    truth = recording.binned_rates(plan["start_time"] + plan["starts"] * plan["bin_size"],
                                   data.n_bins, args.bin)
    test = data.splits["test"]
    return {"windows": len(every), "window_bins": data.n_bins, "n_time": inferred.sizes["time"],
            "seconds_covered": float(inferred.sizes["time"] * plan["bin_size"]),
            "infer_samples": samples, "infer_s": round(seconds, 1),
            "merged_rates_r2": rates_r2(inferred["rates"].values[None], merged_truth[None]),
            "windows_rates_r2": rates_r2(rates, truth),
            "test_windows_rates_r2": rates_r2(rates[test], truth[test]),
            "co_bps": metrics["co_bps"], "smoothing_co_bps": metrics["smoothing_co_bps"]}


if __name__ == "__main__":
    main()
