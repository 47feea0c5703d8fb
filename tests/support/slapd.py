"""The throw-away slapd of the tests and the LDAP benchmark lives in ``demo/slapd.py`` (the demo
runs a persistent one from the same code); this module re-exports it for the tests."""

from demo.slapd import (  # noqa: F401
    ADMIN_DN,
    ADMIN_PASSWORD,
    GROUPS,
    PEOPLE,
    SERVICE_DN,
    SERVICE_PASSWORD,
    SUFFIX,
    Slapd,
    available,
    free_port,
    start,
)
