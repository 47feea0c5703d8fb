"""The seams that keep ``portal.core`` and ``audit`` below the apps (see docs/ARCHITECTURE.md)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from accounts.models import PlatformRole
from audit.policies import AUDIT_READERS
from audit.services import audit_record
from portal.core import state


def test_audit_readers_are_platform_role_groups():
    assert set(AUDIT_READERS) == {
        PlatformRole.AUDITOR.value,
        PlatformRole.SECURITY.value,
        PlatformRole.PLATFORM_ADMIN.value,
    }


def test_audit_app_registers_its_recorder_for_transitions():
    assert state._recorder is audit_record


def test_transition_without_a_recorder_is_refused_before_anything_is_saved(monkeypatch):
    monkeypatch.setattr(state, "_recorder", None)

    class Obj:
        status = "a"

        class _meta:  # noqa: N801 - the shape transition() reads
            verbose_name = "thing"

        def save(self, **kwargs):  # pragma: no cover - must not be reached
            raise AssertionError("saved without an audit recorder")

    obj = Obj()
    with pytest.raises(ImproperlyConfigured):
        state.transition(
            obj, table={("a", "go"): "b"}, action="go", actor=None, audit_action="x.go"
        )
    assert obj.status == "a"
