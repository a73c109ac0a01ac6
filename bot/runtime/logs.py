"""Logging: structlog for our events and stdlib loggers (aiohttp, arq, redis) through one pipeline.

Personal data never reaches the output in clear at info level: `redact_personal_data` masks
phone numbers and message text wherever they appear in an event's key-value pairs.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

# Keys whose values are personal data. Values are masked, never dropped, so that a log line
# still shows that the field was there.
_PHONE_KEYS = frozenset({"wa_id", "phone", "from_", "sender", "recipient", "recipient_id", "to"})
_TEXT_KEYS = frozenset({"text", "body", "message_text", "caption"})
# Any run of 8+ digits (optionally with a leading +) inside free text is treated as a phone.
_DIGITS = re.compile(r"\+?\d{8,}")


def mask_phone(value: str) -> str:
    """Keep the last 4 digits: enough to tell two customers apart in a log, not to call them."""
    digits = "".join(c for c in value if c.isdigit())
    if len(digits) <= 4:
        return "****"
    return "*" * (len(digits) - 4) + digits[-4:]


def _mask_in_text(value: str) -> str:
    return _DIGITS.sub(lambda m: mask_phone(m.group(0)), value)


def redact_personal_data(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask phone numbers and message text in every event."""
    for key, value in list(event_dict.items()):
        if key in _PHONE_KEYS and isinstance(value, str):
            event_dict[key] = mask_phone(value)
        elif key in _TEXT_KEYS and isinstance(value, str):
            event_dict[key] = f"<{len(value)} chars>"
        elif key == "event" and isinstance(value, str):
            event_dict[key] = _mask_in_text(value)
    return event_dict


# arq's job-start line, '<s>s → <job id>:<function>(<arguments>)<extra>': the arguments are
# a job's own (a reply's body, a contact's name), which only their 80-character cut kept out
# of the logs. Shown as "…"; the job id and function stay.
_ARQ_JOB_START = "%6.2fs → %s(%s)%s"


class HideJobArguments(logging.Filter):
    """On arq's worker logger: drop job arguments from its job-start lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.msg == _ARQ_JOB_START and isinstance(args, tuple) and len(args) == 4:
            record.args = (args[0], args[1], "…", args[3])
        return True


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
        redact_personal_data,
    ]


def configure_logging(level: str = "INFO", fmt: str = "auto", *, cache_logger: bool = True) -> None:
    """Route structlog and the stdlib loggers through one ProcessorFormatter on stderr.

    Args:
        level: minimum level name.
        fmt: "json", "console" or "auto" (console on a terminal, JSON otherwise).
        cache_logger: tests pass False so that `capture_logs()` sees every event.
    """
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared = _shared_processors()
    structlog.configure(
        processors=[
            # First: below the level nothing else runs (every processor used to run for a
            # debug event that was then dropped, ~8% of the webhook's CPU at WARNING).
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=cache_logger,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if use_json else _identity,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp.access duplicates our own request log line; keep it for debugging only.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    arq_worker = logging.getLogger("arq.worker")
    if not any(isinstance(f, HideJobArguments) for f in arq_worker.filters):
        arq_worker.addFilter(HideJobArguments())


def _identity(_: WrappedLogger, __: str, event_dict: MutableMapping[str, Any]) -> EventDict:
    return dict(event_dict)
