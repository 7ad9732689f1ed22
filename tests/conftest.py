import os

import pytest
import torch

from pyrolf.data import lorenz_dataset, save_spike_file

# As pyrolf.sweep.tune does, before any test module imports Ray (Ray reads it at import): local
# Ray workers run this interpreter, not `uv run` in an uploaded copy of the repository.
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")


@pytest.fixture(autouse=True)
def smoothing_fits_forgotten():
    """Each test starts with none of the smoothing baseline's fits an earlier one made in this
    process (pyrolf.evaluation.smoothing remembers them): tests that count fits, or the bars a
    fit shows, see what one process of theirs would."""
    from pyrolf.evaluation import smoothing

    smoothing._FITTED.clear()


@pytest.fixture
def float64():
    """Run a test in double precision and restore the default afterwards."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.fixture(scope="module")
def spike_file(tmp_path_factory):
    """A small Lorenz spike file (24 trials, 12 bins, 10 neurons, 2 held out)."""
    path = tmp_path_factory.mktemp("data") / "lorenz.h5"
    save_spike_file(path, lorenz_dataset(seed=3, n_conditions=4, trials_per_condition=6,
                                         n_bins=12, n_neurons=10, n_heldout=2, mean_rate=0.5))
    return path
