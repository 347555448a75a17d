"""``GET /prefill/{form}/{applicant}``: a form prefilled as plain JSON, for window software that speaks no GraphQL.

The same authentication as ``/graphql`` (the app wraps these routes in the same middleware), the same
:class:`~auth.access.Access` per request, and the same audit: the disclosures are committed before the answer is
sent, and if the audit store cannot commit nothing personal is sent (503). Described by an OpenAPI 3 document at
``/prefill/openapi.json``::

    GET /prefill/social_assistance/11010519491231002X?purpose=BJ20260101000004&conflicts=true
    GET /prefill/social_assistance/11010519491231002X?intake=<token of registerIntake>
    {"form": "social_assistance", "applicant": "...", "fields": [{"label": "申请人姓名", "status": "PREFILLED",
     "value": "王秀英", "provenance": [{"source": "public_security", ...}], ...}]}
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from auth.audit import AuditLog
from auth.policy import Policy
from gateway.config import GatewayConfig
from gateway.errors import AuditUnavailable, BadUserInput
from gateway.prefill import FieldStatus, FormPrefill, prefill
from schema.context import request_access
from schema.purposes import PurposeInput, purpose_of

__all__ = ["prefill_endpoint", "prefill_openapi"]

logger = logging.getLogger("onewindow.prefill")

_TRUE = frozenset({"1", "true", "yes"})
_FALSE = frozenset({"0", "false", "no"})


def prefill_endpoint(config: GatewayConfig, policy: Policy) -> Any:
    """The endpoint (to be wrapped in the gateway's authentication, like ``/graphql``)."""

    async def endpoint(request: Request) -> Response:
        forms = config.compiled_forms
        compiled = forms.get(request.path_params["form"])
        if compiled is None:
            return _error(404, "NOT_FOUND", f"no form named {request.path_params['form']!r}; configured: {list(forms)}")
        params = request.query_params
        conflicts: bool | None = None
        if "conflicts" in params:
            flag = params["conflicts"].strip().lower()
            if flag not in _TRUE | _FALSE:
                return _error(400, "BAD_USER_INPUT", "conflicts is true or false")
            conflicts = flag in _TRUE
        try:
            key = str(config.catalog[compiled.template.applicant].parse_key(request.path_params["applicant"]))
        except (BadUserInput, ValueError) as exc:
            return _error(400, "BAD_USER_INPUT", f"the applicant is not a valid key: {exc}")
        case, intake = params.get("purpose", "").strip(), params.get("intake", "").strip()
        try:
            stated = PurposeInput(case_number=case or None, intake=intake or None) if case or intake else None
            purpose = purpose_of(stated, key)
        except BadUserInput as exc:
            return _error(400, "BAD_USER_INPUT", exc.message)
        access = request_access(request, policy)
        try:
            result = await prefill(access, compiled, key, purpose=purpose, conflicts=conflicts)
        except AuditUnavailable as exc:
            return _error(503, AuditUnavailable.code, exc.message)
        entries, _ = access.drain()
        audit: AuditLog | None = request.app.state.audit
        if entries and audit is not None:
            try:
                await audit.write(entries)
            except AuditUnavailable as exc:
                logger.error("audit unavailable, prefill of %s withheld: %s", compiled.name, exc.message)
                return _error(503, AuditUnavailable.code, "personal data withheld: the audit store cannot record it")
        return JSONResponse(_json(result), headers={"Cache-Control": "no-store"})

    return endpoint


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _json(result: FormPrefill) -> dict[str, Any]:
    return {
        "form": result.form,
        "title": result.title,
        "serviceItem": result.service_item,
        "applicant": result.applicant,
        "fields": [
            {
                "label": f.label,
                "path": f.path,
                "required": f.required,
                "status": str(f.status),
                "value": f.value,
                "reason": f.reason,
                "detail": f.detail,
                "sources": list(f.sources),
                "masked": f.masked,
                "provenance": [
                    {
                        "field": p.field,
                        "source": p.source,
                        "department": p.department,
                        "fetchedAt": p.fetched_at.isoformat(),
                        "stale": p.stale,
                    }
                    for p in f.provenance
                ],
                "values": [{"source": v.source, "department": v.department, "value": v.value} for v in f.values],
            }
            for f in result.fields
        ],
    }


def prefill_openapi(config: GatewayConfig) -> dict[str, Any]:
    """The OpenAPI 3 document of ``/prefill``, naming this configuration's forms."""
    text = {"type": "string"}
    nullable_text = {"type": "string", "nullable": True}
    error = {
        "type": "object",
        "properties": {"error": {"type": "object", "properties": {"code": text, "message": text}}},
    }
    provenance = {
        "type": "object",
        "properties": {
            "field": text,
            "source": text,
            "department": text,
            "fetchedAt": {"type": "string", "format": "date-time"},
            "stale": {"type": "boolean"},
        },
    }
    field = {
        "type": "object",
        "required": ["label", "path", "required", "status", "value", "provenance"],
        "properties": {
            "label": text,
            "path": {"type": "string", "example": "Person.spouse.name"},
            "required": {"type": "boolean"},
            "status": {"type": "string", "enum": [str(s) for s in FieldStatus]},
            "value": {"nullable": True, "description": "As released to the caller; masked where the policy says."},
            "reason": {
                **nullable_text,
                "description": "REFUSED: the policy's reason (PURPOSE_REQUIRED, PURPOSE_INVALID, "
                "NO_SHARING_AGREEMENT, NOT_SHARED, NOT_OWN_DATA, ENTITY_NOT_ALLOWED, ...); UNAVAILABLE: the error code",
            },
            "detail": text,
            "sources": {"type": "array", "items": text, "description": "NO_RECORD: the sources asked"},
            "masked": {"type": "boolean"},
            "provenance": {"type": "array", "items": {"$ref": "#/components/schemas/Provenance"}},
            "values": {
                "type": "array",
                "description": "CONFLICT: each department's value",
                "items": {"type": "object", "properties": {"source": text, "department": text, "value": {}}},
            },
        },
    }
    prefilled = {
        "type": "object",
        "properties": {
            "form": text,
            "title": text,
            "serviceItem": text,
            "applicant": text,
            "fields": {"type": "array", "items": {"$ref": "#/components/schemas/PrefilledField"}},
        },
    }
    forms = sorted(config.compiled_forms)

    def answer(description: str) -> dict[str, Any]:
        return {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }

    return {
        "openapi": "3.0.3",
        "info": {
            "title": "OneWindow form prefill",
            "version": "1",
            "description": "Configured forms prefilled from the departments, for window software without GraphQL. "
            "Authenticated as /graphql; every disclosure is decided by the policy and audited.",
        },
        "paths": {
            "/prefill/{form}/{applicant}": {
                "get": {
                    "operationId": "prefill",
                    "summary": "A form prefilled for one applicant",
                    "parameters": [
                        {"name": "form", "in": "path", "required": True, "schema": {"type": "string", "enum": forms}},
                        {
                            "name": "applicant",
                            "in": "path",
                            "required": True,
                            "description": "Citizen ID number or unified social credit code, as the form's applicant",
                            "schema": text,
                        },
                        {
                            "name": "purpose",
                            "in": "query",
                            "description": "The case number being handled (needed for conditional fields)",
                            "schema": text,
                        },
                        {
                            "name": "intake",
                            "in": "query",
                            "description": "Instead of a case number: an intake purpose's token (registerIntake)",
                            "schema": text,
                        },
                        {
                            "name": "conflicts",
                            "in": "query",
                            "description": "Ask every department providing a field and flag disagreements",
                            "schema": {"type": "boolean"},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "The form, field by field",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/FormPrefill"}}},
                        },
                        "400": answer("The applicant is not a valid key, or a parameter is wrong"),
                        "401": {"description": "Authentication required (as for /graphql)"},
                        "404": answer("No such form"),
                        "503": answer("The audit store cannot record the disclosure: nothing personal is sent"),
                    },
                }
            }
        },
        "components": {
            "schemas": {"FormPrefill": prefilled, "PrefilledField": field, "Provenance": provenance, "Error": error}
        },
    }
