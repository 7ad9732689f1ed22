"""The model and guide agree on their sites, and the two paths (stepwise, vectorised) are one model."""

import pyro
import pytest
import torch
from pyro import poutine
from pyro.infer import Trace_ELBO

from pyrolf.config import Config
from pyrolf.dynamics.langevin import LangevinDynamics
from pyrolf.dynamics.potentials import FreeParticle
from pyrolf.guides.amortised import LangevinGuide, MeanFieldGuide
from pyrolf.inference.svi import make_batch
from pyrolf.models import build_flow
from pyrolf.inference.passes import guide_and_model_traces

TRIALS, BINS, NEURONS, HELDIN, LATENT = 5, 9, 7, 5, 8


def small_flow(**settings):
    config = Config(latent_dim=LATENT, channels=2, encoder_hidden=8, decoder_width=8,
                    decoder_feedforward=16, **settings)
    return build_flow(config, NEURONS, HELDIN)


def batch(n_forward=0, cd_rate=0.0, dtype=torch.float32):
    torch.manual_seed(3)
    spikes = torch.poisson(torch.full((TRIALS, BINS, NEURONS), 0.8)).to(dtype)
    heldin = torch.tensor([True] * HELDIN + [False] * (NEURONS - HELDIN))
    return make_batch(spikes, heldin, n_forward, cd_rate)


def sample_sites(trace):
    return {name: tuple(site["value"].shape) for name, site in trace.nodes.items()
            if site["type"] == "sample" and not site["is_observed"]
            and type(site["fn"]).__name__ != "_Subsample"}


@pytest.mark.parametrize("sites", ["vectorised", "stepwise"])
@pytest.mark.parametrize("guide", ["langevin", "meanfield"])
def test_model_and_guide_have_the_same_latent_sites_with_documented_shapes(sites, guide):
    flow = small_flow(sites=sites, guide=guide)
    b = batch()
    guide_sites = sample_sites(poutine.trace(flow.guide).get_trace(b.inputs, b.spikes, b.mask))
    model_sites = sample_sites(poutine.trace(flow.model).get_trace(b.inputs, b.spikes, b.mask))
    assert guide_sites == model_sites
    expected = {"z_0": (TRIALS, LATENT), "v_0": (TRIALS, LATENT)}
    if sites == "vectorised":
        expected["v"] = (TRIALS, BINS - 1, LATENT)
    else:
        expected.update({f"v_{t}": (TRIALS, LATENT) for t in range(1, BINS)})
    assert guide_sites == expected


def test_model_returns_log_rates_of_all_neurons_and_bins():
    flow = small_flow()
    b = batch()
    assert flow.model(b.inputs, b.spikes, b.mask).shape == (TRIALS, BINS, NEURONS)


def _log_densities(flow, b, values=None):
    """log p(x, latents) and log q(latents) of one guide draw (or of the given latents)."""
    if values:
        guide, model = (poutine.condition(fn, data=values) for fn in (flow.guide, flow.model))
        guide_trace = poutine.trace(guide).get_trace(b.inputs, b.spikes, b.mask)
    else:
        guide_trace = poutine.trace(flow.guide).get_trace(b.inputs, b.spikes, b.mask)
        model = poutine.replay(flow.model, trace=guide_trace)
    model_trace = poutine.trace(model).get_trace(b.inputs, b.spikes, b.mask)
    model_trace.compute_log_prob()
    return model_trace, guide_trace


@pytest.mark.parametrize("guide, prior, potential", [
    ("langevin", "langevin", "oscillators"), ("meanfield", "langevin", "oscillators"),
    ("langevin", "overdamped", "anharmonic")])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("n_forward", [0, 3])
def test_vectorised_and_stepwise_paths_give_the_same_log_densities(float64, masked, n_forward,
                                                                   guide, prior, potential):
    flow = small_flow(guide=guide, prior=prior, potential=potential).double().eval()
    b = batch(n_forward=n_forward, cd_rate=0.4 if masked else 0.0, dtype=torch.float64)
    assert (not b.mask.all()) == masked
    torch.manual_seed(4)
    model_v, guide_v = _log_densities(flow, b)
    v = guide_v.nodes["v"]["value"]
    stepwise_values = {"z_0": guide_v.nodes["z_0"]["value"], "v_0": guide_v.nodes["v_0"]["value"]}
    stepwise_values.update({f"v_{t}": v[:, t - 1] for t in range(1, BINS)})
    flow.stepwise = True
    model_s, guide_s = _log_densities(flow, b, stepwise_values)
    log_p_v, log_p_s = model_v.log_prob_sum(), model_s.log_prob_sum()
    log_q_v, log_q_s = guide_v.log_prob_sum(), guide_s.log_prob_sum()
    assert torch.allclose(log_p_v, log_p_s, rtol=1e-5, atol=0)
    assert torch.allclose(log_q_v, log_q_s, rtol=1e-5, atol=0)
    # the velocity sites alone (not only the totals) agree
    prior_v = model_v.nodes["v"]["fn"].log_prob(v).sum()
    prior_s = sum(model_s.nodes[f"v_{t}"]["log_prob_sum"] for t in range(1, BINS))
    assert torch.allclose(prior_v, prior_s, rtol=1e-5, atol=0)


