"""Demo step ``provisioning``: a real PostgreSQL-backed service.

With ``TOLLGATE_PG_TARGET_DSN`` set (a throwaway database whose user has CREATEROLE),
the demo's *Billing Database* service uses the PostgreSQL role connector: one NOLOGIN role
per entitlement (``tollgate_demo_billing_<slug>``) is created there, the service is switched
to the connector, and an enforcing reconciliation grants the demo's existing active grants
downstream. From then on, approving a request for Billing Database really runs
``GRANT role TO login`` in that database, and revoking runs ``REVOKE``.

Without the variable (the embedded default) every demo service stays connector-less:
grants are active at once and nothing leaves the portal.
"""

from __future__ import annotations

import os
import random

from access.models import Service
from access.services import reconcile_service, service_update
from accounts.models import User

DSN_ENV = "TOLLGATE_PG_TARGET_DSN"
SERVICE_SLUG = "billing-db"
ROLE_PREFIX = "tollgate_demo_billing_"


def role_for(slug: str, prefix: str = ROLE_PREFIX) -> str:
    return prefix + slug.replace("-", "_")


def seed_provisioning(*, stdout, rng: random.Random, role_prefix: str = ROLE_PREFIX) -> None:
    dsn = os.environ.get(DSN_ENV, "")
    service = Service.objects.filter(slug=SERVICE_SLUG).first()
    if not dsn or service is None:
        stdout.write(
            f"provisioning: {DSN_ENV} not set; demo services stay connector-less"
            if not dsn
            else f"provisioning: no {SERVICE_SLUG} service; skipped"
        )
        return
    if service.connector == "postgres":
        stdout.write(f"provisioning: {SERVICE_SLUG} already uses the PostgreSQL connector")
        return
    slugs = list(service.entitlements.values_list("slug", flat=True))
    _create_roles(dsn, [role_for(s, role_prefix) for s in slugs])
    admin = User.objects.filter(email__startswith="admin@").order_by("pk").first()
    if admin is None:
        stdout.write("provisioning: no demo admin to switch the connector; skipped")
        return
    service_update(
        actor=admin,
        service=service,
        connector="postgres",
        connector_config={
            "dsn_env": DSN_ENV,
            "roles": {slug: role_for(slug, role_prefix) for slug in slugs},
            "login_prefix": "tg_",
        },
    )
    run = reconcile_service(service_id=service.pk, mode="enforce", actor=admin)
    stdout.write(
        f"provisioning: {service.name} now uses the PostgreSQL connector ({len(slugs)} roles); "
        f"reconciliation queued {run.jobs_created if run else 0} grant job(s)"
    )


def _create_roles(dsn: str, roles: list[str]) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        for role in roles:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
