"""Logging set-up shared by every command: rich console output, one format, one level."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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


@contextmanager
def output_to(log_file: Path | None) -> Iterator[None]:
    """Send everything written to stdout and stderr (file descriptors 1 and 2: Python,
    C extensions and subprocesses alike) and every log record to ``log_file`` while the block
    runs; ``None`` leaves output alone (``--verbose``).

    Why: libraries print warnings, progress bars and ANSI codes that bury a command's own
    progress lines; the command prints its lines between such blocks and names the file.
    """
    if log_file is None:
        yield
        return
    import os
    import sys
    import warnings

    log_file.parent.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    root = logging.getLogger()
    consoles = [h for h in root.handlers if isinstance(h, RichHandler)]
    with log_file.open("ab") as fh, warnings.catch_warnings():
        warnings.simplefilter("default")
        logging.captureWarnings(True)
        to_file = logging.StreamHandler(open(fh.fileno(), "w", closefd=False))  # noqa: SIM115
        to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        for h in consoles:
            root.removeHandler(h)
        root.addHandler(to_file)
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            to_file.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            root.removeHandler(to_file)
            to_file.stream.close()  # the text wrapper only: the log file stays open to fh
            for h in consoles:
                root.addHandler(h)
            logging.captureWarnings(False)
