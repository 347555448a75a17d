"""The REST departments, as plain Starlette apps over the demo dataset.

Human Resources and Social Security (OpenAPI 3.0 document at ``/openapi.json``)::

    GET  /insured/{idNumber}     {"idNumber", "insured": "1"|"0", "months": int, "city", "since": "YYYY-MM-DD"}; 404
    POST /insured:batch          {"ids": [...]} -> {"items": [record...]}  (unknown ids left out)

Market Regulation enterprise registry (OpenAPI 3.0 document at ``/openapi.json``)::

    GET  /enterprises?legalRepresentative={idNumber}   {"items": [record...]}  (empty when the person represents none)
    GET  /enterprises/{creditCode}   {"creditCode", "name", "type", "legalRepresentative": {"idNumber", "name"},
                                      "registeredCapital": 5000000.00, "status": "存续"|"在业"|"吊销"|"注销"|"迁出",
                                      "establishedOn", "address", "businessScope"}; 404
    POST /enterprises:batch          {"creditCodes": [...]} -> {"items": [record...]}

Electronic licence library::

    GET  /licences?holderId=...      {"items": [licence...]}  (empty for an unknown holder)
    POST /licences:batch             {"holderIds": [...]} -> {"items": [licence...]}  (flat, each with holderId)

    licence: {"type", "number", "holderName", "holderId", "issuer", "issuedOn", "validUntil": date|null,
              "statusCode": "A" valid | "B" suspended | "C" revoked | "D" expired}

Errors are ``{"code", "message"}``; a simulated failure answers 503.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterable
from decimal import Decimal
from importlib.resources import files
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Scope

from demo.behaviour import DepartmentBehaviour, RequestCounter, department_app
from demo.model import LICENCE_STATUS_CODES, Dataset, LegalEntity, Licence, code_of

__all__ = [
    "MAX_BATCH",
    "OPENAPI_PATH",
    "enterprise_record",
    "hrss_app",
    "insured_record",
    "licence_record",
    "licences_app",
    "market_regulation_app",
]

MAX_BATCH = 1000
OPENAPI_PATH = "/openapi.json"
_DECIMAL = re.compile(r'"@@decimal:(-?[0-9]+(?:\.[0-9]+)?)@@"')


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"@@decimal:{value}@@"
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def _json(body: Any, status: int = 200) -> Response:
    """JSON with a Decimal written as a number carrying its own places (``5000000.00``, not ``5000000.0``)."""
    text = _DECIMAL.sub(r"\1", json.dumps(body, ensure_ascii=False, default=_default))
    return Response(text, status, media_type="application/json")


def _error(status: int, code: str, message: str) -> Response:
    return _json({"code": code, "message": message}, status)


def _unavailable() -> Response:
    return _error(503, "SERVICE_UNAVAILABLE", "服务暂时不可用 (simulated department failure)")


async def _keys(request: Request, field: str) -> list[str] | Response:
    """The list of keys under ``field`` of a JSON body, or the 400 response saying what is wrong."""
    try:
        body = await request.json()
    except ValueError:
        return _error(400, "BAD_REQUEST", "the body is not JSON")
    keys = body.get(field) if isinstance(body, dict) else None
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        return _error(400, "BAD_REQUEST", f'the body is {{"{field}": [string, ...]}}')
    if len(keys) > MAX_BATCH:
        return _error(400, "BAD_REQUEST", f"at most {MAX_BATCH} keys per call, got {len(keys)}")
    return list(dict.fromkeys(k.strip().upper() for k in keys))


def _app(routes: list[Route], counter: RequestCounter, behaviour: DepartmentBehaviour | None) -> Starlette:
    def is_metadata(scope: Scope) -> bool:
        return bool(scope["path"] == OPENAPI_PATH)

    return department_app(
        routes,
        behaviour=behaviour or DepartmentBehaviour(),
        counter=counter,
        failure=_unavailable,
        is_metadata=is_metadata,
    )


def insured_record(dataset: Dataset, id_number: str) -> dict[str, Any] | None:
    person = dataset.persons_by_id.get(id_number)
    if person is None or person.social_insurance is None:
        return None
    insurance = person.social_insurance
    return {
        "idNumber": person.id_number,
        "insured": "1" if insurance.insured else "0",
        "months": insurance.months,
        "city": insurance.city,
        "since": insurance.since.isoformat(),
    }


def enterprise_record(dataset: Dataset, entity: LegalEntity) -> dict[str, Any]:
    representative = dataset.persons_by_id[entity.legal_representative]
    return {
        "creditCode": entity.credit_code,
        "name": entity.name,
        "type": entity.entity_type,
        "legalRepresentative": {"idNumber": representative.id_number, "name": representative.name},
        "registeredCapital": entity.registered_capital,
        "status": entity.status_label,
        "establishedOn": entity.established_on.isoformat(),
        "address": entity.address,
        "businessScope": entity.business_scope,
    }


def licence_record(licence: Licence) -> dict[str, Any]:
    return {
        "type": licence.type,
        "number": licence.number,
        "holderName": licence.holder_name,
        "holderId": licence.holder_id,
        "issuer": licence.issuer,
        "issuedOn": licence.issued_on.isoformat(),
        "validUntil": licence.valid_until.isoformat() if licence.valid_until else None,
        "statusCode": code_of(LICENCE_STATUS_CODES, licence.status),
    }


def _batch(
    counter: RequestCounter, operation: str, field: str, records: Callable[[list[str]], Iterable[dict[str, Any]]]
) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        keys = await _keys(request, field)
        if isinstance(keys, Response):
            return keys
        counter.hit(operation)
        return _json({"items": list(records(keys))})

    return endpoint


def _openapi(name: str) -> Callable[[Request], Any]:
    """Serve ``demo/openapi/<name>``, its ``servers`` pointing at the URL it was fetched from."""
    document = json.loads(files("demo").joinpath("openapi", name).read_text(encoding="utf-8"))

    async def openapi(request: Request) -> Response:
        served = copy.deepcopy(document)
        served["servers"] = [{"url": f"{request.url.scheme}://{request.url.netloc}"}]
        return _json(served)

    return openapi


def hrss_app(dataset: Dataset, behaviour: DepartmentBehaviour | None = None) -> Starlette:
    """Human Resources and Social Security: insurance records by ID number, with an OpenAPI document."""
    counter = RequestCounter()

    async def get_insured(request: Request) -> Response:
        counter.hit("getInsured")
        record = insured_record(dataset, str(request.path_params["idNumber"]).strip().upper())
        if record is None:
            return _error(404, "NOT_FOUND", "no social insurance record for this ID number")
        return _json(record)

    def found(keys: list[str]) -> Iterable[dict[str, Any]]:
        return (r for r in (insured_record(dataset, k) for k in keys) if r is not None)

    routes = [
        Route(OPENAPI_PATH, _openapi("hrss.json"), methods=["GET"]),
        Route("/insured/{idNumber}", get_insured, methods=["GET"]),
        Route("/insured:batch", _batch(counter, "batchInsured", "ids", found), methods=["POST"]),
    ]
    return _app(routes, counter, behaviour)


def market_regulation_app(dataset: Dataset, behaviour: DepartmentBehaviour | None = None) -> Starlette:
    """Market Regulation: the enterprise registry by unified social credit code or by legal representative, with
    an OpenAPI document."""
    counter = RequestCounter()

    async def list_enterprises(request: Request) -> Response:
        representative = request.query_params.get("legalRepresentative", "").strip().upper()
        if not representative:
            return _error(400, "BAD_REQUEST", "legalRepresentative is required")
        counter.hit("listEnterprises")
        entities = dataset.entities_by_representative.get(representative, ())
        return _json({"items": [enterprise_record(dataset, e) for e in entities]})

    async def get_enterprise(request: Request) -> Response:
        counter.hit("getEnterprise")
        entity = dataset.entities_by_code.get(str(request.path_params["creditCode"]).strip().upper())
        if entity is None:
            return _error(404, "NOT_FOUND", "no enterprise with this credit code")
        return _json(enterprise_record(dataset, entity))

    def found(keys: list[str]) -> Iterable[dict[str, Any]]:
        by_code = dataset.entities_by_code
        return (enterprise_record(dataset, by_code[k]) for k in keys if k in by_code)

    routes = [
        Route(OPENAPI_PATH, _openapi("market_regulation.json"), methods=["GET"]),
        Route("/enterprises", list_enterprises, methods=["GET"]),
        Route("/enterprises/{creditCode}", get_enterprise, methods=["GET"]),
        Route("/enterprises:batch", _batch(counter, "batchEnterprises", "creditCodes", found), methods=["POST"]),
    ]
    return _app(routes, counter, behaviour)


def licences_app(dataset: Dataset, behaviour: DepartmentBehaviour | None = None) -> Starlette:
    """The electronic licence library: licences by holder (ID number or credit code)."""
    counter = RequestCounter()

    async def list_licences(request: Request) -> Response:
        holder = request.query_params.get("holderId", "").strip().upper()
        if not holder:
            return _error(400, "BAD_REQUEST", "holderId is required")
        counter.hit("listLicences")
        return _json({"items": [licence_record(lic) for lic in dataset.licences_by_holder.get(holder, ())]})

    def found(keys: list[str]) -> Iterable[dict[str, Any]]:
        held = dataset.licences_by_holder
        return (licence_record(lic) for k in keys for lic in held.get(k, ()))

    routes = [
        Route("/licences", list_licences, methods=["GET"]),
        Route("/licences:batch", _batch(counter, "batchLicences", "holderIds", found), methods=["POST"]),
    ]
    return _app(routes, counter, behaviour)
