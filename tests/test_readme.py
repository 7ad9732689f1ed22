"""The README's Python example runs as written and fits a model with the swapped pieces."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_fits_the_swapped_model():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README.md has no python example"
    namespace = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    flow, metrics = namespace["flow"], namespace["result"].metrics
    assert type(flow.prior.dynamics.potential).__name__ == "AnharmonicOscillators"
    assert type(flow.posterior).__name__ == "MeanFieldGuide"
    assert metrics["epochs"] == 20
    assert metrics["co_bps"] > 0  # better than each held-out neuron's mean rate
