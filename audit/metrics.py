"""Scrape-time series of the audit trail (registered with ``portal.core.metrics``).

The chain head (its seq and when its last event happened) and the last verification: when it
ran and whether the chain and the checkpoints were clean. Alerts fire on a failed or stale
verification (deploy/prometheus/tollgate-rules.yml).
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import Metric

from portal.core.metrics import gauge, register_collector

from .models import AuditEvent, ChainHead, Verification


def collect_audit() -> Iterable[Metric]:
    out: list[Metric] = []
    head = ChainHead.objects.filter(pk=1).values("seq").first()
    seq = head["seq"] if head else 0
    seq_gauge = gauge("tollgate_audit_head_seq", "Sequence number of the audit chain head.")
    seq_gauge.add_metric([], seq)
    out.append(seq_gauge)
    at = AuditEvent.objects.filter(seq=seq).values_list("occurred_at", flat=True).first()
    if at is not None:
        head_at = gauge(
            "tollgate_audit_head_timestamp_seconds",
            "When the last audit event (the chain head) was written (Unix time).",
        )
        head_at.add_metric([], at.timestamp())
        out.append(head_at)
    last = Verification.objects.order_by("-at", "-id").values("at", "ok", "checked").first()
    if last is not None:
        when = gauge(
            "tollgate_audit_last_verification_timestamp_seconds",
            "When the audit chain was last verified (Unix time).",
        )
        when.add_metric([], last["at"].timestamp())
        ok = gauge(
            "tollgate_audit_last_verification_ok",
            "1 when the last verification found the chain and its checkpoints clean, else 0.",
        )
        ok.add_metric([], 1 if last["ok"] else 0)
        out += [when, ok]
    return out


register_collector("audit", collect_audit)
