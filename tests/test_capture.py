"""The SVI step that a CUDA graph records: Trace_ELBO's loss without host reads, and GraphSVI."""

import contextlib
import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import SVI, Trace_ELBO
from pyro.optim import ClippedAdam, clipped_adam
from torch.overrides import TorchFunctionMode

from pyrolf import Config
from pyrolf.data import lorenz_dataset
from pyrolf.inference import capture
from pyrolf.inference.capture import GraphSVI, elbo_loss
from pyrolf.inference.svi import Trainer, make_batch
from pyrolf.models import build_flow

SMALL = dict(latent_dim=8, channels=2, encoder_hidden=16, decoder_width=16,
             decoder_feedforward=32)
VARIANTS = [{}, {"sites": "stepwise"}, {"guide": "meanfield"}, {"integrator": "scan"},
            {"potential": "oscillators"}, {"potential": "anharmonic"}, {"potential": "free"},
            {"prior": "overdamped"}, {"learn_dynamics": True}]


def flow_and_batch(device="cpu", **settings):
    pyro.clear_param_store()
    torch.manual_seed(0)
    flow = build_flow(Config(**SMALL, **settings), 10, 7).to(device)
    spikes = torch.poisson(torch.full((6, 12, 10), 0.5, device=device))
    batch = make_batch(spikes, torch.arange(10, device=device) < 7, 2, cd_rate=0.3)
    return flow, (batch.inputs, batch.spikes, batch.mask)


def test_the_loss_of_a_point_guide_is_computed_by_hand():
    """z ~ N(0, 1) scaled by 0.5, x ~ N(z, 1) observed where the mask is true; the guide puts z
    at m (a Delta: log q = 0), so -ELBO = -(0.5 log N(m; 0, 1) + Σ_masked log N(x; m, 1))."""
    x, mask, m = torch.tensor([0.3, -1.2, 2.0]), torch.tensor([True, False, True]), 0.7

    def model():
        with poutine.scale(scale=0.5):
            z = pyro.sample("z", dist.Normal(0.0, 1.0))
        with pyro.plate("data", 3):
            pyro.sample("x", dist.Normal(z, 1.0).mask(mask), obs=x)

    def guide():
        with poutine.scale(scale=0.5):
            pyro.sample("z", dist.Delta(torch.tensor(m)))

    def log_normal(value, loc):
        return -0.5 * math.log(2 * math.pi) - 0.5 * (value - loc) ** 2

    expected = -(0.5 * log_normal(m, 0.0) + log_normal(0.3, m) + log_normal(2.0, m))
    assert float(elbo_loss(model, guide)) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("settings", VARIANTS, ids=lambda s: ",".join(map(str, s.values())) or "preset")
def test_the_loss_and_gradients_are_trace_elbos(settings):
    flow, args = flow_and_batch(**settings)
    losses, grads = [], []
    for loss_fn in (Trace_ELBO(max_plate_nesting=1).differentiable_loss, elbo_loss):
        flow.zero_grad()
        pyro.set_rng_seed(3)
        loss = loss_fn(flow.model, flow.guide, *args, kl_weight=0.4)
        loss.backward()
        losses.append(loss.item())
        grads.append([p.grad.clone() for p in flow.parameters() if p.grad is not None])
    assert losses[1] == pytest.approx(losses[0], rel=1e-6)
    assert len(grads[0]) == len(grads[1]) > 10
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-7) for a, b in zip(*grads))


def test_a_guide_site_that_is_not_reparameterised_is_refused():
    def model():
        pyro.sample("coin", dist.Bernoulli(0.5))

    def guide():
        pyro.sample("coin", dist.Bernoulli(0.3))

    with pytest.raises(ValueError, match="'coin' is not reparameterised"):
        elbo_loss(model, guide)


