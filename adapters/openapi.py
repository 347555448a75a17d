"""What a department's OpenAPI 3 document says: which operations it has, and the shape of the records they answer.

:mod:`adapters.rest` reads the document at start-up (its ``openapi`` key). :func:`find_operation` finds the operation
behind a configured query (``GET /insured/{key}`` is covered by ``/insured/{id}``), and :func:`record_shape` reads
the schema of its ``200`` JSON answer into a :data:`~adapters.base.RecordShape`, following ``$ref`` s (with a guard
against schemas that contain themselves) and the query's ``result`` path::

    >>> document = {"paths": {"/p/{id}": {"get": {"responses": {"200": {"content": {"application/json": {
    ...     "schema": {"type": "object", "properties": {"data": {"type": "object", "properties": {
    ...         "born": {"type": "string", "format": "date"}, "balance": {"type": "number"}}}}}}}}}}}}}
    >>> operation = find_operation(document, "GET", "/p/{key}", prefix="")
    >>> {name: shape.type for name, shape in record_shape(document, operation, "data", many=False).items()}
    {'born': 'Date', 'balance': 'Decimal'}

JSON types become the scalars of :data:`~adapters.base.SHAPE_SCALARS`: ``string`` is ``String`` (``Date``,
``DateTime`` or ``Decimal`` for ``format: date``, ``date-time``, ``decimal``), ``integer`` is ``Int``, ``number`` is
``Decimal`` (amounts of money stay exact), ``boolean`` is ``Boolean``; an ``object`` is ``Object`` with its fields,
an ``array`` is its items' shape with ``many``. A schema met again inside itself (an account listing its
sub-accounts) is an ``Object`` without fields there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from adapters.base import FieldShape, RecordShape
from gateway.errors import ConfigError

__all__ = [
    "OPENAPI_METHODS",
    "ShapeMismatch",
    "check_operations",
    "find_operation",
    "operations",
    "path_matches",
    "record_shape",
]

OPENAPI_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_PATH_PARAM = re.compile(r"\{[^{}/]*\}")
_STRING_FORMATS = {"date": "Date", "date-time": "DateTime", "decimal": "Decimal"}
_SCALARS = {"integer": "Int", "number": "Decimal", "boolean": "Boolean", "string": "String"}
_LISTED_FIELDS = 20
_LISTED_OPERATIONS = 30


class ShapeMismatch(ValueError):
    """A query's ``result`` path is not in the schema of its operation's answer; the message says where it stops."""


def operations(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The document's operations as ``(METHOD, path template)``, in its order."""
    return [
        (method.upper(), path)
        for path, item in document["paths"].items()
        if isinstance(item, Mapping)
        for method in item
        if method in OPENAPI_METHODS
    ]


def path_matches(template: str, path: str, prefix: str) -> bool:
    """Whether an OpenAPI path template (``/insured/{id}``) covers a configured path (``/insured/{key}``), also
    when the document lists paths with ``prefix`` (the base URL's own path) in front."""
    literal_parts = _PATH_PARAM.split(template)
    pattern = re.compile("[^/]+".join(re.escape(part) for part in literal_parts))
    path = path.split("?", 1)[0]
    return bool(pattern.fullmatch(path) or (prefix and pattern.fullmatch(prefix + path)))


def find_operation(document: Mapping[str, Any], method: str, path: str, *, prefix: str) -> Mapping[str, Any] | None:
    """The operation object for ``method path``, or ``None`` when the document has none."""
    for op_method, op_path in operations(document):
        if op_method == method and path_matches(op_path, path, prefix):
            operation = document["paths"][op_path][op_method.lower()]
            return operation if isinstance(operation, Mapping) else None
    return None


def check_operations(
    document: Mapping[str, Any],
    declared: Mapping[str, Sequence[tuple[str, str, str]]],
    *,
    where: str,
    prefix: str,
) -> None:
    """Refuse, with a :class:`ConfigError` at ``where.<query>.<key>`` listing what the document has, any declared
    ``(key, METHOD, path)`` of a query that the document lacks."""
    listing = operations(document)
    for qname, requests in declared.items():
        for key_name, method, path in requests:
            if find_operation(document, method, path, prefix=prefix) is not None:
                continue
            listed = ", ".join(f"{m} {p}" for m, p in listing[:_LISTED_OPERATIONS]) or "no operations"
            if len(listing) > _LISTED_OPERATIONS:
                listed += ", ..."
            raise ConfigError(
                f"{where}.{qname}.{key_name}", f"{method} {path} is not in the OpenAPI document; it has: {listed}"
            )


