"""A fit computes with the cores other processes leave free; ``--threads`` fixes the count."""

import csv
import json
import os

import pytest
import torch

from pyrolf import threads
from pyrolf.config import Config, ConfigError
from pyrolf.data import lorenz_dataset
from pyrolf.inference.svi import Trainer
from pyrolf.models import build_flow
from pyrolf.threads import CoreShare, free_threads, use_threads
from test_cli import TINY, assert_one_line_error, run_cli


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _write_ticks(folder, busy, idle, own, elsewhere=0):
    """Fake ``/proc/stat`` (cores 0 and 1 alike: user=busy/2, idle=idle/2 each; core 2, outside
    the affinity: user=elsewhere) and ``/proc/self/stat`` (utime=own)."""
    cores = [f"cpu{i} {busy // 2} 0 0 {idle // 2} 0 0 0 0 0 0" for i in range(2)]
    (folder / "stat").write_text("\n".join([
        f"cpu  {busy + elsewhere} 0 0 {idle} 0 0 0 0 0 0", *cores,
        f"cpu2 {elsewhere} 0 0 0 0 0 0 0 0 0", "intr 12345", "ctxt 678"]) + "\n")
    fields = ["S"] + ["0"] * 10 + [str(own), "0"] + ["0"] * 30
    (folder / "self").write_text("1234 (python) " + " ".join(fields))


def test_the_cores_others_keep_busy_are_read_from_proc(tmp_path, monkeypatch):
    monkeypatch.setattr(threads, "PROC_STAT", tmp_path / "stat")
    monkeypatch.setattr(threads, "SELF_STAT", tmp_path / "self")
    _write_ticks(tmp_path, busy=1000, idle=1000, own=400)
    share = CoreShare(cpus=frozenset({0, 1}))
    assert share.cores == 2
    # 100 ticks per core pass: 150 busy of which 50 this process's -> others kept 1 core busy;
    # a third core, not this process's, busy all along, counts for nothing
    _write_ticks(tmp_path, busy=1150, idle=1050, own=450, elsewhere=100)
    assert share.others() == pytest.approx(1.0)
    _write_ticks(tmp_path, busy=1200, idle=1200, own=500, elsewhere=200)  # nobody else here
    assert share.others() == pytest.approx(0.0)
    assert share.others() is None  # no time passed
    monkeypatch.setattr(threads, "PROC_STAT", tmp_path / "missing")
    assert CoreShare(cpus=frozenset({0, 1})).others() is None


def test_the_cores_are_this_process_s_and_omp_num_threads_caps_them(monkeypatch):
    assert threads.own_cpus() == frozenset(os.sched_getaffinity(0))
    assert CoreShare().cores == len(os.sched_getaffinity(0))
    for value, limit in (("3", 3), (" 1 ", 1), ("0", None), ("two", None), ("", None)):
        monkeypatch.setenv("OMP_NUM_THREADS", value)
        assert threads.thread_limit() == limit
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert threads.thread_limit() is None


def test_free_threads_are_the_free_cores_and_never_none():
    assert free_threads(0.0, 2) == 2 and free_threads(0.2, 2) == 2
    assert free_threads(1.0, 2) == 1 and free_threads(1.9, 2) == 1 and free_threads(5.0, 8) == 3
    assert free_threads(3.0, 2) == 1


@pytest.mark.parametrize("fixed, limit, expected", [
    (None, None, [1, 2, 1]), (2, None, [2, 2, 2]), (None, "1", [1, 1, 1])])
def test_a_fit_takes_the_free_cores_every_epoch_unless_told_a_count(fixed, limit, expected,
                                                                     restore_threads,
                                                                     monkeypatch):
    data = lorenz_dataset(seed=1, n_conditions=3, trials_per_condition=4, n_bins=8,
                          n_neurons=6, n_heldout=2)
    config = Config(epochs=3, threads=fixed, latent_dim=4, channels=2, encoder_hidden=8,
                    decoder_width=8, decoder_feedforward=8, batch_size=8)
    seen = iter([1.0, 0.0, 1.0])
    monkeypatch.setattr(CoreShare, "others", lambda self: next(seen))
    monkeypatch.setattr(threads, "own_cpus", lambda: frozenset({0, 1}))
    if limit is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", limit)
    counts = []
    trainer = Trainer(build_flow(config, data.n_neurons, data.n_heldin), data, config)
    original = trainer.epoch
    monkeypatch.setattr(trainer, "epoch", lambda check=False: (
        counts.append(torch.get_num_threads()), original(check))[1])
    torch.set_num_threads(2)
    history = trainer.fit(progress=False).history
    assert counts == expected
    assert [record["threads"] for record in history] == expected  # history.csv's column


def test_the_threads_setting_reaches_torch(restore_threads, spike_file, tmp_path, monkeypatch,
                                           capsys):
    assert use_threads(None) == torch.get_num_threads()
    assert use_threads(1) == 1 == torch.get_num_threads()
    torch.set_num_threads(2)
    code, _, err = run_cli(["fit", "--data", spike_file, "--out", tmp_path / "run",
                            "--threads", "1", *TINY], monkeypatch, capsys)
    assert code == 0, err
    with open(tmp_path / "run" / "history.csv") as history:
        assert {row["threads"] for row in csv.DictReader(history)} == {"1"}  # computed with 1
    assert torch.get_num_threads() == 2  # and the caller's count given back


def test_a_resume_may_be_given_a_thread_count_but_no_model_setting(restore_threads, spike_file,
                                                                     tmp_path, monkeypatch,
                                                                     capsys):
    run = tmp_path / "run"
    code, _, err = run_cli(["fit", "--data", spike_file, "--out", run, "--threads", "2", *TINY],
                           monkeypatch, capsys)
    assert code == 0, err
    code, _, err = run_cli(["fit", "--resume", run, "--epochs", "3", "--threads", "1",
                            "--quiet"], monkeypatch, capsys)
    assert code == 0, err
    with open(run / "history.csv") as history:
        assert [row["threads"] for row in csv.DictReader(history)][-1] == "1"
    assert json.loads((run / "config.json").read_text())["threads"] == 1
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 3
    code, _, err = run_cli(["fit", "--resume", run, "--epochs", "4", "--lr", "0.1"],
                           monkeypatch, capsys)
    assert_one_line_error(code, err, "only --epochs, --threads and --device may be given")


@pytest.mark.parametrize("value", ["0", "two"])
def test_a_bad_thread_count_is_one_line(value, tmp_path, monkeypatch, capsys):
    code, _, err = run_cli(["fit", "--out", tmp_path / "run", "--threads", value, *TINY],
                           monkeypatch, capsys)
    assert_one_line_error(code, err, "Invalid value for '--threads'")
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="threads must be at least 1"):
        Config(threads=0)
