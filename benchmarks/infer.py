"""Seconds and peak memory of ``pyrolf infer`` on an MC_Maze-sized set.

Run by hand (not in CI)::

    uv run python benchmarks/infer.py                    # 2869 trials, 100 samples, CPU
    uv run python benchmarks/infer.py --device cuda      # on a GPU
    uv run python benchmarks/infer.py --trials 287       # a tenth of the trials (times scale)
    uv run python benchmarks/infer.py --overlap 9        # windows of a continuous recording

An untrained LangevinFlow of the ``mc_maze`` preset's sizes (latent 280, encoder 280, 20 ms bins)
infers 2869 trials (MC_Maze's train + val + test) of 35 observed + 10 forward bins, 137 held-in
+ 45 held-out neurons, from random Poisson counts (the speed does not depend on them), and the
Dataset is written to a netCDF file in a temporary folder. ``--overlap N``: the trials are the
windows of one continuous recording, each starting ``45 - N`` bins after the one before (as
``--chop`` cuts them), merged back into one series (``time``, ...) as ``pyrolf infer`` merges them. Memory: the process's peak resident set
(it only grows) and, on a GPU, the peak allocated GPU memory; beside them the size of the
summaries (what the Dataset holds) and of all draws, which are never held at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pyro
import torch

from pyrolf.config import Config
from pyrolf.data.spikes import SpikeData
from pyrolf.diagnostics.export import infer_trials, write_inferred
from pyrolf.models import build_flow
from pyrolf.models.presets import preset

# MC_Maze at 20 ms: trials (train + val + test), observed + forward bins, held-in, held-out
TRIALS, BINS, FORWARD, HELDIN, HELDOUT = 2869, 45, 10, 137, 45


def mc_maze_sized(trials: int, device: str, split: str) -> tuple[Config, SpikeData, object]:
    """The ``mc_maze`` preset's Config on ``device``, ``trials`` random Poisson trials of MC_Maze's
    sizes, all in ``split``, and an untrained flow of the preset's sizes on ``device``."""
    config = Config(**preset("mc_maze"), data="mc_maze", device=device)
    n_neurons = HELDIN + HELDOUT
    rng = np.random.default_rng(0)
    data = SpikeData(spikes=rng.poisson(0.3, (trials, BINS, n_neurons)).astype(np.float32),
                     heldout=np.arange(n_neurons) >= HELDIN, splits={split: np.arange(trials)},
                     n_forward=FORWARD, name="mc_maze_sized")
    pyro.set_rng_seed(0)
    return config, data, build_flow(config, n_neurons, HELDIN).to(device)


def arguments(description: str, trials: int, overlap: bool = False) -> argparse.Namespace:
    """``--device``, ``--trials`` (default ``trials``), ``--samples`` and, with ``overlap``,
    ``--overlap`` from the command line."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--trials", type=int, default=trials)
    parser.add_argument("--samples", type=int, default=100)
    if overlap:
        parser.add_argument("--overlap", type=int, default=None, metavar="BINS",
                            help="the trials as windows of one recording, overlapping by BINS")
    return parser.parse_args()


def print_sizes(args: argparse.Namespace, config: Config, n_neurons: int) -> None:
    """The first line of a benchmark of posterior draws: where it ran and at what sizes."""
    print(f"device={args.device} threads={torch.get_num_threads()} trials={args.trials} "
          f"bins={BINS} neurons={n_neurons} latent_dim={config.latent_dim} "
          f"samples={args.samples}")


def peak_rss_gib() -> float:
    """The process's peak resident memory so far (it only grows), GiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB


def gpu_peak(device: str) -> list[str]:
    """``gpu_peak_gib=...``, the peak GPU memory allocated since the last reset, on CUDA; else
    nothing."""
    return ([f"gpu_peak_gib={torch.cuda.max_memory_allocated() / 2**30:.2f}"]
            if device == "cuda" else [])


def as_windows(data: SpikeData, overlap: int) -> SpikeData:
    """``data``'s trials as the windows of one continuous recording, each starting
    ``bins - overlap`` bins after the one before, of 20 ms bins (``extra["chop"]`` as
    :mod:`pyrolf.data.recordings` makes it)."""
    step = data.n_bins - overlap
    starts = np.arange(data.n_trials) * step
    chop = {"starts": starts, "n_time": int(starts[-1] + data.n_bins), "start_time": 0.0,
            "bin_size": 0.02}
    return dataclasses.replace(data, bin_size=0.02, extra={**data.extra, "chop": chop})


def main() -> None:
    args = arguments(__doc__.splitlines()[0], TRIALS, overlap=True)
    config, data, flow = mc_maze_sized(args.trials, args.device, "train")
    if args.overlap is not None:
        data = as_windows(data, args.overlap)
    n_neurons = data.n_neurons
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    dataset = infer_trials(flow, data, args.samples, config.to_dict(), args.device)
    inferred = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        write_inferred(dataset, Path(folder) / "inferred.nc")
        written = time.perf_counter() - started
        file_gib = (Path(folder) / "inferred.nc").stat().st_size / 2**30
    per_draw = BINS * (3 * config.latent_dim + n_neurons) * 4  # z, v, inputs, rates, float32
    print_sizes(args, config, n_neurons)
    print(f"infer_seconds={inferred:.1f} write_seconds={written:.1f} "
          f"process_peak_rss_gib={peak_rss_gib():.2f} summaries_gib={dataset.nbytes / 2**30:.2f} "
          f"all_draws_gib={args.trials * args.samples * per_draw / 2**30:.1f} "
          f"file_gib={file_gib:.2f}", *gpu_peak(args.device),
          *([f"merged_bins={dataset.sizes['time']}"] if args.overlap is not None else []))


if __name__ == "__main__":
    main()
