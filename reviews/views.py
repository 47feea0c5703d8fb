"""HTML pages of access reviews (A9). Thin: authorize, call one service or selector, render."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from portal.core.errors import DomainError, NotPermitted
from portal.core.views import add_form_error, domain_errors

from . import campaign_templates, policies, selectors, services
from .forms import CampaignForm, DecisionForm
from .models import CampaignTemplate


@require_GET
@login_required
def campaign_list(request):
    campaigns = selectors.campaigns_for_viewer(viewer=request.user).select_related(
        "scope_service", "scope_team"
    )
    return render(
        request,
        "reviews/campaign_list.html",
        {
            "campaigns": campaigns,
            "may_manage": policies.may_manage_campaigns(request.user),
            "open_count": selectors.my_open_items(viewer=request.user).count(),
        },
    )


@require_http_methods(["GET", "POST"])
@login_required
@domain_errors
def campaign_create(request):
    if not policies.may_manage_campaigns(request.user):
        raise PermissionDenied("only security or a platform admin creates review campaigns")
    form = CampaignForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            campaign = services.campaign_create(
                actor=request.user,
                name=data["name"],
                scope=data["scope"],
                service=data["scope_service"],
                team=data["scope_team"],
                risk=data["scope_risk"],
                reviewer_rule=data["reviewer_rule"],
                starts_at=data["starts_at"],
                deadline=data["deadline"],
                deadline_action=data["deadline_action"],
            )
        except DomainError as exc:
            add_form_error(form, exc)
        else:
            messages.success(request, f"Campaign {campaign.name!r} created as a draft.")
            return redirect("reviews:campaign-detail", pk=campaign.pk)
    return render(request, "reviews/campaign_form.html", {"form": form})


@require_GET
@login_required
@domain_errors
def campaign_detail(request, pk: int):
    campaign = selectors.campaign_get(viewer=request.user, pk=pk)
    return render(
        request,
        "reviews/campaign_detail.html",
        {
            "campaign": campaign,
            "progress": selectors.campaign_progress(campaign=campaign),
            "may_manage": policies.may_manage_campaigns(request.user),
            "may_export": policies.sees_all_campaigns(request.user),
        },
    )


@require_POST
@login_required
@domain_errors
def campaign_start(request, pk: int):
    campaign = selectors.campaign_get(viewer=request.user, pk=pk)
    try:
        services.campaign_start(actor=request.user, campaign_id=campaign.pk)
    except DomainError as exc:
        if isinstance(exc, NotPermitted):
            raise
        messages.error(request, f"Could not start: {exc.message}.")
    else:
        messages.success(request, "Campaign started: reviewers have their items.")
    return redirect("reviews:campaign-detail", pk=campaign.pk)


@require_GET
@login_required
@domain_errors
def campaign_export(request, pk: int, kind: str):
    campaign = selectors.campaign_get(viewer=request.user, pk=pk)
    if not policies.sees_all_campaigns(request.user):
        raise PermissionDenied("only security, auditors or admins export review reports")
    try:
        data, manifest = services.campaign_export(actor=request.user, campaign=campaign)
    except DomainError as exc:
        if isinstance(exc, NotPermitted):
            raise
        messages.error(request, f"No report: {exc.message}.")
        return redirect("reviews:campaign-detail", pk=campaign.pk)
    if kind == "csv":
        response = HttpResponse(data, content_type="text/csv; charset=utf-8")
        filename = manifest["file"]
    else:
        response = HttpResponse(services.manifest_json(manifest), content_type="application/json")
        filename = manifest["file"] + ".manifest.json"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_GET
@login_required
def my_reviews(request):
    rows = selectors.my_open_rows(viewer=request.user)
    return render(request, "reviews/my_reviews.html", {"rows": rows})


@require_POST
@login_required
@domain_errors
def review_decide(request):
    """One item (a row's button) or several (the checked rows): keep or revoke."""
    raw = request.POST.getlist("items")
    ids = [int(v) for v in raw if v.isdigit()]
    # Every item must be one the viewer may see: otherwise 404, nothing decided.
    visible = set(
        selectors.review_items_for_viewer(viewer=request.user)
        .filter(pk__in=ids)
        .values_list("pk", flat=True)
    )
    if not ids or len(visible) != len(set(ids)) or len(raw) != len(ids):
        if not ids:
            messages.error(request, "Pick at least one item.")
            return redirect("reviews:mine")
        raise Http404("no such review item")
    form = DecisionForm(request.POST, item_ids=sorted(visible))
    if not form.is_valid():
        messages.error(request, "Choose keep or revoke.")
        return redirect("reviews:mine")
    try:
        done = services.review_items_decide(
            actor=request.user,
            item_ids=form.cleaned_data["items"],
            decision=form.cleaned_data["decision"],
            reason=form.cleaned_data["reason"],
        )
    except DomainError as exc:
        if isinstance(exc, NotPermitted):
            raise
        messages.error(request, f"Nothing decided: {exc.message}.")
        return redirect("reviews:mine")
    verb = "kept" if form.cleaned_data["decision"] == "keep" else "revoked"
    messages.success(request, f"{len(done)} {verb}: {', '.join(f'#{i.pk}' for i in done)}.")
    return redirect("reviews:mine")


@require_GET
@login_required
def template_list(request):
    """Campaign templates (kept in the configuration tree) and a button to start one now."""
    if not policies.may_manage_campaigns(request.user):
        raise PermissionDenied("only security or a platform admin sees review templates")
    templates = CampaignTemplate.objects.select_related("scope_service", "scope_team")
    return render(request, "reviews/template_list.html", {"templates": templates})


@require_POST
@login_required
@domain_errors
def template_start(request, slug: str):
    # A template is not shown to those who may not start it: 404, nothing created.
    if not policies.may_manage_campaigns(request.user):
        raise Http404("no such template")
    template = CampaignTemplate.objects.filter(slug=slug).first()
    if template is None:
        raise Http404("no such template")
    campaign = campaign_templates.campaign_from_template(actor=request.user, template=template)
    messages.success(request, f"Campaign {campaign.name!r} started from the template.")
    return redirect("reviews:campaign-detail", pk=campaign.pk)
