"""Run folders: nothing lost, nothing cryptic. Every refusal is one line and leaves the folder byte
for byte as it was; an interrupted fit can always be continued or started over; one process at a
time writes into a folder; a folder works from any directory."""

import ast
import csv
import errno
import fcntl
import hashlib
import itertools
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from test_cli import TINY as TINY_FIT
from test_cli import assert_one_line_error, run_cli

from pyrolf import Config, fit, resume
from pyrolf.data import load_config_data, lorenz_dataset, save_spike_file
from pyrolf.runs import RunError, RunFolder

# What a fit of 2 epochs, scored at the end only, writes, in order.
WRITES = ["config.json", "source.json", "fitted.json", "layout.pt", "checkpoint.pt",
          "checkpoint.pt", "best.pt", "history.csv", "smoothing.npz", "history.csv",
          "metrics.json", "training.png"]
# the fits here are compared bit for bit, so their thread count is fixed: with the count adapted to
# the machine's load, a change between epochs changes the floats' rounding
TINY = [*TINY_FIT, "--threads", "1"]
SCORES = ["co_bps", "rates_r2", "smoothing_co_bps", "valid_co_bps", "elbo", "epochs",
          "best_epoch", "weights"]


@pytest.fixture(scope="module")
def fitted(spike_file, tmp_path_factory):
    """``(folder, names of its writes in order)`` of the fit ``pyrolf fit --data SPIKE_FILE TINY``
    makes."""
    folder = tmp_path_factory.mktemp("fitted") / "run"
    config = Config(data=str(spike_file), epochs=2, latent_dim=8, batch_size=16, threads=1)
    writes, write_atomically = [], RunFolder.write_atomically

    def recorded(self, name, write):
        writes.append(name)
        write_atomically(self, name, write)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RunFolder, "write_atomically", recorded)
        fit(load_config_data(config), config, run_dir=folder, progress=False)
    return folder, writes


@pytest.fixture
def run(fitted, tmp_path):
    """A copy of the fitted run folder."""
    return shutil.copytree(fitted[0], tmp_path / "run")


def digests(folder) -> dict[str, str]:
    """SHA-256 of every file under ``folder``, by path."""
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def edit_config(run, **changes):
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, **changes}))


def assert_same_run(folder, reference):
    """``folder`` holds the run ``reference`` holds: same settings, weights and scores."""
    assert (folder / "config.json").read_text() == (reference / "config.json").read_text()
    metrics, expected = (json.loads((path / "metrics.json").read_text())
                         for path in (folder, reference))
    assert {key: metrics[key] for key in SCORES} == pytest.approx(
        {key: expected[key] for key in SCORES})
    history, expected = (list(csv.DictReader((path / "history.csv").open()))
                         for path in (folder, reference))
    assert [{**row, "seconds": None} for row in history] == [
        {**row, "seconds": None} for row in expected]
    weights, expected = (torch.load(path / "best.pt", weights_only=False)["flow"]
                         for path in (folder, reference))
    assert all(torch.equal(weights[key], expected[key]) for key in expected)


@pytest.mark.parametrize("settings, fragment", [
    ({"epochs": "2"}, 'setting epochs must be a whole number, got the string "2"'),
    ({"epochs": None}, "setting epochs must be a whole number, got null"),
    ({"epochs": 2.5}, "setting epochs must be a whole number, got 2.5"),
    ({"latent_dim": "32"}, "setting latent_dim must be a whole number"),
    ({"lr": "fast"}, 'setting lr must be a finite number, got the string "fast"'),
])
def test_a_setting_of_the_wrong_type_in_a_config_file_is_one_line(
        settings, fragment, tmp_path, monkeypatch, capsys):
    config = tmp_path / "settings.json"
    config.write_text(json.dumps(settings))
    code, _, err = run_cli(["fit", "--config", config, "--out", tmp_path / "r", "--quiet"],
                           monkeypatch, capsys)
    assert_one_line_error(code, err, fragment)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("args, fragment", [
    (["--bin", "7"], "the Lorenz data have bins of their own; leave out bin_size_ms (--bin)"),
    (["--lr", "nan"], "setting lr must be a finite number, got nan"),
    (["--lr", "inf"], "setting lr must be a finite number, got inf"),
    (["--lr", "0"], "lr must be positive"),
])
def test_bad_option_values_are_one_line_and_make_no_folder(args, fragment, tmp_path, monkeypatch,
                                                           capsys):
    code, _, err = run_cli(["fit", "--data", "lorenz", "--out", tmp_path / "r", *args, *TINY],
                           monkeypatch, capsys)
    assert_one_line_error(code, err, fragment)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("change, fragment", [
    ({"lr": "fast"}, 'config.json: setting lr must be a finite number, got the string "fast"'),
    ({"epochs": None}, "config.json: setting epochs must be a whole number, got null"),
    ({"latent_dim": 16}, "checkpoint.pt does not match"),
])
@pytest.mark.parametrize("command", ["resume", "evaluate"])
def test_an_edited_config_json_is_one_line_and_touches_nothing(
        change, fragment, command, run, monkeypatch, capsys):
    edit_config(run, **change)
    before = digests(run)
    if "latent_dim" in change and command == "evaluate":
        fragment = "best.pt does not match"
    args = ["fit", "--resume", run, "--quiet"] if command == "resume" else ["evaluate", run]
    code, _, err = run_cli(args, monkeypatch, capsys)
    assert_one_line_error(code, err, fragment)
    if "latent_dim" in change:
        assert "config.json: the weights do not fit the networks it describes" in err
    assert digests(run) == before


def test_resume_to_fewer_epochs_than_done_is_refused(run, monkeypatch, capsys):
    before = digests(run)
    code, _, err = run_cli(["fit", "--resume", run, "--epochs", "1", "--quiet"], monkeypatch,
                           capsys)
    assert_one_line_error(code, err, "(--epochs) 1 is below the 2 epochs", "give 2 or more")
    assert digests(run) == before


