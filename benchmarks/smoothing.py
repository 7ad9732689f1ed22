"""Seconds of the smoothing baseline's held-out GLMs on a recording with many units (run by hand)::

    uv run python benchmarks/smoothing.py [--units 300] [--bins 25000] [--threads 1]

Plants Poisson spikes of ``--units`` units driven by a slow 5-d latent over ``--bins`` bins of
50-bin trials (a fifth of the units held out) and fits the held-out GLMs for each of the
baseline's widths in turn, as :func:`pyrolf.evaluation.smoothing.fit_smoothing` compares them:
each fit from sklearn's start (``cold``, as before the fits were chained) and each from the last
width's weights (``warm``, what pyrolf does). Prints the seconds of each, in one run, and how far
apart their weights and validation co-bps come (the same optimum: the loss is convex).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from pyrolf.evaluation.metrics import co_bps
from pyrolf.evaluation.smoothing import (DEFAULT_WIDTHS, LOG_OFFSET, fit_poisson_glm, glm_rates,
                                         smooth_spikes)

TRIAL_BINS = 50


def planted(units: int, bins: int, seed: int = 0) -> np.ndarray:
    """Counts ``(trials, TRIAL_BINS, units)`` of units driven by a slow 5-d latent."""
    rng = np.random.default_rng(seed)
    latent = 0.1 * rng.normal(size=(bins // TRIAL_BINS, TRIAL_BINS, 5)).cumsum(axis=1)
    return rng.poisson(np.exp(latent @ (0.5 * rng.normal(size=(5, units))) - 2.5)).astype(float)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=300)
    parser.add_argument("--bins", type=int, default=25_000, help="train bins (and a fifth more, "
                        "valid)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    spikes = planted(args.units, args.bins * 6 // 5)
    heldin = args.units - args.units // 5
    trials = len(spikes)
    train, valid = np.arange(trials * 5 // 6), np.arange(trials * 5 // 6, trials)
    inputs = {width: np.log(smooth_spikes(spikes[..., :heldin], width) + LOG_OFFSET)
              for width in DEFAULT_WIDTHS}
    heldout = spikes[..., heldin:]
    fits, seconds = {}, {}
    for how in ("cold", "warm"):
        last, fits[how] = None, {}
        started = time.perf_counter()
        for width in DEFAULT_WIDTHS:
            fits[how][width] = fit_poisson_glm(inputs[width], heldout, train, 0.01,
                                               start=last if how == "warm" else None)
            last = fits[how][width]
        seconds[how] = time.perf_counter() - started
        print(f"{how}: seconds={seconds[how]:.1f} ({len(DEFAULT_WIDTHS)} widths, "
              f"{len(train) * TRIAL_BINS} bins, {heldin} held in, {args.units - heldin} held out, "
              f"{args.threads} thread(s))", flush=True)
    weights = max(np.abs(fits["warm"][w] - fits["cold"][w]).max() for w in DEFAULT_WIDTHS)
    scores = {how: [co_bps(glm_rates(inputs[w][valid], fits[how][w]), heldout[valid])
                    for w in DEFAULT_WIDTHS] for how in fits}
    apart = np.abs(np.subtract(scores["warm"], scores["cold"])).max()
    print(f"cold={seconds['cold']:.1f} warm={seconds['warm']:.1f} "
          f"ratio={seconds['warm'] / seconds['cold']:.2f} max_weight_difference={weights:.1e} "
          f"max_valid_co_bps_difference={apart:.1e}")


if __name__ == "__main__":
    main()
