"""``python -m tests.auth.cas_site.serve PORT SERVICE``: migrate, register SERVICE, serve until terminated."""

from __future__ import annotations

import os
import re
import sys

# The CAS administrator's choice of what OneWindow receives, and under which names: ``employeeType`` is released
# as ``onewindow_kind``; ``telephoneNumber`` is not released at all.
RELEASED_ATTRIBUTES = {
    "employeeType": "onewindow_kind",
    "ou": "",
    "counter": "",
    "memberOf": "",
    "displayName": "",
    "idNumber": "",
}


def main(port: int, service: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.auth.cas_site.settings")
    import django
    from django.core.management import call_command

    django.setup()
    from cas_server.models import ReplaceAttributName, ServicePattern

    call_command("migrate", verbosity=0, interactive=False)
    pattern, _ = ServicePattern.objects.get_or_create(
        name="OneWindow", defaults={"pos": 0, "pattern": f"^{re.escape(service)}$"}
    )
    for name, replace in RELEASED_ATTRIBUTES.items():
        ReplaceAttributName.objects.get_or_create(service_pattern=pattern, name=name, replace=replace)
    call_command("runserver", f"127.0.0.1:{port}", use_reloader=False, use_threading=True, skip_checks=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
