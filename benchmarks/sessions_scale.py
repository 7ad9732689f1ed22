"""How a fit of several sessions grows with their number: seconds per epoch and peak memory
(run by hand, on an otherwise idle machine)::

    python benchmarks/sessions_scale.py --folder sessions-scale [--counts 1 4 16]
        [--pyrolf OTHER_CHECKOUT/.venv/bin/pyrolf ...] [-- --epochs 4]

Writes the largest count of planted sessions (:mod:`pyrolf.data.recording_synthetic`,
spike-times ``.npz``, ``--trials`` trials and ``--units`` units each, seeds 0, 1, ...), then for
each count ``S`` of ``--counts`` and each ``pyrolf`` command (this checkout's, and each
``--pyrolf`` given: another commit's, for a comparison in one run) fits the first ``S``
sessions together (``pyrolf fit --data s00.npz --data s01.npz ... --align stim_on_time
--window=-0.2,0.8 --quiet``, validated at the last epoch only, with the options after ``--``;
default ``--epochs 4``) in a process of its own, one after another. Prints per fit the median
seconds per epoch from ``history.csv`` without the first epoch (Pyro's checks, warm-up) and the
last (it validates), those seconds per session (a fit whose cost grows as its trials, not
faster, keeps it level as ``S`` grows) and the process's peak resident memory in GiB; the last
line per count reads ``sessions=S seconds_per_epoch=A,B,... peak_gib=A,B,...`` in the order of
the commands.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from pyrolf.data.recording_synthetic import simulate_recording, write_spike_times_npz

CUT = ["--align", "stim_on_time", "--window=-0.2,0.8"]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=Path("sessions-scale"))
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--units", type=int, default=60)
    parser.add_argument("--pyrolf", action="append", default=[],
                        help="another pyrolf command to time beside this checkout's")
    parser.add_argument("fit_options", nargs="*", help="pyrolf fit options (after --)")
    args = parser.parse_args(argv)
    args.folder.mkdir(parents=True, exist_ok=True)
    files = []
    for seed in range(max(args.counts)):
        path = args.folder / f"s{seed:02d}.npz"
        if not path.exists():
            write_spike_times_npz(path, simulate_recording(args.trials, args.units, seed=seed))
        files.append(path)
    here = str(Path(sys.executable).with_name("pyrolf"))
    commands = [here, *args.pyrolf]
    options = ["--epochs", "4", *args.fit_options]
    config = args.folder / "config.json"  # validated at the last epoch only
    config.write_text(json.dumps({"eval_every": 10**6}))
    results = {}
    for count in args.counts:
        data = [option for path in files[:count] for option in ("--data", str(path))]
        for index, command in enumerate(commands):
            run = args.folder / f"run-{count}-{index}"
            results[(count, index)] = fit = _fit([command, "fit", *data, *CUT, "--config",
                                                  str(config), *options, "--out", str(run),
                                                  "--quiet"], run)
            fit["seconds_per_session"] = fit["seconds_per_epoch"] / count
            print(f"sessions={count} pyrolf={command} " + " ".join(
                f"{key}={value:.4g}" for key, value in fit.items()), flush=True)
        print(f"sessions={count} seconds_per_epoch=" + ",".join(
            f"{results[(count, i)]['seconds_per_epoch']:.3f}" for i in range(len(commands)))
            + " peak_gib=" + ",".join(f"{results[(count, i)]['peak_gib']:.2f}"
                                      for i in range(len(commands))), flush=True)
    return results


def _fit(command: list[str], run: Path) -> dict:
    """Run ``command`` (a fit into the new folder ``run``, printing into ``run``.log) in a process
    of its own: its median seconds per epoch (first and last left out) and its peak memory."""
    if run.exists():
        raise SystemExit(f"{run} exists; give a new --folder or remove it")
    with open(run.with_suffix(".log"), "w") as log:  # the fit's own lines, kept apart
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{' '.join(command)} failed; see {run.with_suffix('.log')}")
    with open(run / "history.csv") as file:
        seconds = [float(row["seconds"]) for row in csv.DictReader(file)][1:-1]
    return {"seconds_per_epoch": statistics.median(seconds), "peak_gib": usage.ru_maxrss / 2**20}


if __name__ == "__main__":
    main()
