"""Messages of unused-access removals (sent by notify-queue tasks, after commit)."""

from __future__ import annotations

from django.urls import reverse

from access.notifications import Message, absolute
from access.sync.notifications import owner_emails


def holder_message(principal, removals, kind: str) -> Message:
    link = absolute(reverse("usage:list"))
    lines = []
    for r in removals:
        last = f"last used {r.last_used_at:%Y-%m-%d}" if r.last_used_at else "never used"
        if kind == "scheduled":
            lines.append(
                f"- {r.grant.entitlement} ({last}): removed after {r.remove_after:%Y-%m-%d %H:%M} UTC"
            )
        else:
            lines.append(f"- {r.grant.entitlement} ({last}): removed; restore from {link}")
    if kind == "scheduled":
        subject = f"[Tollgate] {len(removals)} unused access grant(s) will be removed"
        intro = (
            "These grants were not used for the unused-access window. They will be removed "
            "after the notice period unless you, your manager or the service owner opts out:"
        )
    else:
        subject = f"[Tollgate] {len(removals)} unused access grant(s) were removed"
        intro = "These unused grants were removed. You can restore them from Tollgate:"
    body = intro + "\n" + "\n".join(lines) + f"\n\nOpt out or restore: {link}\n"
    return Message([principal.email] if principal.is_active else [], subject, body, link)


def owner_message(service, removals, kind: str) -> Message:
    link = absolute(reverse("usage:list") + f"?service={service.slug}")
    verb = "will be removed" if kind == "scheduled" else "were removed"
    subject = f"[Tollgate] {service.name}: {len(removals)} unused grant(s) {verb}"
    body = "\n".join(f"- {r.principal.email}: {r.grant.entitlement}" for r in removals)
    body += f"\n\nReview, opt out or restore: {link}\n"
    return Message(owner_emails(service), subject, body, link)
