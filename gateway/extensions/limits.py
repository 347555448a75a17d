"""Refuse hostile documents before execution: too many tokens, too deep, too many aliases, root fields or
directives, or too costly.

Every refusal is a GraphQL error with its own ``extensions.code``, reported at parse or validation time, so no
resolver runs::

    schema = build_schema([QueryLimits.factory(security.limits)])
    # { a: person(...) { ... } b: person(...) { ... } ... }  →  TOO_MANY_ALIASES

Tokens are counted with graphql-core's lexer before parsing, so a huge document is refused after its first
``max_tokens`` tokens. The other limits are one validation rule (:func:`document_limits_rule`) that walks
each operation once, following fragment spreads with each fragment's figures computed once (a fragment "bomb" of
spreads of spreads stays linear) and cycles cut (``NoFragmentCyclesRule`` reports them).

The cost estimate counts each field 1; a field with a ``first`` argument multiplies what it selects by it, a list
field without one by :data:`DEFAULT_LIST_SIZE`, except the list inside a paged field (a connection's ``edges``),
whose size ``first`` already gave. Introspection (``__schema``, ``__type``) does not count towards depth or cost:
graphql-core's ``MaxIntrospectionDepthRule`` bounds it, and production turns it off.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLNamedType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    get_named_type,
    get_nullable_type,
    is_list_type,
)
from graphql.error import GraphQLSyntaxError
from graphql.language import DocumentNode, Lexer, Source, TokenKind, VisitorAction
from graphql.validation.rules.max_introspection_depth_rule import MaxIntrospectionDepthRule
from strawberry.extensions import MaxTokensLimiter

from gateway.config import LimitsConfig

__all__ = ["DEFAULT_LIST_SIZE", "DEFAULT_REMEMBERED", "QueryLimits", "document_limits_rule"]

DEFAULT_LIST_SIZE = 10
# documents within the token limit remembered so they are lexed once (front ends send a few dozen)
DEFAULT_REMEMBERED = 512


@dataclass(frozen=True)
class _Figures:
    """What a selection set costs; ``roots`` counts its fields at the top level only."""

    depth: int = 0
    aliases: int = 0
    directives: int = 0
    cost: int = 0
    roots: int = 0

    def __add__(self, other: _Figures) -> _Figures:
        return _Figures(
            max(self.depth, other.depth),
            self.aliases + other.aliases,
            self.directives + other.directives,
            self.cost + other.cost,
            self.roots + other.roots,
        )


class _Walker:
    """Figures for one document's operations; fragments are measured once per type they are spread into."""

    def __init__(self, schema: GraphQLSchema, document: DocumentNode) -> None:
        self.schema = schema
        self.fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        self.measured: dict[tuple[str, bool], _Figures] = {}
        self.open: set[str] = set()

    def operation(self, node: OperationDefinitionNode) -> _Figures:
        root = self.schema.get_root_type(node.operation)
        return self.selections(node.selection_set, root, paged=False)

    def selections(self, selection_set: SelectionSetNode, parent: GraphQLNamedType | None, *, paged: bool) -> _Figures:
        total = _Figures()
        for selection in selection_set.selections:
            directives = len(selection.directives or ())
            if isinstance(selection, FieldNode):
                field = self.field(selection, parent, paged=paged)
                total = total + field + _Figures(directives=directives, roots=1)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                type_ = self.schema.get_type(condition.name.value) if condition else parent
                inner = self.selections(selection.selection_set, type_, paged=paged)
                total = total + inner + _Figures(directives=directives)
            elif isinstance(selection, FragmentSpreadNode):
                total = total + self.spread(selection.name.value, paged=paged) + _Figures(directives=directives)
        return total

    def spread(self, name: str, *, paged: bool) -> _Figures:
        fragment = self.fragments.get(name)
        if fragment is None or name in self.open:
            return _Figures()
        key = (name, paged)
        if key not in self.measured:
            self.open.add(name)
            type_ = self.schema.get_type(fragment.type_condition.name.value)
            figures = self.selections(fragment.selection_set, type_, paged=paged)
            self.open.discard(name)
            self.measured[key] = figures + _Figures(directives=len(fragment.directives or ()))
        return self.measured[key]

    def field(self, node: FieldNode, parent: GraphQLNamedType | None, *, paged: bool) -> _Figures:
        name = node.name.value
        aliases = 1 if node.alias else 0
        if name in ("__schema", "__type"):
            return _Figures(aliases=aliases)
        definition = getattr(parent, "fields", {}).get(name) if parent is not None else None
        return_type = get_nullable_type(definition.type) if definition is not None else None
        first = _int_argument(node, "first")
        if first is not None:
            multiplier, paged_below = first, True
        elif return_type is not None and is_list_type(return_type):
            # the list inside a paged field (a connection's edges) is the page `first` already counted
            multiplier, paged_below = (1 if paged else DEFAULT_LIST_SIZE), False
        else:
            multiplier, paged_below = 1, paged
        if node.selection_set is None:
            return _Figures(depth=1, aliases=aliases, cost=1)
        child_type = get_named_type(return_type) if return_type is not None else None
        inner = self.selections(node.selection_set, child_type, paged=paged_below)
        return _Figures(
            depth=inner.depth + 1,
            aliases=inner.aliases + aliases,
            directives=inner.directives,
            cost=1 + multiplier * inner.cost,
        )


