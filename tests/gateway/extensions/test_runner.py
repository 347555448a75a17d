"""gateway/extensions/runner.py: the gateway's schema runs extension hooks exactly as strawberry's own runner does
(same order, nesting, kinds of hook, errors and results), with what each class's hook is worked out once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import strawberry
from strawberry.extensions import SchemaExtension

from gateway.extensions import runner
from gateway.extensions.errors import LoggedSchema

Log = list[str]


def extensions(log: Log) -> list[type[SchemaExtension]]:
    class Generator(SchemaExtension):
        def on_operation(self) -> Iterator[None]:
            log.append("gen op in")
            yield
            log.append("gen op out")

        def on_execute(self) -> Iterator[None]:
            log.append("gen exec in")
            yield
            log.append("gen exec out")

    class AsyncGenerator(SchemaExtension):
        async def on_operation(self) -> AsyncIterator[None]:
            log.append("agen op in")
            yield
            log.append("agen op out")

        async def on_validate(self) -> AsyncIterator[None]:
            log.append("agen validate in")
            yield
            log.append("agen validate out")

        def get_results(self) -> dict[str, Any]:
            return {"seen": len(log)}

    class Plain(SchemaExtension):
        def on_parse(self) -> None:  # type: ignore[override]
            log.append("plain parse")

        async def on_execute(self) -> None:  # type: ignore[override]
            log.append("async plain exec")

    class Failing(SchemaExtension):
        def on_execute(self) -> Iterator[None]:
            yield
            if self.execution_context.query and "boom" in self.execution_context.query:
                raise ValueError("boom")

    class Swallowing(SchemaExtension):  # entered before Failing, so left after it: sees its exception
        def on_execute(self) -> Iterator[None]:
            try:
                yield
            except ValueError as error:
                log.append(f"swallowed {error}")

    class Replacing(SchemaExtension):
        async def on_execute(self) -> AsyncIterator[None]:
            try:
                yield
            except KeyError as error:
                raise LookupError(f"replaced {error}") from error

    class Raising(SchemaExtension):
        def on_execute(self) -> Iterator[None]:
            query = self.execution_context.query or ""
            if "early" in query:
                raise KeyError("before yield")
            yield
            if "late" in query:
                raise KeyError("after yield")

    return [Generator, AsyncGenerator, Plain, Swallowing, Replacing, Raising, Failing]


@strawberry.type
class Query:
    @strawberry.field
    def hello(self, boom: bool = False) -> str:
        return "world"


async def run(schema_class: type[strawberry.Schema], query: str) -> tuple[Log, Any]:
    log: Log = []
    schema = schema_class(query=Query, extensions=extensions(log))
    result = await schema.execute(query)
    return log, result


async def outcome(schema_class: type[strawberry.Schema], query: str) -> tuple[Log, Any, str | None]:
    """What the hooks logged, the result, and the exception that left execution (type, message and context)."""
    try:
        log, result = await run(schema_class, query)
    except Exception as error:
        context = error.__context__
        return [], None, f"{type(error).__name__}: {error} <- {type(context).__name__}: {context}"
    return log, result, None


@pytest.mark.parametrize(
    "query",
    [
        "{ hello }",
        "{ hello(boom: true) }",  # raised after yield, swallowed by an outer hook
        "{ nope }",
        "{ hello",
        "query late { hello }",  # raised after yield, replaced by an outer async hook
        "query early { hello }",  # raised before yield
    ],
)
async def test_hooks_run_as_strawberry_runs_them(query: str) -> None:
    ours, answer, ours_raised = await outcome(LoggedSchema, query)
    theirs, expected, theirs_raised = await outcome(strawberry.Schema, query)
    assert ours == theirs
    assert ours_raised == theirs_raised
    if expected is None:
        assert answer is None
        assert theirs_raised
        return
    assert ours  # hooks ran
    assert answer.data == expected.data
    assert [e.message for e in answer.errors or []] == [e.message for e in expected.errors or []]
    assert answer.extensions == expected.extensions


async def test_each_class_hook_is_worked_out_once() -> None:
    log: Log = []
    classes = extensions(log)
    schema = LoggedSchema(query=Query, extensions=classes)
    await schema.execute("{ hello }")
    known = {key for key in runner._made if key[0] in classes}
    await schema.execute("{ hello }")
    assert {key for key in runner._made if key[0] in classes} == known
    assert (classes[0], "on_operation") in known
    assert runner._made[(classes[0], "on_parse")] is None  # no hook: nothing to enter
