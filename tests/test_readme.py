"""The README's Python example runs as written and fits a model with the swapped pieces."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_python_example_fits_the_swapped_model():
    blocks = [block for block in python_blocks()
              if "inferred.nc" not in block and "three-days" not in block]
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

    [block] = [block for block in python_blocks() if "runs/lorenz/inferred.nc" in block]
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


def test_readme_continuous_example_reads_one_series_over_the_session(tmp_path, monkeypatch):
    import pyrolf
    from pyrolf.data.recording_synthetic import simulate_recording, write_recording_nwb
    from pyrolf.pipeline import infer_run

    [block] = [block for block in python_blocks() if "runs/sleep/inferred.nc" in block]
    recording = simulate_recording(None, n_units=10, seed=2, duration_s=80.0)
    config = pyrolf.Config(data=str(write_recording_nwb(tmp_path / "sleep.nwb", recording)),
                           epochs=1, latent_dim=4, batch_size=16, samples=2)
    run = tmp_path / "runs" / "sleep"
    pyrolf.fit(pyrolf.data.load_config_data(config), config, run_dir=run, progress=False)
    infer_run(run, samples=2)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(block, "README.md", "exec"), namespace)
    inferred = namespace["inferred"]
    assert inferred["z"].dims == ("time", "latent")
    assert inferred["rates"].dims == ("time", "neuron")
    # label slices include both ends: 10 s of 10 ms bins, and the bin starting at 70 s
    assert inferred["rates"].sel(time=slice(60.0, 70.0)).sizes["time"] in (1000, 1001)


def test_readme_sessions_example_takes_one_session_of_a_run_of_several(tmp_path, monkeypatch):
    import pyrolf
    from pyrolf.data import lorenz_dataset, save_spike_file

    [block] = [block for block in python_blocks() if "runs/three-days" in block]
    days = [save_spike_file(tmp_path / f"day{day}.h5", lorenz_dataset(
        seed=day, n_conditions=4, trials_per_condition=6, n_bins=12, n_neurons=8 + day,
        n_heldout=2)) or str(tmp_path / f"day{day}.h5") for day in (1, 2)]
    config = pyrolf.Config(data=days[0], sessions=days[1:], epochs=1, latent_dim=8,
                           batch_size=16, samples=2)
    pyrolf.fit(pyrolf.data.load_config_data(config), config, run_dir=tmp_path / "runs" /
               "three-days", progress=False)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["day2"].n_neurons == 10
    assert namespace["inferred"].sizes["neuron"] == 10
    assert namespace["view"].decoder(*namespace["view"].prior(3, 12)).shape == (3, 12, 10)
