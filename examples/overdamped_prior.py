"""Swap the prior: overdamped (Brownian) Langevin dynamics, the velocity without memory.

    uv run python examples/overdamped_prior.py        # the CLI's: pyrolf fit --prior overdamped

With ``FreeParticle()`` as the potential the latent positions are a Gaussian random walk.
"""

import pyrolf
from pyrolf.data import lorenz_dataset
from pyrolf.dynamics import CoupledOscillators, LangevinPrior, OverdampedDynamics
from pyrolf.models import build_flow


def main(data=None, config=None):
    data, config = data or lorenz_dataset(), config or pyrolf.Config()
    flow = build_flow(config, data.n_neurons, data.n_heldin)
    potential = CoupledOscillators(config.latent_dim, config.channels)
    flow.prior = LangevinPrior(OverdampedDynamics(potential, config.step, config.damping),
                               config.latent_dim)  # the guide builds on flow.prior.dynamics
    return pyrolf.fit(data, config, flow=flow)


if __name__ == "__main__":
    print(main().metrics)
