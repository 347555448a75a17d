"""The schema extensions' hooks, run as strawberry runs them, without working them out again on every request.

strawberry wraps each extension's hook for a stage (operation, parsing, validation, execution) in a new context
manager for every request: it checks what kind of function the hook is and decorates it, which costs more than most
hooks do themselves. What a class's hook is does not change, so :class:`ExtensionsRunner` works it out once per
class and stage and, per request, only binds it to the request's extension instance. Order, nesting, exceptions and
results are strawberry's own: its context managers still enter and leave the hooks.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import (
    ExecutingContextManager,
    ExtensionContextManagerBase,
    OperationContextManager,
    ParsingContextManager,
    ValidationContextManager,
    WrappedHook,
)
from strawberry.extensions.runner import SchemaExtensionsRunner

__all__ = ["ExtensionsRunner"]

# (a context manager factory taking the extension, whether it is async), or None: no hook for that stage
_Made = tuple[Callable[[SchemaExtension], Any], bool] | None
_made: dict[tuple[type[SchemaExtension], str], _Made] = {}


def _make(cls: type[SchemaExtension], stage: str) -> _Made:
    """What strawberry's ``get_hook`` builds for ``cls``'s hook of ``stage``, as a factory over the instance."""
    hook: Any = getattr(cls, stage)
    if hook is getattr(SchemaExtension, stage):
        return None
    if inspect.isgeneratorfunction(hook):
        return contextlib.contextmanager(hook), False
    if inspect.isasyncgenfunction(hook):
        return contextlib.asynccontextmanager(hook), True
    if not callable(hook):
        raise ValueError(f"Hook {stage} on {cls} must be callable, received {hook!r}")
    if inspect.iscoroutinefunction(hook):

        @contextlib.asynccontextmanager
        async def awaited(extension: SchemaExtension) -> AsyncIterator[None]:
            await hook(extension)
            yield

        return awaited, True

    @contextlib.contextmanager
    def called(extension: SchemaExtension) -> Iterator[None]:
        hook(extension)
        yield

    return called, False


class _Known(ExtensionContextManagerBase):
    """A stage's context manager whose hooks come from the per-class table."""

    def get_hook(self, extension: SchemaExtension) -> WrappedHook | None:
        key = (type(extension), self.HOOK_NAME)
        try:
            made = _made[key]
        except KeyError:
            made = _made[key] = _make(*key)
        if made is None:
            return None
        factory, is_async = made
        return WrappedHook(extension=extension, hook=functools.partial(factory, extension), is_async=is_async)


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

    def operation(self) -> OperationContextManager:
        return _Operation(self.extensions)

    def validation(self) -> ValidationContextManager:
        return _Validation(self.extensions)

    def parsing(self) -> ParsingContextManager:
        return _Parsing(self.extensions)

    def executing(self) -> ExecutingContextManager:
        return _Executing(self.extensions)
