"""Builders shared by the standards tests."""

from __future__ import annotations

import textwrap

from standards.services import standards_apply


def doc(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def apply(actor, text: str):
    """Apply ``text`` as ``actor`` (no base-version check: tests apply in sequence)."""
    version, diff = standards_apply(actor=actor, text=doc(text), check_base=False)
    return version


def standard(
    key: str, kind: str, *, owner: str = "service-owner", scope: str = "", **params
) -> str:
    """One standard as YAML (params are written as flow values)."""
    lines = [
        f"- id: {key}",
        f"  title: {key.replace('-', ' ').title()}",
        "  severity: high",
        f"  owner: {owner}",
    ]
    if scope:
        lines.append(f"  scope: {scope}")
    lines.append("  check:")
    lines.append(f"    kind: {kind}")
    for name, value in params.items():
        lines.append(f"    {name}: {value}")
    return "\n".join(lines) + "\n"


def other_team_violation_url(org) -> str:
    """A violation on a service the "other" team owns (for the URL inventory's persona rows)."""
    from standards.models import PolicyVersion, Standard, Violation
    from tests.access.factories import make_service

    service = make_service(org["other"], slug="other-standards-service")
    version = PolicyVersion.objects.create(number=1, yaml_text="[]", sha256="0" * 64)
    std = Standard.objects.create(
        key="two-owners",
        title="Two owners",
        severity="medium",
        owner="service-owner",
        kind="min_service_owners",
        params={"min": 2},
        version=version,
    )
    violation = Violation.objects.create(
        standard=std,
        subject_type="service",
        subject_id=service.pk,
        subject_key=f"service:{service.pk}",
        subject_label=service.slug,
        owner_team=org["other"],
        service=service,
    )
    return f"/standards/violations/{violation.pk}/"
