"""How the default optimiser's clipping and weight decay meet the gradients of the loss (run by hand)::

    uv run python benchmarks/gradient_scale.py [--batch-size 64] [--kl-weight 0.1]

The loss SVI steps on is the ELBO summed over a batch's trials, bins and neurons, so its gradient
grows with the batch and the data's size. Pyro's ``ClippedAdam`` clamps each element of it to
``±clip_norm`` and adds ``weight_decay · parameter`` to it. On one batch of the embedded Lorenz
training trials, at the default config's initial weights, prints the loss, the median and 99th
percentile of the elements' size, the share above ``clip_norm`` (clamped) and the median of
``weight_decay · |parameter| / |gradient|`` (what weight decay adds, relative).
"""

from __future__ import annotations

import argparse

import pyro
import torch
from pyro.infer import Trace_ELBO

from pyrolf.config import Config
from pyrolf.data import lorenz_dataset
from pyrolf.inference.svi import make_batch
from pyrolf.models import build_flow


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = Config()
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--kl-weight", type=float, default=defaults.kl_weight)
    args = parser.parse_args()
    torch.manual_seed(0)
    pyro.set_rng_seed(0)
    data = lorenz_dataset()
    config = Config(batch_size=args.batch_size, kl_weight=args.kl_weight)
    flow = build_flow(config, data.n_neurons, data.n_heldin).train()
    spikes = torch.as_tensor(data.spikes[data.splits["train"][:config.batch_size]])
    batch = make_batch(spikes, torch.as_tensor(data.heldin), data.n_forward, config.cd_rate)
    loss = Trace_ELBO().differentiable_loss(flow.model, flow.guide, batch.inputs, batch.spikes,
                                            batch.mask, data.n_bins, config.kl_weight)
    loss.backward()
    trained = [parameter for parameter in flow.parameters() if parameter.grad is not None]
    gradient = torch.cat([parameter.grad.flatten() for parameter in trained]).abs()
    weights = torch.cat([parameter.detach().flatten() for parameter in trained]).abs()
    decay = config.weight_decay * weights / gradient.clamp_min(1e-30)
    print(f"batch={config.batch_size} bins={data.n_bins} neurons={data.n_neurons} "
          f"kl_weight={config.kl_weight} clip_norm={config.clip_norm} "
          f"weight_decay={config.weight_decay}")
    print(f"loss={loss.item():.1f} gradient_median={gradient.median():.3g} "
          f"gradient_p99={gradient.quantile(0.99):.3g} "
          f"share_clamped={(gradient > config.clip_norm).float().mean():.3f} "
          f"decay_over_gradient_median={decay.median():.2e}")


if __name__ == "__main__":
    main()