def _int_argument(node: FieldNode, name: str) -> int | None:
    """A literal integer argument; a variable's value is not known at validation time (the default size applies)."""
    for argument in node.arguments or ():
        if argument.name.value == name:
            if isinstance(argument.value, IntValueNode):
                return max(int(argument.value.value), 0)
            return DEFAULT_LIST_SIZE
    return None


def document_limits_rule(limits: LimitsConfig) -> type[ValidationRule]:
    """A validation rule enforcing ``limits`` (depth, aliases, root fields, directives, cost) on each operation.

    Build it once per application: the validation cache keys on the rule classes.
    """

    checks = (
        ("depth", limits.max_depth, "QUERY_TOO_DEEP", "is {} levels deep; at most {} are allowed"),
        ("aliases", limits.max_aliases, "TOO_MANY_ALIASES", "uses {} aliases; at most {} are allowed"),
        ("roots", limits.max_root_fields, "TOO_MANY_ROOT_FIELDS", "asks for {} root fields; at most {} are allowed"),
        ("directives", limits.max_directives, "TOO_MANY_DIRECTIVES", "uses {} directives; at most {} are allowed"),
        ("cost", limits.max_cost, "QUERY_TOO_COSTLY", "has an estimated cost of {}; at most {} is allowed"),
    )

    class DocumentLimits(ValidationRule):
        """Refuse an operation over the gateway's limits."""

        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.walker = _Walker(context.schema, context.document)

        def enter_operation_definition(self, node: OperationDefinitionNode, *_args: object) -> VisitorAction:
            figures = self.walker.operation(node)
            name = f"Operation '{node.name.value}'" if node.name else "The operation"
            for attribute, limit, code, sentence in checks:
                value: int = getattr(figures, attribute)
                if value > limit:
                    message = f"{name} {sentence.format(value, limit)}."
                    self.report_error(GraphQLError(message, node, extensions={"code": code}))
            return self.SKIP

    return DocumentLimits


class QueryLimits(MaxTokensLimiter):
    """The token limit, the gateway's :func:`document_limits_rule` and graphql-core's introspection depth rule.

    Tokens are counted with graphql-core's lexer before the document is parsed, stopping one past the limit, so an
    oversized document costs no more than its first ``max_tokens`` tokens and is refused with ``TOO_MANY_TOKENS``.
    Documents already counted are remembered (a bounded set shared by requests), so a front end's few dozen
    documents are lexed once; the parser's own limit (strawberry's :class:`MaxTokensLimiter`) stays as a backstop.

    Build the shared state once per application with :meth:`factory`::

        extensions = [QueryLimits.factory(security.limits)]
    """

    def __init__(self, limits: LimitsConfig, rule: type[ValidationRule], counted: _Remembered) -> None:
        super().__init__(max_token_count=limits.max_tokens)
        self.rules = (rule, MaxIntrospectionDepthRule)
        self.counted = counted

    @classmethod
    def factory(cls, limits: LimitsConfig, *, remember: int = DEFAULT_REMEMBERED) -> Callable[[], QueryLimits]:
        """One instance per request, sharing the validation rule and the documents already counted."""
        rule = document_limits_rule(limits)
        counted = _Remembered(remember)
        return lambda: cls(limits, rule, counted)

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is not None:
            self._count_tokens(context.query)
        context.validation_rules = (*context.validation_rules, *self.rules)
        yield from super().on_operation()

    def _count_tokens(self, query: str) -> None:
        limit = self.max_token_count
        if len(query) <= limit:  # a token is at least one character
            return
        if self.counted.recall(query):
            return
        lexer = Lexer(Source(query))
        tokens = 0
        try:
            while lexer.advance().kind != TokenKind.EOF:
                tokens += 1
                if tokens > limit:
                    message = f"The document has more than {limit} tokens; at most {limit} are allowed."
                    raise GraphQLError(message, extensions={"code": "TOO_MANY_TOKENS"})
        except GraphQLSyntaxError:
            return  # the parser reports it, with its position
        self.counted.add(query)


class _Remembered:
    """A bounded set of strings, least recently seen dropped first."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[str, None] = OrderedDict()

    def recall(self, item: str) -> bool:
        if item not in self._items:
            return False
        self._items.move_to_end(item)
        return True

    def add(self, item: str) -> None:
        self._items[item] = None
        while len(self._items) > self.maxsize:
            self._items.popitem(last=False)
