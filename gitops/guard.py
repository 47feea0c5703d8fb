"""The edit guard: a person editing an object the repository manages is refused (or, for the
kinds in ``GITOPS_UI_EDITS`` set to "drift", allowed: the next plan shows the difference)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType

from portal.core.actors import is_gitops_actor

from .models import ManagedObject


def ui_edits(kind: str) -> str:
    return getattr(settings, "GITOPS_UI_EDITS", {}).get(kind, "refuse")


def _mark(obj: Any) -> ManagedObject | None:
    if getattr(obj, "pk", None) is None:
        return None
    return (
        ManagedObject.objects.filter(
            content_type=ContentType.objects.get_for_model(type(obj)), object_id=obj.pk
        )
        .only("kind", "key", "source")
        .first()
    )


def _repository() -> str:
    return getattr(settings, "GITOPS_REPOSITORY_URL", "") or "the configuration repository"


def managed_describer(obj: Any) -> str | None:
    mark = _mark(obj)
    if mark is None:
        return None
    after = (
        "edits here are reported as drift by the next plan"
        if ui_edits(mark.kind) == "drift"
        else "change it there: edits here are refused"
    )
    return f"Managed in {_repository()} ({mark.source}); {after}."


def managed_edit_guard(obj: Any, actor: Any) -> str | None:
    if is_gitops_actor(actor):
        return None
    mark = _mark(obj)
    if mark is None or ui_edits(mark.kind) == "drift":
        return None
    return (
        f"{mark.kind} {mark.key} is managed in {_repository()} ({mark.source}): change it there in a "
        "pull request and apply the plan"
    )
