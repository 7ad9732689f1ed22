"""The SVI step replayed as a CUDA graph, so a GPU does not wait on Python between kernels.

On a GPU an SVI step of the MC_Maze preset launches a few thousand small kernels (the encoder,
the trajectory, the decoder, their gradients), and the CPU takes longer to launch them than the
GPU takes to run them. :class:`GraphSVI` records the loss and its gradients once per batch shape
as a CUDA graph and then replays the recording: one launch for the whole forward and backward
pass and, for Pyro's ``ClippedAdam``, the parameter update too (:class:`ClippedAdamUpdate`). The
update's step sizes change every step: they are worked out on the host, as ``ClippedAdam`` does,
and copied in before each replay; the learning rate, step count and moment estimates stay in
Pyro's optimiser, so checkpoints are unchanged. Any other optimiser steps eagerly after the replay.

:func:`elbo_loss` is ``Trace_ELBO``'s loss written without reading a value back to the host
(``Trace_ELBO`` calls ``.item()`` on every site, which a graph cannot record). It takes the same
sums in the same order, so it gives the same value and gradients.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from contextlib import contextmanager

import pyro
import torch
from pyro import poutine
from pyro.distributions.util import is_validation_enabled
from pyro.infer.util import zero_grads
from pyro.optim import clipped_adam
from pyro.poutine.util import prune_subsample_sites

from pyrolf.inference.passes import guide_and_model_traces

#: eager steps of each batch shape before it is recorded (cuBLAS, cuDNN and the optimiser's state
#: are set up on first use, which a recording must not contain)
WARMUP_STEPS = 3


def elbo_loss(model, guide, *args, **kwargs) -> torch.Tensor:
    """The negative ELBO of one guide draw, a 0-dim tensor:
    ``Σ log q(sites) − Σ log p(sites, data)`` with each site's scale and mask, as
    ``pyro.infer.Trace_ELBO`` computes its surrogate loss.

    Every latent site of ``guide`` must be reparameterised (``rsample``): there is no
    score-function term. Nothing is read back to the host, so a CUDA graph can record it.
    """
    guide_trace, model_trace = (prune_subsample_sites(trace) for trace in
                                guide_and_model_traces(model, guide, *args, **kwargs))
    elbo = model_trace.log_prob_sum()
    for name, site in guide_trace.nodes.items():
        if site["type"] != "sample" or site["is_observed"]:
            continue
        if not getattr(site["fn"], "has_rsample", False):
            raise ValueError(f"guide site {name!r} is not reparameterised; train it with "
                             "pyro.infer.SVI and Trace_ELBO (cuda_graphs off)")
        elbo = elbo - guide_trace.log_prob_sum(lambda other, _: other == name)
    return -elbo


class GraphSVI:
    """``pyro.infer.SVI`` with :func:`elbo_loss`, its loss, gradients and (for ``ClippedAdam``)
    update replayed as CUDA graphs.

    ``step(*args, **kwargs)`` takes one SVI step and returns the loss, as ``SVI.step``. Tensor
    arguments are copied into the recording's own inputs and float arguments (``kl_weight``)
    become 0-dim tensors in it, so they may change from step to step; any other argument and each
    tensor's shape select the recording (an epoch's last, smaller batch has its own). Steps run
    eagerly where the model's tensors are not on a GPU, while Pyro's validation is on (the fit's
    first step checks the model: a recording checks nothing), for the first
    :data:`WARMUP_STEPS` of each shape, and for good when recording fails (with one warning).
    On a GPU the eager steps run on the stream the graphs are recorded on, so that cuBLAS and
    cuDNN have set themselves up there first.
    """

    def __init__(self, model, guide, optim):
        self.model, self.guide, self.optim = model, guide, optim
        self.recordings: dict[tuple, _Recording] = {}
        self.seen: Counter = Counter()
        self.params: list[torch.Tensor] = []
        self.stream = None
        self.failed = False

    def loss_and_grads(self, *args, **kwargs) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The loss (detached) after its backward pass, and the unconstrained parameters it
        reached, in the order the model and guide first use them."""
        with poutine.trace(param_only=True) as params:
            loss = elbo_loss(self.model, self.guide, *args, **kwargs)
        loss.backward()
        sites = params.trace.nodes.values()
        return loss.detach(), list(dict.fromkeys(site["value"].unconstrained() for site in sites))

    def step(self, *args, **kwargs) -> float:
        """One SVI step on the model's and guide's arguments; returns the loss."""
        recording = None if is_validation_enabled() else self._recording(args, kwargs)
        if recording is not None:
            loss = recording.replay(args, kwargs)
            if recording.update is None:  # the optimiser steps on the recording's gradients
                for param, grad in zip(recording.params, recording.grads):
                    param.grad = grad
                self.optim(recording.params)
                for param in recording.params:
                    param.grad = None  # an eager step must not add to them
            return float(loss)
        with self._on_own_stream(args):
            loss, self.params = self.loss_and_grads(*args, **kwargs)
            self.optim(self.params)
            zero_grads(self.params)
            return float(loss)

    def _recording(self, args, kwargs) -> _Recording | None:
        """The recording of these arguments' shapes: made now when its warm-up steps are done
        (they are counted here), ``None`` before that or where nothing is recorded."""
        key = _shape_key(args, kwargs)
        if key in self.recordings or not self._records(args):
            return self.recordings.get(key)
        self.seen[key] += 1
        return self._record(key, args, kwargs) if self.seen[key] > WARMUP_STEPS else None

    def _records(self, args) -> bool:
        """Whether steps on ``args`` are recorded: on a GPU, unless a recording failed."""
        return not self.failed and _on_gpu(args)

    @contextmanager
    def _on_own_stream(self, args):
        if not self._records(args):
            yield
            return
        self.stream = self.stream or torch.cuda.Stream()
        self.stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.stream):
            yield
        torch.cuda.current_stream().wait_stream(self.stream)

    def _record(self, key: tuple, args, kwargs) -> _Recording | None:
        try:
            recording = self.recordings[key] = _Recording(self, args, kwargs)
            return recording
        except RuntimeError as error:
            self.failed = True
            for param in self.params:
                param.grad = None  # whatever a broken recording left
            warnings.warn(f"could not record the SVI step as a CUDA graph ({error}); training "
                          "goes on without it", RuntimeWarning, stacklevel=3)
            return None


