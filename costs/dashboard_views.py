"""HTML pages of cost analytics: the team dashboard (with drill-down and CSV export of every
table), the org overview, monthly showback, budgets, anomalies and suggestions.

Thin views: parse input, ask a scoped selector (404 for what the viewer may not see) or one
service, render. Figures come from ``costs.charts`` and travel to the browser as JSON data
blocks (``json_script``) that ``static/js/charts.js`` draws with the vendored plotly.js.
"""

from __future__ import annotations

import csv
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import quote

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.text import Truncator
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import Team
from portal.core.csvsafe import safe_row
from portal.core.errors import DomainError, ValidationError
from portal.core.money import CENT

from . import charts
from .analytics import selectors, services
from .analytics.models import Anomaly, AnomalySuppression, Suggestion
from .analytics.policies import may_act_on_team_costs, may_set_budget, may_view_org_costs

TABLES = {
    "service": ("by_service", ["service", "amount", "previous", "change", "share_pct"]),
    "category": ("by_category", ["category", "amount", "previous", "change", "share_pct"]),
    "region": ("by_region", ["region", "amount", "previous", "change", "share_pct"]),
    "resource": ("resources_all", ["resource", "amount", "previous", "change", "share_pct"]),
    "movers": ("movers", ["resource", "amount", "previous", "change", "share_pct"]),
}


def _csv(filename: str, header: list[str], rows) -> HttpResponse:
    """Every CSV download of cost analytics: names, tags and other text from billing files
    are written through ``portal.core.csvsafe`` so a spreadsheet never runs them as formulas."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow(safe_row(header))
    for row in rows:
        writer.writerow(safe_row(["" if v is None else v for v in row]))
    return response


def _pct(value) -> str:
    return "" if value is None else f"{value:.2f}"


def _dashboard_csv(data: selectors.TeamDashboard, table: str) -> HttpResponse:
    slug = data.team.slug
    name = f"{slug}-costs-{table}-{data.start}-{data.end}.csv"
    if table in TABLES:
        key, header = TABLES[table]
        rows = (
            [r["key"], r["amount"], r["prev"], r["delta"], _pct(r["share"])]
            for r in data.table(key)
        )
        return _csv(name, header, rows)
    if table == "daily":
        prev = dict(enumerate(v for _, v in data.compare_daily))
        rows = ([d, v, prev.get(i)] for i, (d, v) in enumerate(data.daily))
        return _csv(name, ["day", "billed_cost", "comparison_billed_cost"], rows)
    if table == "monthly":
        return _csv(
            name,
            ["month", "billed_cost", "budget"],
            ([m["month"].strftime("%Y-%m"), m["billed"], m["budget"]] for m in data.monthly),
        )
    if table == "seats":
        rows = (
            [s["service"], s["entitlement_slug"], s["seat_cost"], s["seats"], s["monthly"]]
            for s in data.seats
        )
        return _csv(
            name,
            ["service", "entitlement", "seat_cost_monthly", "active_seats", "monthly_cost"],
            rows,
        )
    raise Http404("no such table")


def _money_text(value) -> str:
    """``floatformat:2|intcomma`` done once in Python (the tables have dozens of cells)."""
    return "" if value is None else f"{Decimal(value).quantize(CENT, ROUND_HALF_UP):,.2f}"


def _display_rows(rows: list[dict], *, drill: str, dim: str, rng: dict) -> list[dict]:
    """Breakdown rows with their drill-down link and formatted cells, built in Python:
    rendering them with template filters was most of the page's template time."""
    out = []
    for r in rows:
        key = r["key"]
        delta = r["delta"]
        out.append(
            {
                "href": f"{drill}?dim={dim}&value={quote(key, safe='/')}"
                f"&start={rng['start']}&end={rng['end']}",
                "label": Truncator(key).chars(70),
                "amount": _money_text(r["amount"]),
                "prev": _money_text(r["prev"]),
                "delta": _money_text(delta),
                "delta_class": ""
                if delta is None or delta == 0
                else ("delta-up" if delta > 0 else "delta-down"),
                "share": ""
                if r["share"] is None
                else f"{Decimal(r['share']).quantize(Decimal('0.1'), ROUND_HALF_UP)}%",
            }
        )
    return out


def _range_params(request) -> tuple:
    start = selectors.parse_day(request.GET.get("start"), "start")
    end = selectors.parse_day(request.GET.get("end"), "end")
    compare = request.GET.get("compare") or "previous"
    return start, end, compare


