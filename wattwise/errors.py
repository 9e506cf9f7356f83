"""Errors that are the user's to fix.

The CLI prints a :class:`WattwiseError` as one line and exits non-zero; anything else is a bug
and shows its traceback under ``--verbose``.
"""

from __future__ import annotations


class WattwiseError(Exception):
    """A problem with the user's input, config or environment, with a message that names it."""

    exit_code = 2


class ConfigError(WattwiseError):
    """A YAML config that is missing, unreadable or fails validation."""


class DataError(WattwiseError):
    """Input data that is missing or cannot be used."""


class EmptyResultError(WattwiseError):
    """A command that produced nothing useful (0 scored, too little data for a report, an
    empty training set): a scheduler must not read it as success. ``--allow-empty`` makes it
    exit 0 where the user expects nothing."""

    exit_code = 4


class NotPromotedError(WattwiseError):
    """Promotion was asked and the gate kept the champion (the reason is the message)."""

    exit_code = 5


# Every exit code of the ``wattwise`` command: one definition, rendered in the README (a test
# compares the two) and read by the commands.
EXIT_OK = 0
EXIT_BUG = 1
EXIT_USER = WattwiseError.exit_code
EXIT_ALERT = 3
EXIT_EMPTY = EmptyResultError.exit_code
EXIT_NOT_PROMOTED = NotPromotedError.exit_code
EXIT_INTERRUPTED = 130
EXIT_CODES: dict[int, str] = {
    EXIT_OK: "done: the command produced what was asked",
    EXIT_BUG: "an unexpected error (a bug): one line, `--verbose` shows the traceback",
    EXIT_USER: "a user error: a bad option, config, file or missing data, named in the message",
    EXIT_ALERT: "an alert: drift found, or a monitored metric fell (`drift report`, `watch`, `performance`)",
    EXIT_EMPTY: "nothing produced: 0 scored, no or too few predictions for a report, an empty "
    "training set, 0 rows imported (`--allow-empty` makes it 0)",
    EXIT_NOT_PROMOTED: "promotion was asked and the gate kept the champion (the reason is printed)",
    EXIT_INTERRUPTED: "interrupted (Ctrl+C)",
}


def nothing(message: str, allow_empty: bool = False) -> str:
    """Raise :class:`EmptyResultError` with ``message`` unless the user allowed an empty result;
    then return the message for the command to print (the command exits 0)."""
    if not allow_empty:
        raise EmptyResultError(message)
    return message
