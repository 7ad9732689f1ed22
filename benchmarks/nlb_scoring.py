"""Time and memory of loading an NLB folder and making its val-phase scoring targets (run by hand)::

    uv run python benchmarks/nlb_scoring.py --folder gen-mc-maze

Loads ``mc_maze`` from ``--folder`` (written first, as in ``benchmarks/nlb_synthetic_fit.py``, when
it holds no such files) with :func:`pyrolf.data.nlb.load_nlb`, then makes nlb_tools' evaluation
targets, PSTHs included, as a fit does before training. Prints the seconds of each step and the
process's peak resident memory after it.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

from pyrolf.data.dandi import nwb_files
from pyrolf.data.nlb import load_nlb
from pyrolf.data.nlb_synthetic import write_nlb_files
from pyrolf.data.spikes import DataError


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=Path("gen-mc-maze"))
    parser.add_argument("--trials", type=int, default=2295)
    args = parser.parse_args()
    try:
        nwb_files("mc_maze", args.folder)
    except DataError:
        write_nlb_files(args.folder, "mc_maze", n_trials=args.trials, n_heldin=137, n_heldout=45)
    started = time.perf_counter()
    data = load_nlb("mc_maze", args.folder)
    print(f"load: seconds={time.perf_counter() - started:.1f} trials={data.n_trials} "
          f"process_peak_rss_gib={peak_gib():.2f}", flush=True)
    started = time.perf_counter()
    data.extra["nlb"].targets()
    print(f"targets: seconds={time.perf_counter() - started:.1f} "
          f"process_peak_rss_gib={peak_gib():.2f}")


if __name__ == "__main__":
    main()
