"""How a node's log lines look: for people (text) or for log collectors (json).

text: `time level logger: message`, one line per record; at INFO a running node writes one line
per final round (runtime.service_shell.final_round_line) besides what goes wrong.
json: one JSON object per line with `time` (ISO 8601, UTC), `level`, `logger`, `message` and,
for an error with a traceback, `exception`: what Loki, Elasticsearch or `jq` read as is.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def formatter(kind: str) -> logging.Formatter:
    """The formatter of a log format setting ("text" or "json")."""
    return JsonFormatter() if kind == "json" else logging.Formatter(TEXT_FORMAT)
