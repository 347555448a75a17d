"""Start-up checks of a configuration against the unified catalog and the adapters' own option models.

Everything that can be checked without reaching a department is checked here, so that a wrong file fails when the
gateway starts, naming the source and key, and never on the first request.
"""

from __future__ import annotations

from enum import Enum

from adapters.registry import get_adapter_class
from gateway.config import FieldMap, GatewayConfig, SourceConfig
from gateway.errors import ConfigError
from gateway.model import Catalog, FieldSpec, ValueType

__all__ = ["SEARCH_FILTERS", "check_config", "query_of"]

# What each listable entity may be filtered by: the cases listing, and the workflow's view of a department's items.
SEARCH_FILTERS = {"Case": ("applicant", "status", "serviceItem"), "ServiceItem": ("department",)}


def query_of(source: SourceConfig, fmap: FieldMap) -> str:
    """The query a provided field is read from: its own ``query``, or the source's only one."""
    if fmap.query is not None:
        return fmap.query
    return next(iter(source.queries))


def check_config(config: GatewayConfig) -> None:
    catalog = config.catalog  # the model itself is checked as it is built
    for name, source in config.sources.items():
        _check_source(name, source, catalog)


def _check_source(name: str, source: SourceConfig, catalog: Catalog) -> None:
    prefix = f"sources.{name}"
    try:
        adapter_cls = get_adapter_class(source.kind)
    except (KeyError, ImportError, TypeError) as exc:
        raise ConfigError(f"{prefix}.kind", str(exc).strip("'\"")) from None
    adapter_cls.parse_options(name, source)
    adapter_cls.parse_queries(name, source)
    if not source.provides and source.raw is None:
        raise ConfigError(f"{prefix}.provides", "required: the unified fields this source provides, or 'raw'")

    entity_of_query: dict[str, str] = {}
    for target, fmap in source.provides.items():
        path = f"{prefix}.provides.{target}"
        entity_name, _, field_name = target.partition(".")
        entity = catalog.get(entity_name)
        if entity is None:
            raise ConfigError(path, f"unknown entity {entity_name!r}; known: {', '.join(catalog)}")
        spec = entity.fields.get(field_name)
        if spec is None:
            known = ", ".join(f for f, s in entity.fields.items() if s.computed is None)
            raise ConfigError(path, f"{entity_name} has no field {field_name!r}; known: {known}")
        if spec.computed is not None:
            raise ConfigError(path, f"{entity_name}.{field_name} is computed by the gateway; no source provides it")
        if fmap.query is None and len(source.queries) > 1:
            raise ConfigError(f"{path}.query", f"required: the source has queries {', '.join(source.queries)}")
        query = query_of(source, fmap)
        if query not in source.queries:
            raise ConfigError(f"{path}.query", f"no query {query!r} in {prefix}.queries")
        seen = entity_of_query.setdefault(query, entity_name)
        if seen != entity_name:
            raise ConfigError(f"{path}.query", f"query {query!r} already answers for {seen}, not {entity_name}")
        if spec.many and source.queries[query].many and fmap.value is not None and spec.is_object:
            raise ConfigError(f"{path}.value", "a list field read from a 'many' query maps each record; drop 'value'")
        if not spec.many and source.queries[query].many:
            raise ConfigError(f"{path}.query", f"query {query!r} returns many records but {target} is one value")
        _check_map(path, spec, fmap, catalog, top=True)
        _check_absent(path, spec, fmap)

    if source.raw is not None:
        _check_raw(prefix, source, catalog, entity_of_query)

    for entity_name, search in source.search.items():
        path = f"{prefix}.search.{entity_name}"
        if entity_name not in SEARCH_FILTERS:
            raise ConfigError(path, f"only {', '.join(SEARCH_FILTERS)} can be searched")
        if search.query not in source.queries:
            raise ConfigError(f"{path}.query", f"no query {search.query!r} in {prefix}.queries")
        if entity_of_query.get(search.query, entity_name) != entity_name:
            raise ConfigError(f"{path}.query", f"query {search.query!r} answers for another entity")
        for filter_name in search.filters:
            if filter_name not in SEARCH_FILTERS[entity_name]:
                allowed = ", ".join(SEARCH_FILTERS[entity_name])
                raise ConfigError(f"{path}.filters.{filter_name}", f"unknown filter; allowed: {allowed}")


