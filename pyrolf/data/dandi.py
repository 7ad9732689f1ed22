"""Where NLB'21's files live: the DANDI sets, the data folder and the download command.

Kept apart from :mod:`pyrolf.data.nlb` so that naming, finding and downloading a dataset does not
import nlb_tools, pynwb and pandas (about 3 s), which only loading one needs.
"""

from __future__ import annotations

import os
from pathlib import Path

from pyrolf.data.spikes import DataError
from pyrolf.messages import typed

#: NLB dataset name -> (DANDI set, subject folder)
DANDISETS = {
    "mc_maze": ("000128", "sub-Jenkins"),
    "mc_rtt": ("000129", "sub-Indy"),
    "area2_bump": ("000127", "sub-Han"),
    "dmfc_rsg": ("000130", "sub-Haydn"),
    "mc_maze_large": ("000138", "sub-Jenkins"),
    "mc_maze_medium": ("000139", "sub-Jenkins"),
    "mc_maze_small": ("000140", "sub-Jenkins"),
}
DATA_DIR_ENV = "PYROLF_DATA"
DEFAULT_DATA_DIR = Path.home() / "pyrolf-data"


def data_dir(given: str | os.PathLike | None = None) -> Path:
    """The NLB data folder: ``given``, else ``$PYROLF_DATA``, else :data:`DEFAULT_DATA_DIR`."""
    return Path(given or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR).expanduser()


def download_command(name: str, folder: Path) -> str:
    return (f"pip install dandi && mkdir -p {typed(folder)} && cd {typed(folder)} && "
            f"dandi download DANDI:{DANDISETS[name][0]}")


def nwb_files(name: str, folder: Path) -> tuple[Path, Path | None]:
    """The train and (if present) test NWB files of dataset ``name`` under ``folder``."""
    if name not in DANDISETS:
        raise DataError(f"unknown NLB dataset {name!r}; choose one of {', '.join(DANDISETS)}")
    dandiset, subject = DANDISETS[name]
    subject_folder = folder / dandiset / subject
    train = sorted(subject_folder.glob("*_desc-train_*.nwb"))
    test = sorted(subject_folder.glob("*_desc-test_*.nwb"))
    if not train:
        where = "does not exist" if not folder.is_dir() else f"has no {dandiset}/{subject}/*desc-train*.nwb"
        raise DataError(f"NLB dataset {name} (DANDI:{dandiset}) not found: {folder} {where}; "
                        f"download it with: {download_command(name, folder)} "
                        f"(or point --data-dir / ${DATA_DIR_ENV} at the folder holding {dandiset}/)")
    return train[0], (test[0] if test else None)
