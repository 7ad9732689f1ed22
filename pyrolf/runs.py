"""A run folder: ``config.json``, ``checkpoint.pt`` (last), ``best.pt`` (best validation score),
``history.csv``, ``metrics.json``, plots and, for NLB data, ``submission.h5``. Every file is written
atomically, so an interrupted or failed run never leaves a half-written checkpoint and never
overwrites another run."""

from __future__ import annotations

import csv
import json
import os
import pickle
import zipfile
from pathlib import Path

import torch

from pyrolf.config import Config


class RunError(ValueError):
    """A run folder is missing, incomplete, damaged, or would overwrite another run."""


class RunFolder:
    CONFIG, CHECKPOINT, BEST, METRICS, HISTORY, SUBMISSION, TARGETS = (
        "config.json", "checkpoint.pt", "best.pt", "metrics.json", "history.csv", "submission.h5",
        "eval_targets.h5")

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @classmethod
    def create(cls, path, config: Config) -> "RunFolder":
        run = cls(path)
        if (run.path / cls.CONFIG).exists() or (run.path / cls.CHECKPOINT).exists():
            raise RunError(f"{run.path} already holds a run; continue it with "
                           f"'pyrolf fit --resume {run.path}' or choose another --out")
        run.path.mkdir(parents=True, exist_ok=True)
        run.write_json(cls.CONFIG, config.to_dict())
        return run

    @classmethod
    def open(cls, path) -> "RunFolder":
        run = cls(path)
        if not run.path.is_dir():
            raise RunError(f"no run folder at {run.path}; give the folder 'pyrolf fit' wrote")
        if not (run.path / cls.CONFIG).exists():
            raise RunError(f"{run.path} has no {cls.CONFIG}; it is not a pyrolf run folder")
        return run

    def config(self) -> Config:
        try:
            return Config.from_dict(json.loads((self.path / self.CONFIG).read_text()))
        except json.JSONDecodeError as error:
            raise RunError(f"{self.path / self.CONFIG} is not valid JSON ({error})") from None

    def has(self, name: str) -> bool:
        return (self.path / name).exists()

    def write_atomically(self, name: str, write) -> None:
        """``write(path)`` to a temporary file in the folder, then move it onto ``name``; a write
        that fails leaves no temporary file behind."""
        target = self.path / name
        partial = target.with_name(target.name + ".partial")
        try:
            write(partial)
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise

    def save(self, name: str, obj) -> None:
        self.write_atomically(name, lambda path: torch.save(obj, path))

    def load(self, name: str, device: str = "cpu"):
        path = self.path / name
        if not path.exists():
            raise RunError(f"{path} is missing; the run has not saved a checkpoint yet")
        try:
            return torch.load(path, map_location=device, weights_only=False)
        except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as error:
            raise RunError(f"{path} is damaged and cannot be read ({error}); "
                           "restore it or start a new run") from None

    def write_json(self, name: str, obj) -> None:
        self.write_atomically(name, lambda path: path.write_text(json.dumps(obj, indent=2) + "\n"))

    def read_json(self, name: str):
        return json.loads((self.path / name).read_text())

    def write_history(self, history: list[dict]) -> None:
        columns = sorted({key for record in history for key in record},
                         key=["epoch", "elbo", "valid_co_bps", "lr", "seconds"].index)

        def write(path):
            with open(path, "w", newline="") as handle:
                writer = csv.DictWriter(handle, columns)
                writer.writeheader()
                writer.writerows(history)

        self.write_atomically(self.HISTORY, write)
