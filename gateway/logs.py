"""What the gateway's logs may say: personal values and credentials never appear in clear.

:func:`redact` is the one redaction every log record goes through. ID numbers (GB 11643, and 18 characters of that
shape with a wrong check character), credit codes (GB 32100), JWTs, ``Bearer``/``Basic`` credentials, API keys and
credential query parameters are replaced by a short hash, keyed per process, so that lines about one value can be
told together without the value being guessable from them::

    >>> redact("no record for 11010519491231002X")  # doctest: +ELLIPSIS
    'no record for id:...'
    >>> redact("key owk_0123456789abcdef_" + "s" * 43 + " refused")
    'key apikey:0123456789abcdef refused'

:class:`RedactingFilter` applies it to a record in place: the formatted message, the traceback and the stack; for
uvicorn's access log, the query string's values (``GET /graphql?query=***&variables=***``).
:func:`install_redaction` makes every record the process creates pass through it (the record factory), whatever
handlers are configured -- an embedding application's, pytest's. :func:`logging_config` is the configuration
``onewindow serve`` and ``onewindow demo`` hand to uvicorn: the filter on every handler, the gateway's own loggers
shown at the chosen level, and zeep's transport (which logs whole envelopes, names and addresses included, at DEBUG)
kept at INFO.

Two formats (``onewindow serve --log-format json|text``): ``text`` for a terminal, as uvicorn prints, with its
access line per request; ``json``, one JSON object per line for a log collector: ``time`` (UTC, ISO 8601),
``level``, ``logger``, ``message`` and the record's fields -- one line per request (``onewindow.requests``:
``request_id``, ``principal`` as a :func:`pseudonym`, ``method``, ``path``, ``status``, ``outcome``,
``duration_ms``) and one per department call (``onewindow.calls``: ``request_id``, ``source``, ``operation``,
``keys``, ``cache``, ``outcome``, ``retries``, ``breaker``, ``duration_ms``), with ``trace_id`` when tracing is on.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable
from typing import Any, Literal

import uvicorn.config
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from gateway.keys import is_credit_code, is_id_number

__all__ = [
    "LOG_FORMATS",
    "EventFormatter",
    "LogFormat",
    "RedactingFilter",
    "install_redaction",
    "logging_config",
    "pseudonym",
    "redact",
    "redact_record",
    "redact_target",
]

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
REQUESTS_LOGGER = "onewindow.requests"
CALLS_LOGGER = "onewindow.calls"

_KEY = secrets.token_bytes(16)  # per process: a hash in the log cannot be checked against a guessed ID number
_REDACTED = "***"
_ACCESS_LOGGER = "uvicorn.access"
_KEPT_PARAMETERS = frozenset({"operationName"})  # query-string values an access log line may show (redacted)

# Bounds for identifiers: not inside a longer run of letters and digits, but possibly right after a %-escape
# (``%2211010519491231002X%22`` in an encoded query string).
_BEFORE = r"(?:(?<![0-9A-Za-z])|(?<=%[0-9A-Fa-f]{2}))"
_AFTER = r"(?![0-9A-Za-z])"
_DATE = r"(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
_CREDIT = "[0-9A-HJ-NPQRTUWXY]"  # GB 32100: digits and capitals but I, O, S, V, Z
_PATTERN = re.compile(
    "|".join(
        (
            r"(?P<apikey>\bowk_(?P<key_id>[0-9a-f]{16})_[A-Za-z0-9_-]{20,}|\bowk_[A-Za-z0-9_-]{8,})",
            r"(?P<jwt>\beyJ[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*){2,4})",
            r"(?P<scheme>\b(?:Bearer|Basic)\s+)(?!realm=|error=|scope=)(?P<credential>[A-Za-z0-9._~+/=-]+)",
            r"(?P<param>\b(?:\w*token|api_?key|ticket|password|passwd|\w*secret)=)(?P<param_value>[^&\s\"'<>]+)",
            # ID numbers: GB 11643 (18 characters) and the first-generation 15 digits
            rf"{_BEFORE}(?P<id>[1-9]\d{{5}}(?:18|19|20)\d{{2}}{_DATE}\d{{3}}[0-9Xx]|[1-9]\d{{7}}{_DATE}\d{{3}}){_AFTER}",
            # a credit code, or an ID number mistyped (a wrong check character, an impossible date): told apart by
            # their check characters when they can be
            rf"{_BEFORE}(?P<code>{_CREDIT}{{2}}\d{{6}}{_CREDIT}{{10}}|\d{{17}}[0-9A-Za-z]){_AFTER}",
        )
    ),
    re.IGNORECASE,
)


def _digest(value: str) -> str:
    return hmac.new(_KEY, value.encode(), hashlib.sha256).hexdigest()[:6]


def _replace(match: re.Match[str]) -> str:
    if match["apikey"] is not None:
        key_id = match["key_id"]  # public: it names the key in listings and in ``onewindow keys revoke``
        return f"apikey:{key_id}" if key_id is not None else f"apikey:{_digest(match[0])}"
    if match["jwt"] is not None:
        return f"jwt:{_digest(match[0])}"
    if match["credential"] is not None:
        return f"{match['scheme']}tok:{_digest(match['credential'])}"
    if match["param_value"] is not None:
        return f"{match['param']}{_REDACTED}"
    value = match[0].upper()
    if match["code"] is not None and (is_credit_code(value) or not (value[:17].isdigit() or is_id_number(value))):
        return f"code:{_digest(value)}"
    return f"id:{_digest(value)}"


def redact(text: str) -> str:
    """``text`` with ID numbers, credit codes, tokens and API keys replaced by short keyed hashes.

    >>> redact("Authorization: Bearer abc.def-ghi")  # doctest: +ELLIPSIS
    'Authorization: Bearer tok:...'
    >>> redact("/cb?ticket=ST-1-abc&next=/")
    '/cb?ticket=***&next=/'
    >>> redact("request 3f2a9c1e88 for 2024-01-31 took 120 ms")
    'request 3f2a9c1e88 for 2024-01-31 took 120 ms'
    """
    return _PATTERN.sub(_replace, text)


def pseudonym(value: str) -> str:
    """A short keyed hash of ``value`` (a principal's subject), the same within this process.

    >>> pseudonym("wang.fang") == pseudonym("wang.fang"), pseudonym("wang.fang").startswith("p:")
    (True, True)
    """
    return f"p:{_digest(value)}"


def redact_target(target: str) -> str:
    """A request target with its query string's values hidden, and what is left redacted.

    >>> redact_target("/graphql?query={ viewer { subject } }&operationName=Me")
    '/graphql?query=***&operationName=Me'
    """
    path, mark, query = target.partition("?")
    if not mark:
        return redact(path)
    shown = []
    for pair in query.split("&"):
        name, equals, value = pair.partition("=")
        shown.append(f"{name}={redact(value) if name in _KEPT_PARAMETERS else _REDACTED}" if equals else name)
    return redact(f"{path}?{'&'.join(shown)}")


_FORMATTER = logging.Formatter()


def redact_record(record: logging.LogRecord) -> None:
    """Redact ``record`` in place, once: its message (arguments merged in), traceback and stack."""
    if getattr(record, "onewindow_redacted", False):
        return
    record.__dict__["onewindow_redacted"] = True
    args = record.args
    if record.name == _ACCESS_LOGGER and isinstance(args, tuple) and len(args) == 5:
        # uvicorn's access formatter reads these five arguments back: keep their shape
        client, method, target, version, status = args
        record.args = (client, method, redact_target(str(target)), version, status)
    else:
        try:
            message = record.getMessage()
        except Exception:  # a wrong format string: say what was logged rather than lose the line
            message = f"{record.msg!r} % {args!r}"
        record.msg = redact(message)
        record.args = None
    if record.exc_info:
        if not record.exc_text:
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        # formatters print exc_text; without exc_info none can render the traceback again, unredacted
        record.exc_info = None
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


class RedactingFilter(logging.Filter):
    """Redact every record that passes (see :func:`redact_record`); drops none."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def install_redaction() -> None:
    """Redact every log record this process creates from now on, whoever handles it. Idempotent."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "onewindow_redacts", False):
        return

    def redacting(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        redact_record(record)
        return record

    redacting_factory: Callable[..., logging.LogRecord] = redacting
    redacting_factory.onewindow_redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacting_factory)


class EventFormatter(JsonFormatter):
    """One JSON object per record: ``time``, ``level``, ``logger``, ``message`` and the record's own fields.

    >>> import json, logging
    >>> record = logging.makeLogRecord({"name": "onewindow.calls", "levelname": "INFO", "msg": "hrss ok",
    ...                                 "source": "hrss", "created": 0})
    >>> line = json.loads(EventFormatter().format(record))
    >>> line["time"], list(line)
    ('1970-01-01T00:00:00+00:00', ['time', 'level', 'logger', 'message', 'source'])
    """

    def __init__(self) -> None:
        super().__init__(
            "{levelname}{name}{message}",
            style="{",
            timestamp="time",
            rename_fields={"levelname": "level", "name": "logger"},
            # the redaction's mark, and uvicorn's coloured copy of a message (its format string, unfilled)
            reserved_attrs=[*RESERVED_ATTRS, "onewindow_redacted", "color_message"],
            json_ensure_ascii=False,
        )

    def add_fields(self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_record, record, message_dict)
        # time, level, logger and message first: a reader of the raw lines scans down the left edge
        fields = dict(log_record)
        log_record.clear()
        for key in ("time", "level", "logger", "message"):
            log_record[key] = fields.pop(key)
        log_record.update(fields)


def logging_config(level: str = "info", log_format: LogFormat = "text") -> dict[str, Any]:
    """The ``logging.config.dictConfig`` of the gateway's process, for uvicorn's ``log_config``.

    uvicorn's own handlers and formatters, each with :class:`RedactingFilter`; the root logger (the gateway's
    ``onewindow.*`` loggers and the libraries') on a handler at ``level``. ``text``: the request and department
    call lines only at ``debug`` (uvicorn's access line says enough on a terminal). ``json``: every handler writes
    :class:`EventFormatter` lines, and the request lines replace uvicorn's access log.

    >>> logging_config("debug")["root"]
    {'handlers': ['gateway'], 'level': 'DEBUG'}
    >>> logging_config("info", "json")["loggers"]["uvicorn.access"]["handlers"]
    []
    """
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["filters"] = {"redact": {"()": RedactingFilter}}
    config["formatters"]["gateway"] = {
        "()": "uvicorn.logging.DefaultFormatter",
        "fmt": "%(levelprefix)s %(name)s: %(message)s",
        "use_colors": None,
    }
    config["handlers"]["gateway"] = {
        "formatter": "gateway",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
    }
    for handler in config["handlers"].values():
        handler["filters"] = ["redact"]
    config["root"] = {"handlers": ["gateway"], "level": level.upper()}
    # zeep's transport logs whole SOAP envelopes (names, addresses) at DEBUG: more than redaction can clean
    config["loggers"]["zeep.transports"] = {"level": "INFO"}
    if log_format == "json":
        config["formatters"] = {"event": {"()": EventFormatter}}
        for handler in config["handlers"].values():
            handler["formatter"] = "event"
        config["loggers"]["uvicorn.access"] = {"handlers": [], "level": "WARNING", "propagate": False}
    elif level.upper() != "DEBUG":
        for name in (REQUESTS_LOGGER, CALLS_LOGGER):
            config["loggers"][name] = {"level": "ERROR"}
    return config
