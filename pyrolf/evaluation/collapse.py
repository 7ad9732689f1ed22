"""Posterior collapse: how much of the latent state the posterior uses, and whether a fit learned
anything through its latents.

The KL of a trial, ``E_q[log q(z_0, v | x) - log p(z_0, v)]``, splits exactly into one term per
latent dimension: every site's density is a product over dimensions of Normal densities (of
``z_0``, ``v_0`` and of each bin's velocity innovation), so the sum of the per-dimension
log-ratios is the log-ratio of the trial. A dimension whose KL is about 0 is one the posterior
leaves at the prior: it carries no information about the data.
"""

from __future__ import annotations

import numpy as np
import torch
from pyro.distributions import Independent
from pyro.poutine.util import site_is_subsample

from pyrolf.dynamics.langevin import LangevinTrajectory
from pyrolf.inference.passes import traced_passes

#: nats per observed bin above which a latent dimension counts as used by the posterior
ACTIVE_KL_PER_BIN = 0.01
#: held-out bits per spike at or below which a fit's latents predict nothing
COLLAPSE_CO_BPS = 0.01
#: share of the smoothing baseline's co-bps at or below which a fit's latents predict (almost) nothing
COLLAPSE_SHARE = 0.25
#: the smoothing baseline's co-bps above which the data hold what the latents should have caught
SIGNAL_CO_BPS = 0.02
#: KL per observed bin (all dimensions) below which the posterior has fallen back to the prior
COLLAPSE_KL_PER_BIN = 0.05
#: held-out bits per spike by which a fit's rates score below each neuron's mean rate (co-bps
#: 0) and the smoothing baseline, both, that is more than noise: latents that mislead
MISLEADING_CO_BPS = -0.05
#: what :func:`collapse_finding` says of rates below :data:`MISLEADING_CO_BPS`
MISLEADING = "the rates predict the held-out spikes worse than each neuron's mean rate"
#: what it says of a KL below :data:`COLLAPSE_KL_PER_BIN`
AT_PRIOR = "the posterior is the prior"


class UnsplitSite(TypeError):
    """A latent site whose density need not split by dimension (neither Normal nor a Langevin
    trajectory): the KL per dimension is not defined for it."""


def elementwise_log_prob(fn, value: torch.Tensor) -> torch.Tensor:
    """A latent site's log-density before its sum over dimensions: ``(trials, ..., D)`` for a
    ``Normal(...).to_event(1)`` site ``(trials, D)`` or a
    :class:`~pyrolf.dynamics.langevin.LangevinTrajectory` site ``(trials, T - 1, D)``.

    Raises:
        UnsplitSite: a site of another kind, whose density need not split by dimension.
    """
    if isinstance(fn, LangevinTrajectory):
        return fn.log_prob_terms(value)
    if isinstance(fn, Independent) and fn.reinterpreted_batch_ndims == 1:
        return fn.base_dist.log_prob(value)
    raise UnsplitSite(f"the KL per dimension needs Normal or Langevin trajectory sites, not "
                      f"{type(fn).__name__}")


@torch.no_grad()
def kl_per_dimension(model, guide, inputs: torch.Tensor, n_bins: int, samples: int = 4,
                     draws_per_pass: int | None = None) -> np.ndarray:
    """Monte Carlo KL of the guide from the prior per latent dimension, in nats per observed bin
    ``(D,)``: ``E_q[Σ_sites log q_d - log p_d]`` averaged over ``samples`` draws and the trials
    of ``inputs`` ``(trials, observed, held_in)``, divided by ``observed``: in the forward bins
    (``n_bins`` past them) the guide is the prior, KL 0, and a forward window would dilute a
    threshold of it. The sum over ``D`` is the KL per observed bin of the whole latent state.
    ``model`` and ``guide`` have LangevinFlow's signature and run with ``kl_weight = 1``; put
    the networks in eval mode first. The draws go ``draws_per_pass`` at a time
    (:func:`~pyrolf.inference.passes.traced_passes`)."""
    total = 0.0
    for _, _, guide_trace, model_trace in traced_passes(model, guide, inputs, samples,
                                                        draws_per_pass, n_bins=n_bins):
        for name, site in guide_trace.nodes.items():
            if site["type"] != "sample" or site_is_subsample(site) or site["is_observed"]:
                continue
            value = site["value"]
            ratio = (elementwise_log_prob(site["fn"], value)
                     - elementwise_log_prob(model_trace.nodes[name]["fn"], value))
            total = total + ratio.reshape(-1, ratio.shape[-1]).sum(0)
    return (total / (samples * inputs.shape[1] * inputs.shape[0])).double().cpu().numpy()


def active_dimensions(kl: np.ndarray, threshold: float = ACTIVE_KL_PER_BIN) -> int:
    """How many dimensions of ``kl`` ``(D,)`` (nats per observed bin) exceed ``threshold``."""
    return int(np.sum(np.asarray(kl) > threshold))