class HostTraffic(TorchFunctionMode):
    """Records what a CUDA graph cannot hold: values read back to the host, and tensors made on
    a device from host data (a copy from the host)."""

    READS = {torch.Tensor.item, torch.Tensor.__bool__, torch.Tensor.__float__,
             torch.Tensor.__int__, torch.Tensor.tolist, torch.Tensor.numpy, torch.Tensor.cpu}
    FACTORIES = {torch.tensor, torch.as_tensor, torch.asarray}

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        data = args[0] if args else kwargs.get("data")
        if func in self.READS or (func in self.FACTORIES and "device" in kwargs
                                  and not torch.is_tensor(data)):
            self.calls.append(getattr(func, "__name__", str(func)))
        return func(*args, **kwargs)


@pytest.mark.parametrize("settings", VARIANTS, ids=lambda s: ",".join(map(str, s.values())) or "preset")
def test_the_loss_and_its_backward_pass_never_reach_the_host(settings):
    flow, args = flow_and_batch(**settings)
    kl_weight = torch.tensor(0.4)  # as a recording holds it
    elbo_loss(flow.model, flow.guide, *args, kl_weight=kl_weight)  # lazy set-up outside
    with pyro.validation_enabled(False), HostTraffic() as traffic:
        elbo_loss(flow.model, flow.guide, *args, kl_weight=kl_weight).backward()
    assert traffic.calls == []


def test_the_detector_sees_host_traffic():
    with HostTraffic() as traffic:
        x = torch.ones(3)
        float(x.sum())
        torch.tensor(1.0, device=x.device)
        bool(x.any())
    assert traffic.calls == ["__float__", "tensor", "__bool__"]


def test_off_the_gpu_graph_svi_takes_svis_steps_and_records_nothing():
    initial = flow_and_batch()[0].state_dict()  # run_both's flow starts from these weights
    (svi_losses, svi_weights, _), (graph_losses, graph_weights, graph_svi) = run_both()
    assert graph_losses == pytest.approx(svi_losses, rel=1e-6)
    assert all(torch.allclose(svi_weights[k], graph_weights[k], atol=1e-6) for k in svi_weights)
    assert not torch.equal(svi_weights["decoder.readout.weight"], initial["decoder.readout.weight"])
    assert graph_svi.recordings == {} and not graph_svi.seen


def test_a_recording_is_chosen_by_shapes_not_by_float_values():
    a, b = torch.zeros(4, 3), torch.zeros(2, 3)
    key = capture._shape_key
    assert key((a,), {"kl_weight": 0.1}) == key((torch.ones(4, 3),), {"kl_weight": 0.9})
    assert key((a,), {"kl_weight": 0.1}) != key((b,), {"kl_weight": 0.1})
    assert key((a, 5), {}) != key((a, 6), {})


def test_on_the_cpu_the_trainer_keeps_pyros_svi_and_the_setting_is_checked():
    data = lorenz_dataset(seed=1, n_conditions=2, trials_per_condition=4, n_bins=10,
                          n_neurons=6, n_heldout=2)
    config = Config(**SMALL, cuda_graphs=True)
    trainer = Trainer(build_flow(config, data.n_neurons, data.n_heldin), data, config)
    assert [type(part.svi) for part in trainer.parts] == [SVI]
    with pytest.raises(Exception, match="cuda_graphs must be"):
        Config(cuda_graphs="yes")


class ReplayedStep:
    """A CUDA graph's stand-in on the CPU. Recording runs the step but puts back every tensor it
    changed and the random state, as a recording runs nothing; each replay runs the step again
    and writes its loss and gradients into the tensors the recording returned, as a graph's
    replay writes the same memory."""

    replays = 0

    def __init__(self):
        self.step = self.loss = self.params = self.grads = None

    @classmethod
    def recorder(cls, svi):
        def record(graph, stream, step):
            touched = list(pyro.get_param_store()._params.values()) + [
                moment for optimizer in svi.optim.optim_objs.values()
                for state in optimizer.state.values() for moment in state.values()
                if torch.is_tensor(moment)]
            saved, rng = [t.detach().clone() for t in touched], torch.get_rng_state()
            with pyro.validation_enabled(False):
                graph.loss, graph.params = step()
            graph.step, graph.grads = step, [param.grad for param in graph.params]
            with torch.no_grad():
                for tensor, value in zip(touched, saved):
                    tensor.copy_(value)
            torch.set_rng_state(rng)
            return graph.loss, graph.params
        return record

    def replay(self):
        type(self).replays += 1
        before = [param.grad for param in self.params]  # a replay sets no attribute
        for param in self.params:
            param.grad = None
        loss, params = self.step()
        self.loss.copy_(loss)
        for own, param, grad in zip(self.grads, params, before):
            own.copy_(param.grad)
            param.grad = grad


