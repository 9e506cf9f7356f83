"""Which dataset a ``--data`` option names: one rule for every command.

``--data NAME`` is the folder ``NAME`` under the settings' data dir (``data/powerco``);
``--data PATH`` (anything with a path separator, or starting with ``.`` or ``~``) is that
folder, relative to the current directory as a shell user expects. A dataset's *name* (which
``configs/models`` config applies to it) is ``synthetic`` for a generated world (it has the
generator's manifest, so ``data/hw`` built with ``--scenario`` uses the synthetic configs),
else the folder's name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

WORLD_MANIFEST = "_world.json"  # written by the synthetic generator (features.synth)
SYNTHETIC = "synthetic"


@dataclass(frozen=True)
class Dataset:
    """A dataset folder and the name its configs are found under."""

    name: str
    path: Path

    @property
    def exists(self) -> bool:
        return self.path.is_dir()


def is_path(value: str) -> bool:
    """Whether ``--data`` names a folder (a path) rather than a dataset under the data dir."""
    return os.sep in value or "/" in value or value.startswith((".", "~"))


def resolve_dataset(value: str, data_dir: Path, cwd: Path | None = None) -> Dataset:
    """The dataset ``value`` names (see the module docstring); never raises for a missing
    folder: commands that read one check :attr:`Dataset.exists` and say which."""
    if is_path(value):
        p = Path(value).expanduser()
        path = (p if p.is_absolute() else (cwd or Path.cwd()) / p).resolve()
    else:
        path = (data_dir / value).resolve()
    return Dataset(dataset_name(path), path)


def dataset_name(path: Path) -> str:
    """``synthetic`` for a generated world, else the folder's name."""
    return SYNTHETIC if (path / WORLD_MANIFEST).is_file() else path.name


def require(ds: Dataset) -> Dataset:
    """``ds`` if its folder exists, else a one-line :class:`~wattwise.errors.DataError` that
    says how to make it."""
    from wattwise.errors import DataError

    if not ds.exists:
        raise DataError(
            f"dataset folder not found: {ds.path} (make it with `wattwise data generate` or "
            "`wattwise data import`, or pass --data NAME|PATH)"
        )
    return ds
