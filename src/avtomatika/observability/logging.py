"""Logging through a queue so that writing log lines never blocks the event loop.

Only the ``avtomatika`` logger is touched, and only its level when the application has
configured logging itself (a handler on the root logger): then our records simply flow to
the application's handlers. Otherwise a queue-fed stderr handler is installed, once.
"""

import atexit
import logging
import logging.handlers
import queue
import sys
from typing import Any

from avtomatika.core.codec import encode

_listener: logging.handlers.QueueListener | None = None


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return encode(entry).decode()


def setup_logging(level: str = "INFO", fmt: str = "json") -> None:
    global _listener
    logger = logging.getLogger("avtomatika")
    logger.setLevel(level)
    if _listener is not None or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    formatter: logging.Formatter = (
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    handler.setFormatter(formatter)
    log_queue: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    logger.addHandler(logging.handlers.QueueHandler(log_queue))
    _listener = logging.handlers.QueueListener(log_queue, handler)
    _listener.start()
    atexit.register(_listener.stop)
