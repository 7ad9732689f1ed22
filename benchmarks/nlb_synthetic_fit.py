"""A full fit on a larger generated MC_Maze-layout dataset, scored by nlb_tools (run by hand)::

    uv run python benchmarks/nlb_synthetic_fit.py --folder gen-mc-maze -- --epochs 100

Writes (once) NLB-format NWB files in the DANDI layout under ``--folder`` with MC_Maze's neuron
counts (137 held-in, 45 held-out) and ``--trials`` train-file trials, spikes and hand velocity from
the planted latent system of :mod:`pyrolf.data.nlb_synthetic`; then runs
``pyrolf fit --data mc_maze --data-dir FOLDER --out FOLDER/run-...`` with the options after ``--``
and prints its metrics (``co_bps`` beside ``smoothing_co_bps``, ``vel_r2``, ...).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pyrolf.cli.main import main as pyrolf_main
from pyrolf.data.dandi import nwb_files
from pyrolf.data.nlb_synthetic import write_nlb_files
from pyrolf.data.spikes import DataError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=Path("gen-mc-maze"))
    parser.add_argument("--trials", type=int, default=2295)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("fit_options", nargs="*", help="options passed to pyrolf fit (after --)")
    args = parser.parse_args()
    try:
        nwb_files("mc_maze", args.folder)
    except DataError:
        started = time.perf_counter()
        write_nlb_files(args.folder, "mc_maze", n_trials=args.trials, n_heldin=137, n_heldout=45,
                        seed=args.seed)
        print(f"wrote {args.trials} trials in {time.perf_counter() - started:.0f} s")
    out = args.folder / f"run-{time.strftime('%Y%m%d-%H%M%S')}"
    sys.argv = ["pyrolf", "fit", "--data", "mc_maze", "--data-dir", str(args.folder),
                "--out", str(out), *args.fit_options]
    print(" ".join(sys.argv))
    pyrolf_main()


if __name__ == "__main__":
    main()