def weights_agree(expected: dict, got: dict, **tolerance) -> bool:
    """All weights close, but the attention's input bias: its key part has a gradient that is 0
    in exact arithmetic, whose rounding Adam's normalised steps turn into full steps."""
    return all(torch.allclose(expected[k], got[k], **tolerance)
               for k in expected if not k.endswith("in_proj_bias"))


CLIPPED_ADAM = {"lr": 1e-2, "lrd": 0.99, "clip_norm": 10.0, "weight_decay": 1e-3}


def run_both(device="cpu", monkeypatch=None, optim=lambda: ClippedAdam(dict(CLIPPED_ADAM)),
             checked=()):
    """Losses, final weights and the stepper of SVI and of GraphSVI over the same steps from the
    same start: a fresh batch every step, every third one short (an epoch's last), kl_weight
    changing every step, Pyro's checks on for the steps ``checked``."""
    flow, _ = flow_and_batch(device)
    n_steps = 4 * capture.WARMUP_STEPS + 6
    torch.manual_seed(1)
    batches = []
    for step in range(n_steps):
        spikes = torch.poisson(torch.full((4 if step % 3 == 2 else 6, 12, 10), 0.5, device=device))
        batch = make_batch(spikes, torch.arange(10, device=device) < 7, 2, cd_rate=0.3)
        batches.append((batch.inputs, batch.spikes, batch.mask))
    initial = {k: v.clone() for k, v in flow.state_dict().items()}
    runs = []
    for make in (lambda optim: SVI(flow.model, flow.guide, optim, Trace_ELBO(max_plate_nesting=1)),
                 lambda optim: GraphSVI(flow.model, flow.guide, optim)):
        pyro.clear_param_store()
        flow.load_state_dict(initial)
        pyro.set_rng_seed(5)
        svi = make(optim())
        if monkeypatch is not None and isinstance(svi, GraphSVI):
            monkeypatch.setattr(capture, "record", ReplayedStep.recorder(svi))
        losses = []
        for step, batch in enumerate(batches):
            with pyro.validation_enabled(step in checked):  # as Trainer steps after its first
                losses.append(svi.step(*batch, kl_weight=0.1 * (step + 1)))
        runs.append((losses, {k: v.clone() for k, v in flow.state_dict().items()}, svi))
    return runs


@pytest.mark.parametrize("optim, recorded", [(lambda: ClippedAdam(dict(CLIPPED_ADAM)), True),
                                             (lambda: pyro.optim.Adam({"lr": 1e-2}), False)],
                         ids=["ClippedAdam", "Adam"])
