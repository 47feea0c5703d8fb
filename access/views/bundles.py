"""Requestable bundles: the list, the request form with the bundle picked (its link is the
one to share: /bundles/<slug>/request/), and a bundle request's page with its decision."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from portal.core.errors import Conflict, NotPermitted, ValidationError
from portal.core.views import domain_errors

from .. import policies, services, workflow
from ..models import AccessBundle, AccessRequest, BundleRequest
from .requests import _principals


@require_GET
@login_required
def bundle_list(request):
    bundles = AccessBundle.objects.filter(requestable=True).prefetch_related(
        "entitlements__service"
    )
    return render(request, "access/bundle_list.html", {"bundles": bundles})


@require_http_methods(["GET", "POST"])
@login_required
@domain_errors
def bundle_request_new(request, slug: str):
    bundle = AccessBundle.objects.filter(slug=slug, requestable=True).first()
    if bundle is None:
        raise Http404("no such bundle")
    principals = _principals(request.user)
    by_pk = {str(p.pk): p for p in principals}
    principal = by_pk.get(request.POST.get("principal") or request.GET.get("principal") or "")
    principal = principal or request.user
    errors: list[str] = []
    if request.method == "POST":
        try:
            created = services.bundle_request_submit(
                actor=request.user,
                bundle=bundle,
                principal=principal,
                justification=request.POST.get("justification", ""),
            )
        except (ValidationError, Conflict, NotPermitted) as exc:
            errors.append(exc.message)
        else:
            messages.success(
                request,
                f"Bundle {bundle.name} requested ({created.member_requests.count()} requests).",
            )
            return redirect("access:bundle-request-detail", pk=created.pk)
    holdings = services.bundle_holdings(bundle=bundle, principal=principal)
    policy = services.bundle_policy(bundle)
    return render(
        request,
        "access/bundle_request_form.html",
        {
            "bundle": bundle,
            "principals": principals,
            "principal": principal,
            "holdings": holdings,
            "missing": sum(1 for h in holdings if h.state == "missing"),
            "policy": policy,
            "errors": errors,
            "justification": request.POST.get("justification", ""),
        },
        status=400 if errors else 200,
    )


def _visible_bundle_request(user, pk: int) -> BundleRequest:
    found = (
        BundleRequest.objects.select_related("bundle", "principal", "requester")
        .filter(pk=pk)
        .first()
    )
    if found is None:
        raise Http404("no such bundle request")
    members = list(found.member_requests.select_related("entitlement__service").order_by("pk"))
    approver = any(
        r.status == AccessRequest.Status.PENDING
        and user.pk in workflow.eligible_approvers(request=r)
        for r in members
    )
    if not (
        user.pk in (found.requester_id, found.principal_id)
        or approver
        or policies.sees_all_access(user)
    ):
        raise Http404("no such bundle request")
    found.members = members  # type: ignore[attr-defined]
    found.may_decide = approver  # type: ignore[attr-defined]
    return found


@require_GET
@login_required
def bundle_request_detail(request, pk: int):
    found = _visible_bundle_request(request.user, pk)
    return render(
        request,
        "access/bundle_request_detail.html",
        {"bundle_request": found, "status": services.bundle_request_status(found)},
    )


@require_POST
@login_required
@domain_errors
def bundle_request_decide(request, pk: int, decision: str):
    found = _visible_bundle_request(request.user, pk)
    reason = request.POST.get("reason", "")
    try:
        if decision == "approve":
            count = services.bundle_request_approve(
                actor=request.user, bundle_request_id=found.pk, reason=reason
            )
            messages.success(request, f"{count} request(s) of the bundle approved.")
        else:
            count = services.bundle_request_deny(
                actor=request.user, bundle_request_id=found.pk, reason=reason
            )
            messages.success(request, f"{count} request(s) of the bundle denied.")
    except (ValidationError, Conflict) as exc:
        messages.error(request, exc.message)
    return redirect("access:bundle-request-detail", pk=found.pk)


def _spec_from(post) -> services.RuleSpec:
    def listed(name: str) -> list[str]:
        return [v.strip() for v in post.get(name, "").split(",") if v.strip()]

    return services.RuleSpec(
        slug=post.get("slug", "").strip(),
        teams=listed("teams"),
        departments=listed("departments"),
        worker_types=listed("worker_types"),
        manager_subtree=post.get("manager_subtree", "").strip() or None,
    )


@require_http_methods(["GET", "POST"])
@login_required
@domain_errors
def bundle_rules(request, slug: str):
    """Assignment rules of a bundle (platform admins): preview who gains and loses, then
    save (the save applies the rules at once)."""
    from accounts.policies import is_platform_admin

    bundle = AccessBundle.objects.filter(slug=slug).first()
    if bundle is None or not is_platform_admin(request.user):
        raise Http404("no such page")
    spec = _spec_from(request.POST) if request.method == "POST" else None
    preview = None
    errors: list[str] = []
    if spec is not None:
        if not spec.slug:
            errors.append("name the rule (slug)")
        else:
            others = [services.RuleSpec.of(r) for r in bundle.rules.exclude(slug=spec.slug)]
            try:
                preview = services.bundle_assignment_preview(
                    bundle=bundle, rules=[*others, spec]
                ).summary()
                if request.POST.get("action") == "save":
                    services.assignment_rule_save(actor=request.user, bundle=bundle, spec=spec)
                    result = services.bundle_assignments_apply(bundle=bundle)
                    messages.success(
                        request,
                        f"Rule {spec.slug} saved: {len(result['gain']) - len(result['skipped'])} "
                        f"granted, {len(result['lose'])} removed.",
                    )
                    return redirect("access:bundle-rules", slug=bundle.slug)
            except (ValidationError, NotPermitted) as exc:
                errors.append(exc.message)
                preview = None if request.POST.get("action") != "save" else preview
    return render(
        request,
        "access/bundle_rules.html",
        {
            "bundle": bundle,
            "rules": bundle.rules.select_related("manager_subtree"),
            "spec": spec,
            "preview": preview,
            "errors": errors,
        },
        status=400 if errors else 200,
    )
