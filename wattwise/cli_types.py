"""Option types shared by every command: dates and months are parsed (and refused with the
accepted form named) when the command line is read, before any data or model loads.

:func:`day_option` accepts an ISO date (``2024-07-01``) or a month (``2024-07``, its first
day); :func:`month_option` accepts a month (``2024-07``) or an ISO date inside it.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import typer

_MONTH = re.compile(r"^\d{4}-\d{2}$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
YEARS = (1900, 2200)  # meter data lives here; pandas' nanosecond times end in 2262


def parse_day(text: str) -> date:
    """``2024-07-01`` → that day; ``2024-07`` → its first day. ValueError names the form."""
    t = text.strip()
    try:
        if _DAY.match(t) or _MONTH.match(t):
            d = date.fromisoformat(t if _DAY.match(t) else t + "-01")
            if YEARS[0] <= d.year <= YEARS[1]:
                return d
    except ValueError:
        pass
    raise ValueError(
        f"{text!r} is not a date: use YYYY-MM-DD (2024-07-01) or YYYY-MM (2024-07), "
        f"years {YEARS[0]}-{YEARS[1]}"
    )


def parse_month(text: str) -> str:
    """``2024-07`` or a date inside it → ``"2024-07"``. ValueError names the form."""
    t = text.strip()
    try:
        d = parse_day(t)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a month: use YYYY-MM (2024-07) or a date inside it (2024-07-15)"
        ) from None
    return f"{d:%Y-%m}"


DAY_METAVAR = "YYYY-MM-DD|YYYY-MM"
MONTH_METAVAR = "YYYY-MM"


def day_option(default: Any, *decls: str, help: str) -> Any:  # noqa: A002
    """A typer option parsed by :func:`parse_day` (a bad value: usage error, exit 2)."""
    return typer.Option(default, *decls, parser=parse_day, metavar=DAY_METAVAR, help=help)


def month_option(default: Any, *decls: str, help: str) -> Any:  # noqa: A002
    """A typer option parsed by :func:`parse_month`."""
    return typer.Option(default, *decls, parser=parse_month, metavar=MONTH_METAVAR, help=help)


DATA_HELP = (
    "Dataset: a NAME under the data dir (synthetic, powerco) or a PATH to its folder "
    "(data/hw, ./mine; relative to the current directory)."
)


def data_option(default: Any = "synthetic", help: str = DATA_HELP) -> Any:  # noqa: A002
    """The one option that names a dataset in every command (``--data NAME|PATH``)."""
    return typer.Option(default, "--data", metavar="NAME|PATH", help=help)


ALLOW_EMPTY_HELP = "Exit 0 even when nothing was produced (default: exit 4, see the README)."


def allow_empty_option() -> Any:
    """``--allow-empty``: a command that produced nothing exits 0 instead of 4."""
    return typer.Option(False, "--allow-empty", help=ALLOW_EMPTY_HELP)