def test_replayed_recordings_take_svis_steps(monkeypatch, optim, recorded):
    """GraphSVI's recording and replay, run on the CPU with a stand-in for the graph: after the
    warm-up steps each batch shape is recorded once and replayed on fresh inputs, kl_weight and
    step sizes (ClippedAdam's update is recorded, another optimiser steps after the replay), a
    checked step runs eagerly between replays, and every step equals Pyro's SVI."""
    monkeypatch.setattr(capture, "_on_gpu", lambda args: True)
    monkeypatch.setattr(GraphSVI, "_on_own_stream", lambda self, args: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "CUDAGraph", ReplayedStep)
    replays = ReplayedStep.replays
    (svi_losses, svi_weights, _), (graph_losses, graph_weights, graph_svi) = run_both(
        monkeypatch=monkeypatch, optim=optim, checked={13})
    assert len(graph_svi.recordings) == 2 and not graph_svi.failed
    # each shape's first 3 steps warm up (full 0, 1, 3; short 2, 5, 8); 13 is checked: eager
    assert ReplayedStep.replays - replays == 18 - 2 * capture.WARMUP_STEPS - 1
    assert [recording.update is not None
            for recording in graph_svi.recordings.values()] == [recorded, recorded]
    assert ReplayedStep.replays >= 4
    assert graph_losses == pytest.approx(svi_losses, rel=1e-5)
    assert weights_agree(svi_weights, graph_weights, rtol=1e-4, atol=1e-6)


def test_a_fit_with_replayed_recordings_is_the_eager_fit(monkeypatch):
    """Trainer's epochs (shuffled batches, the KL warm-up, validation in eval mode between them)
    through GraphSVI with the CPU stand-in give the fit Pyro's SVI gives."""
    monkeypatch.setattr(capture, "_on_gpu", lambda args: True)
    monkeypatch.setattr(GraphSVI, "_on_own_stream", lambda self, args: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "CUDAGraph", ReplayedStep)
    data = lorenz_dataset(seed=1, n_conditions=6, trials_per_condition=8, n_bins=20,
                          n_neurons=12, n_heldout=3, mean_rate=0.5)
    config = Config(**SMALL, epochs=6, batch_size=16, eval_every=2, kl_warmup=4, samples=3)
    fits = []
    for graphs in (False, True):
        pyro.set_rng_seed(0)
        trainer = Trainer(build_flow(config, data.n_neurons, data.n_heldin), data, config)
        if graphs:
            (part,) = trainer.parts
            part.svi = GraphSVI(trainer.flow.model, trainer.flow.guide, trainer.optimizer)
            monkeypatch.setattr(capture, "record", ReplayedStep.recorder(part.svi))
        replays = ReplayedStep.replays
        history = trainer.fit(progress=False).history
        fits.append(([r["elbo"] for r in history], [r.get("valid_co_bps") for r in history]))
    assert len(part.svi.recordings) == 2 and ReplayedStep.replays - replays >= 6
    assert fits[1][0] == pytest.approx(fits[0][0], rel=1e-5)
    assert [x for x in fits[1][1] if x] == pytest.approx([x for x in fits[0][1] if x], abs=1e-4)


