"""Logging set-up. Nothing logged anywhere carries image bytes, base64, URLs' queries or embeddings.

Two formats: ``text`` (one readable line per record) and ``json`` (one JSON object per line, for
log shippers). Access records carry their fields as data too, so the JSON lines have them as keys.
"""

from __future__ import annotations

import json
import logging
import traceback
from datetime import datetime, timezone
from typing import Literal

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
ACCESS_FIELDS = "access_fields"
QUIET_LIBRARIES = (
    "httpx",
    "httpcore",
    "hpack",
    "h11",
    "botocore",
    "boto3",
    "s3transfer",
    "urllib3",
    "redis",
    "asyncio",
    "multipart",
    "python_multipart",
    "uvicorn.asgi",
    "PIL",
    "openvino",
)  # the LogRecord attribute that holds an access record's fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, and an access
    record's fields (request_id, key_id, action, status, code, pair_type, latency_ms)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, ACCESS_FIELDS, {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, separators=(",", ":"))


def configure_logging(level: str, log_format: LogFormat = "text") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # Whatever the level: these libraries log URLs with their queries (tokens), redirect targets,
    # object keys, request headers (Authorization) or bodies at INFO/DEBUG.
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)


def log_access(logger: logging.Logger, **fields: str | int | float) -> None:
    """One access record: ``name=value`` pairs as its message, the same fields as data for JSON.
    Callers pass only values the server made or checked (ids, codes, numbers), never request data."""
    message = " ".join(f"{name}={value}" for name, value in fields.items())
    logger.info("%s", message, extra={ACCESS_FIELDS: fields})


def log_unexpected(logger: logging.Logger, what: str, request_id: str, error: BaseException) -> None:
    """An unexpected failure: its type and stack frames, never its message (messages may quote request data)."""
    frames = "".join(traceback.format_tb(error.__traceback__))
    logger.error("%s %s failed: %s\n%s", what, request_id, type(error).__name__, frames)
