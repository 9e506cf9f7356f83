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