def test_when_recording_fails_the_steps_go_on_eagerly_with_one_warning(monkeypatch):
    monkeypatch.setattr(capture, "_on_gpu", lambda args: True)
    monkeypatch.setattr(GraphSVI, "_on_own_stream", lambda self, args: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "CUDAGraph", ReplayedStep)

    def recorder(svi):
        def broken(graph, stream, step):  # runs nothing, leaves garbage gradients behind
            for param in svi.params:
                param.grad = torch.full_like(param, math.nan)
            raise RuntimeError("operation not permitted when stream is capturing")
        return broken

    monkeypatch.setattr(ReplayedStep, "recorder", staticmethod(recorder))
    with pytest.warns(RuntimeWarning, match="could not record.*not permitted") as warned:
        (svi_losses, svi_weights, _), (graph_losses, graph_weights, graph_svi) = run_both(
            monkeypatch=monkeypatch)
    assert len([w for w in warned if w.category is RuntimeWarning]) == 1
    assert graph_svi.failed and graph_svi.recordings == {}
    assert graph_losses == pytest.approx(svi_losses, rel=1e-6)
    assert weights_agree(svi_weights, graph_weights, rtol=1e-5, atol=1e-7)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_on_a_gpu_the_recorded_steps_equal_the_eager_ones():
    (svi_losses, svi_weights, _), (graph_losses, graph_weights, graph_svi) = run_both("cuda")
    assert len(graph_svi.recordings) == 2 and not graph_svi.failed
    assert all(recording.update is not None for recording in graph_svi.recordings.values())
    assert graph_losses == pytest.approx(svi_losses, rel=1e-4)
    assert weights_agree(svi_weights, graph_weights, rtol=1e-3, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_on_a_gpu_a_fit_with_graphs_records_and_scores_as_without():
    data = lorenz_dataset(seed=1, n_conditions=6, trials_per_condition=8, n_bins=20,
                          n_neurons=12, n_heldout=3, mean_rate=0.5)
    scores = []
    for graphs in (False, True):
        config = Config(**SMALL, epochs=4, batch_size=16, eval_every=4, device="cuda",
                        cuda_graphs=graphs)
        pyro.set_rng_seed(0)
        trainer = Trainer(build_flow(config, data.n_neurons, data.n_heldin), data, config)
        scores.append(trainer.fit(progress=False).best_score)
    (part,) = trainer.parts
    assert isinstance(part.svi, GraphSVI) and part.svi.recordings and not part.svi.failed
    assert scores[1] == pytest.approx(scores[0], abs=1e-3)


def test_the_recordable_update_is_clipped_adams_step():
    """advance + apply on every step give Pyro's ClippedAdam: the same weights, moments, step
    counts and learning rates, with the gradient clipped, weight decay and lr decay at work."""
    torch.manual_seed(2)
    weights = [torch.randn(5, 3), torch.randn(4)]
    settings = {"lr": 0.05, "lrd": 0.9, "clip_norm": 0.5, "weight_decay": 0.01}
    copies = [[w.clone().requires_grad_() for w in weights] for _ in range(2)]
    optims = [ClippedAdam(dict(settings)) for _ in range(2)]
    grads = [[3 * torch.randn_like(w) for w in weights] for _ in range(5)]  # some beyond the clip

    def set_grads(params, step):
        for param, grad in zip(params, grads[step]):
            param.grad = grad.clone()

    set_grads(copies[0], 0)
    set_grads(copies[1], 0)
    optims[0](copies[0])
    optims[1](copies[1])  # the eager first step creates the moments, as the warm-up does
    update = capture.ClippedAdamUpdate.of(optims[1], copies[1])
    for step in range(1, 5):
        set_grads(copies[0], step)
        optims[0](copies[0])
        set_grads(copies[1], step)
        update.advance()
        update.apply()
    for reference, ours in zip(copies[0], copies[1]):
        assert torch.allclose(reference, ours, rtol=1e-6, atol=1e-7)
        expected, got = optims[0].optim_objs[reference], optims[1].optim_objs[ours]
        assert got.param_groups[0]["lr"] == expected.param_groups[0]["lr"]
        assert got.param_groups[0]["lr"] == pytest.approx(0.05 * 0.9 ** 5)
        assert got.state[ours]["step"] == expected.state[reference]["step"] == 5
        for moment in ("exp_avg", "exp_avg_sq"):
            assert torch.allclose(got.state[ours][moment], expected.state[reference][moment],
                                  rtol=1e-6, atol=1e-8)
    assert not torch.allclose(copies[1][0], weights[0])


def test_only_a_clipped_adam_that_has_stepped_is_recorded():
    param = torch.zeros(3, requires_grad=True)
    param.grad = torch.ones(3)
    fresh = ClippedAdam({"lr": 0.1})
    assert capture.ClippedAdamUpdate.of(fresh, [param]) is None  # no moments yet
    fresh([param])
    assert capture.ClippedAdamUpdate.of(fresh, [param]) is not None
    other = pyro.optim.Adam({"lr": 0.1})
    other([param])
    assert capture.ClippedAdamUpdate.of(other, [param]) is None  # torch's Adam: stepped eagerly
    clipped = pyro.optim.PyroOptim(clipped_adam.ClippedAdam, {"lr": 0.1}, {"clip_norm": 1.0})
    clipped([param])
    assert capture.ClippedAdamUpdate.of(clipped, [param]) is None  # PyroOptim's own clipping