class _Recording:
    """One CUDA graph of :meth:`GraphSVI.loss_and_grads` on inputs of one shape, and of the
    parameter update where :class:`ClippedAdamUpdate` can record it (``update``, else ``None``)."""

    def __init__(self, svi: GraphSVI, args, kwargs):
        self.args = [arg.clone() if torch.is_tensor(arg) else arg for arg in args]
        device = next(arg.device for arg in args if torch.is_tensor(arg))
        self.kwargs = {name: torch.tensor(value, device=device) if isinstance(value, float)
                       else value for name, value in kwargs.items()}
        self.update = ClippedAdamUpdate.of(svi.optim, svi.params)
        for param in svi.params:
            param.grad = None  # the recording's backward pass allocates the gradients it writes
        self.graph = torch.cuda.CUDAGraph()
        self.loss, self.params = record(self.graph, svi.stream, lambda: self._step(svi))
        self.grads = [param.grad for param in self.params]  # written by each replay
        for param in self.params:
            param.grad = None  # an eager step (another batch shape) must not add to them

    def _step(self, svi: GraphSVI) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """What the graph holds: the loss and gradients on the recording's own inputs, then the
        update."""
        loss, params = svi.loss_and_grads(*self.args, **self.kwargs)
        if self.update is not None:
            if [id(param) for param in params] != [id(param) for param in svi.params]:
                raise RuntimeError("the recorded step reached other parameters than the eager "
                                   "steps before it")
            self.update.apply()
        return loss, params

    def replay(self, args, kwargs) -> torch.Tensor:
        """Replays the graph on ``args`` and ``kwargs``; returns the loss. The gradients are in
        ``grads``, one per parameter of ``params``."""
        for own, arg in zip(self.args, args):
            if torch.is_tensor(arg):
                own.copy_(arg)
        for name, value in kwargs.items():
            if isinstance(value, float):
                self.kwargs[name].fill_(value)
        if self.update is not None:
            self.update.advance()
        self.graph.replay()
        return self.loss


