"""The schema extensions' hooks, run as strawberry runs them, without working them out again on every request.

strawberry wraps each extension's hook for a stage (operation, parsing, validation, execution) in a new context
manager for every request: it checks what kind of function the hook is and decorates it, then enters the decorated
hooks through an exit stack, which costs more than most hooks do themselves. What a class's hook is does not change,
so :class:`ExtensionsRunner` works it out once per class and stage, as a generator function (a plain or coroutine
hook becomes one that calls it, then yields), and per request drives the request's generators itself, as
``contextlib.contextmanager`` and ``ExitStack`` would: the same order, nesting, exceptions (raised, replaced or
swallowed by a hook) and results.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from types import TracebackType
from typing import Any

from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import (
    ExecutingContextManager,
    ExtensionContextManagerBase,
    OperationContextManager,
    ParsingContextManager,
    ValidationContextManager,
)
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.types import ExecutionContext
from strawberry.utils.await_maybe import await_maybe

__all__ = ["ExtensionsRunner"]

# (a generator function over the extension, whether it is an async one), or None: no hook for that stage
_Made = tuple[Callable[[SchemaExtension], Any], bool] | None
_made: dict[tuple[type[SchemaExtension], str], _Made] = {}
_Exit = tuple[type[BaseException] | None, BaseException | None, TracebackType | None]


def _make(cls: type[SchemaExtension], stage: str) -> _Made:
    """``cls``'s hook of ``stage`` as a generator function over the instance, and whether it is async."""
    hook: Any = getattr(cls, stage)
    if hook is getattr(SchemaExtension, stage):
        return None
    if inspect.isgeneratorfunction(hook):
        return hook, False
    if inspect.isasyncgenfunction(hook):
        return hook, True
    if not callable(hook):
        raise ValueError(f"Hook {stage} on {cls} must be callable, received {hook!r}")
    if inspect.iscoroutinefunction(hook):

        async def awaited(extension: SchemaExtension) -> AsyncIterator[None]:
            await hook(extension)
            yield

        return awaited, True

    def called(extension: SchemaExtension) -> Iterator[None]:
        hook(extension)
        yield

    return called, False


def _made_for(cls: type[SchemaExtension], stage: str) -> _Made:
    key = (cls, stage)
    try:
        return _made[key]
    except KeyError:
        made = _made[key] = _make(cls, stage)
        return made


# the hooks of one stage for one list of extension classes: (the extension's place, its hook, whether async)
_Plan = list[tuple[int, Callable[[SchemaExtension], Any], bool]]
_plans: dict[tuple[tuple[type[SchemaExtension], ...], str], _Plan] = {}


class _Known(ExtensionContextManagerBase):
    """A stage's hooks from the per-class table, each a generator entered and left as a context manager."""

    running: list[tuple[Any, bool]]
    planned: list[tuple[SchemaExtension, Callable[[SchemaExtension], Any], bool]]  # (extension, hook, is async)

    def __init__(self, extensions: list[SchemaExtension], classes: tuple[type[SchemaExtension], ...]) -> None:
        key = (classes, self.HOOK_NAME)
        plan = _plans.get(key)
        if plan is None:
            plan = _plans[key] = [
                (place, *made) for place, cls in enumerate(classes) if (made := _made_for(cls, self.HOOK_NAME))
            ]
        self.planned = [(extensions[place], hook, is_async) for place, hook, is_async in plan]

    def __enter__(self) -> None:
        self.running = []
        for extension, hook, is_async in self.planned:
            if is_async:
                raise RuntimeError(
                    f"SchemaExtension hook {extension}.{self.HOOK_NAME} failed to complete synchronously."
                )
            generator: Any = hook(extension)
            try:
                next(generator)
            except StopIteration:
                raise RuntimeError("generator didn't yield") from None
            self.running.append((generator, False))

    async def __aenter__(self) -> None:
        self.running = []
        for extension, hook, is_async in self.planned:
            generator: Any = hook(extension)
            try:
                await anext(generator) if is_async else next(generator)
            except (StopIteration, StopAsyncIteration):
                raise RuntimeError("generator didn't yield") from None
            self.running.append((generator, is_async))

    def __exit__(
        self, exc_type: type[BaseException] | None, exc_val: BaseException | None, exc_tb: TracebackType | None
    ) -> None:
        unwinding = _Unwinding((exc_type, exc_val, exc_tb))
        for generator, _ in reversed(self.running):
            try:
                unwinding.left(_leave(generator, unwinding.pending))
            except BaseException:  # the hook's own exception replaces the one leaving
                unwinding.raised()
        unwinding.settle()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc_val: BaseException | None, exc_tb: TracebackType | None
    ) -> None:
        unwinding = _Unwinding((exc_type, exc_val, exc_tb))
        for generator, is_async in reversed(self.running):
            try:
                pending = unwinding.pending
                unwinding.left(await _leave_async(generator, pending) if is_async else _leave(generator, pending))
            except BaseException:  # the hook's own exception replaces the one leaving
                unwinding.raised()
        unwinding.settle()