def _check_codes(path: str, enum: type[Enum], codes: dict[str, str]) -> None:
    names = {m.name for m in enum}
    for raw, unified in codes.items():
        if unified not in names:
            raise ConfigError(
                f"{path}.codes",
                f"{unified!r} (for code {raw!r}) is not a {enum.__name__}; use one of {', '.join(sorted(names))}",
            )


def _check_raw(prefix: str, source: SourceConfig, catalog: Catalog, entity_of_query: dict[str, str]) -> None:
    raw = source.raw
    assert raw is not None
    if raw.entity not in catalog:
        raise ConfigError(f"{prefix}.raw.entity", f"unknown entity {raw.entity!r}; known: {', '.join(catalog)}")
    for i, query in enumerate(raw.queries or ()):
        if query not in source.queries:
            raise ConfigError(f"{prefix}.raw.queries[{i}]", f"no query {query!r} in {prefix}.queries")
    for query in raw.queries or list(source.queries):
        if entity_of_query.get(query, raw.entity) != raw.entity:
            raise ConfigError(
                f"{prefix}.raw.entity", f"query {query!r} answers for {entity_of_query[query]}, not {raw.entity}"
            )


def _check_absent(path: str, spec: FieldSpec, fmap: FieldMap) -> None:
    if fmap.absent is None:
        return
    if spec.many or spec.is_object or spec.ref is not None:
        raise ConfigError(f"{path}.absent", "only a single scalar or enum field takes a value for an absent record")
    if spec.enum is not None and fmap.absent not in spec.enum.__members__:
        raise ConfigError(f"{path}.absent", f"{fmap.absent!r} is not a {spec.enum.__name__}")
    if spec.value_type is ValueType.BOOL and not isinstance(fmap.absent, bool):
        raise ConfigError(f"{path}.absent", "a boolean field's absent value is true or false")


def _check_map(path: str, spec: FieldSpec, fmap: FieldMap, catalog: Catalog, *, top: bool = False) -> None:
    if not top and fmap.query is not None:
        raise ConfigError(f"{path}.query", "only a top-level field names a query")
    if not top and fmap.absent is not None:
        raise ConfigError(f"{path}.absent", "only a top-level field takes a value for an absent record")
    if spec.is_object:
        assert spec.fields is not None
        if not fmap.fields:
            raise ConfigError(f"{path}.fields", f"required: map the sub-fields {', '.join(spec.fields)}")
        for sub, sub_map in fmap.fields.items():
            sub_spec = spec.fields.get(sub)
            if sub_spec is None:
                raise ConfigError(f"{path}.fields.{sub}", f"unknown sub-field; known: {', '.join(spec.fields)}")
            _check_map(f"{path}.fields.{sub}", sub_spec, sub_map, catalog)
        if fmap.codes is not None or fmap.date_format is not None:
            raise ConfigError(path, "an object field takes 'fields', not 'codes' or 'date_format'")
        return
    if fmap.fields:
        raise ConfigError(f"{path}.fields", "only object fields have sub-fields")
    if spec.ref is not None:
        if fmap.value is None:
            raise ConfigError(f"{path}.value", f"required: the path of the referenced {spec.ref}'s key")
        if spec.ref in catalog.unions:
            if fmap.kind is None:
                raise ConfigError(f"{path}.kind", f"required: how to tell which of {spec.ref} a record refers to")
            kinds = set(catalog.union_kinds(spec.ref))
            for raw, unified in (fmap.kind.codes or {}).items():
                if unified not in kinds:
                    raise ConfigError(f"{path}.kind.codes", f"{unified!r} (for {raw!r}) is not one of {sorted(kinds)}")
        return
    if fmap.value is None:
        raise ConfigError(f"{path}.value", "required: the path of the value in the department's record")
    if fmap.codes is not None:
        if spec.enum is None and spec.value_type not in (ValueType.STRING, ValueType.BOOL):
            raise ConfigError(f"{path}.codes", "code tables apply to enum, boolean and string fields")
        if spec.enum is not None:
            _check_codes(path, spec.enum, fmap.codes)
        elif spec.value_type is ValueType.BOOL:
            bad = [v for v in fmap.codes.values() if v not in ("true", "false")]
            if bad:
                raise ConfigError(f"{path}.codes", f"a boolean code maps to 'true' or 'false', not {bad[0]!r}")
    if fmap.date_format is not None and spec.value_type not in (ValueType.DATE, ValueType.DATETIME):
        raise ConfigError(f"{path}.date_format", "only date and datetime fields take a date format")