def test_a_run_fitted_on_a_gpu_is_evaluated_diagnosed_and_resumed_where_there_is_none(
        run, monkeypatch, capsys):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "device": "cuda"}))
    before = digests(run)
    with monkeypatch.context() as patch:  # (said before the data are read: minutes for NLB)
        for step in ("records", "training", "inferred"):
            patch.setattr(f"pyrolf.pipeline.{step}.load_config_data",
                          lambda *args: pytest.fail("data read"))
        for command in (["evaluate", run], ["diagnose", run, "--trials", "2"],
                        ["fit", "--resume", run, "--epochs", "3"], ["infer", run]):
            code, _, err = run_cli([*command, "--quiet"], monkeypatch, capsys)
            assert_one_line_error(code, err, "no GPU here", "give --device cpu")
            assert digests(run) == before
    # as the message says: the same scores as the run's own device's (here cpu's) ...
    code, out, err = run_cli(["evaluate", run, "--device", "cpu", "--quiet"], monkeypatch, capsys)
    assert code == 0, err
    cuda_said = json.loads((run / "metrics.json").read_text())
    (run / "config.json").write_text(json.dumps(config))
    assert run_cli(["evaluate", run, "--quiet"], monkeypatch, capsys)[0] == 0
    assert json.loads((run / "metrics.json").read_text())["co_bps"] == cuda_said["co_bps"]
    (run / "config.json").write_text(json.dumps({**config, "device": "cuda"}))
    code, _, err = run_cli(["diagnose", run, "--trials", "2", "--device", "cpu", "--quiet"],
                           monkeypatch, capsys)
    assert code == 0 and (run / "posterior.nc").exists(), err
    # ... and resumed there, which becomes the run's device
    code, _, err = run_cli(["fit", "--resume", run, "--epochs", "3", "--device", "cpu", "--quiet"],
                           monkeypatch, capsys)
    assert code == 0, err
    assert json.loads((run / "config.json").read_text())["device"] == "cpu"
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 3


def test_out_naming_a_file_is_one_line(tmp_path, monkeypatch, capsys):
    afile = tmp_path / "afile"
    afile.write_text("my notes\n")
    code, _, err = run_cli(["fit", "--out", afile, *TINY], monkeypatch, capsys)
    assert_one_line_error(code, err, "is a file, not a folder")
    assert afile.read_text() == "my notes\n"


def test_an_existing_run_is_refused_before_its_data_are_loaded(run, spike_file, monkeypatch,
                                                               capsys):
    def loaded(config):
        raise AssertionError("the data were loaded")

    monkeypatch.setattr("pyrolf.cli.main.load_config_data", loaded)
    before = digests(run)
    code, _, err = run_cli(["fit", "--data", spike_file, "--out", run, *TINY], monkeypatch, capsys)
    assert_one_line_error(code, err, "already holds a run", f"--resume {run}")
    assert digests(run) == before


def test_a_command_a_message_suggests_works_pasted_as_printed(run, spike_file, tmp_path,
                                                             monkeypatch, capsys):
    spaced = tmp_path / "my run $1"
    shutil.copytree(run, spaced)
    code, _, err = run_cli(["fit", "--data", spike_file, "--out", spaced, *TINY], monkeypatch,
                           capsys)
    assert_one_line_error(code, err, "already holds a run")
    command = re.search(r"'(pyrolf fit --resume .*)' \(in Python: (pyrolf.resume\(.*\))\)", err)
    assert shlex.split(command.group(1))[3:] == [str(spaced)]
    assert ast.literal_eval(command.group(2).removeprefix("pyrolf.resume(")[:-1]) == str(spaced)


def test_run_folder_json_is_strict(tmp_path):
    def refuse(constant):
        raise ValueError(f"{constant} is not strict JSON")

    RunFolder(tmp_path).write_json("scores.json", {"a": -float("inf"), "b": [float("nan"), 1.5],
                                                   "c": {"d": float("inf")}, "e": "text"})
    assert json.loads((tmp_path / "scores.json").read_text(), parse_constant=refuse) == {
        "a": None, "b": [None, 1.5], "c": {"d": None}, "e": "text"}


def test_evaluate_diagnose_and_infer_say_which_weights_they_used(run, monkeypatch, capsys):
    assert json.loads((run / "metrics.json").read_text())["weights"] == "best.pt"
    code, out, err = run_cli(["evaluate", run], monkeypatch, capsys)
    assert code == 0, err
    assert "weights: best.pt" in out.splitlines()
    (run / "best.pt").unlink()
    code, out, err = run_cli(["evaluate", run], monkeypatch, capsys)
    assert code == 0, err
    assert "weights: checkpoint.pt" in out.splitlines()
    assert (f"note: {run / 'best.pt'} is missing though epoch 2 scored best: the last weights, "
            "epoch 2 of checkpoint.pt, are used") in err
    assert json.loads((run / "metrics.json").read_text())["weights"] == "checkpoint.pt"
    code, out, err = run_cli(["diagnose", run, "--samples", "25", "--trials", "2"], monkeypatch,
                             capsys)
    assert code == 0, err
    assert "weights: checkpoint.pt" in out.splitlines()
    assert json.loads((run / "diagnostics.json").read_text())["weights"] == "checkpoint.pt"
    code, out, err = run_cli(["infer", run, "--samples", "2", "--quiet"], monkeypatch, capsys)
    assert code == 0, err
    assert "weights: checkpoint.pt" in out.splitlines()


def test_a_best_pt_of_another_epoch_than_the_best_is_said_and_the_best_s_used(
        run, monkeypatch, capsys):
    """A best.pt whose write failed kept an older epoch: evaluate, infer and diagnose used its
    weights without a word, beside the checkpoint's later best epoch (a file-system hostile
    test). The checkpoint's weights are used where they are the best epoch's, else best.pt's,
    each with a note; ``fit --resume`` mends the folder."""
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=False)
    best = checkpoint["state"]["best_epoch"]
    assert best == checkpoint["state"]["epoch"] > 1
    older = {key: value + 1 for key, value in checkpoint["flow"].items()}
    RunFolder(run).save("best.pt", {"flow": older, "epoch": best - 1})
    code, out, err = run_cli(["evaluate", run], monkeypatch, capsys)
    assert code == 0, err
    assert (f"note: {run / 'best.pt'} holds epoch {best - 1}, not epoch {best}, which scored "
            f"best (a write of it failed, or the fit stopped between its saves): the "
            f"checkpoint's weights, of epoch {best}, are used; 'pyrolf fit --resume {run}' "
            "mends it") in err
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["weights"], metrics["weights_epoch"]) == ("checkpoint.pt", best)
    checkpoint["state"]["epoch"] = best + 1  # (the best epoch's weights are kept nowhere)
    RunFolder(run).save("checkpoint.pt", checkpoint)
    code, out, err = run_cli(["evaluate", run], monkeypatch, capsys)
    assert code == 0, err
    assert "and those weights are kept nowhere: its own are used" in err
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["weights"], metrics["weights_epoch"]) == ("best.pt", best - 1)


