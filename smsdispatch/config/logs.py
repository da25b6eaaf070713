"""Logging defaults that keep secrets and personal data out of the logs.

httpx logs every request URL at INFO; Cue's credentials travel in the query
string and several vendors put the recipient in the URL, so those loggers are
held at WARNING everywhere smsdispatch runs.
"""

from __future__ import annotations

import logging

NOISY_LOGGERS = ("httpx", "httpcore", "hpack", "uvicorn.access")


def quiet_third_party_loggers() -> None:
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def configure(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_third_party_loggers()
