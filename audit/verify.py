"""Verify the chain in the database and against the checkpoints kept outside it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .chain import Break, verify_rows
from .models import AuditEvent, ChainHead
from .selectors import audit_rows_for_verification


@dataclass
class VerifyResult:
    checked: int
    head_hash: str
    broken: Break | None
    checkpoint_problems: list[str]

    @property
    def ok(self) -> bool:
        return self.broken is None and not self.checkpoint_problems


def read_checkpoints(path: Path | str | None) -> list[dict]:
    if not path or not Path(path).exists():
        return []
    out = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            out.append({"line": n, "unreadable": True})
    return out


def _check_head(
    head_row: Mapping[str, Any] | None, *, checked: int, last_hash: str
) -> Break | None:
    """The chain head must name the last row: otherwise rows were cut from the end."""
    if head_row is None:
        if checked:
            return Break(checked, None, "the chain head row is missing")
        return None
    if head_row["seq"] != checked:
        return Break(
            checked + 1,
            None,
            f"the chain head says seq {head_row['seq']} but the last row is seq {checked} "
            "(rows deleted at the end)",
        )
    if head_row["hash"] != last_hash:
        return Break(checked, None, "the chain head hash does not match the last row")
    return None


def verify_chain(*, checkpoint_file: Path | str | None = None) -> VerifyResult:
    # Read the head first: rows up to its seq are committed (the head moves in the same
    # transaction as the insert), so later appends by concurrent writers are ignored.
    head_row = ChainHead.objects.filter(pk=1).values("seq", "hash").first()
    head_seq = head_row["seq"] if head_row else None
    checked, head, broken = verify_rows(audit_rows_for_verification(up_to_seq=head_seq))
    if broken is None:
        broken = _check_head(head_row, checked=checked, last_hash=head)
    problems: list[str] = []
    for cp in read_checkpoints(checkpoint_file):
        if cp.get("unreadable"):
            problems.append(f"checkpoint line {cp['line']} is unreadable")
            continue
        seq, expected = int(cp["seq"]), cp["hash"]
        if seq == 0:
            continue
        actual = AuditEvent.objects.filter(seq=seq).values_list("hash", flat=True).first()
        if actual is None:
            problems.append(
                f"checkpoint at seq {seq} ({cp.get('at')}) names a row that no longer exists (chain truncated)"
            )
        elif actual != expected:
            problems.append(
                f"checkpoint at seq {seq} ({cp.get('at')}) does not match: the chain was rewritten up to seq {seq}"
            )
    return VerifyResult(
        checked=checked, head_hash=head, broken=broken, checkpoint_problems=problems
    )