def _replayable(fn, values, *args):
    """A trace of ``fn`` whose latent sites hold ``values``, fit for ``poutine.replay``."""
    trace = poutine.trace(poutine.condition(fn, data=values)).get_trace(*args)
    for name in values:
        trace.nodes[name]["is_observed"] = False
    return trace


@pytest.mark.parametrize("guide", ["langevin", "meanfield"])
@pytest.mark.parametrize("masked", [False, True])
def test_vectorised_and_stepwise_paths_give_the_same_elbo_estimate(float64, masked, guide):
    """Trace_ELBO's one-draw estimate (KL-weighted) is the same number on both paths when both
    score the same latent trajectory."""
    flow = small_flow(guide=guide).double().eval()
    b = batch(cd_rate=0.4 if masked else 0.0, dtype=torch.float64)
    args = (b.inputs, b.spikes, b.mask, None, 0.7)
    torch.manual_seed(5)
    drawn = poutine.trace(flow.guide).get_trace(*args)
    v = drawn.nodes["v"]["value"]
    values = {"z_0": drawn.nodes["z_0"]["value"], "v_0": drawn.nodes["v_0"]["value"]}
    estimates = []
    for stepwise, sites in ((False, {"v": v}), (True, {f"v_{t}": v[:, t - 1] for t in range(1, BINS)})):
        flow.stepwise = stepwise
        trace = _replayable(flow.guide, {**values, **sites}, *args)
        estimates.append(Trace_ELBO().loss(flow.model, poutine.replay(flow.guide, trace=trace), *args))
    assert estimates[0] == pytest.approx(estimates[1], rel=1e-5)
    assert estimates[0] != pytest.approx(
        Trace_ELBO().loss(flow.model, flow.guide, *args), rel=1e-5)  # a fresh draw differs


def test_a_spike_at_a_log_rate_float32_cannot_hold_scores_finitely_with_finite_gradients():
    """A decoder driven to log-rate -110 (exp underflows float32 below about -87.3, to 0 below
    -103.3): a spike there scored -inf and its gradient was NaN, a silent route to a diverged
    fit (a statistics review); the rate counts as e^-80 there, the spike's log-likelihood is
    -80, and every gradient is finite."""
    flow = small_flow().eval()

    class Far(torch.nn.Module):
        def __init__(self, decoder):
            super().__init__()
            self.decoder = decoder

        def forward(self, z, v):
            return self.decoder(z, v) - 110.0

    flow.decoder = Far(flow.decoder)
    b = batch()
    spikes = torch.zeros_like(b.spikes)
    spikes[0, 0, 0] = 1.0
    pyro.set_rng_seed(0)
    model_trace, _ = _log_densities(flow, make_batch(spikes, torch.arange(NEURONS) < HELDIN, 0))
    scored = model_trace.nodes["spikes"]["fn"].base_dist.base_dist.log_prob(spikes)
    assert scored[0, 0, 0].item() == pytest.approx(-80.0)
    loss = Trace_ELBO().differentiable_loss(flow.model, flow.guide, b.inputs, spikes,
                                            torch.ones_like(b.mask))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in flow.parameters() if p.grad is not None)


def test_masked_entries_do_not_change_the_likelihood():
    flow = small_flow().eval()
    b = batch(cd_rate=0.5)
    pyro.set_rng_seed(6)
    model_trace, _ = _log_densities(flow, b)
    changed = b.spikes.clone()
    changed[~b.mask] += 7
    pyro.set_rng_seed(6)
    guide_trace = poutine.trace(flow.guide).get_trace(b.inputs, changed, b.mask)
    other = poutine.trace(poutine.replay(flow.model, trace=guide_trace)).get_trace(
        b.inputs, changed, b.mask)
    assert torch.allclose(model_trace.nodes["spikes"]["fn"].log_prob(b.spikes).sum(),
                          other.nodes["spikes"]["fn"].log_prob(changed).sum())
    assert other.nodes["spikes"]["fn"].log_prob(changed + b.mask * 3.0).sum() != \
        other.nodes["spikes"]["fn"].log_prob(changed).sum()


def test_coordinated_dropout_scores_exactly_the_hidden_held_in_inputs():
    b = batch(cd_rate=0.5)
    heldin_mask = b.mask[..., :HELDIN]
    assert not (heldin_mask & (b.inputs != 0)).any()  # an input the encoder saw is never scored
    assert b.mask[..., HELDIN:].all()
    assert 0.3 < (~heldin_mask).float().mean() < 0.7


