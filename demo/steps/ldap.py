"""Demo step ``ldap``: the *User Directory* service on a real OpenLDAP server.

With ``TOLLGATE_DEMO_LDAP_DIR`` set (``make run`` sets ``var/demo-ldap``) and Debian's
``slapd`` installed, the demo runs its own slapd (``demo/slapd.py``: data in that directory,
``ldap://127.0.0.1:3389`` with StartTLS under a throw-away CA, left running for the portal),
gives every active demo person an ``inetOrgPerson`` entry, makes one ``groupOfNames`` per
entitlement of User Directory (``cn=user-directory-<slug>,ou=groups,dc=tollgate,dc=test``),
switches the service to the ``ldap`` connector and runs an enforcing reconciliation, so the
existing active grants become real memberships. engineer@ then asks for one entitlement of
it: when manager@ approves, the membership appears in the server::

    ldapsearch -x -H ldap://127.0.0.1:3389 -D cn=tollgate,ou=services,dc=tollgate,dc=test \
        -w tollgate-ldap-demo-Pa55 -b ou=groups,dc=tollgate,dc=test member

Without slapd, or without the setting (tests, CI), the step says so and the demo runs as
before: nothing here is slow (about 300 small adds on one connection).
"""

from __future__ import annotations

import random
from pathlib import Path

from django.conf import settings
from django.db import transaction

from access import services
from access.models import AccessRequest, Grant, Service
from access.services import reconcile_service, service_update
from accounts.models import User
from demo import slapd

SERVICE_SLUG = "user-directory"
PASSWORD_ENV = "TOLLGATE_DEMO_LDAP_PASSWORD"  # noqa: S105 - a variable name
WANTED = ("write", "on-call", "deploy", "read")


def group_cn(slug: str) -> str:
    return f"{SERVICE_SLUG}-{slug}"


def demo_server() -> tuple[slapd.Slapd | None, str]:
    directory = getattr(settings, "TOLLGATE_DEMO_LDAP_DIR", "")
    if not directory:
        return None, "TOLLGATE_DEMO_LDAP_DIR not set"
    if not slapd.available():
        return None, "slapd is not installed (apt-get install slapd)"
    port = settings.TOLLGATE_DEMO_LDAP_PORT
    try:
        return slapd.ensure_persistent(Path(directory), port=port, tls_port=port + 1), ""
    except RuntimeError as exc:
        return None, f"the demo slapd did not start ({exc})"


def connector_config(server: slapd.Slapd, slugs) -> dict:
    return {
        "url": server.url,
        "security": "starttls",
        "ca_file": str(server.ca_file),
        "bind_dn": server.service_dn,
        "password_env": PASSWORD_ENV,
        "base": server.groups,
        "people_base": server.people,
        "user_object_class": "inetOrgPerson",
        "groups": {slug: group_cn(slug) for slug in slugs},
    }


def seed_ldap(*, stdout, rng: random.Random, server: slapd.Slapd | None = None) -> None:
    if server is None:
        server, why = demo_server()
        if server is None:
            stdout.write(f"ldap: {why}; User Directory stays connector-less")
            return
    service = Service.objects.filter(slug=SERVICE_SLUG).first()
    admin = User.objects.filter(email__startswith="admin@").order_by("pk").first()
    if service is None or admin is None:
        stdout.write(f"ldap: no {SERVICE_SLUG} service or no demo admin; skipped")
        return
    if service.connector == "ldap":
        stdout.write(f"ldap: {service.name} already uses the LDAP connector")
        return
    slugs = sorted(service.entitlements.values_list("slug", flat=True))
    people = list(User.objects.filter(is_active=True).values_list("email", "name"))
    conn = server.admin()
    try:
        for email, name in people:
            uid = email.split("@", 1)[0].lower()
            conn.add(
                f"uid={slapd.escape_rdn(uid)},{server.people}",
                ["inetOrgPerson"],
                {"uid": uid, "cn": name or uid, "sn": (name or uid).split()[-1], "mail": email},
            )  # an entry that exists already (68) is kept
        for slug in slugs:
            conn.add(
                f"cn={group_cn(slug)},{server.groups}",
                ["groupOfNames"],
                {"cn": group_cn(slug), "member": [""]},
            )
    finally:
        conn.unbind()
    service_update(
        actor=admin,
        service=service,
        connector="ldap",
        connector_config=connector_config(server, slugs),
    )
    run = reconcile_service(service_id=service.pk, mode="enforce", actor=admin)
    request = _engineer_asks(service)
    stdout.write(
        f"ldap: {service.name} now uses the LDAP connector at {server.url} ({len(slugs)} groups, "
        f"{len(people)} people); reconciliation queued {run.jobs_created if run else 0} "
        "grant job(s)"
        + (f"; engineer@'s request #{request.pk} for it is {request.status}" if request else "")
    )


def _engineer_asks(service: Service) -> AccessRequest | None:
    engineer = User.objects.filter(email__startswith="engineer@").first()
    if engineer is None:
        return None
    held = set(
        Grant.objects.filter(principal=engineer, entitlement__service=service)
        .exclude(status="revoked")
        .values_list("entitlement__slug", flat=True)
    )
    for slug in WANTED:
        ent = service.entitlements.filter(slug=slug).first()
        if ent is None or slug in held:
            continue
        try:
            with transaction.atomic():
                return services.access_request_submit(
                    actor=engineer,
                    principal=engineer,
                    entitlement=ent,
                    justification="maintaining the people sync for the reorg",
                    duration_days=min(ent.default_duration_days, 30),
                )
        except Exception:  # noqa: BLE001, S112 - a policy refusal: try the next one
            continue
    return None
