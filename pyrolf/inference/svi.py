"""Stochastic variational inference for LangevinFlow: batches, the SVI loop, posterior-mean rates."""

from __future__ import annotations

import math
import random
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pyro
import torch
from pyro.distributions.util import is_validation_enabled
from pyro.infer import SVI, Trace_ELBO
from pyro.optim import ClippedAdam

from pyrolf.config import Config
from pyrolf.data.sessions import Sessions, session_list
from pyrolf.data.spikes import SpikeData
from pyrolf.evaluation.collapse import UnsplitSite, kl_per_dimension
from pyrolf.evaluation.metrics import co_bps
from pyrolf.evaluation.sessions import pooled
from pyrolf.inference import TrainingDiverged
from pyrolf.inference.capture import GraphSVI
from pyrolf.inference.passes import traced_passes
from pyrolf.models.sessions import session_views
from pyrolf.messages import progress_bar
from pyrolf.threads import CoreShare, adapt_threads


KL_WEIGHT_FLOOR = 1e-3
#: posterior samples the validation co-bps that picks the best epoch averages rates over (at
#: most; ``Config.samples`` where fewer): an estimate for ranking epochs, made every
#: ``eval_every`` epochs, where the final scores take ``samples``
VALID_SAMPLES = 10
#: seconds a fit watches the machine before its first epoch, to pick its thread count
SHARE_SAMPLE_S = 0.1


@dataclass
class Batch:
    """One minibatch in the model's signature.

    inputs: held-in counts the encoder sees ``(trials, observed, held_in)``, coordinated dropout
        applied; spikes: all counts ``(trials, T, neurons)``, zeros where not recorded; mask:
        bool, entries scored.
    """

    inputs: torch.Tensor
    spikes: torch.Tensor
    mask: torch.Tensor


def encoder_inputs(spikes: torch.Tensor, heldin: torch.Tensor, n_forward: int) -> torch.Tensor:
    """Held-in counts of the observed bins, ``(trials, T, neurons) -> (trials, observed,
    held_in)``; a count not recorded (NaN) is read as zero, as coordinated dropout hides one."""
    return spikes[:, : spikes.shape[1] - n_forward][..., heldin].nan_to_num(nan=0.0)


