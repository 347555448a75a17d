"""The one redaction every log record goes through, the filter that applies it, and the gateway's logging setup."""

from __future__ import annotations

import doctest
import io
import logging
import logging.config
import re
from collections.abc import Iterator

import pytest

import gateway.logs
from demo.data import SAMPLE_ENTITY_CODE, SAMPLE_PERSON_ID
from gateway.logs import RedactingFilter, install_redaction, logging_config, redact

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjLTEiLCJpZF9udW1iZXIiOiIxMTAxMDUxOTQ5MTIzMTAwMlgifQ.c2lnbmF0dXJlLWJ5dGVz"
API_KEY = "owk_0123456789abcdef_" + "Zx9-_q" * 8


def test_the_docstring_examples_hold() -> None:
    assert doctest.testmod(gateway.logs).failed == 0


@pytest.mark.parametrize(
    ("text", "gone", "label"),
    [
        (f"no record for {SAMPLE_PERSON_ID}", SAMPLE_PERSON_ID, "id:"),
        (f"no record for {SAMPLE_PERSON_ID.lower()}", SAMPLE_PERSON_ID.lower(), "id:"),
        ("mistyped 11010519491231002Y here", "11010519491231002Y", "id:"),  # wrong check character: still one
        ("impossible date 110105194913990021", "110105194913990021", "id:"),
        ("first generation 110105491231002", "110105491231002", "id:"),
        (f"entity {SAMPLE_ENTITY_CODE} refused", SAMPLE_ENTITY_CODE, "code:"),
        (f"<IdCardNo>{SAMPLE_PERSON_ID}</IdCardNo>", SAMPLE_PERSON_ID, "id:"),
        (f"身份证{SAMPLE_PERSON_ID}无记录", SAMPLE_PERSON_ID, "id:"),
        (f"?variables=%7B%22id%22%3A%22{SAMPLE_PERSON_ID}%22%7D", SAMPLE_PERSON_ID, "id:"),
        (f"GET /insured/{SAMPLE_PERSON_ID}?x=1", SAMPLE_PERSON_ID, "id:"),
        (f"token {JWT} expired", JWT, "jwt:"),
        ("Authorization: Bearer opaque-token_123", "opaque-token_123", "Bearer tok:"),
        ("Authorization: Basic b25ld2luZG93OnNlY3JldA==", "b25ld2luZG93OnNlY3JldA==", "Basic tok:"),
        ("credentials refused: token expired", "", "token expired"),  # prose stays
        (f"X-API-Key: {API_KEY}", API_KEY[21:], "apikey:0123456789abcdef"),
        ("/cb?ticket=ST-1-abcdef&next=/", "ST-1-abcdef", "ticket=***"),
        ("/graphql?access_token=opaque&query=x", "opaque", "access_token=***"),
    ],
)
def test_personal_values_and_credentials_become_short_hashes(text: str, gone: str, label: str) -> None:
    redacted = redact(text)
    assert not gone or gone not in redacted
    assert label in redacted


def test_the_same_value_hashes_alike_and_different_values_apart() -> None:
    first, again, other = (redact(v) for v in (SAMPLE_PERSON_ID, SAMPLE_PERSON_ID.lower(), "320506196210131429"))
    assert re.fullmatch(r"id:[0-9a-f]{6}", first)
    assert first == again
    assert first != other


@pytest.mark.parametrize(
    "text",
    [
        "request 0ca72b42b7c342ed9632025542acd7a8 took 120 ms",  # a request id: hex, not an identifier
        "onewindow:hrss:insured:8effcd84a26a3cf2c3122dd9ebdcb79e07bc00e37ada75dcd4c9bad3cdb23536",  # a cache key
        'WWW-Authenticate: Bearer realm="onewindow", error="invalid_token"',
        "FORBIDDEN reason=PURPOSE_REQUIRED operation=Lookup path=person.name request=91198558",
        "listening on 127.0.0.1:8000 at 2026-12-05 08:31:52",
    ],
)
def test_what_is_not_personal_is_left_alone(text: str) -> None:
    assert redact(text) == text


def _record(name: str, msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, exc_info)


def _raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


def test_the_filter_redacts_message_arguments_and_traceback() -> None:
    record = _record(
        "onewindow.sources", "adapter %s failed for %s", "hrss", SAMPLE_PERSON_ID, exc=_raised(KeyError(JWT))
    )
    assert RedactingFilter().filter(record)
    text = logging.Formatter().format(record)
    assert SAMPLE_PERSON_ID not in text
    assert JWT not in text
    assert "adapter hrss failed for id:" in text
    assert "Traceback" in text
    assert "KeyError: 'jwt:" in text
    assert record.exc_info is None  # no formatter can render the traceback again, unredacted


def test_the_access_log_shows_the_path_and_hides_query_values() -> None:
    target = (
        f"/graphql?query=%7B+person%28idNumber%3A+%22{SAMPLE_PERSON_ID}%22%29&operationName=Lookup&access_token={JWT}"
    )
    record = _record("uvicorn.access", '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", target, "1.1", 200)
    RedactingFilter().filter(record)
    assert isinstance(record.args, tuple)
    assert len(record.args) == 5
    assert record.getMessage() == (
        '127.0.0.1:5000 - "GET /graphql?query=***&operationName=Lookup&access_token=*** HTTP/1.1" 200'
    )


@pytest.fixture
def root_restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    factory = logging.getLogRecordFactory()
    zeep = logging.getLogger("zeep.transports")
    zeep_level = zeep.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.setLogRecordFactory(factory)
        zeep.setLevel(zeep_level)


def test_the_served_configuration_redacts_every_handler(
    root_restored: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logging.setLogRecordFactory(logging.LogRecord)  # only the handlers' filters are at work here
    logging.config.dictConfig(logging_config("debug"))
    logging.getLogger("onewindow.sources").warning("no record for %s", SAMPLE_PERSON_ID)
    logging.getLogger("zeep.transports").debug("HTTP Post: <Name>张伟</Name>")
    err = capsys.readouterr().err
    assert "onewindow.sources: no record for id:" in err
    assert SAMPLE_PERSON_ID not in err
    assert "张伟" not in err  # zeep's envelopes stay out, even at DEBUG


def test_installed_redaction_covers_handlers_the_gateway_did_not_configure(root_restored: None) -> None:
    install_redaction()
    install_redaction()  # idempotent: one wrapper
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("some.library")
    logger.addHandler(handler)
    try:
        logger.warning("sent %s with %s", SAMPLE_ENTITY_CODE, f"Bearer {JWT}")
    finally:
        logger.removeHandler(handler)
    assert SAMPLE_ENTITY_CODE not in stream.getvalue()
    assert JWT not in stream.getvalue()
    assert getattr(logging.getLogRecordFactory(), "onewindow_redacts", False)
