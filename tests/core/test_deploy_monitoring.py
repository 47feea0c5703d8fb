"""deploy/: the alert rules and the Grafana dashboard query only series the portal exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from portal.core import metrics

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "tollgate-rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "tollgate-dashboard.json"
METRIC = re.compile(r"\b(tollgate_[a-z0-9_]+)")
SUFFIXES = ("_bucket", "_count", "_sum", "_total")


def exported_names() -> set[str]:
    """Every family the app exports: the process metrics and the collectors' families."""
    names = {m._name for m in vars(metrics).values() if hasattr(m, "_name") and hasattr(m, "_type")}
    names |= {
        "tollgate_celery_queue_length",
        "tollgate_worker_heartbeat_timestamp_seconds",
    }
    for path in (
        ROOT / "access" / "metrics.py",
        ROOT / "audit" / "metrics.py",
        ROOT / "costs" / "metrics.py",
    ):
        names |= set(re.findall(r'"(tollgate_[a-z0-9_]+)"', path.read_text()))
        names |= {f"tollgate_ingest_last_{n}_timestamp_seconds" for n in ("success", "failure")}
    return names


def family(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def references_known(expr: str, known: set[str]) -> list[str]:
    return [m for m in METRIC.findall(expr) if m not in known and family(m) not in known]


def test_the_core_metric_families_are_all_known():
    known = exported_names()
    assert {"tollgate_http_requests", "tollgate_check_decisions", "tollgate_sync_jobs"} <= known
    assert "tollgate_audit_last_verification_ok" in known


def test_every_dashboard_expression_names_an_exported_metric():
    dashboard = json.loads(DASHBOARD.read_text())
    known = exported_names()
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 20
    for expr in exprs:
        assert METRIC.search(expr), expr
        assert references_known(expr, known) == [], expr


def test_every_rule_expression_names_an_exported_metric_or_a_recorded_rule():
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    recorded = {r["record"] for r in rules if "record" in r}
    known = exported_names()
    alerts = {r["alert"] for r in rules if "alert" in r}
    assert {
        "TollgateCheckApiErrors",
        "TollgateCheckApiSlow",
        "TollgateSyncJobStuck",
        "TollgateSyncJobsFailed",
        "TollgateAuditVerificationFailed",
        "TollgateAuditVerificationStale",
        "TollgateWorkerHeartbeatLost",
        "TollgateIngestionFailed",
    } <= alerts
    for rule in rules:
        expr = rule["expr"]
        for name in re.findall(r"\b(tollgate:[a-z0-9_:]+)", expr):
            assert name in recorded, name
        assert references_known(expr, known) == [], expr


def test_promtool_accepts_the_rules_and_their_unit_tests():
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: apt-get install prometheus (.ci/run does)"
    subprocess.run([promtool, "check", "rules", str(RULES)], check=True, capture_output=True)
    subprocess.run(
        [promtool, "test", "rules", str(RULES.with_name("tollgate-rules.test.yml"))],
        check=True,
        capture_output=True,
    )