class ClippedAdamUpdate:
    """``pyro.optim.ClippedAdam``'s step for the parameters ``params`` of a ``PyroOptim``, split
    so that a CUDA graph can record it.

    :meth:`advance` does on the host what ``ClippedAdam.step`` does with Python numbers (decays
    each learning rate, counts the step, works out the bias-corrected step size) and copies the
    step sizes to the device; :meth:`apply` does the tensor arithmetic, reading the step sizes
    from there. Together they are one ``ClippedAdam`` step of every parameter, with the moment
    estimates updated in the optimiser's own state tensors.
    """

    def __init__(self, optimizers: list, params: list[torch.Tensor]):
        self.optimizers, self.params = optimizers, params
        self.step_sizes = params[0].new_zeros(len(params))
        self.staged = torch.zeros(len(params), dtype=self.step_sizes.dtype,
                                  pin_memory=self.step_sizes.is_cuda)

    @classmethod
    def of(cls, optim, params: list[torch.Tensor]) -> ClippedAdamUpdate | None:
        """The update of ``params`` by the ``PyroOptim`` ``optim``, or ``None`` unless each of
        them has a ``ClippedAdam`` that has stepped before (its moments exist) and no gradient
        clipping of ``PyroOptim``'s own (``clip_args``)."""
        optimizers = [getattr(optim, "optim_objs", {}).get(param) for param in params]
        clipping = getattr(optim, "grad_clip", {})
        if not params or not all(type(opt) is clipped_adam.ClippedAdam and opt.state[param]
                                 and clipping.get(param) is None
                                 for opt, param in zip(optimizers, params)):
            return None
        return cls(optimizers, params)

    def advance(self) -> None:
        """The host's half of a step: learning rates, step counts and step sizes."""
        for i, (optimizer, param) in enumerate(zip(self.optimizers, self.params)):
            group, state = optimizer.param_groups[0], optimizer.state[param]
            group["lr"] *= group["lrd"]
            state["step"] += 1
            beta1, beta2 = group["betas"]
            self.staged[i] = (group["lr"] * math.sqrt(1 - beta2 ** state["step"])
                              / (1 - beta1 ** state["step"]))
        # the step before ended reading its loss, so the last copy from ``staged`` is done
        self.step_sizes.copy_(self.staged, non_blocking=True)

    @torch.no_grad()
    def apply(self) -> None:
        """The device's half: clipped gradients into the moments, the moments into the
        parameters, scaled by the step sizes :meth:`advance` set."""
        for i, (optimizer, param) in enumerate(zip(self.optimizers, self.params)):
            group, state = optimizer.param_groups[0], optimizer.state[param]
            beta1, beta2 = group["betas"]
            grad = param.grad.clamp_(-group["clip_norm"], group["clip_norm"])
            if group["weight_decay"] != 0:
                grad = grad.add(param, alpha=group["weight_decay"])
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
            spread = grad - exp_avg if group["centered_variance"] else grad
            exp_avg_sq.mul_(beta2).addcmul_(spread, spread, value=1 - beta2)
            denom = exp_avg_sq.sqrt().add_(group["eps"])
            param.sub_(exp_avg.div(denom).mul_(self.step_sizes[i]))


def record(graph, stream, step):
    """``step()`` recorded into the CUDA graph ``graph`` on ``stream`` (not run), with Pyro's
    checks off; returns what it returned, tensors the replays will write."""
    with pyro.validation_enabled(False), torch.cuda.graph(graph, stream=stream):
        return step()


def _on_gpu(args) -> bool:
    return any(torch.is_tensor(arg) and arg.is_cuda for arg in args)


def _shape_key(args, kwargs) -> tuple:
    """What a recording is specific to: tensor shapes, dtypes and devices, and every argument
    that is neither a tensor nor a float."""
    def part(value):
        if torch.is_tensor(value):
            return ("tensor", tuple(value.shape), value.dtype, value.device)
        return ("float",) if isinstance(value, float) else ("value", value)
    return tuple(part(arg) for arg in args) + tuple((name, part(value))
                                                     for name, value in sorted(kwargs.items()))
