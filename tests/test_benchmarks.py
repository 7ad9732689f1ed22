"""The benchmark's plain-PyTorch ceiling computes the same loss as the Pyro model and guide."""

import importlib.util
from pathlib import Path

import pyro
import pytest
import torch
from pyro.distributions.util import is_validation_enabled
from pyro.infer import Trace_ELBO

from pyrolf.config import Config
from pyrolf.inference.svi import make_batch
from pyrolf.models import build_flow

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "svi_step.py"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("svi_step", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("guide", ["langevin", "meanfield"])
def test_plain_torch_loss_is_the_pyro_elbo_of_the_same_draw(float64, guide):
    torch_loss = load_benchmark().torch_loss
    config = Config(latent_dim=8, channels=2, encoder_hidden=8, decoder_width=8,
                    decoder_feedforward=16, guide=guide)
    flow = build_flow(config, 7, 5).double().eval()
    torch.manual_seed(0)
    spikes = torch.poisson(torch.full((4, 12, 7), 0.7))
    b = make_batch(spikes, torch.arange(7) < 5, n_forward=3, cd_rate=0.3)
    losses = []
    for loss in (lambda: torch_loss(flow, b.inputs, b.spikes, b.mask, kl_weight=0.4),
                 lambda: Trace_ELBO().loss(flow.model, flow.guide, b.inputs, b.spikes, b.mask,
                                           kl_weight=0.4)):
        pyro.set_rng_seed(1)  # both draw z_0, v_0, then every innovation, in that order
        losses.append(float(torch.as_tensor(loss()).detach()))
    assert losses[0] == pytest.approx(losses[1], rel=1e-8)


@pytest.mark.parametrize("checks", [False, True])
def test_timed_steps_check_arguments_as_asked_and_the_warm_up_as_training_does(checks):
    seen = []
    load_benchmark().seconds_per_step(lambda: seen.append(is_validation_enabled()), repeats=3,
                                      device="cpu", checks=checks)
    assert seen == [True, checks, checks, checks]  # pyrolf fit checks its first step only
    assert is_validation_enabled()
