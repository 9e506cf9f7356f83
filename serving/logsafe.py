"""No request data in the server log: customer ids must never be written there.

BentoML logs every error of its own request path (``X-Wattwise-Dispatch: bentoml``, every
``/admin/*`` call) at ERROR with a traceback, and a pydantic ``ValidationError``'s message
echoes the input it refused: the raw body, ids included. :class:`WithholdRequestData`,
attached to the loggers of the request paths, turns a validation error into one INFO line
with the error types and fields (a client's mistake is not a server error), and writes any
other exception as its traceback's frames and type only: an exception's message may hold
request values. The service's own messages name fields and counts, never values.
"""

from __future__ import annotations

import logging
import traceback

# the loggers that write during a request: BentoML's HTTP app, uvicorn (an exception that
# escapes the app), and the service's own modules
REQUEST_LOGGERS = (
    "bentoml._internal.server.http_app",
    "_bentoml_impl.server.app",
    "uvicorn.error",
    "serving.http",
    "serving.core",
    "serving.service",
)


def _fields(exc: BaseException) -> str:
    from pydantic import ValidationError

    from serving.spec import field_of

    if not isinstance(exc, ValidationError):
        return ""
    errs = exc.errors(include_url=False, include_context=False, include_input=False)
    return ", ".join(f"{field_of(e['loc'])} ({e['type']})" for e in errs[:10])


class WithholdRequestData(logging.Filter):
    """Rewrite records carrying an exception so no request value reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keep the record; drop its exception's message (module docstring)."""
        from pydantic import ValidationError

        if not record.exc_info or record.exc_info[1] is None:
            return True
        etype, exc, tb = record.exc_info
        where = record.getMessage().removeprefix("Exception on ")
        if isinstance(exc, ValidationError):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args = "%s: request body refused: %s", (where, _fields(exc))
            record.exc_info, record.exc_text = None, None
            return True
        name = f"{etype.__module__}.{etype.__qualname__}" if etype else type(exc).__name__
        frames = "".join(traceback.format_tb(tb))
        record.msg, record.args = "%s", (where,)
        record.exc_info = None
        record.exc_text = (
            f"Traceback (most recent call last):\n{frames}{name} "
            "(message withheld from the log: it may hold request data)"
        )
        return True


def install(loggers: tuple[str, ...] = REQUEST_LOGGERS) -> None:
    """Attach the filter to every request-path logger (idempotent)."""
    for name in loggers:
        logger = logging.getLogger(name)
        if not any(isinstance(f, WithholdRequestData) for f in logger.filters):
            logger.addFilter(WithholdRequestData())
