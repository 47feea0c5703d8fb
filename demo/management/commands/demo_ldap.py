"""``manage.py demo_ldap``: make sure the demo's slapd runs (``make run`` calls it)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from demo.steps.ldap import demo_server


class Command(BaseCommand):
    help = (
        "Start the demo's OpenLDAP server (TOLLGATE_DEMO_LDAP_DIR, port TOLLGATE_DEMO_LDAP_PORT) "
        "if it is not running; says why when there is none (slapd not installed, not set)."
    )

    def handle(self, *args, **options):
        server, why = demo_server()
        if server is None:
            self.stdout.write(f"demo LDAP: {why}; the demo runs without it")
            return
        self.stdout.write(f"demo LDAP: {server.url} (StartTLS, CA {server.ca_file})")
