"""Process logging: human-readable lines by default, one JSON object per line with
``IMSP_LOG_FORMAT=json`` — so one upload can be followed across nodes by its exchange id.

``configure(settings)`` is called once by a server command (``imsp serve``), never by building an
app, so tests keep pytest's own log capture. Every line carries the node (``IMSP_NODE_NAME`` or the
host name) and the process id; an access line (logger ``imsp.access``) carries the request's
fields: ``exchange_id`` (the same id as the receipt's ``exchangeId`` and the ``exchange_log``
row), ``service``, ``app_id``, ``client``, ``code``, ``ms``, record counts. Never a secret, a
token, a query string or a record's content — and as a last guard every message, field and
traceback passes through ``imsp.standard.mask.mask_text``, so a resident ID number that slipped
into an exception message is masked before it is written (《个人信息保护法》第五十一条).
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from typing import Any, Final

import orjson

from imsp.config import Settings
from imsp.standard.mask import mask_text

#: Access lines: one per request at INFO (enabled by ``configure`` for json or ``log_access``).
ACCESS: Final = logging.getLogger("imsp.access")
#: The ``extra`` key under which an access line's fields travel on the log record.
FIELDS: Final = "imsp_fields"

_configured = False


def node_name(settings: Settings) -> str:
    return settings.node_name or socket.gethostname()


def _clean(value: Any) -> Any:
    # only a string of 18 characters or more can hold a resident ID number
    return mask_text(value) if type(value) is str and len(value) >= 18 else value


class _Stamp:
    """``YYYY-MM-DDTHH:MM:SS`` of a time in UTC, formatted once per second."""

    __slots__ = ("second", "text")

    def __init__(self) -> None:
        self.second = -1
        self.text = ""

    def __call__(self, created: float) -> str:
        second = int(created)
        if second != self.second:
            self.second, self.text = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return self.text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (UTC, ms), ``level``, ``logger``, ``node``, ``pid``,
    ``msg``, the access fields, and ``exc`` (the traceback) when there is one."""

    def __init__(self, node: str) -> None:
        super().__init__()
        self.node = node
        self.stamp = _Stamp()

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": f"{self.stamp(record.created)}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "node": self.node,
            "pid": record.process or os.getpid(),
            "msg": mask_text(record.getMessage()),
        }
        fields = getattr(record, FIELDS, None)
        if fields:
            for k, v in fields.items():
                doc[k] = _clean(v)
        if record.exc_info:
            doc["exc"] = mask_text(self.formatException(record.exc_info))
        return orjson.dumps(doc, default=str).decode()


class TextFormatter(logging.Formatter):
    """``2026-…Z INFO imsp.access node/pid msg key=value …`` with the same masking."""

    def __init__(self, node: str) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")
        self.node = node

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, FIELDS, None)
        if fields:
            line += " " + " ".join(f"{k}={_plain(v)}" for k, v in fields.items())
        return mask_text(line)


def _plain(value: Any) -> str:
    """A field value for a text line; a string holding spaces, ``=`` or control characters (an
    appId typed by a client could hold a newline and forge a line) is written JSON-quoted."""
    text = str(value)
    if type(value) is str and (not text or any(c <= " " or c in '="' for c in text)):
        return orjson.dumps(text).decode()
    return text


def configure(settings: Settings, *, stream: Any = None) -> logging.Handler:
    """Send the process's logs to ``stream`` (default stderr) in the configured format; access
    lines are on for ``json`` (or with ``IMSP_LOG_ACCESS=true``). Returns the handler."""
    global _configured
    node = node_name(settings)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        JsonFormatter(node) if settings.log_format == "json" else TextFormatter(node)
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)  # as before: libraries' INFO (alembic, httpx) stays quiet
    on = settings.log_format == "json" or settings.log_access
    ACCESS.setLevel(logging.INFO if on else logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).setLevel(logging.WARNING)
    _configured = True
    return handler


def uvicorn_log_config() -> dict[str, Any] | None:
    """uvicorn's ``log_config``: ``None`` once :func:`configure` ran (uvicorn's records then reach
    the handler above, in the same format), else uvicorn's own default."""
    if _configured:
        return None
    from uvicorn.config import LOGGING_CONFIG

    return LOGGING_CONFIG


def access(msg: str, fields: dict[str, Any]) -> None:
    """Write one access line (callers check ``ACCESS.isEnabledFor(logging.INFO)`` first, so a
    disabled access log costs one comparison). The record is made directly: ``Logger.info``
    would walk the stack for the caller's file and line (~8 µs), which an access line does not
    need."""
    if not ACCESS.isEnabledFor(logging.INFO):
        return
    record = ACCESS.makeRecord(ACCESS.name, logging.INFO, "imsp.access", 0, msg, (), None)
    record.__dict__[FIELDS] = fields
    ACCESS.handle(record)
