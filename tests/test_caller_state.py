"""pyrolf's public functions leave the caller's global state as they found it: a notebook's Pyro
param store, random streams, threads, default dtype and matplotlib backend."""

import random
import subprocess
import sys

import numpy as np
import pyro
import pytest
import torch
from pyro.infer import Predictive, SVI, Trace_ELBO

import pyrolf
from pyrolf import Config
from pyrolf.config import ConfigError
from pyrolf.data import lorenz_dataset
from pyrolf.models import build_flow

TINY = dict(latent_dim=8, channels=2, encoder_hidden=16, decoder_width=16,
            decoder_feedforward=32, batch_size=16, samples=3, epochs=2, eval_every=1)


@pytest.fixture(scope="module")
def data():
    return lorenz_dataset(seed=2, n_conditions=4, trials_per_condition=6, n_bins=12,
                          n_neurons=10, n_heldout=2, mean_rate=0.5)


def draws() -> tuple[float, float, float]:
    """The next draw of torch's, NumPy's and Python's global streams."""
    return torch.rand(()).item(), np.random.rand(), random.random()


def test_fit_and_infer_leave_the_callers_state_as_they_found_it(data, tmp_path):
    pyro.clear_param_store()
    mine = pyro.param("mine", torch.tensor([1.0, 2.0]))
    threads, dtype = torch.get_num_threads(), torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        pyro.set_rng_seed(11)
        expected = draws()
        pyro.set_rng_seed(11)
        result = pyrolf.fit(data, Config(threads=threads % 2 + 1, **TINY), progress=False,
                            run_dir=tmp_path / "run")
        pyrolf.infer(result, progress=False)
        own = pyrolf.infer(tmp_path / "run", data, samples=2, progress=False)
        after = draws(), torch.get_default_dtype()
    finally:
        torch.set_default_dtype(dtype)
    # a run fitted from Python infers the data given as its own trials, in their splits
    assert sorted(set(own.split.values)) == ["test", "train", "valid"]
    assert after == (expected, torch.float64)  # as if pyrolf had not run
    assert torch.get_num_threads() == threads
    assert list(pyro.get_param_store().keys()) == ["mine"]
    assert pyro.param("mine") is mine
    # it computed in float32 all the same
    assert {p.dtype for p in result.flow.parameters()} == {torch.float32}


def test_a_fit_gives_the_same_flow_whatever_the_caller_drew_before(data):
    weights = []
    for seed in (1, 2):
        pyro.set_rng_seed(seed)
        # (one thread: a count adapted to the machine's load would change the floats' rounding)
        flow = pyrolf.fit(data, Config(threads=1, **TINY), progress=False).flow
        weights.append(torch.cat([p.detach().flatten() for p in flow.parameters()]))
    assert torch.equal(*weights)


def test_svi_on_a_new_flow_trains_it_after_a_fit(data):
    """pyro.module hands back params of the same name from the store: a fit that left its own
    there would leave the caller's SVI of another flow training stale tensors."""
    pyro.clear_param_store()
    pyrolf.fit(data, Config(**TINY), progress=False)
    flow = build_flow(Config(**TINY), data.n_neurons, data.n_heldin)
    before = [p.detach().clone() for p in flow.parameters()]
    inputs = torch.as_tensor(data.spikes[:8, :, data.heldin], dtype=torch.float32)
    spikes = torch.as_tensor(data.spikes[:8], dtype=torch.float32)
    svi = SVI(flow.model, flow.guide, pyro.optim.Adam({"lr": 1e-2}), Trace_ELBO())
    svi.step(inputs, spikes)
    assert all(not torch.equal(old, new) for old, new in zip(before, flow.parameters()))
    pyro.clear_param_store()


def test_fit_returns_the_flow_in_eval_mode_and_trains_it_in_train_mode(data):
    result = pyrolf.fit(data, Config(**TINY), progress=False)
    assert not result.flow.training
    again = pyrolf.fit(data, Config(**TINY), flow=result.flow, progress=False)
    assert not again.flow.training
    assert again.state.history[-1]["elbo"] != result.state.history[-1]["elbo"]


def test_a_flow_of_another_dtype_is_one_line(data):
    flow = build_flow(Config(**TINY), data.n_neurons, data.n_heldin).double()
    with pytest.raises(ConfigError, match=r"weights are float64; pyrolf fits in float32: "
                                          r"pass flow.float\(\)"):
        pyrolf.fit(data, Config(**TINY), flow=flow, progress=False)


def test_a_vectorised_plate_around_model_or_guide_is_refused_by_name(data):
    flow = build_flow(Config(**TINY), data.n_neurons, data.n_heldin)
    inputs = torch.as_tensor(data.spikes[:3, :, data.heldin], dtype=torch.float32)
    one_by_one = Predictive(flow.model, guide=flow.guide, num_samples=2)(inputs)
    assert one_by_one["spikes"].shape == (2, 3, data.n_bins, data.n_neurons)
    with pytest.raises(ValueError, match="vectorised plate '_num_predictive_samples'.*draws"):
        Predictive(flow.model, guide=flow.guide, num_samples=2, parallel=True)(inputs)
    elbo = Trace_ELBO(num_particles=2, vectorize_particles=True, max_plate_nesting=1)
    spikes = torch.as_tensor(data.spikes[:3], dtype=torch.float32)
    with pytest.raises(ValueError, match="guide cannot run inside the vectorised plate "
                                         "'num_particles_vectorized'"):
        elbo.loss(flow.model, flow.guide, inputs, spikes)


def test_drawing_a_runs_figures_keeps_the_callers_matplotlib_backend(tmp_path):
    script = ("import matplotlib; matplotlib.use('svg')\n"
              "from pyrolf.plots import training_curve\n"
              f"training_curve([{{'epoch': 1, 'elbo': -3.0, 'valid_co_bps': 0.1}}], "
              f"{str(tmp_path / 'training.png')!r})\n"
              "import matplotlib.pyplot as plt\n"
              "print(matplotlib.get_backend(), len(plt.get_fignums()))\n")
    shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           check=True).stdout.split()
    assert shown == ["svg", "0"]
    assert (tmp_path / "training.png").read_bytes().startswith(b"\x89PNG")
