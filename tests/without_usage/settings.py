"""The project settings with the optional ``usage`` app taken out of INSTALLED_APPS.

Used by tests/core/test_optional_apps.py (in a subprocess: Django's app registry cannot drop an
app inside a running process). Its test database has a name of its own, so it never meets the
main run's.
"""

from portal.settings import *  # noqa: F403
from portal.settings import DATABASES, INSTALLED_APPS

INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "usage"]
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_without_usage"}
