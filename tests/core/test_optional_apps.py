"""An optional app can be taken out of INSTALLED_APPS and every page still works (here: usage).

Django's app registry cannot drop an app inside a running process, so this runs ``manage.py
check`` and tests/without_usage/pages.py in subprocesses with tests.without_usage.settings.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("without_usage")]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.without_usage.settings"}
    env.pop("PYTEST_XDIST_WORKER", None)
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


def test_manage_py_check_passes_without_usage():
    result = _run("manage.py", "check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_key_pages_render_without_usage():
    result = _run(
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:xdist",
        "--ds=tests.without_usage.settings",
        "tests/without_usage/pages.py",
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
