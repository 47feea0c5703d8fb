"""Demo step ``usage``: unused access (P4): an event-log usage source covering a few services,
their last-use data, mapping rules (made by the demo admin), and a few scheduled removals.
Idempotent (skipped once the source exists) and fast.

The covered services are a few connector-less ones with old grants and the paid-seat services
with the most old grants, so that the costs demo (seeded after this step) finds unused paid
seats by the same rule (C7 reads P4's ``unused_grants``)."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone

from access.models import Grant, Service
from access.services import grants_record_use, notifications_muted
from accounts.models import User
from usage.models import UnusedRemoval, UsageSource
from usage.services import coverage_mark, rule_create, source_for_events, unused_detect

SOURCE = "aws-cloudtrail"
UNUSED_PER_SERVICE = 3
PLAIN_SERVICES = 3
PAID_SERVICES = 4


def seed_unused(*, stdout, rng) -> None:
    if UsageSource.objects.filter(slug=SOURCE).exists():
        stdout.write("usage: the demo usage source exists; skipped\n")
        return
    admin = User.objects.filter(email="admin@tollgate.test").first()
    if admin is None:  # mapping rules are a platform admin's to make
        stdout.write("usage: demo admin missing; skipped\n")
        return
    now = timezone.now()
    old = now - timedelta(days=104)
    with_old_grants = (
        Service.objects.filter(connector="")
        .filter(entitlements__grants__status=Grant.Status.ACTIVE)
        .filter(entitlements__grants__starts_at__lt=old)
    )
    plain = list(
        with_old_grants.annotate(n=Count("entitlements__grants"))
        .filter(n__gte=4)
        .order_by("slug")[:PLAIN_SERVICES]
    )
    old_paid = Q(
        entitlements__seat_cost_monthly__gt=0,
        entitlements__grants__status=Grant.Status.ACTIVE,
        entitlements__grants__starts_at__lt=old,
    )
    paid = list(  # the paid-seat services with the most old active paid grants
        Service.objects.filter(connector="")
        .exclude(pk__in=[s.pk for s in plain])
        .annotate(n=Count("entitlements__grants", filter=old_paid, distinct=True))
        .filter(n__gte=4)
        .order_by("-n", "slug")[:PAID_SERVICES]
    )
    services = sorted(plain + paid, key=lambda s: s.slug)
    if not services:
        stdout.write("usage: no demo services with old grants; skipped\n")
        return
    source = source_for_events(SOURCE)
    uses: dict[int, object] = {}
    for service in services:
        grants = list(
            Grant.objects.filter(entitlement__service=service, status=Grant.Status.ACTIVE).order_by(
                "pk"
            )
        )
        old_grants = [
            g
            for g in grants
            if g.starts_at < old and g.ends_at and g.ends_at > now + timedelta(days=10)
        ]
        unused = set(g.pk for g in rng.sample(old_grants, min(UNUSED_PER_SERVICE, len(old_grants))))
        for grant in grants:
            if grant.pk in unused:
                uses[grant.pk] = max(grant.starts_at, now - timedelta(days=rng.randint(100, 200)))
            else:
                uses[grant.pk] = now - timedelta(hours=rng.randint(1, 24 * 30))
        first = service.entitlements.order_by("slug").first()
        rule_create(
            actor=admin,
            source=source,
            event_source=f"{service.slug}.example.internal",
            event_name="*",
            entitlement=first,
            note="demo: every call to the service counts as use",
        )
    # only-forward: a grant already used more recently keeps its later use
    grants_record_use(uses=uses, source=SOURCE)
    coverage_mark(
        source=source,
        service_ids=[s.pk for s in services],
        covered_since=now - timedelta(days=180),
        complete_until=now - timedelta(hours=1),
        attempt_at=now,
    )
    with notifications_muted():
        unused_detect(now=now)
    stdout.write(
        f"usage: source {SOURCE} covers {', '.join(s.slug for s in services)}; "
        f"{len(uses)} grants with last use; "
        f"{UnusedRemoval.objects.filter(status='scheduled').count()} removals scheduled\n"
    )
