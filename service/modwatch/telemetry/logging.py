"""structlog for every process: JSON by default, pretty on a terminal.

Standard-library loggers (uvicorn, RQ, rq-scheduler) are routed through the same processors by
structlog's own ProcessorFormatter, so every line has the same shape. Context (job_id, queue, request_id, trace ids) comes from
structlog's contextvars.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
from typing import Any

import orjson
import structlog
from opentelemetry import trace
from structlog.typing import EventDict, Processor, WrappedLogger

_SECRET_KEYS = re.compile(r"(token|secret|password|api[_-]?key|authorization|signature|cookie)", re.IGNORECASE)
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
# Credentials in URLs: OAuth query parameters and user:password@host.
_URL_SECRETS = re.compile(r"((?:access_token|client_secret|code|token)=)[^&\s\"']+|(//[^/\s:@]+:)[^/\s@]+(@)", re.IGNORECASE)


def _redact_text(value: str) -> str:
    # Every pattern above needs one of these: "Bearer" (in any case), "=" (a query parameter) or
    # "@" (user:password@). Most values, log messages included, have none, and are not searched
    # further; three substring checks take a tenth of the time of one case-blind regex search.
    if not ("=" in value or "@" in value or "bearer" in value.lower()):
        return value
    value = _BEARER.sub(r"\1[redacted]", value)
    return _URL_SECRETS.sub(lambda m: f"{m.group(1)}[redacted]" if m.group(1) else f"{m.group(2)}[redacted]{m.group(3)}", value)


@functools.lru_cache(maxsize=1024)
def _is_secret_key(key: str) -> bool:
    """Log keys are names in code, a small set: each is searched once."""
    return bool(_SECRET_KEYS.search(key))


def redact_secrets(logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
    for key, value in list(event.items()):
        if _is_secret_key(key) and value not in (None, ""):
            event[key] = "[redacted]"
        elif isinstance(value, str):
            event[key] = _redact_text(value)
    return event


def redact_exception(logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
    """The traceback `format_exc_info` renders: the one text that appears after `redact_secrets` ran."""
    if isinstance(event.get("exception"), str):
        event["exception"] = _redact_text(event["exception"])
    return event


def add_trace_ids(logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
    """`trace_id` and `span_id` of the active span, so a log line leads to its trace."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        event.setdefault("span_id", format(context.span_id, "016x"))
    return event


def json_text(event: dict[str, Any], **options: Any) -> str:
    """One log line's JSON: orjson (2.8 against 4.9 us a line with the standard library; RQ writes
    four lines a job), or the standard library for what orjson refuses (integers over 64 bits)."""
    try:
        return orjson.dumps(event, default=options.get("default"), option=orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(event, **options)


def configure(level: str = "INFO", fmt: str = "auto") -> None:
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        *extra_processors,
        # Before the fields added below, which are never secrets: fewer values to search.
        redact_secrets,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_ids,
    ]
    renderer = structlog.processors.JSONRenderer(serializer=json_text) if use_json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, structlog.processors.format_exc_info,
                    redact_exception, renderer],
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "rq.worker", "rq_scheduler.scheduler", "rq.scheduler"):
        named = logging.getLogger(name)
        named.handlers[:] = []
        named.propagate = True


# Processors other telemetry modules add, run before redaction.
extra_processors: list[Processor] = []
