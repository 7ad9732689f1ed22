"""Seconds, peak memory and file size of ``pyrolf diagnose`` on an MC_Maze-sized set.

Run by hand (not in CI)::

    uv run python benchmarks/diagnose.py                 # 574 trials, 100 samples, CPU
    uv run python benchmarks/diagnose.py --device cuda   # on a GPU
    uv run python benchmarks/diagnose.py --trials 100    # fewer trials (times scale)

An untrained LangevinFlow of the ``mc_maze`` preset's sizes (latent 280, encoder 280, 20 ms bins)
is diagnosed on 574 trials (as many as MC_Maze's valid split, which ``pyrolf diagnose`` takes on
NLB data) of 35 observed + 10 forward bins, 137 held-in + 45 held-out neurons, from random Poisson
counts (the speed does not depend on them), into a temporary run folder: the posterior draws and
their log-densities (:func:`pyrolf.diagnostics.sample_posterior`), the KL per latent dimension,
the checks, ``posterior.nc`` and the figures. Memory: the process's peak resident set (it only
grows) and the size of the draws held (``z``, ``v`` and the predicted counts).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from infer import (BINS, arguments, gpu_peak, mc_maze_sized,  # a script beside this one
                   peak_rss_gib, print_sizes)
from pyrolf.diagnostics import report
from pyrolf.runs import RunFolder

TRIALS = 574  # MC_Maze's valid trials


def main() -> None:
    args = arguments(__doc__.splitlines()[0], TRIALS)
    config, data, flow = mc_maze_sized(args.trials, args.device, "test")
    n_neurons = data.n_neurons
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        report.diagnose(flow, data, data.splits["test"], args.samples, RunFolder(folder),
                        args.device)
        diagnosed = time.perf_counter() - started
        file_gib = (Path(folder) / report.POSTERIOR).stat().st_size / 2**30
    held = report.draws_bytes(args.trials, args.samples, BINS, config.latent_dim, n_neurons)
    print_sizes(args, config, n_neurons)
    print(f"diagnose_seconds={diagnosed:.1f} process_peak_rss_gib={peak_rss_gib():.2f} "
          f"draws_gib={held / 2**30:.2f} file_gib={file_gib:.2f}", *gpu_peak(args.device))


if __name__ == "__main__":
    main()
