"""``import pyrolf``, ``pyrolf --help``, a mistyped option and a bad setting import no torch, Pyro
or evaluation stack, which take seconds to import (``benchmarks/startup.py`` times them); each
command imports what it needs when it runs."""

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pyrolf.cli.main import cli

HEAVY = ("torch", "pyro", "sklearn", "nlb_tools", "matplotlib", "pandas", "scipy", "arviz",
         "xarray", "pynwb", "ray")
PYROLF = Path(sys.executable).parent / "pyrolf"  # the console script, as a user runs it


def heavy_imported(code: str) -> list[str]:
    """The modules of :data:`HEAVY` a fresh Python has imported after running ``code``."""
    check = (f"{code}\nimport json, sys\n"
             f"print(json.dumps([name for name in {HEAVY!r} if name in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.splitlines()[-1])


@pytest.mark.parametrize("code", [
    "import pyrolf",
    "import pyrolf.cli.main",
    "from pyrolf import Config",
    # a bad setting, the quadratic-potential check included
    "from pyrolf.config import Config, ConfigError\n"
    "try:\n    Config(integrator='scan', potential='anharmonic')\nexcept ConfigError:\n    pass",
    # what a notebook's completion asks: every name, the lazy ones among them
    "import pyrolf, pyrolf.models, pyrolf.dynamics, pyrolf.data\n"
    "for package in (pyrolf, pyrolf.models, pyrolf.dynamics, pyrolf.data):\n"
    "    assert set(package.__all__) <= set(dir(package)), package",
])
def test_importing_pyrolf_and_checking_settings_import_nothing_heavy(code):
    assert heavy_imported(code) == []


@pytest.mark.parametrize("args", [
    ["--help"], ["fit", "--help"], ["sweep", "--help"], ["infer", "--help"],
    ["fit", "--bogus"], ["fit", "--latent-dim", "7"], ["fit", "--potential", "nowhere"],
    ["diagnose", "somewhere", "--trials", "three"], ["sweep", "--trials", "0"],
    # no run folder there: said before the data and the model load (10 s, found by a walkthrough)
    ["infer", "/no/such/run"], ["diagnose", "/no/such/run"], ["evaluate", "/no/such/run"],
    ["fit", "--resume", "/no/such/run"],
])
def test_help_usage_errors_and_bad_settings_import_nothing_heavy(args):
    code = ("import sys\nfrom pyrolf.cli.main import main\n"
            f"sys.argv = ['pyrolf', *{args!r}]\ntry:\n    main()\nexcept SystemExit:\n    pass")
    assert heavy_imported(code) == []


def test_a_data_error_is_said_before_torch_and_pyro_load(spike_file):
    """A wrong column, a file of other neurons: the data are read before the model's stack is
    imported, so finding a column by trial and error does not cost 5 s a try (found by a
    walkthrough)."""
    for args in (["fit", "--data", "/no/such.nwb"],
                 ["fit", "--data", str(spike_file), "--heldout", "0.5"]):
        code = ("import sys\nfrom pyrolf.cli.main import main\n"
                f"sys.argv = ['pyrolf', *{args!r}]\ntry:\n    main()\nexcept SystemExit:\n"
                "    pass")
        assert not {"torch", "pyro"} & set(heavy_imported(code)), args
    answer = subprocess.run([PYROLF, "fit", "--data", spike_file, "--heldout", "0.5"],
                            capture_output=True, text=True)
    assert answer.returncode != 0 and "flags its own held-out neurons" in answer.stderr


@pytest.mark.parametrize("args, message", [
    (["infer", "RUN", "--session", "c"], "no session 'c'; the run's sessions are a, b"),
    (["infer", "RUN", "--data", "x.nwb"], "the run was fitted to the sessions a, b; give "
                                          "session (--session NAME)"),
    (["diagnose", "RUN"], "give session (--session NAME)"),
])
def test_a_wrong_session_is_said_before_anything_heavy_is_imported(args, message, tmp_path):
    """Its names are in config.json: no data need load to refuse it."""
    from pyrolf import Config
    from pyrolf.runs import RunFolder

    run = tmp_path / "run"
    run.mkdir()
    RunFolder(run).write_json(RunFolder.CONFIG, Config(data=str(tmp_path / "a.nwb"), sessions=[
        str(tmp_path / "b.nwb")]).to_dict())
    args = [str(run) if arg == "RUN" else arg for arg in args]
    code = ("import sys\nfrom pyrolf.cli.main import main\n"
            f"sys.argv = ['pyrolf', *{args!r}]\ntry:\n    main()\nexcept SystemExit:\n    pass")
    assert heavy_imported(code) == []
    answer = subprocess.run([PYROLF, *args], capture_output=True, text=True)
    assert answer.returncode != 0 and message in answer.stderr, answer.stderr


@pytest.mark.parametrize("data, message", [
    ("/no/such.nwb", "/no/such.nwb: file not found; check the path."),
    ("FOLDER", "is a directory, not a spike file or recording; give the file in it."),
])
def test_new_trials_of_no_file_are_said_before_anything_heavy_is_imported(data, message,
                                                                          tmp_path):
    """``infer RUN --data`` of a file not there waited 10 s for torch and the run's weights to
    say so (measured)."""
    from pyrolf import Config
    from pyrolf.runs import RunFolder

    run = tmp_path / "run"
    run.mkdir()
    RunFolder(run).write_json(RunFolder.CONFIG, Config(data=str(tmp_path / "a.h5")).to_dict())
    args = ["infer", str(run), "--data", str(tmp_path) if data == "FOLDER" else data]
    code = ("import sys\nfrom pyrolf.cli.main import main\n"
            f"sys.argv = ['pyrolf', *{args!r}]\ntry:\n    main()\nexcept SystemExit:\n    pass")
    assert heavy_imported(code) == []
    answer = subprocess.run([PYROLF, *args], capture_output=True, text=True)
    assert answer.returncode != 0 and message in answer.stderr, answer.stderr


def test_help_lists_every_command_and_fit_help_every_option():
    assert PYROLF.exists(), f"no console script {PYROLF}: install pyrolf (uv sync)"
    listed = subprocess.run([PYROLF, "--help"], capture_output=True, text=True, check=True).stdout
    assert all(name in listed for name in cli.commands)
    alone = subprocess.run([PYROLF], capture_output=True, text=True)  # no command: the help
    assert (alone.returncode, alone.stdout, alone.stderr) == (0, listed, ""), alone
    fit = subprocess.run([PYROLF, "fit", "--help"], capture_output=True, text=True,
                         check=True).stdout
    options = [option for parameter in cli.commands["fit"].params for option in parameter.opts]
    assert len(options) > 30 and all(option in fit for option in options)
    assert "oscillators|anharmonic|springs|free" in fit


@pytest.mark.parametrize("package, source", [
    ("pyrolf", "pyrolf.pipeline"), ("pyrolf.models", None), ("pyrolf.dynamics", None),
    ("pyrolf.data", None)])
def test_a_packages_names_imported_on_first_use_are_the_names_it_exports(package, source):
    module = importlib.import_module(package)
    for name in module.__all__:
        value = getattr(module, name)
        if source is not None and name != "Config":
            assert value is getattr(importlib.import_module(source), name)
    with pytest.raises(AttributeError, match=f"module '{package}' has no attribute 'nothing'"):
        module.nothing
    namespace = {}
    exec(f"from {package} import *", namespace)
    assert set(module.__all__) <= set(namespace)
    # dir() lists the package's own names and the lazy ones, imported or not
    assert set(module.__all__) | {"__name__", "__getattr__", "__dir__"} <= set(dir(module))


@pytest.mark.parametrize("module", ["click", "pyrolf.data", "pyrolf.runs"])
def test_ctrl_c_while_the_command_line_loads_is_one_line(module):
    """Ctrl-C in the third of a second the command line's modules take to load printed a
    traceback (an interruption test); it is one line and the interrupted status, as later.
    (The interrupt is raised where ``module`` is imported, as Ctrl-C would be.)"""
    code = ("import builtins\n"
            "real = builtins.__import__\n"
            "def interrupted(name, *args, **kwargs):\n"
            f"    if name == {module!r}:\n"
            "        raise KeyboardInterrupt\n"
            "    return real(name, *args, **kwargs)\n"
            "builtins.__import__ = interrupted\n"
            "from pyrolf.cli.main import main\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (done.returncode, done.stderr) == (130, "interrupted\n")
