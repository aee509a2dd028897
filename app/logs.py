"""Logging set-up. Nothing logged anywhere carries image bytes, base64, URLs' queries or embeddings."""

from __future__ import annotations

import logging


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    # httpx logs every fetched URL (which may embed tokens) at INFO.
    logging.getLogger("httpx").setLevel(logging.WARNING)