@require_GET
@login_required
def team_dashboard(request, slug: str):
    try:
        start, end, compare = _range_params(request)
        data = selectors.team_dashboard(
            viewer=request.user, slug=slug, start=start, end=end, compare=compare
        )
    except DomainError as exc:
        team = selectors.team_for_costs(viewer=request.user, slug=slug)
        messages.error(request, exc.message)
        return redirect(reverse("costs-dash:team", args=[team.slug]))
    table = request.GET.get("export")
    if table:
        return _dashboard_csv(data, table)
    currency = data.summary["currency"]
    drill = reverse("costs-dash:team-drill", args=[slug])
    rng = {"start": data.start.isoformat(), "end": data.end.isoformat()}
    compare_label = {"previous": "Previous period", "year": "Same period last year"}.get(
        data.compare, ""
    )
    figures = {
        "chart-daily": charts.daily_trend(
            data.daily, data.compare_daily, currency=currency, compare_label=compare_label
        ),
        "chart-monthly": charts.monthly_trend(data.monthly, currency=currency),
        "chart-burn": charts.budget_burn(data.cumulative, currency=currency),
        "chart-service": charts.breakdown_bar(
            data.by_service, title="By service", drill_base=drill, dim="service", extra=rng
        ),
        "chart-category": charts.share_donut(data.by_category, title="By charge category"),
        "chart-region": charts.breakdown_bar(
            data.by_region, title="By region", drill_base=drill, dim="region", extra=rng
        ),
    }
    from .analytics.unit_costs import unit_costs

    units = unit_costs(viewer=request.user, team_slug=slug, start=data.start, end=data.end)
    for unit in units:
        figures[f"chart-unit-{unit['metric'].slug}"] = charts.unit_cost_trend(
            unit["metric"], unit["series"]
        )
    query = request.GET.copy()
    query.pop("export", None)
    tables = {
        name: _display_rows(data.table(key), drill=drill, dim=dim, rng=rng)
        for name, key, dim in (
            ("service", "by_service", "service"),
            ("category", "by_category", "category"),
            ("region", "by_region", "region"),
            ("resource", "by_resource", "resource"),
            ("movers", "movers", "resource"),
        )
    }
    return render(
        request,
        "costs/dashboard/team.html",
        {
            **data.as_context(),
            "tables": tables,
            "figures": figures,
            "unit_metrics": [u["metric"] for u in units],
            "currency": currency,
            "query": query.urlencode(),
            "drill_url": drill,
            "can_act": may_act_on_team_costs(request.user, data.team),
            "org_view": may_view_org_costs(request.user),
        },
    )


@require_GET
@login_required
def team_drill(request, slug: str):
    start, end, _ = _range_params(request)
    as_of = selectors.data_as_of()
    end = end or as_of
    start = start or end.replace(day=1)
    try:
        data = selectors.team_drilldown(
            viewer=request.user,
            slug=slug,
            dim=request.GET.get("dim", ""),
            value=request.GET.get("value", ""),
            start=start,
            end=end,
        )
    except DomainError as exc:
        selectors.team_for_costs(viewer=request.user, slug=slug)
        return HttpResponse(exc.message, status=400, content_type="text/plain")
    if request.GET.get("export") == "rows":
        fields = [
            "resource_id",
            "resource_name",
            "service_name",
            "sku_id",
            "region_id",
            "pricing_category",
            "amount",
            "effective",
            "quantity",
            "lines",
            "days",
        ]
        return _csv(
            f"{slug}-drill-{data['dim']}.csv",
            fields,
            ([r[f] for f in fields] for r in data["rows"]),
        )
    query = request.GET.copy()
    query["export"] = "rows"
    return render(
        request, "costs/dashboard/drill.html", {**data, "export_query": query.urlencode()}
    )


@require_GET
@login_required
def org_overview(request):
    month = (
        selectors.parse_month(request.GET.get("month"), default=selectors.data_as_of())
        if request.GET.get("month")
        else None
    )
    try:
        data = selectors.org_overview(viewer=request.user, month=month)
    except DomainError as exc:
        return HttpResponse(exc.message, status=400, content_type="text/plain")
    if request.GET.get("export") == "teams":
        rows = (
            [r["team"].slug, r["amount"], r["prev"], r["delta"], _pct(r["change_pct"]), r["budget"]]
            for r in data["ranked"]
        )
        return _csv(
            f"org-costs-{data['month']:%Y-%m}.csv",
            ["team", "amount", "previous_same_days", "change", "change_pct", "budget"],
            rows,
        )
    figures = {
        "chart-ranked": charts.org_ranked(data["ranked"]),
        "chart-coverage": charts.coverage_trend(data["coverage"]),
    }
    return render(
        request, "costs/dashboard/overview.html", {**data, "figures": figures, "org_view": True}
    )


SHOWBACK_FIELDS = ["team", "direct", "shared", "billed", "effective", "list", "seats", "budget"]


@require_GET
@login_required
def showback(request):
    try:
        month = selectors.parse_month(request.GET.get("month"), default=selectors.data_as_of())
    except DomainError as exc:
        return HttpResponse(exc.message, status=400, content_type="text/plain")
    data = selectors.showback(viewer=request.user, month=month)
    if request.GET.get("format") == "csv":
        rows = [[r["team"].slug] + [r[f] for f in SHOWBACK_FIELDS[1:]] for r in data["rows"]]
        if data["unallocated"]:
            rows.append(
                ["(unallocated)"] + [data["unallocated"][f] for f in SHOWBACK_FIELDS[1:-1]] + [""]
            )
        rows.append(["(total)"] + [data["totals"].get(f, "") for f in SHOWBACK_FIELDS[1:-1]] + [""])
        return _csv(f"showback-{month:%Y-%m}.csv", SHOWBACK_FIELDS, rows)
    return render(request, "costs/dashboard/showback.html", {**data, "org_view": True})


