"""Project settings: paths, URIs and seeds, from ``configs/settings.yaml``.

Environment variables override the file: ``WATTWISE_SEED=7``,
``WATTWISE_PATHS__DATA_DIR=/big/disk/data``, ``WATTWISE_MLFLOW__TRACKING_URI=...``.
``WATTWISE_SETTINGS`` points at another settings file, ``WATTWISE_HOME`` moves the root that
relative paths are resolved against.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from wattwise.config import load_config
from wattwise.paths import configs_dir, project_root, resolve


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PathSettings(_Strict):
    """Folders, relative to the project root unless absolute."""

    data_dir: Path = Path("data")
    feast_repo: Path = Path("features/repo")
    mlruns_dir: Path = Path("mlruns")
    reports_dir: Path = Path("reports")
    shared_data_dir: Path = Path("../shared/data")


class MlflowSettings(_Strict):
    """MLflow needs a database backend (3.x refuses the plain file store)."""

    tracking_uri: str = "sqlite:///mlruns/mlflow.db"
    artifact_root: Path = Path("mlruns/artifacts")
    experiment_prefix: str = "wattwise"

    @field_validator("tracking_uri")
    @classmethod
    def _database_uri(cls, v: str) -> str:
        if not v.startswith(("sqlite:///", "postgresql", "mysql", "http://", "https://")):
            raise ValueError("must be a database or server URI such as sqlite:///mlruns/mlflow.db")
        return v


class LoggingSettings(_Strict):
    level: str = Field("INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")


class Settings(_Strict):
    """Validated settings; derived absolute paths are properties, never stored twice."""

    model_config = ConfigDict(extra="forbid", frozen=True, ignored_types=(cached_property,))

    root: Path = Field(default_factory=project_root)
    seed: int = Field(42, ge=0)
    paths: PathSettings = PathSettings()
    mlflow: MlflowSettings = MlflowSettings()
    logging: LoggingSettings = LoggingSettings()
    # model kinds besides the built-in ones (training.kinds.BUILTIN): "module:attribute" of a
    # training.kinds.base.Kind each, importable from the Python path
    kinds: list[str] = []

    @field_validator("kinds")
    @classmethod
    def _kind_refs(cls, v: list[str]) -> list[str]:
        for ref in v:
            module, _, attr = ref.partition(":")
            if not module or not all(p.isidentifier() for p in [*module.split("."), attr or "x"]):
                raise ValueError(f"{ref!r} is not 'module:attribute' (e.g. mypkg.forecast:KIND)")
        return v

    def path(self, p: Path) -> Path:
        return resolve(p, self.root)

    @property
    def data_dir(self) -> Path:
        return self.path(self.paths.data_dir)

    @property
    def feast_repo(self) -> Path:
        return self.path(self.paths.feast_repo)

    @property
    def reports_dir(self) -> Path:
        return self.path(self.paths.reports_dir)

    @property
    def shared_data_dir(self) -> Path:
        return self.path(self.paths.shared_data_dir)

    @property
    def mlruns_dir(self) -> Path:
        return self.path(self.paths.mlruns_dir)

    @property
    def artifact_root(self) -> Path:
        return self.path(self.mlflow.artifact_root)

    @property
    def tracking_uri(self) -> str:
        """The tracking URI with a relative sqlite path made absolute against the root."""
        uri = self.mlflow.tracking_uri
        prefix = "sqlite:///"
        if uri.startswith(prefix) and not uri[len(prefix) :].startswith("/"):
            return prefix + str(self.path(Path(uri[len(prefix) :])))
        return uri


def settings_file() -> Path:
    """The settings YAML in use (``$WATTWISE_SETTINGS`` or ``configs/settings.yaml``)."""
    env = os.environ.get("WATTWISE_SETTINGS")
    return Path(env).expanduser().resolve() if env else configs_dir() / "settings.yaml"


def load_settings(path: Path | None = None) -> Settings:
    """Load and validate settings once; callers pass the object down."""
    return load_config(Settings, path or settings_file(), env_prefix="WATTWISE")
