"""Swap the guide: q(v_t | h_t), independent over time given a bidirectional GRU encoder.

    uv run python examples/meanfield_guide.py         # the CLI's: pyrolf fit --guide meanfield
"""

import pyrolf
from pyrolf.data import lorenz_dataset
from pyrolf.guides import MeanFieldGuide
from pyrolf.models import build_flow


def main(data=None, config=None):
    data, config = data or lorenz_dataset(), config or pyrolf.Config()
    flow = build_flow(config, data.n_neurons, data.n_heldin)
    flow.posterior = MeanFieldGuide(data.n_heldin, config.latent_dim, config.encoder_hidden)
    return pyrolf.fit(data, config, flow=flow)


if __name__ == "__main__":
    print(main().metrics)
