"""Notification content and delivery: e-mail and a Slack-compatible chat webhook.

Called only from Celery tasks (after commit); never inside a transaction.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import send_mail
from django.urls import reverse

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    to: list[str]
    subject: str
    body: str
    link: str


def absolute(path: str) -> str:
    return settings.PORTAL_BASE_URL.rstrip("/") + path


def approver_message(request, recipients: list[str], kind: str) -> Message:
    link = absolute(reverse("access:request-detail", args=[request.pk]))
    verb = {
        "new": "waits on your approval",
        "reminder": "still waits on your approval",
        "escalation": "was escalated to you",
    }[kind]
    subject = f"[Tollgate] Request #{request.pk} {verb}: {request.entitlement}"
    body = (
        f"{request.principal.email} requests {request.entitlement} ({request.entitlement.get_risk_display()} risk) "
        f"for {request.duration_days} days.\nWhy: {request.justification}\n\nDecide: {link}\n"
    )
    return Message(recipients, subject, body, link)


def requester_message(request) -> Message:
    link = absolute(reverse("access:request-detail", args=[request.pk]))
    subject = f"[Tollgate] Request #{request.pk} {request.status}: {request.entitlement}"
    body = f"Your request for {request.entitlement} is {request.get_status_display().lower()}."
    if request.decision_reason:
        body += f"\nReason: {request.decision_reason}"
    body += f"\n\nDetails: {link}\n"
    recipients = sorted({request.requester.email, request.principal.email})
    return Message(recipients, subject, body, link)


CHANNELS = ("email", "chat")


def chat_payload(message: Message) -> dict:
    """Slack-compatible incoming-webhook JSON (``text`` with an ``<url|label>`` link)."""
    return {"text": f"{message.subject}\n<{message.link}|Open in Tollgate>"}


def send_email(message: Message) -> None:
    if message.to:
        send_mail(
            message.subject,
            message.body,
            settings.DEFAULT_FROM_EMAIL,
            message.to,
            fail_silently=False,
        )


def post_chat(message: Message) -> bool:
    """POST the message to the chat webhook; False when none is configured. Raises OSError
    (urllib's URLError/HTTPError are OSErrors) on a network failure or a non-2xx answer."""
    url = settings.CHAT_WEBHOOK_URL
    if not url:
        return False
    if not url.startswith(("http://", "https://")):
        raise OSError(f"CHAT_WEBHOOK_URL must be http(s), not {url.split(':', 1)[0]}")
    body = json.dumps(chat_payload(message)).encode()
    headers = {"Content-Type": "application/json"}
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - URL from settings
        if resp.status >= 300:
            raise OSError(f"chat webhook answered {resp.status}")
    return True


def deliver(message: Message, channels=CHANNELS) -> None:
    if "email" in channels:
        send_email(message)
    if "chat" in channels:
        post_chat(message)
