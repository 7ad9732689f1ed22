"""Seconds per training epoch on an MC_Maze-shaped problem (run by hand, not in CI)::

    uv run python benchmarks/nlb_epoch.py                  # CPU, the mc_maze preset
    uv run python benchmarks/nlb_epoch.py --device cuda    # on a GPU

The problem has MC_Maze's shape at 20 ms: 2295 trials (NLB train + val), 35 observed + 10 forward
bins, 137 held-in + 45 held-out neurons; random counts stand in for spikes (the speed does not
depend on them). Prints one line per configuration: seconds per epoch (mean over ``--epochs``
after one warm-up epoch), steps per epoch and the peak memory.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import pyro
import torch

from pyrolf.config import Config
from pyrolf.data.spikes import SpikeData
from pyrolf.inference.svi import Trainer
from pyrolf.models import build_flow, preset

TRIALS, OBSERVED, FORWARD, HELDIN, HELDOUT = 2295, 35, 10, 137, 45


def mc_maze_shaped(seed: int = 0) -> SpikeData:
    rng = np.random.default_rng(seed)
    spikes = rng.poisson(0.3, (TRIALS, OBSERVED + FORWARD, HELDIN + HELDOUT)).astype(np.float32)
    order = rng.permutation(TRIALS)
    n_valid = TRIALS // 10
    return SpikeData(spikes, np.arange(HELDIN + HELDOUT) >= HELDIN,
                     {"train": order[n_valid:], "valid": order[:n_valid], "test": order[:0]},
                     n_forward=FORWARD, name="mc_maze_shaped", bin_size=0.02)


def seconds_per_epoch(config: Config, data: SpikeData, epochs: int) -> tuple[float, int]:
    pyro.clear_param_store()
    pyro.set_rng_seed(config.seed)
    trainer = Trainer(build_flow(config, data.n_neurons, data.n_heldin), data, config)
    trainer.epoch()  # warm-up: lazy parameter and optimiser creation
    if config.device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(epochs):
        trainer.epoch()
    if config.device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / epochs, trainer.steps_per_epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--configs", nargs="+", default=["mc_maze preset", "defaults"],
                        choices=["mc_maze preset", "defaults"])
    args = parser.parse_args()
    data = mc_maze_shaped()
    print(f"device={args.device} threads={torch.get_num_threads()} trials={TRIALS} "
          f"bins={OBSERVED}+{FORWARD} neurons={HELDIN}+{HELDOUT}")
    for name in args.configs:
        settings = {**preset("mc_maze"), "data": "mc_maze"} if name == "mc_maze preset" else {}
        config = Config(**{**settings, "device": args.device})
        if args.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        seconds, steps = seconds_per_epoch(config, data, args.epochs)
        peak = (f"gpu_peak_gib={torch.cuda.max_memory_allocated() / 2**30:.2f}"
                if args.device == "cuda" else
                f"process_peak_rss_gib={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f}")
        print(f"{name}: seconds_per_epoch={seconds:.2f} steps_per_epoch={steps} "
              f"batch_size={config.batch_size} latent_dim={config.latent_dim} {peak}")


if __name__ == "__main__":
    main()
