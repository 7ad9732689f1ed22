"""Swap the potential: anharmonic coupled oscillators (a quartic on-site term, a nonlinear force).

    uv run python examples/nonlinear_potential.py     # the CLI's: pyrolf fit --potential anharmonic
"""

import pyrolf
from pyrolf.data import lorenz_dataset
from pyrolf.dynamics import AnharmonicOscillators
from pyrolf.models import build_flow


def main(data=None, config=None):
    data, config = data or lorenz_dataset(), config or pyrolf.Config()
    flow = build_flow(config, data.n_neurons, data.n_heldin)  # the default LangevinFlow ...
    flow.prior.dynamics.potential = AnharmonicOscillators(config.latent_dim, config.channels)
    return pyrolf.fit(data, config, flow=flow)


if __name__ == "__main__":
    print(main().metrics)
