"""Logging set-up shared by every command: rich console output, one format, one level."""

from __future__ import annotations

import logging

from rich.logging import RichHandler

_FORMAT = "%(message)s"


def setup_logging(level: str | int = "INFO", *, verbose: bool = False) -> None:
    """Configure the root logger once per process; ``verbose`` forces DEBUG."""
    lvl = logging.DEBUG if verbose else level
    root = logging.getLogger()
    for h in list(root.handlers):
        if isinstance(h, RichHandler):
            root.removeHandler(h)
    handler = RichHandler(show_path=verbose, rich_tracebacks=verbose, markup=False)
    handler.setFormatter(logging.Formatter(_FORMAT))
    root.addHandler(handler)
    root.setLevel(lvl)
    # Third-party libraries are chatty at INFO; keep them to warnings unless debugging.
    for noisy in ("alembic", "mlflow", "feast", "urllib3", "bentoml", "optuna", "numexpr"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)


def get_logger(name: str) -> logging.Logger:
    """Return a module logger (thin wrapper so call sites read the same everywhere)."""
    return logging.getLogger(name)
