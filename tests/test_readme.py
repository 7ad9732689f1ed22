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


def test_readme_inferred_example_plots_a_trial(tmp_path, monkeypatch):
    import pyrolf
    from pyrolf.data import lorenz_dataset, save_spike_file
    from pyrolf.pipeline import infer_run

    [block] = [block for block in re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
               if "inferred.nc" in block]
    save_spike_file(tmp_path / "data.h5", lorenz_dataset(seed=3, n_conditions=4,
                                                         trials_per_condition=6, n_bins=12,
                                                         n_neurons=10, n_heldout=2))
    config = pyrolf.Config(data=str(tmp_path / "data.h5"), epochs=1, latent_dim=8,
                           batch_size=16, samples=2)
    run = tmp_path / "runs" / "lorenz"
    pyrolf.fit(pyrolf.data.load_config_data(config), config, run_dir=run, progress=False)
    infer_run(run, samples=3)
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {})
    assert (tmp_path / "trial.png").stat().st_size > 0
