"""SVI actually learns, checkpoints reproduce predictions, and an interrupted run resumes exactly."""

from types import SimpleNamespace

import pyro
import pyro.distributions as dist
import pytest
import torch

from pyrolf import Config, evaluate_run, fit, load_run, resume
from pyrolf.data import lorenz_dataset
from pyrolf.evaluation.report import model_rates
from pyrolf.inference.svi import KL_WEIGHT_FLOOR, Trainer, predict_rates
from pyrolf.models import build_flow
from pyrolf.runs import RunFolder

TINY = dict(latent_dim=8, channels=2, encoder_hidden=16, decoder_width=16,
            decoder_feedforward=32, batch_size=16, samples=3, eval_every=2)


@pytest.fixture(scope="module")
def data():
    return lorenz_dataset(seed=1, n_conditions=6, trials_per_condition=8, n_bins=20,
                          n_neurons=12, n_heldout=3, mean_rate=0.5)


def test_a_short_fit_raises_the_elbo(data):
    config = Config(epochs=25, kl_warmup=0, lr=5e-3, **TINY)
    pyro.set_rng_seed(0)
    trainer = Trainer(build_flow(config, data.n_neurons, data.n_heldin), data, config)
    history = trainer.fit(progress=False).history
    first = sum(r["elbo"] for r in history[:3]) / 3
    last = sum(r["elbo"] for r in history[-3:]) / 3
    assert last > first + 0.1 * abs(first)


def test_pyro_checks_the_first_step_of_a_fit_only(data):
    from pyro.distributions.util import is_validation_enabled

    config = Config(epochs=3, **TINY)
    trainer = Trainer(build_flow(config, data.n_neurons, data.n_heldin), data, config)
    (part,) = trainer.parts  # one session: the flow itself on the data themselves
    assert part.flow is trainer.flow and part.data is data
    guide, checked = part.svi.guide, []

    def recording_guide(*args, **kwargs):
        checked.append(is_validation_enabled())
        return guide(*args, **kwargs)

    part.svi.guide = recording_guide
    trainer.fit(progress=False)
    steps = trainer.steps_per_epoch
    assert steps > 1 and checked == [True] + [False] * (3 * steps - 1)
    assert is_validation_enabled()  # the user's setting is back


def test_checkpoint_round_trip_reproduces_predictions(data, tmp_path):
    config = Config(epochs=4, **TINY)
    result = fit(data, config, run_dir=tmp_path / "run", progress=False)
    flow, loaded_config, loaded_data = load_run(tmp_path / "run", data)
    assert loaded_config == config
    test = data.splits["test"]
    pyro.set_rng_seed(11)
    before = model_rates(result.flow, data, test, samples=2)
    pyro.set_rng_seed(11)
    after = model_rates(flow, loaded_data, test, samples=2)
    assert before.shape == (len(test), data.n_bins, data.n_neurons)
    assert (before == after).all()
    run = RunFolder(tmp_path / "run")
    for name in ("config.json", "checkpoint.pt", "best.pt", "metrics.json", "history.csv",
                 "training.png"):
        assert run.has(name), name
    assert set(run.read_json("metrics.json")) >= {"co_bps", "rates_r2", "smoothing_co_bps",
                                                   "smoothing_rates_r2", "elbo"}


class Interrupt(Exception):
    pass