@require_http_methods(["GET", "POST"])
@login_required
def budgets(request):
    month = (
        selectors.parse_month(request.GET.get("month"), default=selectors.data_as_of())
        if request.GET.get("month")
        else selectors.data_as_of().replace(day=1)
    )
    rows = selectors.budgets_overview(viewer=request.user, month=month)
    can_edit = may_set_budget(request.user)
    errors: list[str] = []
    status = 200
    if request.method == "POST":
        if not can_edit:
            raise Http404("no such page")
        team = Team.objects.filter(slug=request.POST.get("team", "")).first()
        try:
            if team is None:
                raise ValidationError("choose a team", field="team")
            target = selectors.parse_month(request.POST.get("month"))
            try:
                amount = Decimal(request.POST.get("amount", ""))
            except ArithmeticError:
                raise ValidationError("the amount is a number", field="amount") from None
            raw = [t for t in request.POST.get("thresholds", "").replace(" ", "").split(",") if t]
            if not all(t.isdigit() for t in raw):
                raise ValidationError(
                    "thresholds are whole percentages, comma-separated", field="thresholds"
                )
            services.budget_set(
                actor=request.user,
                team=team,
                month=target,
                amount=amount,
                currency=request.POST.get("currency", "USD"),
                thresholds=[int(t) for t in raw],
            )
        except DomainError as exc:
            errors.append(exc.message)
            status = 400
        else:
            messages.success(request, f"Budget of {team.name} from {target:%Y-%m} saved.")
            return redirect(reverse("costs-dash:budgets") + f"?month={month:%Y-%m}")
    return render(
        request,
        "costs/dashboard/budgets.html",
        {
            "rows": rows,
            "month": month,
            "can_edit": can_edit,
            "errors": errors,
            "teams": [r["team"] for r in rows],
            "org_view": True,
        },
        status=status,
    )


@require_GET
@login_required
def anomaly_list(request):
    status = request.GET.get("status") or None
    qs = selectors.anomalies_for_viewer(
        viewer=request.user, team_slug=request.GET.get("team") or None, status=status
    )
    return render(
        request,
        "costs/dashboard/anomalies.html",
        {
            "anomalies": qs[:200],
            "status": status or "",
            "team": request.GET.get("team") or "",
            "states": Anomaly.Status.choices,
            "patterns": AnomalySuppression.Pattern.choices,
            "org_view": may_view_org_costs(request.user),
        },
    )


@require_POST
@login_required
def anomaly_acknowledge(request, pk: int):
    anomaly = selectors.anomaly_get_for_viewer(viewer=request.user, pk=pk)
    try:
        services.anomaly_acknowledge(
            actor=request.user, anomaly_id=anomaly.pk, note=request.POST.get("note", "")
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Anomaly acknowledged.")
    return redirect(reverse("costs-dash:anomalies") + f"?team={anomaly.team.slug}")


@require_GET
@login_required
def suggestion_list(request):
    try:
        qs = selectors.suggestions_for_viewer(
            viewer=request.user,
            team_slug=request.GET.get("team") or None,
            status=request.GET.get("status") or None,
            kind=request.GET.get("kind") or None,
        )
    except DomainError as exc:
        return HttpResponse(exc.message, status=400, content_type="text/plain")
    rows = list(qs[:200])
    for s in rows:
        s.can_act = may_act_on_team_costs(request.user, s.team)
    return render(
        request,
        "costs/dashboard/suggestions.html",
        {
            "suggestions": rows,
            "team": request.GET.get("team", ""),
            "status": request.GET.get("status", ""),
            "kinds": Suggestion.Kind.choices,
            "statuses": Suggestion.Status.choices,
            "kind": request.GET.get("kind", ""),
            "org_view": may_view_org_costs(request.user),
        },
    )


@require_POST
@login_required
def suggestion_action(request, pk: int, action: str):
    suggestion = selectors.suggestion_get_for_viewer(viewer=request.user, pk=pk)
    try:
        services.suggestion_transition(
            actor=request.user,
            suggestion_id=suggestion.pk,
            action=action,
            reason=request.POST.get("reason", ""),
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect(
            reverse("costs-dash:suggestions")
            + (f"?team={suggestion.team.slug}" if suggestion.team else "")
        )
    done = {
        "accept": "accepted",
        "resolve": "resolved",
        "dismiss": "dismissed",
        "reopen": "reopened",
    }
    messages.success(request, f"Suggestion {done.get(action, action)}.")
    return redirect(
        reverse("costs-dash:suggestions")
        + (f"?team={suggestion.team.slug}" if suggestion.team else "")
    )