def record_shape(
    document: Mapping[str, Any], operation: Mapping[str, Any], result: str | None, *, many: bool
) -> RecordShape | None:
    """The fields of one record the operation answers, after the dotted ``result`` path (and, with ``many``, the
    list's items); ``None`` where the document does not describe them (no JSON schema, a free-form object).

    Raises :class:`ShapeMismatch` when the schema describes properties and ``result`` names one it lacks.
    """
    schema = _answer_schema(operation)
    if schema is None:
        return None
    reader = _Reader(document)
    walked: list[str] = []
    for part in result.split(".") if result else ():
        resolved = reader.resolve(schema, frozenset())
        if resolved is None:
            return None
        if _kind(resolved) == "array" and part.isdigit():
            schema = resolved.get("items")
        else:
            properties = resolved.get("properties")
            if not isinstance(properties, Mapping) or not properties:
                return None
            if part not in properties:
                where = ".".join(walked) or "the top of the answer"
                listed = ", ".join(list(properties)[:_LISTED_FIELDS])
                raise ShapeMismatch(f"the answer has no '{part}' at {where} (it has: {listed})")
            schema = properties[part]
        walked.append(part)
        if not isinstance(schema, Mapping):
            return None
    shape = reader.shape(schema, frozenset())
    if many and not shape.many:
        raise ShapeMismatch(f"the answer at {'.'.join(walked) or 'the top'} is not a list (many: true)")
    if shape.type != "Object" or not shape.fields:
        return None
    return shape.fields


def _answer_schema(operation: Mapping[str, Any]) -> Mapping[str, Any] | None:
    responses = operation.get("responses")
    if not isinstance(responses, Mapping):
        return None
    answers = [responses.get("200"), *(value for status, value in responses.items() if str(status).startswith("2"))]
    for answer in answers:
        content = answer.get("content") if isinstance(answer, Mapping) else None
        if not isinstance(content, Mapping):
            continue
        for media_type, body in content.items():
            schema = body.get("schema") if isinstance(body, Mapping) else None
            if str(media_type).split(";")[0].strip().endswith("json") and isinstance(schema, Mapping):
                return schema
    return None


def _kind(schema: Mapping[str, Any]) -> str | None:
    """The schema's JSON type (one of a 3.1 list besides ``null``; ``object`` when only properties say so)."""
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind is None and "properties" in schema:
        kind = "object"
    if kind is None and "items" in schema:
        kind = "array"
    return kind if isinstance(kind, str) else None


class _Reader:
    """Resolves references within one document and turns schemas into shapes."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self._document = document

    def resolve(self, schema: Mapping[str, Any], seen: frozenset[str]) -> Mapping[str, Any] | None:
        """``schema`` with ``$ref`` followed, ``allOf`` merged and a lone ``oneOf``/``anyOf`` variant taken;
        ``None`` for a reference already being expanded (a schema containing itself) or one that leads nowhere."""
        while "$ref" in schema:
            ref = schema["$ref"]
            if not isinstance(ref, str) or ref in seen or not ref.startswith("#/"):
                return None
            seen = seen | {ref}
            target: Any = self._document
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                target = target.get(part) if isinstance(target, Mapping) else None
            if not isinstance(target, Mapping):
                return None
            schema = target
        if isinstance(parts := schema.get("allOf"), list):
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            properties: dict[str, Any] = dict(merged.get("properties") or {})
            for part in parts:
                resolved = self.resolve(part, seen) if isinstance(part, Mapping) else None
                if resolved is not None:
                    properties.update(resolved.get("properties") or {})
                    merged.setdefault("type", resolved.get("type"))
            return merged | {"properties": properties}
        for combinator in ("oneOf", "anyOf"):
            variants = schema.get(combinator)
            if isinstance(variants, list):
                typed = [v for v in variants if isinstance(v, Mapping) and v.get("type") != "null"]
                if len(typed) == 1:
                    return self.resolve(typed[0], seen)
        return schema

    def shape(self, schema: Mapping[str, Any], seen: frozenset[str]) -> FieldShape:
        ref = schema.get("$ref")
        resolved = self.resolve(schema, seen)
        if resolved is None:  # a schema containing itself (its fields are given further up), or a dead reference
            name = str(ref).rsplit("/", 1)[-1] if isinstance(ref, str) else "schema"
            return FieldShape("Object", fields={}, description=f"{name}, not expanded again")
        if isinstance(ref, str):
            seen = seen | {ref}
        description = str(resolved.get("description") or resolved.get("title") or "")
        kind = _kind(resolved)
        if kind == "array":
            items = resolved.get("items")
            item = self.shape(items, seen) if isinstance(items, Mapping) else FieldShape("String")
            return FieldShape(item.type, many=True, fields=item.fields, description=description or item.description)
        if kind == "object":
            properties = resolved.get("properties")
            fields = {
                str(name): self.shape(value, seen)
                for name, value in (properties.items() if isinstance(properties, Mapping) else ())
                if isinstance(value, Mapping)
            }
            return FieldShape("Object", fields=fields, description=description)
        if kind == "string":
            return FieldShape(_STRING_FORMATS.get(str(resolved.get("format")), "String"), description=description)
        return FieldShape(_SCALARS.get(kind or "", "String"), description=description)