def split_unrecorded(spikes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``spikes`` ``(trials, T, neurons)`` with the counts not recorded (NaN) made zeros, and
    which were recorded (bool, same shape; ``None`` where all were): what :func:`make_batch`
    takes."""
    recorded = ~spikes.isnan()
    if bool(recorded.all()):
        return spikes, None
    return spikes.nan_to_num(nan=0.0), recorded


def make_batch(spikes: torch.Tensor, heldin: torch.Tensor, n_forward: int,
               cd_rate: float = 0.0, recorded: torch.Tensor | None = None) -> Batch:
    """A training batch with coordinated dropout (LFADS): a random share ``cd_rate`` of held-in
    input entries is hidden from the encoder and only those are scored, so the model cannot copy
    its input; held-out neurons and forward bins are always scored. ``recorded``: bool, the
    counts of ``spikes`` recorded (``None``: all; see :func:`split_unrecorded`), the others
    (zeros in ``spikes``) never scored and read by the encoder as the hidden ones are."""
    inputs = encoder_inputs(spikes, heldin, n_forward)
    mask = torch.ones_like(spikes, dtype=torch.bool) if recorded is None else recorded.clone()
    if cd_rate > 0:
        keep = torch.rand_like(inputs) >= cd_rate
        inputs = inputs * keep / (1 - cd_rate)
        observed = mask[:, : inputs.shape[1]]
        observed[..., heldin] = ~keep if recorded is None else observed[..., heldin] & ~keep
    return Batch(inputs, spikes, mask)


@contextmanager
def evaluating(module: torch.nn.Module):
    """``module`` in eval mode (no dropout) inside the block, its mode restored after it."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


@torch.no_grad()
def posterior_passes(flow, inputs: torch.Tensor, n_bins: int, samples: int,
                     draws_per_pass: int | None = None, progress: str | None = None):
    """Posterior draws pass by pass: yields ``(trials, latents, log_rates)``, ``trials`` a slice
    of ``inputs``' trials (``(trials, observed, held_in)``), ``latents`` what the guide returns
    (LangevinFlow: ``z``, ``v`` ``(trials, draws, n_bins, latent)``) and ``log_rates``
    ``(trials, draws, n_bins, neurons)``: the guide is sampled, each draw decoded by the model
    (no counts drawn: :class:`~pyrolf.inference.passes.RatesOnly`), with the networks in eval
    mode. The passes, ``draws_per_pass`` and ``progress`` are those of
    :func:`~pyrolf.inference.passes.traced_passes`.
    """
    with evaluating(flow):
        for trials, drawn, guide_trace, model_trace in traced_passes(
                flow.model, flow.guide, inputs, samples, draws_per_pass, progress, n_bins=n_bins):
            shape = (trials.stop - trials.start, drawn.stop - drawn.start)
            log_rates = model_trace.nodes["_RETURN"]["value"]
            latents = guide_trace.nodes["_RETURN"]["value"]
            latents = (tuple(x.unflatten(0, shape) for x in latents)
                       if isinstance(latents, tuple) else latents.unflatten(0, shape))
            yield trials, latents, log_rates.unflatten(0, shape)


@torch.no_grad()
def predict_rates(flow, inputs: torch.Tensor, n_bins: int, samples: int,
                  draws_per_pass: int | None = None, progress: str | None = None
                  ) -> torch.Tensor:
    """Posterior-mean rates ``(trials, n_bins, neurons)`` in spikes per bin of the trials'
    ``inputs`` ``(trials, observed, held_in)``: ``samples`` draws per trial (see
    :func:`posterior_passes`, which ``draws_per_pass`` and ``progress`` go to), the rates
    averaged."""
    total = None
    for trials, _, log_rates in posterior_passes(flow, inputs, n_bins, samples, draws_per_pass,
                                                 progress):
        rates = log_rates.exp().sum(1)
        if total is None:
            total = rates.new_zeros((inputs.shape[0], *rates.shape[1:]))
        total[trials] += rates
    return total / samples


@dataclass
class TrainState:
    """What a checkpoint must hold to continue a run exactly."""

    epoch: int = 0
    history: list[dict] = field(default_factory=list)
    best_score: float = -math.inf
    best_epoch: int = -1


def steps_per_epoch(data: SpikeData | Sessions, batch_size: int) -> int:
    """The SVI steps of an epoch of :class:`Trainer`: each session's training trials in
    batches of ``batch_size``."""
    return sum(math.ceil(len(own.splits["train"]) / batch_size) for own in session_list(data))


@dataclass
class Part:
    """What a :class:`Trainer` trains on of one session: ``flow`` (of several sessions, the
    session's view, :func:`~pyrolf.models.sessions.session_flow`), its ``data``, on the device
    the counts of its training and validation trials ``train`` (zeros where not recorded),
    ``valid`` (NaN there) ``(trials, T, its neurons)`` and its ``heldin``, ``heldout`` flags
    ``(its neurons,)``, the ``svi`` that steps on its batches, which training counts were
    recorded, ``recorded`` (as ``train``; ``None`` where all were: see
    :func:`split_unrecorded`), and which observed bins of the validation trials their score
    counts, ``scored`` ``(trials, observed bins)`` (``None``: all; see
    :meth:`~pyrolf.data.spikes.SpikeData.scored_bins`)."""

    flow: torch.nn.Module
    data: SpikeData
    train: torch.Tensor
    valid: torch.Tensor
    heldin: torch.Tensor
    heldout: torch.Tensor
    svi: SVI | GraphSVI
    recorded: torch.Tensor | None = None
    scored: torch.Tensor | None = None


class Trainer:
    """Runs SVI on the training trials of ``data`` and scores the validation trials.

    Of several sessions (:class:`~pyrolf.data.sessions.Sessions`) each batch holds one
    session's trials, stepped on by the session's view of ``flow`` at the cost of its own
    neurons (:mod:`pyrolf.models.sessions`); an epoch takes every session's batches in a random
    order, and the validation scores pool the sessions'.

    ``on_checkpoint(trainer, is_best)`` is called every ``config.eval_every`` epochs and at the end;
    a run folder uses it to save the model, the optimiser and the random state.
    """

    def __init__(self, flow, data: SpikeData | Sessions, config: Config,
                 on_checkpoint: Callable[["Trainer", bool], None] | None = None):
        self.flow, self.data, self.config = flow, data, config
        self.device = torch.device(config.device)
        self.flow.to(self.device)
        self.steps_per_epoch = steps_per_epoch(data, config.batch_size)
        total_steps = max(config.epochs * self.steps_per_epoch, 1)
        self.optimizer = ClippedAdam({
            "lr": config.lr, "lrd": (config.lr_final / config.lr) ** (1 / total_steps),
            "clip_norm": config.clip_norm, "weight_decay": config.weight_decay,
        })
        self.parts = [self._part(view, own) for view, own in session_views(flow, data).values()]
        self.state = TrainState()
        self.best_flow: dict | None = None
        self.on_checkpoint = on_checkpoint

    def _part(self, flow, data: SpikeData) -> Part:
        spikes = torch.as_tensor(data.spikes, dtype=torch.float32, device=self.device)
        graphs = self.config.cuda_graphs and self.device.type == "cuda"
        svi = (GraphSVI(flow.model, flow.guide, self.optimizer) if graphs
               else SVI(flow.model, flow.guide, self.optimizer, Trace_ELBO()))
        train, recorded = split_unrecorded(spikes[data.splits["train"]])
        scored = data.scored_bins(data.splits["valid"])
        return Part(flow, data, train, spikes[data.splits["valid"]],
                    torch.as_tensor(data.heldin, device=self.device),
                    torch.as_tensor(data.heldout, device=self.device), svi, recorded,
                    None if scored is None else torch.as_tensor(scored, device=self.device))

    def kl_weight(self, epoch: float) -> float:
        """Linear warm-up from ``KL_WEIGHT_FLOOR`` to ``config.kl_weight`` over ``kl_warmup``
        epochs (Pyro's scale must stay positive)."""
        if self.config.kl_warmup == 0:
            return self.config.kl_weight
        ramp = min(1.0, epoch / self.config.kl_warmup)
        return self.config.kl_weight * max(ramp, KL_WEIGHT_FLOOR)

    def validation_score(self) -> float:
        """co-bps of the held-out neurons on the validation trials (their observed bins, those
        the benchmark scores: ``Part.scored``), of rates averaged over :data:`VALID_SAMPLES`
        posterior samples; of several sessions, each session's pooled by its held-out spikes
        (:func:`~pyrolf.evaluation.sessions.pooled`)."""
        scores, spikes = {}, {}
        for index, part in enumerate(self.parts):
            data, observed = part.data, slice(0, part.data.n_observed)
            inputs = encoder_inputs(part.valid, part.heldin, data.n_forward)
            rates = predict_rates(part.flow, inputs, data.n_bins,
                                  min(self.config.samples, VALID_SAMPLES))
            held = part.valid[:, observed][..., part.heldout]
            if part.scored is not None:
                held = held.masked_fill(~part.scored[..., None], float("nan"))
            scores[index] = co_bps(rates[:, observed][..., part.heldout].cpu().numpy(),
                                   held.cpu().numpy())
            spikes[index] = float(held.nansum())
        return pooled(scores, spikes)

    def validation_kl(self) -> float | None:
        """KL of the posterior from the prior in nats per observed bin, all latent dimensions,
        on the validation trials (see :func:`pyrolf.evaluation.collapse.kl_per_dimension`; of
        several sessions, the mean over all their validation trials); ``None`` for a swapped-in
        prior or guide whose sites are not Normal or Langevin trajectories."""
        kls = {}
        for index, part in enumerate(self.parts):
            inputs = encoder_inputs(part.valid, part.heldin, part.data.n_forward)
            with evaluating(part.flow):
                try:
                    kls[index] = float(kl_per_dimension(part.flow.model, part.flow.guide, inputs,
                                                        part.data.n_bins, samples=1).sum())
                except UnsplitSite:
                    return None
        return pooled(kls, {index: len(part.valid) for index, part in enumerate(self.parts)})

    @contextmanager
    def validation_draws(self):
        """The validation's posterior draws from a stream of their own, seeded by ``config.seed``
        alike at every validation, the training's stream left as it was: how often the fit
        validates (``eval_every``) changes none of the training's draws, and every epoch's
        score is of the same random draws (their noise shared, not a reason to pick an
        epoch)."""
        cuda = self.device.type == "cuda"
        devices = [self.device.index if self.device.index is not None
                   else torch.cuda.current_device()] if cuda else []
        with torch.random.fork_rng(devices=devices):
            torch.default_generator.manual_seed(self.config.seed)
            if cuda:
                torch.cuda.manual_seed(self.config.seed)
            yield

    def batches(self) -> list[tuple[Part, torch.Tensor]]:
        """An epoch's batches: each part's training trials in a random order, cut into batches
        of ``config.batch_size`` (the last may be smaller) ``(part, trial indices)``; of several
        sessions, all of them in a random order."""
        batches = [(part, idx) for part in self.parts
                   for idx in torch.randperm(len(part.train), device=self.device).split(
                       self.config.batch_size)]
        if len(self.parts) == 1:  # its batches are in a random order already
            return batches
        return [batches[i] for i in torch.randperm(len(batches))]

    def epoch(self, check: bool = False) -> float:
        """One pass over the training trials; returns the training objective per trial (the
        ELBO as trained: KL-weighted, with coordinated dropout; a bound on ``log p(x)`` only at
        KL weight 1), as ``history.csv``'s ``elbo`` records it.

        Pyro's checks of every distribution's arguments and values run on the first step only
        when ``check`` (and Pyro's validation is on): they catch a swapped prior or guide that
        does not fit the model at once, and on every step would cost 14 % of an SVI step on a GPU
        (measured: 40.6 ms vs 34.8 ms, MC_Maze preset, H200), where each check waits for the
        device. A NaN ELBO is caught either way.
        """
        loss = 0.0
        for step, (part, idx) in enumerate(self.batches()):
            batch = make_batch(part.train[idx], part.heldin, part.data.n_forward,
                               self.config.cd_rate,
                               None if part.recorded is None else part.recorded[idx])
            weight = self.kl_weight(self.state.epoch + step / self.steps_per_epoch)
            try:
                with pyro.validation_enabled(check and step == 0 and is_validation_enabled()), \
                        warnings.catch_warnings():
                    warnings.filterwarnings("ignore", "Encountered NaN")  # TrainingDiverged below
                    step_loss = part.svi.step(batch.inputs, batch.spikes, batch.mask,
                                              kl_weight=weight)
            except ValueError as error:  # Pyro's validation of a distribution's NaN parameters
                if "invalid values" not in str(error):
                    raise
                step_loss = math.nan
            if not math.isfinite(step_loss):
                value = "NaN" if math.isnan(step_loss) else "infinite"
                raise TrainingDiverged(f"the ELBO became {value} in epoch {self.state.epoch + 1}")
            loss += step_loss
        return -loss / sum(len(part.train) for part in self.parts)

    def fit(self, progress: bool = True) -> TrainState:
        """Train until ``config.epochs``, continuing from ``self.state.epoch``, the flow in train
        mode (dropout on)."""
        pyro.clear_param_store()  # pyro.module would give other flows' params of the same names
        self.flow.train()
        config, state = self.config, self.state
        # closed as the loop ends, an interrupt included: its last line then comes before the
        # command's own (it came after, when the bar was closed at exit: an interruption test)
        with progress_bar(total=config.epochs, initial=state.epoch, disable=not progress,
                          desc="fit", unit="epoch") as bar:
            first = True
            share = CoreShare() if config.threads is None and self.device.type == "cpu" else None
            if share is not None:
                time.sleep(SHARE_SAMPLE_S)  # what the other processes do before the first epoch
            while state.epoch < config.epochs:
                if share is not None:
                    adapt_threads(share)
                started = time.perf_counter()
                elbo = self.epoch(check=first)
                first = False
                state.epoch += 1
                record = {"epoch": state.epoch, "elbo": elbo, "lr": self.current_lr()}
                if self.device.type == "cpu":  # what the epoch's floats' rounding depends on
                    record["threads"] = torch.get_num_threads()
                is_best = False
                if state.epoch % config.eval_every == 0 or state.epoch == config.epochs:
                    with self.validation_draws():
                        record["valid_co_bps"] = score = self.validation_score()
                        kl = self.validation_kl()
                    if kl is not None:
                        record["kl_per_bin"] = kl
                    if score > state.best_score:
                        state.best_score, state.best_epoch, is_best = score, state.epoch, True
                        self.best_flow = {key: value.detach().clone()
                                          for key, value in self.flow.state_dict().items()}
                record["seconds"] = time.perf_counter() - started  # validation included
                state.history.append(record)
                best = f"{state.best_score:.3f}" if state.best_epoch > 0 else "n/a"
                # drawn by update, at its own pace (a log: every 30 s)
                bar.set_postfix(elbo=f"{elbo:.1f}", best_valid_co_bps=best,
                                lr=f"{record['lr']:.1e}", refresh=False)
                bar.update(1)
                if "valid_co_bps" in record and self.on_checkpoint is not None:
                    self.on_checkpoint(self, is_best)
        return state

    def current_lr(self) -> float:
        optimizers = list(self.optimizer.optim_objs.values())
        return optimizers[0].param_groups[0]["lr"] if optimizers else self.config.lr

    def checkpoint(self) -> dict:
        """Everything needed to continue exactly where this epoch ended; ``epochs``: the epochs
        the learning rate's decay is planned for."""
        rng = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
               "python": random.getstate()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {"flow": self.flow.state_dict(), "optimizer": self.optimizer.get_state(),
                "state": self.state.__dict__, "rng": rng, "epochs": self.config.epochs}

    def restore(self, checkpoint: dict, reschedule: bool = False) -> None:
        """Continue from ``checkpoint``. ``reschedule``: the run now goes to another number of
        epochs than its checkpoint was saved for, so its learning rate decays from where it is
        to ``config.lr_final`` over the steps left (with the saved decay per step it would keep
        sinking past ``lr_final``, to nothing); without, the saved decay goes on bit for bit."""
        self.flow.load_state_dict(checkpoint["flow"])
        self.state = TrainState(**checkpoint["state"])
        optimizer = checkpoint["optimizer"]
        if reschedule:
            left = (self.config.epochs - self.state.epoch) * self.steps_per_epoch
            optimizer = {name: {**saved, "param_groups": [
                {**group, "lrd": (self.config.lr_final / group["lr"]) ** (1 / left)
                 if left > 0 and group["lr"] > 0 else 1.0}
                for group in saved["param_groups"]]} for name, saved in optimizer.items()}
        self.optimizer.set_state(optimizer)
        # A checkpoint loaded onto the GPU has its generator states there too; torch takes them
        # only as CPU byte tensors.
        rng = checkpoint["rng"]
        torch.set_rng_state(rng["torch"].cpu())
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([state.cpu() for state in rng["cuda"]])