class _Unwinding:
    """``ExitStack.__exit__``'s bookkeeping: the exception leaving the hooks, and what to raise instead."""

    def __init__(self, received: _Exit) -> None:
        self.pending = received
        self.raising = False
        self.outer = sys.exc_info()[1]  # what the caller's frame is handling, where a context chain may stop

    def left(self, swallowed: bool) -> None:
        if swallowed:
            self.raising, self.pending = False, (None, None, None)

    def raised(self) -> None:
        new = sys.exc_info()
        self._chain(new[1], self.pending[1])
        self.raising, self.pending = True, new

    def _chain(self, error: BaseException | None, old: BaseException | None) -> None:
        """The new exception's context chain ends at the one it replaced, as ``ExitStack`` fixes it."""
        while error is not None:
            context = error.__context__
            if context is None or context is old:
                return
            if context is self.outer:
                break
            error = context
        if error is not None:
            error.__context__ = old

    def settle(self) -> None:
        """Raise what a hook raised instead. An exception a hook swallowed still leaves the stage, as in strawberry
        (its stages never suppress one: the hooks outside the swallowing one only do not see it)."""
        if not self.raising:
            return
        error = self.pending[1]
        assert error is not None
        context = error.__context__
        try:
            raise error
        except BaseException:
            error.__context__ = context
            raise


def _leave(generator: Generator[None, None, None], exc: _Exit) -> bool:
    """``contextlib.contextmanager``'s ``__exit__`` for one generator: whether it swallowed the exception."""
    typ, value, traceback = exc
    if typ is None:
        try:
            next(generator)
        except StopIteration:
            return False
        raise RuntimeError("generator didn't stop")
    if value is None:
        value = typ()
    try:
        generator.throw(value)
    except BaseException as error:
        return _thrown(error, value, traceback, StopIteration)
    raise RuntimeError("generator didn't stop after throw()")


async def _leave_async(generator: AsyncGenerator[None, None], exc: _Exit) -> bool:
    """``contextlib.asynccontextmanager``'s ``__aexit__`` for one async generator."""
    typ, value, traceback = exc
    if typ is None:
        try:
            await anext(generator)
        except StopAsyncIteration:
            return False
        raise RuntimeError("generator didn't stop")
    if value is None:
        value = typ()
    try:
        await generator.athrow(value)
    except BaseException as error:
        return _thrown(error, value, traceback, StopAsyncIteration)
    raise RuntimeError("generator didn't stop after athrow()")


def _thrown(error: BaseException, value: BaseException, traceback: TracebackType | None, stop: type) -> bool:
    """What ``contextlib`` makes of the exception a generator ended with once ``value`` was thrown into it: swallowed
    if it simply stopped; ``value`` itself (or the ``RuntimeError`` a thrown ``StopIteration`` became) goes on
    leaving; anything else is raised in its place."""
    if isinstance(error, stop):
        return error is not value
    if error is value or (
        isinstance(error, RuntimeError)
        and isinstance(value, StopIteration | StopAsyncIteration)
        and error.__cause__ is value
    ):
        value.__traceback__ = traceback
        return False
    raise error


class _Operation(_Known, OperationContextManager):
    pass


class _Validation(_Known, ValidationContextManager):
    pass


class _Parsing(_Known, ParsingContextManager):
    pass


class _Executing(_Known, ExecutingContextManager):
    pass


class ExtensionsRunner(SchemaExtensionsRunner):
    """strawberry's runner over the per-class hook table (see the module's docstring)."""

    def __init__(self, execution_context: ExecutionContext, extensions: list[SchemaExtension] | None = None) -> None:
        super().__init__(execution_context, extensions)
        self._classes = tuple(map(type, self.extensions))

    def operation(self) -> OperationContextManager:
        return _Operation(self.extensions, self._classes)

    def validation(self) -> ValidationContextManager:
        return _Validation(self.extensions, self._classes)

    def parsing(self) -> ParsingContextManager:
        return _Parsing(self.extensions, self._classes)

    def executing(self) -> ExecutingContextManager:
        return _Executing(self.extensions, self._classes)

    async def get_extensions_results(self, ctx: ExecutionContext) -> dict[str, Any]:
        # an extension that keeps the base class's get_results has none: skipping it changes nothing
        data: dict[str, Any] = {}
        for extension in self.extensions:
            if type(extension).get_results is not _NO_RESULTS:
                data.update(await await_maybe(extension.get_results()))
        data.update(ctx.extensions_results)
        return data


_NO_RESULTS = SchemaExtension.get_results
