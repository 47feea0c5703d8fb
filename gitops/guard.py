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


def managed_edit_guard(obj: Any, actor: Any) -> str | None:
    if is_gitops_actor(actor) or getattr(obj, "pk", None) is None:
        return None
    mark = (
        ManagedObject.objects.filter(
            content_type=ContentType.objects.get_for_model(type(obj)), object_id=obj.pk
        )
        .only("kind", "key", "source")
        .first()
    )
    if mark is None or ui_edits(mark.kind) == "drift":
        return None
    repo = getattr(settings, "GITOPS_REPOSITORY_URL", "") or "the configuration repository"
    return (
        f"{mark.kind} {mark.key} is managed in {repo} ({mark.source}): change it there in a "
        "pull request and apply the plan"
    )
