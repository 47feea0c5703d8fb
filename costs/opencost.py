"""Kubernetes costs from OpenCost: its allocation API output as a cost source.

Input: the JSON of OpenCost's ``/allocation`` (or ``/allocation/compute``) API, aggregated by
pod or namespace over daily windows (``step=1d``), as documented in the OpenCost
repository's ``docs/swagger.json``::

    {"code": 200, "status": "success",
     "data": [ {"<name>": {"name": ..., "properties": {"cluster", "node", "namespace",
                                                     "controller", "controllerKind", "pod",
                                                     "providerID", "labels": {...}},
                           "window": {"start": RFC3339, "end": RFC3339},
                           "cpuCost", "cpuCostAdjustment", "cpuCoreHours", "ramCost",
                           "ramByteHours", "gpuCost", "gpuHours", "pvCost", "pvByteHours",
                           "networkCost", "loadBalancerCost", "sharedCost", "externalCost",
                           "totalCost", ...}, ...}, ... ]}

Each allocation becomes one cost line per non-zero cost component (cpu, gpu, ram, pv,
network, load balancer, shared, external; each with its adjustment), charged over its
window, with the cluster as sub-account and these tags, which attribution rules match like
any other tag (``tag_key = k8s:namespace``, ``tag_value = payments-*``; or a pod label such
as ``team``): ``k8s:cluster``, ``k8s:namespace``, ``k8s:controller``,
``k8s:controller_kind``, ``k8s:pod``, ``k8s:node`` and every pod label as it is.

The ``__idle__`` allocation (capacity nobody requested) gets the tag ``k8s:idle = true``; a
shared-cost rule on that tag (:func:`ensure_idle_rule`, method ``proportional`` over the
``Kubernetes`` service category) splits it among the teams in proportion to their
Kubernetes usage, through the same shared-cost machinery as every other shared cost.

Importing is idempotent per (source, window): the lines of the source charged inside the
payload's windows are replaced in one transaction, then the rollups of the billing periods
touched are rebuilt. A payload that does not follow the schema changes nothing and names
the first problems (path and reason).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.db import connection, transaction
from django.utils import timezone

from audit.services import audit_record
from portal.core.actors import actor_user, refuse_string

from . import audit_actions as actions
from .attribution import Attributor, LineAttrs, attr_key
from .models import AttributionRule, CostLine, ImportRun
from .partitioning import ensure_month_partitions
from .rollups import rebuild_rollups
from .services import _check_editor, enabled_rule_specs, source_get_or_create

SERVICE_NAME = "Kubernetes"
SERVICE_CATEGORY = "Kubernetes"
IDLE, UNALLOCATED = "__idle__", "__unallocated__"
IDLE_TAG = "k8s:idle"
GIB = Decimal(1 << 30)
Q12 = Decimal("1e-12")
# component -> (cost fields summed, quantity field, quantity divisor, unit)
COMPONENTS: dict[str, tuple[tuple[str, ...], str | None, Decimal, str]] = {
    "cpu": (("cpuCost", "cpuCostAdjustment"), "cpuCoreHours", Decimal(1), "Core-Hours"),
    "gpu": (("gpuCost", "gpuCostAdjustment"), "gpuHours", Decimal(1), "GPU-Hours"),
    "ram": (("ramCost", "ramCostAdjustment"), "ramByteHours", GIB, "GiB-Hours"),
    "pv": (("pvCost", "pvCostAdjustment"), "pvByteHours", GIB, "GiB-Hours"),
    "network": (("networkCost", "networkCostAdjustment"), None, Decimal(1), ""),
    "loadbalancer": (("loadBalancerCost", "loadBalancerCostAdjustment"), None, Decimal(1), ""),
    "shared": (("sharedCost",), None, Decimal(1), ""),
    "external": (("externalCost",), None, Decimal(1), ""),
}
MAX_ERRORS = 100


class OpenCostRefused(ValueError):
    def __init__(self, errors: list[dict]):
        super().__init__(f"{len(errors)} problem(s) in the OpenCost payload")
        self.errors = errors


@dataclass
class Parsed:
    windows: list[tuple[dt.datetime, dt.datetime]] = field(default_factory=list)
    lines: list[dict] = field(default_factory=list)
    allocations: int = 0


def _time(raw, path: str, errors: list) -> dt.datetime | None:
    if not isinstance(raw, str):
        errors.append({"path": path, "reason": "an RFC 3339 time is required"})
        return None
    text = raw.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        errors.append({"path": path, "reason": f"not an RFC 3339 time: {raw[:40]!r}"})
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _number(raw, path: str, errors: list) -> Decimal:
    if raw is None:
        return Decimal(0)
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        errors.append({"path": path, "reason": "a number is required"})
        return Decimal(0)
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        errors.append({"path": path, "reason": f"not a number: {str(raw)[:40]!r}"})
        return Decimal(0)
    if not value.is_finite():
        errors.append({"path": path, "reason": "not a finite number"})
        return Decimal(0)
    return value


def _text(value) -> str:
    return "" if value is None else str(value)[:200]


def parse(payload) -> Parsed:
    """The payload's cost lines (dicts of CostLine fields), or :class:`OpenCostRefused`."""
    errors: list[dict] = []
    if isinstance(payload, (bytes, str)):
        try:
            payload = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            raise OpenCostRefused([{"path": "(file)", "reason": f"not JSON: {exc}"}]) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise OpenCostRefused(
            [{"path": "data", "reason": "an object with a 'data' list of allocation sets"}]
        )
    if payload.get("code", 200) != 200:
        raise OpenCostRefused(
            [{"path": "code", "reason": f"OpenCost answered {payload.get('code')!r}"}]
        )
    out = Parsed()
    windows: set[tuple[dt.datetime, dt.datetime]] = set()
    for i, allocation_set in enumerate(payload["data"]):
        if allocation_set is None:
            continue
        if not isinstance(allocation_set, dict):
            errors.append({"path": f"data[{i}]", "reason": "an object of allocations by name"})
            continue
        for name, alloc in allocation_set.items():
            path = f"data[{i}].{name}"
            if not isinstance(alloc, dict):
                errors.append({"path": path, "reason": "an allocation object"})
                continue
            window = alloc.get("window") or {}
            start = _time(window.get("start", alloc.get("start")), f"{path}.window.start", errors)
            end = _time(window.get("end", alloc.get("end")), f"{path}.window.end", errors)
            if start is None or end is None:
                continue
            if end <= start:
                errors.append(
                    {"path": f"{path}.window", "reason": "the end is not after the start"}
                )
                continue
            windows.add((start, end))
            out.allocations += 1
            out.lines.extend(_lines(name, alloc, start, end, path, errors))
            if len(errors) >= MAX_ERRORS:
                raise OpenCostRefused(errors[:MAX_ERRORS])
    if errors:
        raise OpenCostRefused(errors[:MAX_ERRORS])
    out.windows = sorted(windows)
    return out


