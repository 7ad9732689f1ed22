"""Seconds per SVI step: step-by-step sites, one vectorised trajectory site drawn bin by bin or by a
parallel scan, and plain PyTorch.

Run by hand (not in CI)::

    uv run python benchmarks/svi_step.py                 # CPU; add --device cuda on a GPU
    uv run python benchmarks/svi_step.py --sizes lorenz  # only the small size

Every path trains the same networks on the same loss (the ELBO of the LangevinFlow model with
coordinated dropout); the plain-PyTorch path computes it without Pyro's tracing, the ceiling the
Pyro paths can approach. ``vectorised`` and ``torch`` draw the trajectory bin by bin (the
``loop`` integrator, the CPU's default), ``scan`` is the vectorised path with the ``scan``
integrator (the GPU's default: a few batched products instead of a kernel or more per bin).
``graphs`` (GPU only) is the scan path with ``cuda_graphs``: its loss, gradients and ClippedAdam
update replayed as a CUDA graph (:class:`pyrolf.inference.capture.GraphSVI`). Random counts
stand in for spikes: the speed does not depend on them.
Argument checks: as ``pyrolf fit`` trains, Pyro and torch check distributions' arguments on the
warm-up step only (``--checks every`` keeps them on, Pyro's default, for every timed and
counted step; the ``graphs`` path then steps eagerly, since a checked step is never recorded).
Operations: each path's count for one step (``ops_per_step``): on a GPU its kernel and graph
launches (a graph's replay counts once), on a
CPU the aten operators that compute (no views or allocations), which stand in for the kernels a GPU
would launch except that the CPU's GRU runs as a few thousand small operators where cuDNN's runs as
a few kernels (``encoder``: the GRU encoder's forward and backward alone). Memory: the process's peak resident set after each size (CPU; it only grows, so run one size
alone to read its own peak) and, on a GPU, each path's peak allocated memory.
The last line reads ``vectorised/torch=R1 stepwise/vectorised=R2 scan/vectorised=R3`` for the
largest size run, and on a GPU ``graphs/scan=R4``.
"""

from __future__ import annotations

import argparse
import resource
import time

import pyro
import torch
from torch.profiler import ProfilerActivity, profile
from pyro.distributions import Normal, Poisson
from pyro.infer import SVI, Trace_ELBO
from pyro.optim import ClippedAdam
from pyro.optim.clipped_adam import ClippedAdam as TorchClippedAdam

from pyrolf.config import Config
from pyrolf.guides.amortised import MIN_SCALE
from pyrolf.inference.capture import WARMUP_STEPS, GraphSVI
from pyrolf.inference.svi import make_batch
from pyrolf.models import build_flow

# (trials per step, bins incl. forward, forward bins, held-in, held-out) of each problem size
SIZES = {
    "lorenz": (64, 50, 0, 24, 6),
    "mc_maze_20ms": (256, 45, 10, 137, 45),
    "mc_maze_5ms": (256, 180, 40, 137, 45),
}


def torch_loss(flow, inputs, spikes, mask, kl_weight=1.0):
    """The negative ELBO of one guide draw, computed with plain torch calls on ``flow``'s nets."""
    posterior, dynamics = flow.posterior, flow.prior.dynamics
    h, summary = posterior.encoder(inputs)
    loc_z, loc_v, scale_z, scale_v = posterior.initial(summary).chunk(4, dim=-1)
    q_z = Normal(loc_z, torch.nn.functional.softplus(scale_z) + MIN_SCALE)
    q_v = Normal(loc_v, torch.nn.functional.softplus(scale_v) + MIN_SCALE)
    z0, v0 = q_z.rsample(), q_v.rsample()
    loc, scale, follow = posterior.innovations(dynamics, h, spikes.shape[1])
    q = Normal(loc, scale)
    u = q.rsample()
    z, v = dynamics.integrate(z0, v0, u, follow)
    _, mean = dynamics.drift(z[:, :-1], v[:, :-1], dynamics.terms(z))
    log_q = q.log_prob(u).sum((1, 2)) + q_z.log_prob(z0).sum(-1) + q_v.log_prob(v0).sum(-1)
    log_p = (Normal(mean, dynamics.noise_scale).log_prob(v[:, 1:]).sum((1, 2))
             + Normal(0.0, 1.0).log_prob(z0).sum(-1) + Normal(0.0, 1.0).log_prob(v0).sum(-1))
    log_rates = flow.decoder(z, v)
    log_lik = (Poisson(log_rates.exp()).log_prob(spikes) * mask).sum((1, 2))
    return -(log_lik - kl_weight * (log_q - log_p)).sum()


def seconds_per_step(step, repeats: int, device: str, checks: bool) -> float:
    step()  # warm-up: lazy parameter and optimiser creation
    if device == "cuda":
        torch.cuda.synchronize()
    with pyro.validation_enabled(checks):
        started = time.perf_counter()
        for _ in range(repeats):
            step()
        if device == "cuda":
            torch.cuda.synchronize()
    return (time.perf_counter() - started) / repeats


