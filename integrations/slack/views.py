"""HTTP: Slack's two machine endpoints (signed by Slack; no session, no CSRF) and the person's
Slack link page (signed in; the person themselves, platform admins and security)."""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qs

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from accounts.models import User
from portal.core import context
from portal.core.errors import DomainError

from ..models import SlackIdentity
from ..policies import may_manage_slack_link
from . import identities, interactions
from .signature import Unverified, verify

logger = logging.getLogger(__name__)

MAX_BODY = 64 * 1024  # Slack's payloads are a few kB; anything much larger is not Slack


def _unauthorized(reason: str) -> JsonResponse:
    logger.warning("slack request refused: %s", reason)
    return JsonResponse({"ok": False, "reason": "unverified", "error": reason}, status=401)


def _verified_body(request: HttpRequest) -> bytes:
    length = str(request.META.get("CONTENT_LENGTH") or "0")
    if not length.isdigit() or int(length) > MAX_BODY:
        raise Unverified("body too large")
    body = request.body
    verify(
        body=body,
        timestamp=request.headers.get("X-Slack-Request-Timestamp"),
        signature=request.headers.get("X-Slack-Signature"),
    )
    return body


def _form(body: bytes) -> dict[str, str]:
    parsed = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {key: values[0] for key, values in parsed.items()}


def _as_slack(form: dict[str, str], payload: dict | None = None):
    """Audit events of this call say it came through Slack, from which Slack user."""

    def named(key: str) -> str:
        value = (payload or {}).get(key)
        return str(value.get("id", "")) if isinstance(value, dict) else ""

    user = form.get("user_id") or named("user")
    team = form.get("team_id") or named("team")
    now = context.current()
    return context.bind(
        request_id=now.request_id,
        ip=now.ip,
        user_agent=f"slack user={str(user)[:32]} team={str(team)[:32]}; {now.user_agent}"[:500],
    )


@csrf_exempt
def slack_interactions(request: HttpRequest) -> HttpResponse:
    """``POST /integrations/slack/interactions``: button clicks and modal submissions."""
    try:
        body = _verified_body(request)
    except Unverified as exc:
        return _unauthorized(str(exc))
    if request.method != "POST":
        return JsonResponse({"ok": False, "error": "POST only"}, status=405)
    try:
        payload = json.loads(_form(body).get("payload") or "")
        if not isinstance(payload, dict):
            raise ValueError("payload is not an object")
        with _as_slack({}, payload):
            status, answer = interactions.handle_interaction(payload)
    except (ValueError, interactions.BadPayload) as exc:
        return JsonResponse({"ok": False, "reason": "bad-payload", "error": str(exc)}, status=400)
    return JsonResponse(answer, status=status)


@csrf_exempt
def slack_commands(request: HttpRequest) -> HttpResponse:
    """``POST /integrations/slack/commands``: the ``/access`` slash command."""
    try:
        body = _verified_body(request)
    except Unverified as exc:
        return _unauthorized(str(exc))
    if request.method != "POST":
        return JsonResponse({"ok": False, "error": "POST only"}, status=405)
    form = _form(body)
    with _as_slack(form):
        status, answer = interactions.handle_command(form)
    return JsonResponse(answer, status=status)


# --- the person's Slack link ------------------------------------------------------------
def _person(viewer, user_id: int) -> User:
    person = get_object_or_404(User, pk=user_id)
    if not may_manage_slack_link(viewer, person):
        raise Http404("no such person")
    return person


@require_GET
@login_required
def my_link(request: HttpRequest) -> HttpResponse:
    return redirect("integrations:slack-person", user_id=request.user.pk)


@require_GET
@login_required
def person_link(request: HttpRequest, user_id: int) -> HttpResponse:
    person = _person(request.user, user_id)
    history = SlackIdentity.objects.filter(user=person).order_by("-created_at")[:20]
    return render(
        request,
        "integrations/slack_person.html",
        {"person": person, "link": identities.live_link(person), "history": history},
    )


@require_POST
@login_required
def person_unlink(request: HttpRequest, user_id: int) -> HttpResponse:
    person = _person(request.user, user_id)
    try:
        identities.slack_link_remove(actor=request.user, user=person)  # type: ignore[arg-type]
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"The Slack link of {person.email} is removed.")
    return redirect("integrations:slack-person", user_id=person.pk)