def _lines(name: str, alloc: dict, start, end, path: str, errors: list) -> list[dict]:
    props = alloc.get("properties") or {}
    if not isinstance(props, dict):
        errors.append({"path": f"{path}.properties", "reason": "an object"})
        return []
    cluster = _text(props.get("cluster"))
    namespace = _text(props.get("namespace"))
    controller = _text(props.get("controller"))
    pod = _text(props.get("pod"))
    labels = props.get("labels") or {}
    if not isinstance(labels, dict):
        errors.append({"path": f"{path}.properties.labels", "reason": "an object"})
        return []
    tags = {str(k): _text(v) for k, v in labels.items()}
    tags.update(
        {
            "k8s:cluster": cluster,
            "k8s:namespace": namespace,
            "k8s:controller": controller,
            "k8s:controller_kind": _text(props.get("controllerKind")),
            "k8s:pod": pod,
            "k8s:node": _text(props.get("node")),
        }
    )
    if name == IDLE:
        tags[IDLE_TAG] = "true"
    tags = {k: v for k, v in tags.items() if v != ""}
    target = pod or controller or namespace or name
    resource = (
        f"k8s://{cluster}/{namespace}/{target}" if name != IDLE else f"k8s://{cluster}/{IDLE}"
    )
    period = start.date().replace(day=1)
    lines = []
    for component, (cost_fields, qty_field, divisor, unit) in COMPONENTS.items():
        cost = sum(
            (_number(alloc.get(f), f"{path}.{f}", errors) for f in cost_fields), Decimal(0)
        ).quantize(Q12)
        if not cost:
            continue
        qty = None
        if qty_field is not None:
            qty = (_number(alloc.get(qty_field), f"{path}.{qty_field}", errors) / divisor).quantize(
                Decimal("1e-15")
            )
        lines.append(
            {
                "billing_period_start": period,
                "billing_period_end": (period + dt.timedelta(days=32)).replace(day=1),
                "charge_period_start": start,
                "charge_period_end": end,
                "billing_account_id": cluster,
                "sub_account_id": cluster,
                "sub_account_name": cluster,
                "charge_category": "Usage",
                "charge_frequency": "Usage-Based",
                "charge_description": f"{component} of {name}",
                "provider_name": SERVICE_NAME,
                "publisher_name": "OpenCost",
                "invoice_issuer_name": "",
                "service_name": SERVICE_NAME,
                "service_category": SERVICE_CATEGORY,
                "resource_id": resource,
                "resource_name": name,
                "resource_type": component,
                "sku_id": f"k8s-{component}",
                "pricing_category": "Standard",
                "pricing_unit": unit,
                "consumed_quantity": qty,
                "consumed_unit": unit,
                "billed_cost": cost,
                "effective_cost": cost,
                "list_cost": cost,
                "billing_currency": "USD",
                "tags": tags,
            }
        )
    return lines