def test_what_is_made_from_the_weights_names_them_and_their_epoch(run, monkeypatch, capsys):
    import xarray as xr

    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["weights"], metrics["weights_epoch"]) == ("best.pt", metrics["best_epoch"])
    assert metrics["best_epoch"] == torch.load(run / "best.pt", weights_only=False)["epoch"]
    code, _, err = run_cli(["evaluate", run], monkeypatch, capsys)
    assert code == 0, err
    assert json.loads((run / "metrics.json").read_text())["weights_epoch"] == metrics["best_epoch"]
    for command in (["infer", run, "--samples", "2", "--quiet"],
                    ["diagnose", run, "--samples", "25", "--trials", "2", "--quiet"]):
        code, _, err = run_cli(command, monkeypatch, capsys)
        assert code == 0, err
    expected = {"weights": "best.pt", "weights_epoch": metrics["best_epoch"]}
    with xr.open_dataset(run / "inferred.nc") as inferred:
        assert {key: inferred.attrs[key] for key in expected} == expected
    for name in ("dynamics.json", "diagnostics.json"):
        made = json.loads((run / name).read_text())
        assert {key: made[key] for key in expected} == expected, name
    (run / "best.pt").unlink()  # before the first validation: the checkpoint's, of its epoch
    code, _, err = run_cli(["evaluate", run], monkeypatch, capsys)
    assert code == 0, err
    assert json.loads((run / "metrics.json").read_text())["weights_epoch"] == metrics["epochs"]


def test_a_resume_names_what_was_made_from_other_weights_and_the_commands_to_remake_it(
        run, monkeypatch, capsys):
    """Each file with the weights it records itself: also files already out of date before this
    resume; only the commands that remake what is out of date."""
    code, _, err = run_cli(["infer", run, "--samples", "2", "--quiet"], monkeypatch, capsys)
    assert code == 0, err
    inferred_epoch = json.loads((run / "metrics.json").read_text())["weights_epoch"]
    for epochs in (3, 4):
        code, _, err = run_cli(["fit", "--resume", run, "--epochs", epochs, "--quiet"],
                               monkeypatch, capsys)
        assert code == 0, err
        now = json.loads((run / "metrics.json").read_text())["weights_epoch"]
        assert now == epochs != inferred_epoch  # each epoch scores best: the weights changed
        notes = [line for line in err.splitlines() if line.startswith("note: ")
                 and "reached lr_final" not in line and "KL warm-up" not in line]
        assert len(notes) == 1, err
        assert (f"made from other weights than the run's now, epoch {now} of best.pt: "
                f"inferred.nc (epoch {inferred_epoch} of best.pt), dynamics.json (epoch "
                f"{inferred_epoch} of best.pt) in {run}; to make them again: 'pyrolf infer {run}'"
                ) in notes[0]
    code, _, err = run_cli(["infer", run, "--samples", "2", "--quiet"], monkeypatch, capsys)
    code, _, err = run_cli(["diagnose", run, "--samples", "25", "--trials", "2", "--quiet"],
                           monkeypatch, capsys)
    assert code == 0, err
    code, _, err = run_cli(["fit", "--resume", run, "--quiet"], monkeypatch, capsys)
    assert code == 0, err
    assert not [line for line in err.splitlines()  # all made from the weights the run has
                if line.startswith("note: ") and "KL warm-up" not in line], err
    (run / "diagnostics.json").write_text(json.dumps({"elbo": 1.0}))  # from an older pyrolf
    code, _, err = run_cli(["fit", "--resume", run, "--quiet"], monkeypatch, capsys)
    assert (f"diagnostics.json (weights not recorded), posterior.nc (weights not recorded) in "
            f"{run}; to make them again: 'pyrolf diagnose {run}'") in err
    # a file infer wrote into the run folder under a name of the user's (found by a hostile
    # walkthrough: the note did not name it)
    code, _, err = run_cli(["infer", run, "--samples", "2", "--out", run / "mine.nc", "--quiet"],
                           monkeypatch, capsys)
    assert code == 0, err
    then = json.loads((run / "metrics.json").read_text())["weights_epoch"]
    code, _, err = run_cli(["fit", "--resume", run, "--epochs", then + 1, "--quiet"],
                           monkeypatch, capsys)
    assert code == 0, err
    assert (f"mine.nc (epoch {then} of best.pt)" in err
            and f"'pyrolf infer {run} --out {run / 'mine.nc'}' (and its --data, --session)" in err)


def test_evaluate_scores_the_smoothing_baseline_from_the_fits_the_run_keeps(run, monkeypatch,
                                                                           capsys):
    """The fit keeps the baseline's GLMs in smoothing.npz: ``pyrolf evaluate`` fits none again
    and gives the fit's scores; a run whose kept fits are gone keeps again those this process
    remembers, and a new process makes them again."""
    from pyrolf.evaluation import smoothing

    expected = json.loads((run / "metrics.json").read_text())
    real = smoothing.fit_poisson_glm
    with monkeypatch.context() as patch:
        patch.setattr(smoothing, "fit_poisson_glm",
                      lambda *args, **kwargs: pytest.fail("fitted again"))
        code, _, err = run_cli(["evaluate", run], monkeypatch, capsys)
    assert code == 0, err
    metrics = json.loads((run / "metrics.json").read_text())
    assert {key: metrics[key] for key in SCORES} == {key: expected[key] for key in SCORES}
    fits = []
    monkeypatch.setattr(smoothing, "fit_poisson_glm",
                        lambda *args, **kwargs: fits.append(1) or real(*args, **kwargs))
    (run / "smoothing.npz").unlink()
    code, _, err = run_cli(["evaluate", run], monkeypatch, capsys)
    assert code == 0, err
    assert not fits and (run / "smoothing.npz").exists()  # remembered, kept again
    (run / "smoothing.npz").unlink()
    smoothing._FITTED.clear()  # (as a new process)
    code, _, err = run_cli(["evaluate", run], monkeypatch, capsys)
    assert code == 0, err
    assert fits and (run / "smoothing.npz").exists()
    assert json.loads((run / "metrics.json").read_text())["smoothing_co_bps"] == pytest.approx(
        expected["smoothing_co_bps"], rel=1e-12)