def collapse_finding(valid_co_bps: float | None, smoothing_co_bps: float | None,
                     final_kl_per_bin: float | None,
                     scored: str = "best validation co-bps") -> str | None:
    """Why a fit's latents carry (almost) no information, or ``None`` when they do.

    Collapsed: the best validation co-bps (or what ``scored`` names) is more than
    ``-MISLEADING_CO_BPS`` below both 0 and the smoothing baseline's (rates worse than each
    neuron's mean rate, beyond what a few held-out spikes score of rates right: the baseline
    scores alike then); or the baseline scores above :data:`SIGNAL_CO_BPS` on the same data
    while that co-bps is at most :data:`COLLAPSE_CO_BPS` or :data:`COLLAPSE_SHARE` of the
    baseline's; or the KL per bin at the fit's last validation is below
    :data:`COLLAPSE_KL_PER_BIN` (the posterior ends at the prior; early in a fit, before
    the guide has learned anything, its KL is larger). The text gives the KL per bin where it
    is known, for the user to judge (latents that predict nothing, a KL far from 0: a posterior
    that ignores the data in other ways, or a fit not trained enough).
    """
    seen = []
    if valid_co_bps is not None and valid_co_bps < min(
            0.0, smoothing_co_bps if smoothing_co_bps is not None else 0.0) + MISLEADING_CO_BPS:
        seen.append(f"{scored} {valid_co_bps:.4f}: {MISLEADING}")
    elif (valid_co_bps is not None and smoothing_co_bps is not None
            and smoothing_co_bps > SIGNAL_CO_BPS
            and valid_co_bps <= max(COLLAPSE_CO_BPS, COLLAPSE_SHARE * smoothing_co_bps)):
        seen.append(f"{scored} {valid_co_bps:.4f} while the smoothing baseline scores "
                    f"{smoothing_co_bps:.4f}")
    if final_kl_per_bin is not None and final_kl_per_bin < COLLAPSE_KL_PER_BIN:
        seen.append(f"the KL of the posterior from the prior ended at {final_kl_per_bin:.4f} nats "
                    f"per observed bin, below {COLLAPSE_KL_PER_BIN}: {AT_PRIOR}")
    elif seen and final_kl_per_bin is not None:
        seen.append(f"the KL of the posterior from the prior ended at {final_kl_per_bin:.4f} nats "
                    "per observed bin")
    return "; ".join(seen) or None


#: the batch size the collapse warning suggests (more steps an epoch on a small session)
SMALL_BATCH = 16
#: steps an epoch below which the collapse warning suggests smaller batches
FEW_STEPS = 10


def collapse_warning(finding: str, kl_weight: float, batch_size: int, epochs: int,
                     steps: int, warmup: int = 0, trained: int | None = None,
                     sweep: bool = False) -> str:
    """The one line a fit prints when its latents collapsed (see :func:`collapse_finding`),
    its advice of the fit's own ``kl_weight``, ``batch_size``, ``epochs`` and ``steps`` an
    epoch: a tenth of the weight, with twice the epochs or, where an epoch is under
    :data:`FEW_STEPS` steps (a small session), smaller batches (:data:`SMALL_BATCH`). Rates
    worse than the mean rates with a posterior away from the prior are said to come of a fit
    not trained enough, first; so is any collapse of a fit that ended within its KL warm-up
    (``trained`` epochs, default ``epochs``, below ``warmup``, the config's ``kl_warmup``; a
    short first fit, or one stopped early, is not one whose KL weight is too high): train past
    it, to the fit's own epochs where they reach further. ``sweep``: the fit is a sweep's best
    trial, and the advice is in ``pyrolf sweep``'s options (a ``--space`` of lower KL weights,
    a batch size in ``--config``)."""
    trained = epochs if trained is None else trained
    if trained < warmup:
        longer = f"--epochs {max(2 * warmup, epochs)}" + (
            "" if sweep else ", or --resume a run stopped early; in Python Config's epochs")
        return (f"the latents carry (almost) no information ({finding}): the fit ended within "
                f"its KL warm-up ({trained} of its {warmup} epochs), before it had learned "
                f"much; train longer ({longer})")
    few = steps < FEW_STEPS and batch_size > SMALL_BATCH
    why = f": an epoch is {steps} step{'s' if steps != 1 else ''} here" if steps < FEW_STEPS else ""
    if sweep:
        batches = f'"batch_size": {SMALL_BATCH} in --config or ' if few else ""
        lower = (f'a --space file of {{"kl_weight": [{kl_weight / 100:g}, {kl_weight / 10:g}]}} '
                 f"with {batches}--epochs {2 * epochs}{why}")
    else:
        batches = f"--batch-size {SMALL_BATCH} or " if few else ""
        python = f"in Python Config's kl_weight, {'batch_size and ' if few else ''}epochs"
        lower = f"--kl-weight {kl_weight / 10:g} with {batches}--epochs {2 * epochs}{why}; {python}"
    if MISLEADING in finding and AT_PRIOR not in finding:  # (the latents are used, wrongly)
        return (f"the fit predicts worse than the neurons' mean rates ({finding}): it is not "
                f"trained enough, or its latents mislead; train longer (--epochs {2 * epochs}) "
                f"and, if it stays so, try a lower KL weight with more steps ({lower})")
    return (f"the latents carry (almost) no information ({finding}): the posterior collapsed or "
            f"the fit is not trained enough; try a lower KL weight with more steps (e.g. "
            f"{lower})")
