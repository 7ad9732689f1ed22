"""Swap the prior: overdamped (Brownian) Langevin dynamics without a force, the velocity without
memory: the latent positions are a Gaussian random walk.

    uv run python examples/overdamped_prior.py   # the CLI's: pyrolf fit --prior overdamped --potential free
"""

import pyrolf
from pyrolf.data import lorenz_dataset
from pyrolf.dynamics import FreeParticle, LangevinPrior, OverdampedDynamics
from pyrolf.models import build_flow


def main(data=None, config=None):
    data, config = data or lorenz_dataset(), config or pyrolf.Config()
    flow = build_flow(config, data.n_neurons, data.n_heldin)
    random_walk = OverdampedDynamics(FreeParticle(), config.step, config.damping,
                                     config.noise_scale, learn=config.learn_dynamics,
                                     integrator=config.integrator)
    flow.prior = LangevinPrior(random_walk, config.latent_dim)  # the guide reads flow.prior.dynamics
    return pyrolf.fit(data, config, flow=flow)


if __name__ == "__main__":
    print(main().metrics)