# --- interrupted fits -----------------------------------------------------------------------

def test_a_fit_writes_its_files_in_this_order(fitted):
    assert fitted[1] == WRITES


@pytest.mark.parametrize("k", range(1, len(WRITES) + 1))
def test_a_fit_interrupted_at_any_write_is_continued_to_the_same_run(
        k, fitted, spike_file, tmp_path, monkeypatch, capsys):
    """Ctrl-C at the k-th write of a fit, its file half-written, leaves a folder that
    ``--resume`` (or, before the settings are saved, a new fit into it) takes to the run an
    uninterrupted fit makes; the message says which of the two."""
    run = tmp_path / "run"
    writes, write_atomically = itertools.count(1), RunFolder.write_atomically

    def interrupted_at_k(self, name, write):
        if next(writes) == k:
            write(self.path / f"{name}.partial")
            raise KeyboardInterrupt
        write_atomically(self, name, write)

    monkeypatch.setattr(RunFolder, "write_atomically", interrupted_at_k)
    code, _, err = run_cli(["fit", "--data", spike_file, "--out", run, *TINY], monkeypatch, capsys)
    monkeypatch.setattr(RunFolder, "write_atomically", write_atomically)
    assert code == 130
    if k == 1:
        assert_one_line_error(code, err, "holds no settings yet", f"fit --out {run}",
                              f"(in Python: pyrolf.fit(..., run_dir='{run}'))")
        code, _, err = run_cli(["fit", "--resume", run, "--quiet"], monkeypatch, capsys)
        assert_one_line_error(code, err, "stopped before saving its settings", f"--out {run}")
        code, _, err = run_cli(["fit", "--data", spike_file, "--out", run, *TINY], monkeypatch,
                               capsys)
    else:
        first_checkpoint = WRITES.index("checkpoint.pt") + 1  # k counts from 1
        told = ("has saved no checkpoint yet" if k <= first_checkpoint else
                "keeps its last checkpoint")
        # (interrupted once scored: the tiny fit's warning that it learned nothing comes first)
        err = "".join(line for line in err.splitlines(True) if not line.startswith("warning: "))
        assert_one_line_error(code, err, f"interrupted; {run} {told}", f"fit --resume {run}",
                              f"(in Python: pyrolf.resume('{run}'))")
        code, _, err = run_cli(["fit", "--resume", run, "--quiet"], monkeypatch, capsys)
        assert ("starting it over from epoch 0" in err) == (k <= first_checkpoint)
    assert code == 0, err
    assert_same_run(run, fitted[0])


INTERRUPTED_AT_BEST = """
import sys
from pyrolf.cli.main import main
from pyrolf.runs import RunFolder

write_atomically = RunFolder.write_atomically

def interrupted_at_best(self, name, write):
    if name == RunFolder.BEST:
        raise KeyboardInterrupt
    write_atomically(self, name, write)

RunFolder.write_atomically = interrupted_at_best
sys.argv = ["pyrolf", *sys.argv[1:]]
main()
"""


def test_an_interrupted_fit_s_progress_ends_before_its_message(spike_file, tmp_path):
    """Ctrl-C in a fit with its progress shown: the interrupt's line is the last (the bar's last
    line came after it, the bar being closed at the process's exit: an interruption test)."""
    run = tmp_path / "run"
    args = [arg for arg in TINY if arg != "--quiet"]
    done = subprocess.run([sys.executable, "-c", INTERRUPTED_AT_BEST, "fit", "--data",
                           str(spike_file), "--out", str(run), *args], capture_output=True,
                          text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 130 and "fit:" in done.stderr, done.stderr
    last = done.stderr.splitlines()[-1]
    assert last.startswith(f"interrupted; {run} keeps its last checkpoint"), done.stderr


@pytest.mark.parametrize("torn", ["best_behind", "best_ahead"])
def test_a_fit_stopped_between_its_saves_reports_the_epoch_of_the_weights_it_keeps(
        torn, fitted, tmp_path):
    """Killed between the checkpoint and best.pt, a folder's best.pt is not of the epoch the
    checkpoint calls best: behind it (written second, as now: the checkpoint's own weights are
    that epoch's and are written to best.pt again) or ahead of the checkpoint (written first, as
    pyrolf once did: removed, and the best is found again from the next validation). A resume
    then reports, as the weights' epoch, the epoch of the weights it keeps (it reported the
    checkpoint's best beside another epoch's weights: an interruption test)."""
    run = tmp_path / "run"
    shutil.copytree(fitted[0], run)
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=False)
    state = checkpoint["state"]
    best = torch.load(run / "best.pt", weights_only=False)
    # no later epoch beats the best kept: what the folder keeps decides the weights reported
    state["best_score"] = float("inf")
    if torn == "best_behind":
        state["best_epoch"] = state["epoch"]
        best["epoch"] = state["epoch"] - 1
        best["flow"] = {name: value + 1 for name, value in best["flow"].items()}
    else:
        state["best_epoch"] = state["epoch"] - 1
        best["epoch"] = state["epoch"] + 3
    torch.save(checkpoint, run / "checkpoint.pt")
    torch.save(best, run / "best.pt")
    result = resume(run, epochs=state["epoch"] + 1, progress=False)
    metrics = result.metrics
    kept = torch.load(run / metrics["weights"], weights_only=False)
    assert metrics["weights_epoch"] == kept.get("epoch", kept.get("state", {}).get("epoch"))
    if torn == "best_behind":
        assert metrics["weights"] == "best.pt" and metrics["weights_epoch"] == state["epoch"]
        for name, value in checkpoint["flow"].items():
            torch.testing.assert_close(kept["flow"][name], value, rtol=0, atol=0)
    else:  # epoch 1's weights are lost: the best is found again, at the next validation
        assert metrics["weights"] == "best.pt" and metrics["weights_epoch"] == state["epoch"] + 1


