"""How linearly each run's posterior holds the true latents, by feature set (run by hand)::

    uv run python benchmarks/latent_readout.py RUN [RUN ...]

For runs on data with true ``latents`` (a spike file that has them, the Lorenz data): the
posterior means of every trial from ``pyrolf.infer(RUN, samples=20)``, and
:func:`~pyrolf.evaluation.metrics.latents_r2` (the linear map with intercept fitted on the train
trials, R² on the test trials) from ``z``, ``v``, ``[z, v]`` and ``[z, v, z², v²]``. One line per
run.
"""

from __future__ import annotations

import argparse

import numpy as np

import pyrolf
from pyrolf.evaluation.metrics import latents_r2
from pyrolf.pipeline import load_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()
    for run in args.runs:
        _, _, data = load_run(run)
        inferred = pyrolf.infer(run, samples=args.samples)
        z, v = inferred["z"].values, inferred["v"].values
        latents, train, test = data.extra["latents"], data.splits["train"], data.splits["test"]
        features = {"z": z, "v": v, "zv": np.concatenate([z, v], -1)}
        features["zv_squares"] = np.concatenate([features["zv"], features["zv"] ** 2], -1)
        print(run, " ".join(f"{name}={latents_r2(x[train], latents[train], x[test], latents[test]):.4f}"
                            for name, x in features.items()), flush=True)


if __name__ == "__main__":
    main()
