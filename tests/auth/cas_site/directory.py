"""The test CAS server's user directory, as an LDAP would hold it (``CAS_AUTH_CLASS``)."""

from __future__ import annotations

import hmac
from typing import Any

from cas_server.auth import AuthUser

PASSWORD = "correct horse battery staple"

PEOPLE: dict[str, dict[str, Any]] = {
    "zhang.wei": {
        "employeeType": "clerk",
        "ou": "民政局",
        "counter": "A-07",
        "memberOf": ["case_handler", "supervisor"],
        "displayName": "张伟",
        "telephoneNumber": "13800138000",
    },
    "li.na": {
        "employeeType": "citizen",
        "idNumber": "11010519491231002x",
        "displayName": "李娜",
    },
}


class DirectoryUser(AuthUser):
    """Everyone in :data:`PEOPLE` logs in with :data:`PASSWORD`."""

    def test_password(self, password: str) -> bool:
        return self.username in PEOPLE and hmac.compare_digest(password.encode(), PASSWORD.encode())

    def attributs(self) -> dict[str, Any]:
        return PEOPLE.get(self.username, {})