def test_forward_bins_fall_back_to_the_prior_transition():
    flow = small_flow().double().eval()
    b = batch(n_forward=4, dtype=torch.float64)
    assert b.inputs.shape[1] == BINS - 4
    torch.manual_seed(7)
    _, guide_trace = _log_densities(flow, b)
    flow.stepwise = True
    torch.manual_seed(7)
    _, stepwise_trace = _log_densities(flow, b)
    prior = flow.prior.dynamics
    for t in range(BINS - 4, BINS):
        q = stepwise_trace.nodes[f"v_{t}"]["fn"]
        assert torch.allclose(q.base_dist.scale, prior.noise_scale.expand_as(q.base_dist.scale))


def test_rates_only_draws_no_counts_and_keeps_given_ones():
    """Replayed on a guide draw under ``RatesOnly`` (:func:`guide_and_model_traces`), the
    model's spike site holds the rates and draws nothing (the random stream moves as for the
    guide alone); given counts are kept."""
    flow = small_flow().eval()
    observed = batch()
    inputs, spikes = observed.inputs, observed.spikes

    def draw(spikes=None, model=True):
        """One guide draw and, if ``model``, the model replayed on it: the model's trace and the
        random stream's next number."""
        pyro.set_rng_seed(3)
        if model:
            _, model_trace = guide_and_model_traces(flow.model, flow.guide, inputs, spikes)
        else:
            model_trace = poutine.trace(flow.guide).get_trace(inputs, spikes)
        return model_trace, torch.rand(1)

    with torch.no_grad():
        _, guide_alone = draw(model=False)
        rates_trace, after_both = draw()
        given_trace, _ = draw(spikes)
    assert torch.equal(after_both, guide_alone)
    torch.testing.assert_close(rates_trace.nodes["spikes"]["value"],
                               rates_trace.nodes["_RETURN"]["value"].exp())
    assert torch.equal(given_trace.nodes["spikes"]["value"], spikes)


@pytest.mark.parametrize("sites", ["vectorised", "stepwise"])
@pytest.mark.parametrize("guide", ["langevin", "meanfield"])
def test_draws_of_each_trial_equal_the_trial_repeated_with_one_encoder_pass(guide, sites):
    """``draws=3`` gives the sites and log-rates that the trials repeated 3 times in a row give,
    from the same random stream, while the encoder reads each trial once."""
    flow = small_flow(guide=guide, sites=sites).eval()
    inputs, draws = batch().inputs, 3
    encoded = []
    flow.posterior.encoder.register_forward_hook(lambda _, args, __: encoded.append(len(args[0])))

    def traces(inputs, **draws):
        pyro.set_rng_seed(5)
        return guide_and_model_traces(flow.model, flow.guide, inputs, **draws)

    with torch.no_grad():
        repeated = traces(inputs.repeat_interleave(draws, 0))
        together = traces(inputs, draws=draws)
    assert encoded == [TRIALS * draws, TRIALS]
    for ours, theirs in zip(together, repeated):  # guide, then model
        assert list(ours.nodes) == list(theirs.nodes)
        for name in sample_sites(theirs).keys() | {"_RETURN"}:
            torch.testing.assert_close(ours.nodes[name]["value"], theirs.nodes[name]["value"])
    assert together[1].nodes["_RETURN"]["value"].shape == (TRIALS * draws, BINS, NEURONS)


class Echo(LangevinGuide):
    """A guide whose loc of each bin is the encoder state itself, its scale 1 + the state."""

    def bins(self, h):
        return h, 1.0 + h


def test_each_observed_bin_s_loc_and_scale_come_from_its_own_encoder_state():
    """Bin t's correction reads the encoder's state at t (a shift by one bin went unseen: a
    mutation audit); the forward bins are the prior's."""
    dynamics = LangevinDynamics(FreeParticle())
    guide = Echo(n_inputs=3, latent_dim=2)
    trials, observed, n_bins = 2, 5, 8
    h = torch.arange(trials * observed * 2, dtype=torch.float32).reshape(trials, observed, 2)
    loc, scale, follow = guide.innovations(dynamics, h, n_bins)
    assert loc.shape == scale.shape == (trials, n_bins - 1, 2)
    # velocity v_t (t = 1 .. observed - 1) sits at index t - 1 and reads h_t
    torch.testing.assert_close(loc[:, : observed - 1], h[:, 1:])
    torch.testing.assert_close(scale[:, : observed - 1], 1.0 + h[:, 1:])
    # the forward bins are the prior's
    assert torch.all(loc[:, observed - 1:] == 0)
    torch.testing.assert_close(scale[:, observed - 1:],
                               dynamics.noise_scale.expand(trials, n_bins - observed, 2))
    assert follow == 1.0


def test_the_mean_field_guide_follows_the_prior_past_the_observed_bins_only():
    """The mean-field guide's forward bins keep the prior transition's mean (their `follow`
    set to 0 went unseen: a mutation audit)."""
    dynamics = LangevinDynamics(FreeParticle())
    guide = MeanFieldGuide(n_inputs=3, latent_dim=2)
    h = torch.zeros(2, 5, guide.encoder.out_dim)
    _, _, follow = guide.innovations(dynamics, h, 8)
    assert follow.shape == (7, 1)
    assert follow[:4].eq(0).all() and follow[4:].eq(1).all()