def test_an_interrupted_run_resumes_to_the_same_weights(data, tmp_path):
    config = Config(epochs=6, **TINY)
    straight = fit(data, config, run_dir=tmp_path / "straight", progress=False)

    def stop_after_epoch_4(trainer, is_best):
        saver(trainer, is_best)
        if trainer.state.epoch == 4:
            raise Interrupt

    from pyrolf.pipeline import training as pipeline
    original = pipeline._train

    def train_with_interrupt(trainer, run, progress=True):
        nonlocal saver
        saver = lambda t, best: pipeline._save(run, t, best)  # noqa: E731
        trainer.on_checkpoint = stop_after_epoch_4
        trainer.fit(progress)

    saver = None
    pipeline._train = train_with_interrupt
    try:
        with pytest.raises(Interrupt):
            fit(data, config, run_dir=tmp_path / "interrupted", progress=False)
    finally:
        pipeline._train = original
    assert RunFolder(tmp_path / "interrupted").load("checkpoint.pt")["state"]["epoch"] == 4
    resumed = resume(tmp_path / "interrupted", progress=False, data=data)
    assert resumed.state.epoch == 6
    for key, value in straight.flow.state_dict().items():
        assert torch.allclose(value, resumed.flow.state_dict()[key]), key
    assert resumed.metrics["co_bps"] == pytest.approx(straight.metrics["co_bps"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_a_run_trained_on_the_gpu_resumes(data, tmp_path):
    """The checkpoint comes back onto the GPU with its random-generator states."""
    config = Config(epochs=2, device="cuda", **TINY)
    fit(data, config, run_dir=tmp_path / "run", progress=False)
    assert resume(tmp_path / "run", epochs=4, progress=False, data=data).state.epoch == 4
    # evaluated where it was fitted (the weights are moved there) as on the CPU, up to the
    # sampling noise of other random streams
    on_gpu = evaluate_run(tmp_path / "run", data=data, progress=False)
    on_cpu = evaluate_run(tmp_path / "run", data=data, progress=False, device="cpu")
    assert on_gpu["co_bps"] == pytest.approx(on_cpu["co_bps"], abs=0.05)


def test_a_run_folder_is_never_overwritten(data, tmp_path):
    config = Config(epochs=2, **TINY)
    fit(data, config, run_dir=tmp_path / "run", progress=False)
    before = (tmp_path / "run" / "checkpoint.pt").read_bytes()
    with pytest.raises(Exception, match=r"already holds a run.*pyrolf\.resume\("):
        fit(data, config, run_dir=tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "checkpoint.pt").read_bytes() == before


def test_the_seed_makes_a_cpu_run_repeatable(data):
    def weights(seed):
        result = fit(data, Config(epochs=2, seed=seed, **TINY), progress=False)
        return result.flow.state_dict(), result.metrics["co_bps"]

    (first, bps_first), (again, bps_again), (other, _) = weights(4), weights(4), weights(5)
    assert all(torch.equal(first[key], again[key]) for key in first)
    assert bps_first == bps_again
    assert not all(torch.equal(first[key], other[key]) for key in first)


def test_how_often_a_fit_validates_changes_none_of_its_training(data):
    """Validation draws from a stream of its own: fits that validate every epoch and every third
    train alike, step for step, and score their last epoch alike."""
    histories, weights = [], []
    for eval_every in (1, 3):
        config = Config(epochs=3, **{**TINY, "eval_every": eval_every})
        pyro.set_rng_seed(0)
        trainer = Trainer(build_flow(config, data.n_neurons, data.n_heldin), data, config)
        histories.append(trainer.fit(progress=False).history)
        weights.append(trainer.flow.state_dict())
    every, third = histories
    assert "valid_co_bps" in every[0] and "valid_co_bps" not in third[0]
    assert [r["elbo"] for r in every] == [r["elbo"] for r in third]
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])
    assert every[-1]["valid_co_bps"] == third[-1]["valid_co_bps"]


def test_validation_leaves_the_training_stream_and_draws_alike_each_time(data):
    config = Config(epochs=1, **TINY)
    trainer = Trainer(build_flow(config, data.n_neurons, data.n_heldin), data, config)
    torch.manual_seed(5)
    before = torch.get_rng_state()
    with trainer.validation_draws():
        first = trainer.validation_score()
    assert torch.equal(torch.get_rng_state(), before)
    torch.rand(10)  # the training's stream moves on ...
    with trainer.validation_draws():
        assert trainer.validation_score() == first  # ... the validation's draws do not
    assert trainer.validation_score() != first  # outside, they come from the training's stream


def test_the_scan_integrator_gives_the_loops_loss_gradients_and_scores(data):
    """The scan (the GPU's default) and the loop (the CPU's) train the same model: on one batch
    the same ELBO and gradients from the same weights and draws, and after a short fit the same
    scores, float32 rounding apart (Adam turns the rounding of gradients that are 0 in exact
    arithmetic, such as the attention's key bias, into full steps, so weights are not compared)."""
    flows = {name: build_flow(Config(integrator=name, **TINY), data.n_neurons, data.n_heldin)
             for name in ("loop", "scan")}
    flows["scan"].load_state_dict(flows["loop"].state_dict())
    spikes = torch.as_tensor(data.spikes[:16], dtype=torch.float32)
    inputs = spikes[..., torch.as_tensor(~data.heldout)]
    gradients = {}
    for name, flow in flows.items():
        pyro.set_rng_seed(3)
        loss = pyro.infer.Trace_ELBO().differentiable_loss(flow.model, flow.guide, inputs, spikes)
        gradients[name] = (loss, torch.autograd.grad(loss, list(flow.parameters()),
                                                     allow_unused=True))
    (loss_loop, grads_loop), (loss_scan, grads_scan) = gradients["loop"], gradients["scan"]
    assert loss_scan.item() == pytest.approx(loss_loop.item(), rel=1e-5)
    for a, b in zip(grads_loop, grads_scan):
        assert (a is None) == (b is None)
        assert a is None or torch.allclose(a, b, rtol=1e-3, atol=1e-4)
    scores = {name: fit(data, Config(epochs=2, integrator=name, threads=1, **TINY),
                        progress=False).metrics for name in ("loop", "scan")}
    assert scores["scan"]["co_bps"] == pytest.approx(scores["loop"]["co_bps"], abs=1e-3)
    assert scores["scan"]["elbo"] == pytest.approx(scores["loop"]["elbo"], rel=1e-3)