def opencost_import(
    *, actor, source_name: str, payload, file_name: str = "opencost.json", currency: str = "USD"
) -> ImportRun:
    """Load an OpenCost allocation response; the run says what happened (all or nothing)."""
    refuse_string(actor)
    _check_editor(actor)
    source = source_get_or_create(actor=actor, name=source_name)
    run = ImportRun.objects.create(
        source=source,
        origin=ImportRun.Origin.COMMAND,
        file_name=file_name[:300],
        file_format="opencost-json",
        status=ImportRun.Status.RUNNING,
        started_at=timezone.now(),
        created_by=actor_user(actor),
    )
    try:
        parsed = parse(payload)
    except OpenCostRefused as refused:
        ImportRun.objects.filter(pk=run.pk).update(
            status=ImportRun.Status.FAILED,
            error_count=len(refused.errors),
            errors=[
                {"row": 0, "column": e["path"][:200], "reason": e["reason"]} for e in refused.errors
            ],
            finished_at=timezone.now(),
        )
        run.refresh_from_db()
        return run
    with transaction.atomic(durable=True):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:  # two imports of one source never interleave
                cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [7300, source.pk])
        periods = sorted({line["billing_period_start"] for line in parsed.lines})
        replaced_periods: set[dt.date] = set(periods)
        replaced = 0
        for start, end in parsed.windows:
            old = CostLine.objects.filter(
                source=source, charge_period_start__gte=start, charge_period_start__lt=end
            )
            replaced_periods |= set(old.values_list("billing_period_start", flat=True).distinct())
            replaced += old._raw_delete(old.db)  # no signals, no cascades: a plain DELETE
        ensure_month_partitions(set(periods))
        attributor = Attributor(enabled_rule_specs())
        objs = []
        billed = Decimal(0)
        for line in parsed.lines:
            line["billing_currency"] = currency
            attrs = LineAttrs(
                line["billing_account_id"],
                line["sub_account_id"],
                line["resource_id"],
                line["service_name"],
                "",
                line["tags"],
            )
            outcome = attributor.attribute(attrs)
            billed += line["billed_cost"]
            objs.append(
                CostLine(
                    source=source,
                    import_run_id=run.pk,
                    attr_key=attr_key(attrs),
                    allocation=outcome.allocation,
                    team_id=outcome.team_id,
                    attributed_service=outcome.service,
                    project=outcome.project,
                    rule_id=outcome.rule_id,
                    **line,
                )
            )
        CostLine.objects.bulk_create(objs, batch_size=2000)
        rebuild_rollups(periods=sorted(replaced_periods))
        ImportRun.objects.filter(pk=run.pk).update(
            status=ImportRun.Status.SUCCEEDED,
            periods=[p.isoformat() for p in sorted(replaced_periods)],
            rows_read=parsed.allocations,
            rows_loaded=len(objs),
            billed_total=billed,
            finished_at=timezone.now(),
        )
        audit_record(
            actor=actor,
            action=actions.IMPORT_SUCCEEDED,
            target=run,
            after={
                "source": source.name,
                "file": file_name,
                "format": "opencost",
                "windows": [f"{s.isoformat()}/{e.isoformat()}" for s, e in parsed.windows],
                "lines": len(objs),
                "replaced_lines": replaced,
                "billed_total": str(billed),
            },
        )
        from .analytics.tasks import enqueue_resource_rollups

        enqueue_resource_rollups(sorted(replaced_periods))
    run.refresh_from_db()
    return run


def ensure_idle_rule(*, actor, position: int = 9000) -> AttributionRule:
    """The shared-cost rule that splits Kubernetes idle cost by usage (created once)."""
    from .services import rule_save

    existing = AttributionRule.objects.filter(name="Kubernetes idle (by usage)").first()
    if existing is not None:
        return existing
    return rule_save(
        actor=actor,
        rule=None,
        data={
            "name": "Kubernetes idle (by usage)",
            "position": position,
            "tag_key": IDLE_TAG,
            "tag_value": "true",
            "method": "proportional",
            "proportional_category": SERVICE_CATEGORY,
        },
    )
