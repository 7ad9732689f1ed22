import os

import pytest
import torch

# As pyrolf.sweep.tune does, before any test module imports Ray (Ray reads it at import): local
# Ray workers run this interpreter, not `uv run` in an uploaded copy of the repository.
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")


@pytest.fixture
def float64():
    """Run a test in double precision and restore the default afterwards."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)
