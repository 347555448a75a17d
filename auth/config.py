"""The ``auth:`` section of the configuration: who may call, how they prove it, what they may see, the audit.

    auth:
      issuers:
        province:                       # one entry per trusted OIDC issuer
          issuer: https://sso.province.gov.cn/realms/gov
          audience: [onewindow]
          algorithms: [RS256]
          claims: {kind: user_type, department: org, roles: realm_access.roles}
      cas: {server: https://cas.city.gov.cn/cas, service: https://onewindow.city.gov.cn/auth/cas/callback}
      sessions: {secret: ${ONEWINDOW_SESSION_SECRET}, ttl: 15m}
      api_keys: {url: postgresql+asyncpg://onewindow@db/onewindow}
      audit: {url: postgresql+asyncpg://onewindow@db/onewindow, retention: 183d}
      policy:
        masking:
          Person.phone: {mask: phone, reveal_to: [case_handler]}
        purposes:                       # purposes that fit a service hall (auth/purposes.py)
          grace: 30d
          windows: {comprehensive: {roles: [comprehensive_window], items: ["11010501300003"]}}

Each part is checked at start-up; the source-level parts of the policy (a field's ``sharing`` class, a source's
``owner`` and ``agreements``) sit with the source they describe.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from auth.apikeys import ApiKeyConfig
from auth.audit import AuditConfig
from auth.cas import CasConfig
from auth.oidc import OidcIssuerConfig
from auth.principal import Principal, PrincipalKind
from auth.sessions import SessionConfig
from gateway.durations import Duration, KeySecret, Strict

__all__ = [
    "DEFAULT_ENTITY_ACCESS",
    "AuthConfig",
    "DevelopmentPrincipal",
    "Mask",
    "MaskRule",
    "PolicyConfig",
    "PurposeItemConfig",
    "PurposesConfig",
    "WindowConfig",
]

_STAFF = [PrincipalKind.CLERK, PrincipalKind.OFFICER, PrincipalKind.SERVICE]
_ALL = list(PrincipalKind)

# Which kinds of principal may ask for each entity at all (citizens: only their own records, checked per key).
DEFAULT_ENTITY_ACCESS: dict[str, list[PrincipalKind]] = {
    "Person": [PrincipalKind.CITIZEN, *_STAFF, PrincipalKind.INTEGRATOR],
    "LegalEntity": _ALL,
    "Case": [PrincipalKind.CITIZEN, *_STAFF, PrincipalKind.INTEGRATOR],
    "ServiceItem": _ALL,
}


class Mask(StrEnum):
    """How a value is masked: ID numbers keep region and check character, phones the first three and last four
    digits, addresses stop at the district, names keep the family name."""

    ID_NUMBER = "id_number"
    PHONE = "phone"
    ADDRESS = "address"
    NAME = "name"


class MaskRule(Strict):
    """Mask a field unless the caller holds one of ``reveal_to`` (roles). A citizen reading their own record
    always sees it unmasked."""

    mask: Mask
    reveal_to: list[str] = Field(default_factory=list)


DEFAULT_INTAKE_TTL = 1800.0
"""How long an intake purpose lasts by default: half an hour at the window."""
DEFAULT_HOUSEHOLD_RELATION = "householdMembers"


class WindowConfig(Strict):
    """A kind of window that takes in applications for other departments (综合窗口): clerks holding one of
    ``roles`` (or sitting at one of ``windows``) are authorised for the service items ``items`` (codes), and read
    under a purpose for one of them what that item needs, as the item's department would."""

    roles: list[str] = Field(default_factory=list)
    windows: list[str] = Field(default_factory=list)
    items: list[str] = Field(min_length=1)


class PurposeItemConfig(Strict):
    """What one service item needs beyond its forms and materials. ``need_to_know``: release only what the item
    needs to a clerk of its own department too (``null``: the section's default). ``extra``: more field paths it
    needs (``Person.phone``, ``Person.spouse.gender``). ``household``: the fields it needs of each member of the
    applicant's household (``Person.name``): such an item assesses the household, and a member is read under the
    applicant's purpose."""

    need_to_know: bool | None = None
    extra: list[str] = Field(default_factory=list)
    household: list[str] = Field(default_factory=list)


class PurposesConfig(Strict):
    """Purposes that fit a service hall (see :mod:`auth.purposes`). ``intake_ttl``: how long an intake purpose
    (registered before the case exists) lasts. ``intake_secret``: signs intake purposes (at least 32 bytes; left
    out, ``auth.sessions.secret``, else a random one per process). ``grace``: how long after a case closes it
    still serves as a purpose (``null``: for ever). ``need_to_know``: every item releases only what it needs, not
    only to comprehensive windows and intakes. ``household_relation``: the Person relation listing a person's
    household."""

    intake_ttl: Duration = DEFAULT_INTAKE_TTL
    intake_secret: KeySecret | None = None
    grace: Duration | None = None
    need_to_know: bool = False
    household_relation: str = DEFAULT_HOUSEHOLD_RELATION
    windows: dict[str, WindowConfig] = Field(default_factory=dict)
    items: dict[str, PurposeItemConfig] = Field(default_factory=dict)


class PolicyConfig(Strict):
    """Who may read what. ``entities``: the principal kinds allowed each entity. ``purpose_required``: kinds that
    must state a purpose (a case number) to read the applicants in ``purpose_entities``. ``masking``:
    ``Entity.field`` → rule."""

    entities: dict[str, list[PrincipalKind]] = Field(default_factory=lambda: dict(DEFAULT_ENTITY_ACCESS))
    purpose_required: list[PrincipalKind] = Field(
        default_factory=lambda: [PrincipalKind.CLERK, PrincipalKind.OFFICER, PrincipalKind.INTEGRATOR]
    )
    # Applicants whose every field needs a purpose; a legal entity's registry data is public (conditional fields
    # of any entity need a purpose regardless).
    purpose_entities: list[str] = Field(default_factory=lambda: ["Person"])
    masking: dict[str, MaskRule] = Field(default_factory=dict)
    supervisor_role: str = "supervisor"
    invalidate_roles: list[str] = Field(default_factory=lambda: ["cache_admin"])
    purposes: PurposesConfig = Field(default_factory=PurposesConfig)


class DevelopmentPrincipal(Strict):
    """A principal given to every request that brings no credentials. For the demo and local development only:
    refused when ``security.production`` is on."""

    subject: str = "development"
    kind: PrincipalKind = PrincipalKind.CLERK
    department: str | None = None
    window: str | None = None
    roles: list[str] = Field(default_factory=list)
    scopes: list[str] = Field(default_factory=list)
    id_number: str | None = None

    def principal(self) -> Principal:
        return Principal(
            subject=self.subject,
            kind=self.kind,
            via="development",
            department=self.department,
            window=self.window,
            roles=frozenset(self.roles),
            scopes=frozenset(self.scopes),
            id_number=self.id_number,
        )


class AuthConfig(Strict):
    """Identity systems trusted, the gateway's own sessions and API keys, the policy and the audit store."""

    development_principal: DevelopmentPrincipal | None = None
    issuers: dict[str, OidcIssuerConfig] = Field(default_factory=dict)
    cas: CasConfig | None = None
    sessions: SessionConfig = Field(default_factory=SessionConfig)
    api_keys: ApiKeyConfig | None = None
    # ``audit: null`` turns the audit off: only outside production (benchmarks, local development).
    audit: AuditConfig | None = Field(default_factory=AuditConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