def test_interrupts_are_held_till_the_files_written_together_are_written():
    """Ctrl-C and SIGTERM inside holding_interrupts come as it ends, once each, and nested
    holds deliver at the outermost's end."""
    from pyrolf.runs import holding_interrupts

    seen = []
    previous = signal.signal(signal.SIGTERM, lambda number, frame: seen.append("term"))
    try:
        with pytest.raises(KeyboardInterrupt):
            with holding_interrupts():
                with holding_interrupts():
                    os.kill(os.getpid(), signal.SIGINT)
                    os.kill(os.getpid(), signal.SIGTERM)
                    os.kill(os.getpid(), signal.SIGINT)
                    time.sleep(0.05)
                    seen.append("inner done")
                seen.append("outer done")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert seen == ["inner done", "outer done", "term"]  # (SIGTERM before Ctrl-C's raise)


@pytest.mark.parametrize("how", ["resume", "out"])
def test_a_run_without_a_checkpoint_starts_over_in_its_own_folder(
        how, run, fitted, spike_file, monkeypatch, capsys):
    """A folder with settings and best.pt but no checkpoint.pt (a fit of an earlier pyrolf killed
    in its first checkpoint write) is no dead end: ``--resume`` or a new fit starts it over."""
    (run / "checkpoint.pt").unlink()
    (run / "metrics.json").unlink()
    args = (["fit", "--resume", run, "--quiet"] if how == "resume" else
            ["fit", "--data", spike_file, "--out", run, *TINY])
    code, _, err = run_cli(args, monkeypatch, capsys)
    assert code == 0, err
    assert f"note: {run} holds a run that stopped before its first checkpoint: starting it over " \
        "from epoch 0" in err
    assert_same_run(run, fitted[0])


# --- one process at a time ------------------------------------------------------------------

def hold_lock(folder):
    """An open file holding the lock of ``folder``, as another process's would."""
    handle = open(folder / ".lock", "a")
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return handle


