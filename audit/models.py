"""The append-only, hash-chained audit trail.

Each event's ``hash`` is HMAC-SHA256, under ``AUDIT_CHAIN_KEY``, over the previous event's
hash and the event's canonical JSON (see :func:`audit.chain.compute_hash`), so write access to
the database alone cannot recompute a chain that verifies. Appends are serialised through the
single :class:`ChainHead` row, so concurrent writers still form one chain whose order is
``seq``. On PostgreSQL triggers refuse UPDATE and DELETE (migration 0002) and TRUNCATE
(migration 0004) on the event table; the test suite's flush lifts the TRUNCATE trigger for its
own statement only (tests/conftest.py).
"""

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    seq = models.BigIntegerField(unique=True, editable=False)
    occurred_at = models.DateTimeField(db_index=True, editable=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=254, blank=True, help_text="e-mail or system name")
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["seq"]
        indexes = [models.Index(fields=["target_type", "target_id", "seq"])]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.target_type}:{self.target_id}"


class ChainHead(models.Model):
    """One row (id=1) holding the last sequence number and hash; locked per append."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="0" * 64)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="audit_chainhead_singleton")
        ]

    def __str__(self) -> str:
        return f"head #{self.seq} {self.hash[:12]}"


class SiemCursor(models.Model):
    """How far a SIEM stream has shipped: the last seq delivered (advanced only after a ship)."""

    name = models.CharField(max_length=64, unique=True)
    last_seq = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_seq}"


class Verification(models.Model):
    """The result of one verification of the chain (``verify_audit`` or the beat task).

    Kept so ``/metrics`` can say when the chain was last verified and whether it was clean;
    the rows are a log of verifications, not part of the chain.
    """

    at = models.DateTimeField(db_index=True)
    ok = models.BooleanField()
    checked = models.BigIntegerField(default=0)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"verification {self.at:%Y-%m-%d %H:%M} {'ok' if self.ok else 'FAILED'}"