class UniformDraws(torch.nn.Module):
    """A flow in LangevinFlow's signature whose rate is a trial's mean input plus a Uniform(0, 1)
    draw of the guide: its posterior-mean rate is the mean input + 1/2."""

    rows = 0

    def guide(self, inputs, n_bins, draws=1):
        self.rows += len(inputs) * draws
        with pyro.plate("trials", len(inputs) * draws):
            return pyro.sample("u", dist.Uniform(0.0, 1.0))

    def model(self, inputs, n_bins, draws=1):
        with pyro.plate("trials", len(inputs) * draws):
            u = pyro.sample("u", dist.Uniform(0.0, 1.0))
        level = inputs.mean((1, 2)).repeat_interleave(draws)
        return (level + u).log()[:, None, None].expand(-1, n_bins, 2)


@pytest.mark.parametrize("draws_per_pass", [1, 7, 40, 10_000])
def test_predicted_rates_average_each_trials_own_draws(draws_per_pass):
    """However the draws of several trials share a pass, each trial's rate is the mean of exactly
    ``samples`` draws of its own."""
    pyro.set_rng_seed(0)
    samples, levels = 400, torch.arange(5.0) * 10
    inputs = levels[:, None, None].expand(5, 3, 4)
    flow = UniformDraws()
    rates = predict_rates(flow, inputs, n_bins=6, samples=samples, draws_per_pass=draws_per_pass)
    assert rates.shape == (5, 6, 2)
    assert flow.rows == 5 * samples
    sd = (1 / 12 / samples) ** 0.5
    assert torch.allclose(rates, (levels + 0.5)[:, None, None].expand(5, 6, 2), atol=4 * sd)


DECAYING = {**TINY, "eval_every": 1, "lr": 1e-2, "lr_final": 1e-3}


def test_a_run_resumed_to_more_epochs_ends_its_learning_rate_at_lr_final(data, tmp_path):
    """A resume to more epochs than planned holds the learning rate at lr_final (the saved
    decay, continued, went below it unseen: a mutation audit)."""
    first = fit(data, Config(epochs=2, **DECAYING), run_dir=tmp_path / "run", progress=False)
    assert first.state.history[-1]["lr"] == pytest.approx(1e-3, rel=1e-3)  # as planned
    resumed = resume(tmp_path / "run", epochs=4, progress=False, data=data)
    lrs = [record["lr"] for record in resumed.state.history]
    assert len(lrs) == 4
    # after the resume it decays from where it was (lr_final) to lr_final again: held there,
    # neither sinking below it (the saved decay continued) nor jumping back up
    assert lrs[2:] == pytest.approx([1e-3, 1e-3], rel=1e-3)


def test_a_fit_scores_and_returns_the_weights_of_its_best_epoch_not_its_last(
        data, tmp_path, monkeypatch):
    """A fit that kept its last epoch's weights in place of its best's was scored and returned
    unseen (a mutation audit)."""
    scores = iter([0.3, 0.2, 0.1])  # the first epoch validates best, the later ones worse
    monkeypatch.setattr(Trainer, "validation_score", lambda self: next(scores))
    result = fit(data, Config(epochs=3, **DECAYING), run_dir=tmp_path / "run", progress=False)
    assert result.state.best_epoch == 1
    assert result.metrics["weights"] == "best.pt" and result.metrics["weights_epoch"] == 1
    run = RunFolder(tmp_path / "run")
    best, last = run.load("best.pt")["flow"], run.load("checkpoint.pt")["flow"]
    assert any(not torch.equal(best[key], last[key]) for key in best)  # (they differ)
    for key, value in result.flow.state_dict().items():
        assert torch.equal(value, best[key]), key


@pytest.mark.parametrize("warmup", [4, 10])
def test_the_kl_weight_ramps_linearly_from_the_floor_over_the_warm_up(warmup):
    trainer = SimpleNamespace(config=Config(kl_warmup=warmup, kl_weight=2.0))
    weight = lambda epoch: Trainer.kl_weight(trainer, epoch)
    assert weight(0) == pytest.approx(2.0 * KL_WEIGHT_FLOOR)
    assert weight(warmup / 2) == pytest.approx(1.0)
    assert weight(warmup - 1) == pytest.approx(2.0 * (warmup - 1) / warmup)
    assert weight(warmup) == pytest.approx(2.0)
    assert weight(warmup + 3) == pytest.approx(2.0)
