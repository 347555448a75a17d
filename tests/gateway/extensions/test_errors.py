"""Each GraphQL error is logged once: one line for an expected outcome, ERROR with a redacted traceback for a bug."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from graphql.error import GraphQLError

from demo.data import SAMPLE_PERSON_ID
from gateway.errors import BadUserInput, Forbidden, SourceUnavailable
from gateway.extensions.errors import log_error
from gateway.logs import install_redaction


@pytest.fixture
def factory_restored() -> Iterator[None]:
    factory = logging.getLogRecordFactory()
    try:
        yield
    finally:
        logging.setLogRecordFactory(factory)


def _raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


def _graphql_error(original: Exception | None, path: list[str | int] | None = None) -> GraphQLError:
    return GraphQLError("message", path=path, original_error=original)


@pytest.mark.parametrize(
    ("original", "level", "line"),
    [
        (Forbidden("PURPOSE_REQUIRED", "a purpose is needed"), logging.INFO, "FORBIDDEN reason=PURPOSE_REQUIRED"),
        (BadUserInput(f"{SAMPLE_PERSON_ID} is not valid"), logging.INFO, "BAD_USER_INPUT operation=-"),
        (
            SourceUnavailable("hrss", "connection refused"),
            logging.WARNING,
            'SOURCE_UNAVAILABLE source=hrss detail="connection refused"',
        ),
        (None, logging.INFO, "GRAPHQL_VALIDATION_FAILED operation=-"),
    ],
)
def test_an_expected_outcome_is_one_line_without_traceback_or_message(
    caplog: pytest.LogCaptureFixture, original: Exception | None, level: int, line: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="onewindow.errors")
    log_error(_graphql_error(original, ["person", "name"]))
    [record] = caplog.records
    assert record.levelno == level
    assert record.getMessage().startswith(line)
    assert "path=person.name" in record.getMessage()
    assert record.exc_info is None
    assert not record.exc_text
    assert "message" not in record.getMessage()
    assert SAMPLE_PERSON_ID not in caplog.text


def test_a_bug_keeps_its_traceback_redacted(caplog: pytest.LogCaptureFixture, factory_restored: None) -> None:
    install_redaction()
    caplog.set_level(logging.DEBUG, logger="onewindow.errors")
    log_error(_graphql_error(_raised(ValueError(f"cannot map {SAMPLE_PERSON_ID}")), ["person"]))
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert record.getMessage().startswith("unexpected error operation=- path=person")
    assert "Traceback" in caplog.text
    assert "ValueError: cannot map id:" in caplog.text
    assert SAMPLE_PERSON_ID not in caplog.text
