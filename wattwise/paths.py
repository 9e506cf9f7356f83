"""Where the project lives on disk.

Every other path comes from settings; this module only finds the root that relative
settings paths are resolved against: ``$WATTWISE_HOME`` if set, else the checkout that holds
this package (it has ``configs/settings.yaml``), else the current directory.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def project_root() -> Path:
    """Return the directory that relative paths in ``configs/`` are relative to."""
    env = os.environ.get("WATTWISE_HOME")
    if env:
        return Path(env).expanduser().resolve()
    checkout = PACKAGE_DIR.parent
    if (checkout / "configs" / "settings.yaml").is_file():
        return checkout
    return Path.cwd().resolve()


def configs_dir() -> Path:
    """Return the directory of YAML configs (``$WATTWISE_CONFIGS`` overrides)."""
    env = os.environ.get("WATTWISE_CONFIGS")
    return Path(env).expanduser().resolve() if env else project_root() / "configs"


def resolve(path: str | Path, root: Path | None = None) -> Path:
    """Make ``path`` absolute, relative to ``root`` (default: the project root)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else ((root or project_root()) / p).resolve()
