"""Celery entry points of access reviews."""

from __future__ import annotations

from celery import shared_task
from django.core.mail import send_mail

from portal.core.locks import advisory_lock

from . import campaign_templates, services


@shared_task(name="reviews.tasks.reviews_sweep")
def reviews_sweep() -> None:
    """Start campaigns of templates due by cadence and due drafts, remind, escalate, apply deadlines and close (never overlapping)."""
    with advisory_lock("reviews.sweep") as acquired:
        if acquired:
            campaign_templates.templates_start_due()
            services.reviews_sweep()


@shared_task(name="reviews.tasks.review_mail_send", ignore_result=True, queue="notify")
def review_mail_send(email: str, subject: str, body: str) -> None:
    """One reminder, escalation or deadline mail to a reviewer."""
    send_mail(subject, body, None, [email], fail_silently=True)