#: aten operators that only make views or allocate: no kernel of their own
NO_KERNEL = {"aten::" + name for name in (
    "as_strided", "view", "reshape", "_reshape_alias", "_unsafe_view", "expand", "permute",
    "transpose", "t", "select", "slice", "unsqueeze", "squeeze", "unbind", "split",
    "split_with_sizes", "unsafe_split", "chunk", "narrow", "alias", "detach", "resolve_conj",
    "resolve_neg", "lift_fresh", "empty", "empty_like", "empty_strided", "result_type")}


def ops_per_step(step, device: str, checks: bool = False) -> int:
    """Kernel launches (``device="cuda"``) or computing aten operators (CPU) of one ``step()``,
    with Pyro's argument checks on or off as in the timed steps."""
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with pyro.validation_enabled(checks), profile(activities=activities) as profiler:
        step()
        if device == "cuda":
            torch.cuda.synchronize()
    events = profiler.events()
    if device == "cuda":
        return sum("LaunchKernel" in event.name or "GraphLaunch" in event.name for event in events)
    return sum(event.name.startswith("aten::") and event.name not in NO_KERNEL
               and not any(child.name.startswith("aten::") for child in event.cpu_children)
               for event in events)


def measure(size: str, device: str, repeats: int, latent_dim: int, checks: bool = False) -> dict:
    batch_size, n_bins, n_forward, n_heldin, n_heldout = SIZES[size]
    n_neurons = n_heldin + n_heldout
    heldin = torch.arange(n_neurons, device=device) < n_heldin
    spikes = torch.poisson(torch.full((batch_size, n_bins, n_neurons), 0.3, device=device))
    batch = make_batch(spikes, heldin, n_forward, cd_rate=0.3)
    results = {}
    paths = ("stepwise", "vectorised", "scan", "torch") + (("graphs",) if device == "cuda" else ())
    for path in paths:
        pyro.clear_param_store()
        pyro.set_rng_seed(0)
        config = Config(latent_dim=latent_dim, sites="stepwise" if path == "stepwise" else "vectorised",
                        integrator="scan" if path in ("scan", "graphs") else "loop")
        flow = build_flow(config, n_neurons, n_heldin).to(device)
        if path == "torch":
            optimizer = TorchClippedAdam(flow.parameters(), lr=1e-3)  # what pyro.optim wraps

            def step():
                optimizer.zero_grad()
                torch_loss(flow, batch.inputs, batch.spikes, batch.mask).backward()
                optimizer.step()
        else:
            optim = ClippedAdam({"lr": 1e-3})
            svi = (GraphSVI(flow.model, flow.guide, optim) if path == "graphs"
                   else SVI(flow.model, flow.guide, optim, Trace_ELBO()))

            def step():
                svi.step(batch.inputs, batch.spikes, batch.mask)

            if path == "graphs":
                with pyro.validation_enabled(False):  # checked steps are not recorded
                    for _ in range(WARMUP_STEPS + 1):  # the eager steps, then the recording
                        step()
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        results[path] = seconds_per_step(step, repeats, device, checks)
        results[f"{path}_ops"] = ops_per_step(step, device, checks)
        if device == "cuda":
            results[f"{path}_peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    encoder = flow.posterior.encoder

    def encoder_step():  # the GRU encoder's forward and backward alone, as in every path
        h, summary = encoder(batch.inputs)
        (h.sum() + summary.sum()).backward()

    results["encoder_ops"] = ops_per_step(encoder_step, device)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--latent-dim", type=int, default=Config().latent_dim)
    parser.add_argument("--checks", default="first", choices=["first", "every"],
                        help="argument checks on the warm-up step only (as pyrolf fit) or on every step")
    args = parser.parse_args()
    print(f"device={args.device} threads={torch.get_num_threads()} latent_dim={args.latent_dim} "
          f"checks={args.checks}")
    print(f"{'size':>14} {'stepwise s':>11} {'vectorised s':>13} {'scan s':>8} {'torch s':>9} "
          f"{'graphs s':>9}")
    for size in args.sizes:
        r = measure(size, args.device, args.repeats, args.latent_dim, args.checks == "every")
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
        graphs = f"{r['graphs']:9.4f}" if "graphs" in r else f"{'n/a':>9}"
        print(f"{size:>14} {r['stepwise']:11.4f} {r['vectorised']:13.4f} {r['scan']:8.4f} "
              f"{r['torch']:9.4f} {graphs}",
              f"process_peak_rss_gib={peak_rss:.2f}",
              *(f"{k}={v:.2f}" for k, v in r.items() if k.endswith("_gib")))
        print(f"{'':>14} ops_per_step", *(f"{k[:-4]}={v}" for k, v in r.items() if k.endswith("_ops")))
    print(f"vectorised/torch={r['vectorised'] / r['torch']:.2f} "
          f"stepwise/vectorised={r['stepwise'] / r['vectorised']:.2f} "
          f"scan/vectorised={r['scan'] / r['vectorised']:.2f}",
          *([f"graphs/scan={r['graphs'] / r['scan']:.2f}"] if "graphs" in r else []))


if __name__ == "__main__":
    main()