def test_a_file_system_without_locks_is_one_line_that_says_so(run, monkeypatch, capsys):
    """Where flock is not there (Lustre mounted without it, NFS without lockd) every command
    said only 'error: No locks available' (a file-system hostile test)."""
    def no_locks(handle, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    before = digests(run)
    code, _, err = run_cli(["evaluate", run], monkeypatch, capsys)
    assert_one_line_error(code, err, f"cannot lock {run}: its file system gives no file locks "
                                     "(No locks available)")
    assert "put the run folder on a file system that has them" in err
    assert digests(run) == before


@pytest.mark.parametrize("number", [errno.ENOSPC, errno.EDQUOT])
def test_a_lock_on_a_full_file_system_says_to_free_space(run, number, monkeypatch, capsys):
    """No inode left for .lock (a full disk or quota) advised to check that the folder is
    writable (a file-system hostile test)."""
    opened = os.open

    def full(path, flags, *args):
        if flags & os.O_CREAT:
            raise OSError(number, os.strerror(number), str(path))
        return opened(path, flags, *args)

    (run / ".lock").unlink()
    monkeypatch.setattr("pyrolf.runs.os.open", full)
    before = digests(run)
    code, _, err = run_cli(["evaluate", run], monkeypatch, capsys)
    assert_one_line_error(code, err, f"cannot lock {run} ({os.strerror(number)}); free space")
    assert "writable" not in err
    assert digests(run) == before


def test_a_read_only_folder_is_refused_by_fit_resume_before_its_data_are_read(
        run, monkeypatch, capsys):
    """fit --resume of a read-only run folder read its data and built its model, minutes on NLB
    data, before it failed at config.json (a file-system hostile test); evaluate, infer and
    diagnose refused at once."""
    monkeypatch.setattr("os.access", lambda path, mode: not mode & os.W_OK)  # (as not root)
    for step in ("records", "training"):
        monkeypatch.setattr(f"pyrolf.pipeline.{step}.load_config_data", lambda config: 1 / 0)
    before = digests(run)
    code, _, err = run_cli(["fit", "--resume", run, "--quiet"], monkeypatch, capsys)
    assert_one_line_error(code, err, f"the run folder {run}, where fit --resume writes "
                                     "checkpoint.pt, is not writable; copy the run folder")
    assert digests(run) == before


@pytest.mark.parametrize("command", ["resume", "evaluate", "diagnose", "fit"])
def test_a_folder_in_use_is_refused_with_one_line(command, run, spike_file, tmp_path,
                                                  monkeypatch, capsys):
    """While another process holds a folder (a fit, or for ``fit --out`` a fit that has not saved
    its first checkpoint yet) every other command is refused before it loads data."""
    if command == "fit":  # a fit into a folder whose first fit is still starting
        run = tmp_path / "starting"
        run.mkdir()
        (run / "config.json").write_text(json.dumps(Config().to_dict()))
    args = {"resume": ["fit", "--resume", run, "--quiet"], "evaluate": ["evaluate", run],
            "diagnose": ["diagnose", run, "--samples", "25"],
            "fit": ["fit", "--data", spike_file, "--out", run, *TINY]}[command]
    monkeypatch.setattr("pyrolf.cli.main.load_config_data", lambda config: 1 / 0)
    for step in ("records", "training", "inferred"):
        monkeypatch.setattr(f"pyrolf.pipeline.{step}.load_config_data", lambda config: 1 / 0)
    with hold_lock(run):
        before = digests(run)
        code, _, err = run_cli(args, monkeypatch, capsys)
    assert_one_line_error(code, err, f"{run} is in use by another pyrolf process")
    assert digests(run) == before


def test_the_lock_goes_when_its_process_dies(run, monkeypatch, capsys):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys; lock = open(sys.argv[1], 'a'); "
         "fcntl.flock(lock, fcntl.LOCK_EX); print('locked', flush=True); sys.stdin.read()",
         str(run / ".lock")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        code, _, err = run_cli(["evaluate", run], monkeypatch, capsys)
        assert_one_line_error(code, err, "in use by another pyrolf process")
    finally:
        holder.kill()
        holder.wait()
    code, _, err = run_cli(["evaluate", run], monkeypatch, capsys)
    assert code == 0, err


def test_a_fit_holds_its_folder_locked_while_it_trains(spike_file, tmp_path, monkeypatch,
                                                       capsys):
    import pyro.infer

    run, held, step = tmp_path / "run", [], pyro.infer.SVI.step

    def step_trying_the_lock(self, *args, **kwargs):
        with open(run / ".lock") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held.append(False)
            except BlockingIOError:
                held.append(True)
        return step(self, *args, **kwargs)

    monkeypatch.setattr(pyro.infer.SVI, "step", step_trying_the_lock)
    code, _, err = run_cli(["fit", "--data", spike_file, "--out", run, *TINY], monkeypatch, capsys)
    assert code == 0, err
    assert held and all(held)
    hold_lock(run).close()  # free once the fit has ended


def test_a_lock_that_waits_takes_the_folder_once_its_holder_lets_go(run):
    """A sweep's trial that Ray moves to a new process waits for the old one (RunFolder.locked
    with wait_s); without waiting, or past the wait, it is refused."""
    import threading

    holder = hold_lock(run)
    with pytest.raises(RunError, match="in use by another pyrolf process"):
        with RunFolder(run).locked(wait_s=0.3):
            pass
    threading.Timer(0.3, holder.close).start()
    started = time.monotonic()
    with RunFolder(run).locked(wait_s=10.0):
        waited = time.monotonic() - started
        assert RunFolder(run).in_use()
    assert 0.2 < waited < 5.0
    assert not RunFolder(run).in_use()


# --- a run folder works from anywhere ---------------------------------------------------------

def test_a_run_folder_works_from_any_directory_and_knows_its_data_file(
        spike_file, tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    data.mkdir()
    recording = data / "rec.h5"
    shutil.copy(spike_file, recording)
    monkeypatch.chdir(data)
    code, _, err = run_cli(["fit", "--data", "rec.h5", "--out", "../run", *TINY], monkeypatch,
                           capsys)
    assert code == 0, err
    run = tmp_path / "run"
    assert json.loads((run / "config.json").read_text())["data"] == str(recording)
    assert json.loads((run / "source.json").read_text()) == {
        "path": str(recording), "bytes": recording.stat().st_size,
        "sha256": hashlib.sha256(recording.read_bytes()).hexdigest()}

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, _, err = run_cli(["evaluate", "../run"], monkeypatch, capsys)
    assert code == 0, err

    moved = tmp_path / "moved.h5"
    recording.rename(moved)
    before = digests(run)
    code, _, err = run_cli(["fit", "--resume", run, "--epochs", "3", "--quiet"], monkeypatch,
                           capsys)
    assert_one_line_error(code, err, f"{recording}, a data file of {run}, is missing",
                          "moved or deleted")
    assert digests(run) == before

    save_spike_file(recording, lorenz_dataset(seed=4, n_conditions=4, trials_per_condition=6,
                                              n_bins=12, n_neurons=10, n_heldout=2))
    code, _, err = run_cli(["diagnose", run, "--samples", "25"], monkeypatch, capsys)
    assert_one_line_error(code, err, f"{recording} has changed since {run} was fitted on it")
    assert digests(run) == before

    # another file pointed to (another day's) is no file that changed (found by a walkthrough)
    other = tmp_path / "day2.h5"
    shutil.copy(recording, other)
    edit_config(run, data=str(other))
    before = digests(run)
    code, _, err = run_cli(["evaluate", run], monkeypatch, capsys)
    assert_one_line_error(code, err, f"{other} is not the file {run} was fitted on ({recording}, "
                                     f"{moved.stat().st_size} bytes, SHA-256 ",
                          f"set \"data\" in {run / 'config.json'} to where that file is now")
    assert digests(run) == before

    edit_config(run, data=str(moved))  # the moved file, pointed to: the same data
    code, _, err = run_cli(["evaluate", run], monkeypatch, capsys)
    assert code == 0, err


KILLED_AT_WRITE = """
import os, signal, sys
from pyrolf.cli.main import main
from pyrolf.runs import RunFolder

k, writes, write_atomically = int(sys.argv[1]), [], RunFolder.write_atomically

def killed_at_k(self, name, write):
    writes.append(name)
    if len(writes) == k:
        write(self.path / f"{name}.partial")
        os.kill(os.getpid(), signal.SIGKILL)
    write_atomically(self, name, write)

RunFolder.write_atomically = killed_at_k
sys.argv = ["pyrolf", *sys.argv[2:]]
main()
"""


@pytest.mark.slow
@pytest.mark.parametrize("written", ["checkpoint.pt", "best.pt"])
def test_a_fit_killed_in_its_checkpoint_write_is_continued_to_the_same_run(
        written, fitted, spike_file, tmp_path, monkeypatch, capsys):
    """SIGKILL (no Python left to clean up) while the checkpoint of the first best epoch is half
    written (``--resume`` continues from the checkpoint of epoch 0), or the best.pt after it
    (the checkpoint's own weights are the best epoch's: ``--resume`` writes best.pt from them):
    either way to the uninterrupted run."""
    run = tmp_path / "run"
    k = WRITES.index("best.pt") + (written == "best.pt")  # (k counts from 1)
    killed = subprocess.run([sys.executable, "-c", KILLED_AT_WRITE, str(k), "fit", "--data",
                             str(spike_file), "--out", str(run), *TINY], capture_output=True,
                            text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (run / "best.pt").exists() and (run / f"{written}.partial").exists()
    epoch = torch.load(run / "checkpoint.pt", weights_only=False)["state"]["epoch"]
    assert epoch == (0 if written == "checkpoint.pt" else fitted_epochs(fitted[0]))
    code, _, err = run_cli(["fit", "--resume", run, "--quiet"], monkeypatch, capsys)
    assert code == 0, err
    assert ("written again from the checkpoint" in err) == (written == "best.pt")
    assert_same_run(run, fitted[0])


def fitted_epochs(folder) -> int:
    """The epochs a run folder has trained."""
    return torch.load(folder / "checkpoint.pt", weights_only=False)["state"]["epoch"]


def test_the_command_that_remakes_a_session_s_diagnostics_names_the_session(tmp_path):
    from pyrolf.pipeline.records import made_from_other_weights

    (tmp_path / "diagnostics.json").write_text(json.dumps(
        {"weights": "best.pt", "weights_epoch": 2, "session": "day1"}))
    line = made_from_other_weights(RunFolder(tmp_path), {"weights": "best.pt", "weights_epoch": 3})
    assert "diagnostics.json (epoch 2 of best.pt)" in line
    assert line.endswith(f"to make them again: 'pyrolf diagnose {tmp_path} --session day1'")
    assert "pyrolf infer" not in line  # nothing infer made is out of date
    assert made_from_other_weights(RunFolder(tmp_path),
                                   {"weights": "best.pt", "weights_epoch": 2}) is None
    # a session's diagnostics in its own folder
    (tmp_path / "diagnose-day2").mkdir()
    (tmp_path / "diagnose-day2" / "diagnostics.json").write_text(json.dumps(
        {"weights": "best.pt", "weights_epoch": 1, "session": "day2"}))
    line = made_from_other_weights(RunFolder(tmp_path), {"weights": "best.pt", "weights_epoch": 2})
    assert "diagnose-day2/diagnostics.json (epoch 1 of best.pt)" in line
    assert line.endswith(f"to make them again: 'pyrolf diagnose {tmp_path} --session day2'")
    # a session named with a space (its file 'day 3.nwb'): quoted, as pasted it works (a review)
    (tmp_path / "diagnose-day2" / "diagnostics.json").write_text(json.dumps(
        {"weights": "best.pt", "weights_epoch": 1, "session": "day 3"}))
    line = made_from_other_weights(RunFolder(tmp_path), {"weights": "best.pt", "weights_epoch": 2})
    assert line.endswith(f"'pyrolf diagnose {tmp_path} --session \"day 3\"'")


def test_a_resume_stopped_before_its_first_checkpoint_goes_on_with_the_same_plan(
        run, tmp_path, monkeypatch, capsys):
    """The learning rate's decay is planned for the epochs the checkpoint records, not for
    config.json's, which a --resume --epochs N rewrites before its first checkpoint."""
    reference = shutil.copytree(run, tmp_path / "reference")
    code, _, err = run_cli(["fit", "--resume", reference, "--epochs", "4", "--quiet"],
                           monkeypatch, capsys)
    assert code == 0, err
    edit_config(run, epochs=4)  # what such a resume, killed, leaves
    code, _, err = run_cli(["fit", "--resume", run, "--epochs", "4", "--quiet"], monkeypatch,
                           capsys)
    assert code == 0, err
    assert_same_run(run, reference)


def test_a_checkpoint_the_disk_refuses_is_one_line_and_the_run_goes_on_after(
        run, tmp_path, monkeypatch, capsys):
    """A file-size limit (as a full disk or a quota) below the checkpoint's size: the reason said
    is the system's (torch's writer said 'unexpected pos 64 vs 0'; fs45), the old checkpoint is
    kept, and the fit goes on from it once there is room."""
    import resource

    reference = shutil.copytree(run, tmp_path / "reference")
    before = digests(run)
    size = (run / "checkpoint.pt").stat().st_size

    def limited():  # below checkpoint.pt, above config.json, written before it
        resource.setrlimit(resource.RLIMIT_FSIZE, (size // 2, size // 2))

    done = subprocess.run([sys.executable, "-c", "from pyrolf.cli.main import main; main()",
                           "fit", "--resume", str(run), "--epochs", "3", "--quiet"],
                          capture_output=True, text=True, preexec_fn=limited,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    err = "\n".join(line for line in done.stderr.splitlines() if "reached lr_final" not in line)
    # (a fit there again is refused: it says --resume, as Ctrl-C's message does; fs45)
    assert_one_line_error(done.returncode, err, f"{run / 'checkpoint.pt'}: cannot be written "
                                                "(File too large) and is as it was", "free space",
                          f"continue the fit from its last checkpoint: 'pyrolf fit --resume "
                          f"{run}'")
    assert digests(run)["checkpoint.pt"] == before["checkpoint.pt"]
    assert not list(run.glob("*.partial"))
    for folder in (run, reference):
        code, _, err = run_cli(["fit", "--resume", folder, "--epochs", "3", "--quiet"],
                               monkeypatch, capsys)
        assert code == 0, err
    assert_same_run(run, reference)


def _truncated(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("damage, command, fragment", [
    (lambda run: _truncated(run / "checkpoint.pt"), "resume", "checkpoint.pt is damaged"),
    (lambda run: shutil.copy(run / "best.pt", run / "checkpoint.pt"), "resume",
     "checkpoint.pt is not a pyrolf checkpoint.pt (it holds no 'optimizer')"),
    (lambda run: _truncated(run / "fitted.json"), "evaluate", "fitted.json is not valid JSON"),
    (lambda run: ((run / ".lock").unlink(), (run / ".lock").mkdir()), "evaluate",
     ".lock is a folder; remove it"),
])
def test_a_damaged_run_file_is_one_line_naming_it(damage, command, fragment, run, monkeypatch,
                                                  capsys):
    damage(run)
    args = ["fit", "--resume", run, "--epochs", "3"] if command == "resume" else [command, run]
    code, _, err = run_cli([*args, "--quiet"], monkeypatch, capsys)
    assert_one_line_error(code, err, fragment)


def test_a_file_name_of_up_to_255_bytes_is_written_though_its_partial_name_would_be_longer(
        tmp_path):
    """An infer --out name of 248 to 255 bytes failed at its NAME.partial after all the work
    (a file-system hostile test)."""
    from pyrolf.runs import partial_of

    assert partial_of(tmp_path / "metrics.json") == tmp_path / "metrics.json.partial"
    names = ["a" * 250 + ".nc", "a" * 250 + ".NC", "ü" * 125 + ".nc"]  # (ü: two bytes)
    partials = {partial_of(tmp_path / name) for name in names}
    assert len(partials) == 3 and all(len(path.name) < 255 for path in partials)
    for value, name in enumerate(names):
        RunFolder(tmp_path).write_json(name, {"value": value})
        assert json.loads((tmp_path / name).read_text()) == {"value": value}
    assert not list(tmp_path.glob("*.partial"))


def test_a_failed_write_s_error_survives_copying_and_pickling(tmp_path):
    """Ray copies a sweep trial's error and pickles it to the driver: Unwritten's own argument
    made that a TypeError, whose traceback hid the full disk (found filling a sweep's disk)."""
    import copy
    import errno
    import pickle

    from pyrolf.runs import unwritten

    error = unwritten(tmp_path / "checkpoint.pt", OSError(errno.ENOSPC, "No space left on device"))
    for again in (copy.copy(error), pickle.loads(pickle.dumps(error))):
        assert type(again) is type(error) and again.reason == "No space left on device"
        assert (again.errno, again.filename, str(again)) == (error.errno, error.filename,
                                                             str(error))


def test_a_link_in_an_outputs_place_becomes_a_file_and_its_target_is_left(tmp_path, capsys):
    """A run folder made of links to another's files (cp -s) never writes into that run; the
    note says what became of the link."""
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "metrics.json").write_text("{}\n")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.json").symlink_to(tmp_path / "other" / "metrics.json")
    RunFolder(tmp_path / "run").write_json("metrics.json", {"co_bps": 0.3})
    assert (tmp_path / "other" / "metrics.json").read_text() == "{}\n"
    assert not (tmp_path / "run" / "metrics.json").is_symlink()
    assert json.loads((tmp_path / "run" / "metrics.json").read_text()) == {"co_bps": 0.3}
    assert "metrics.json was a link to another file, which is left as it was" in (
        capsys.readouterr().err)
    RunFolder(tmp_path / "run").write_json("metrics.json", {"co_bps": 0.4})
    assert capsys.readouterr().err == ""  # (a file now: nothing to say)


def test_a_fit_whose_figure_the_disk_refuses_still_says_its_scores(run, monkeypatch, capsys):
    """A fit failing at training.png, its last file, printed no scores though metrics.json was
    whole (a file-system hostile test); a resume draws the figure once there is room."""
    from matplotlib.figure import Figure

    savefig = Figure.savefig

    def file_too_large(self, path, **kwargs):
        if os.path.basename(path).startswith("training.png"):
            raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))
        savefig(self, path, **kwargs)

    (run / "training.png").unlink()
    monkeypatch.setattr(Figure, "savefig", file_too_large)
    code, out, err = run_cli(["fit", "--resume", run, "--epochs", "3", "--quiet"], monkeypatch,
                             capsys)
    assert code == 0, err
    assert (f"warning: {run / 'training.png'}: cannot be written (File too large); the fit's "
            f"weights and scores are kept, and once there is room 'pyrolf fit --resume {run}' "
            "draws the figure") in err.splitlines()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"] == 3 and f"co_bps={metrics['co_bps']:.4f}" in out
    assert not (run / "training.png").exists() and not list(run.glob("*.partial"))
    monkeypatch.setattr(Figure, "savefig", savefig)
    code, _, err = run_cli(["fit", "--resume", run, "--epochs", "3", "--quiet"], monkeypatch,
                           capsys)
    assert code == 0, err
    assert (run / "training.png").read_bytes().startswith(b"\x89PNG")


def test_taking_the_lock_clears_what_a_killed_process_left_half_written(run):
    (run / "posterior.nc.partial").write_bytes(b"half a file")
    with RunFolder(run).locked():
        assert not (run / "posterior.nc.partial").exists()


def test_running_out_of_memory_is_one_line(run, monkeypatch, capsys):
    def too_big(*args, **kwargs):
        raise MemoryError("Unable to allocate 7.44 MiB for an array with shape (1300, 50, 30)")

    monkeypatch.setattr("pyrolf.pipeline.training.evaluate", too_big)
    before = digests(run)
    code, _, err = run_cli(["evaluate", run, "--quiet"], monkeypatch, capsys)
    assert_one_line_error(code, err, "out of memory", "fewer --samples")
    assert digests(run) == before


def test_a_figure_the_disk_refuses_leaves_no_file(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from pyrolf.plots import training_curve

    def file_too_large(self, path, **kwargs):
        open(path, "wb").write(b"\x89PNG half")
        raise OSError(27, "File too large")

    monkeypatch.setattr(Figure, "savefig", file_too_large)
    with pytest.raises(OSError, match=r"cannot be written \(File too large\).*training.png"):
        training_curve([{"epoch": 1, "elbo": -3.0}], tmp_path / "training.png")
    assert list(tmp_path.iterdir()) == []


def test_starting_over_removes_the_earlier_run_s_best_weights_and_metrics(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / RunFolder.CONFIG).write_text("{}\n")
    (folder / RunFolder.BEST).write_bytes(b"the earlier run's weights")
    (folder / RunFolder.METRICS).write_text("{}\n")
    with RunFolder.create(folder, Config()) as run:
        assert not run.has(RunFolder.BEST)
        assert not run.has(RunFolder.METRICS)
        assert run.has(RunFolder.CONFIG)


def test_data_of_the_run_s_counts_with_other_held_out_neurons_are_refused_as_such(tmp_path):
    """(RU7) The same counts with other held-out flags or splits would score other neurons or
    trials: refused, saying so (not 'not the data fitted on', which the counts contradict),
    whether the data are given or reloaded from config.json."""
    import numpy as np
    import pytest

    from pyrolf.data.files import spikes_fingerprint
    from pyrolf.data.spikes import SpikeData
    from pyrolf.runs import RunError

    spikes = np.arange(4 * 5 * 3, dtype=np.float32).reshape(4, 5, 3) % 3
    splits = {"train": np.arange(2), "valid": np.array([2]), "test": np.array([3])}
    fitted = SpikeData(spikes, np.array([False, False, True]), splits)
    other = SpikeData(spikes, np.array([True, False, False]), splits)
    run = RunFolder(tmp_path)
    run.write_json(RunFolder.FITTED, {"data": spikes_fingerprint([fitted]), "modules": {}})
    run.check_fitted(spikes_fingerprint([fitted]), {}, given=True)  # the fit's own: passes
    for given in (True, False):
        with pytest.raises(RunError, match="other held-out neurons or train/valid/test splits"):
            run.check_fitted(spikes_fingerprint([other]), {}, given=given)
