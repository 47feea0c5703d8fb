"""HTML pages of unused access (P4). Thin: authorize, call one service or selector, render."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from access.models import Entitlement
from accounts.models import User
from portal.core.errors import DomainError, NotPermitted
from portal.core.views import add_form_error, domain_errors

from . import policies, selectors, services
from .models import UnusedRemoval, UsageSource

OPEN = ("detected", "scheduled", "opted_out")


class OptOutForm(forms.Form):
    reason = forms.CharField(max_length=500)
    days = forms.IntegerField(min_value=1)


class RestoreForm(forms.Form):
    reason = forms.CharField(max_length=500)


class RuleForm(forms.Form):
    event_source = forms.CharField(max_length=200, help_text="glob, e.g. s3.amazonaws.com")
    event_name = forms.CharField(max_length=200, help_text="glob, e.g. Get* or *")
    entitlement = forms.ModelChoiceField(
        queryset=Entitlement.objects.select_related("service").order_by("service__slug", "slug")
    )
    source = forms.ModelChoiceField(
        queryset=UsageSource.objects.filter(kind=UsageSource.Kind.EVENTS),
        required=False,
        empty_label="any event source",
    )
    note = forms.CharField(max_length=300, required=False)


class AliasForm(forms.Form):
    external_id = forms.CharField(max_length=500, label="Identity in the log (ARN, user name)")
    user = forms.ModelChoiceField(queryset=User.objects.filter(is_active=True).order_by("email"))


def _actions_for(user, removals) -> None:
    policies.annotate_actions(user, removals)


@require_GET
@login_required
def removal_list(request):
    show = request.GET.get("show", "open")
    qs = selectors.removals_for_viewer(viewer=request.user)
    if show == "open":
        qs = qs.filter(status__in=OPEN)
    elif show in UnusedRemoval.Status.values:
        qs = qs.filter(status=show)
    service = request.GET.get("service", "")
    if service:
        qs = qs.filter(service__slug=service)
    removals = list(qs.order_by("remove_after", "-detected_at", "pk")[:500])
    _actions_for(request.user, removals)
    return render(
        request,
        "usage/removal_list.html",
        {
            "removals": removals,
            "show": show,
            "service": service,
            "statuses": UnusedRemoval.Status.choices,
            "coverage": selectors.coverage_overview(viewer=request.user),
            "may_manage": policies.may_manage_usage(request.user),
            "window_days": settings.TOLLGATE_UNUSED_WINDOW_DAYS,
            "grace_days": settings.TOLLGATE_UNUSED_GRACE_DAYS,
            "notice_days": settings.TOLLGATE_UNUSED_NOTICE_DAYS,
            "stale_hours": settings.TOLLGATE_USAGE_STALE_HOURS,
            "max_opt_out": settings.TOLLGATE_UNUSED_OPT_OUT_MAX_DAYS,
        },
    )


def _detail(request, removal, *, opt_out_form=None, restore_form=None, status=200):
    _actions_for(request.user, [removal])
    return render(
        request,
        "usage/removal_detail.html",
        {
            "removal": removal,
            "opt_out_form": opt_out_form or OptOutForm(initial={"days": 30}),
            "restore_form": restore_form or RestoreForm(),
            "max_opt_out": settings.TOLLGATE_UNUSED_OPT_OUT_MAX_DAYS,
        },
        status=status,
    )


@require_GET
@login_required
def removal_detail(request, pk: int):
    return _detail(request, selectors.removal_get(viewer=request.user, pk=pk))


@require_POST
@login_required
@domain_errors
def removal_opt_out(request, pk: int):
    removal = selectors.removal_get(viewer=request.user, pk=pk)
    form = OptOutForm(request.POST)
    if form.is_valid():
        try:
            services.removal_opt_out(
                actor=request.user,
                removal_id=removal.pk,
                reason=form.cleaned_data["reason"],
                days=form.cleaned_data["days"],
            )
        except NotPermitted:
            raise
        except DomainError as exc:
            add_form_error(form, exc)
        else:
            messages.success(request, "Kept: the access will not be removed for now.")
            return redirect("usage:detail", pk=removal.pk)
    return _detail(request, removal, opt_out_form=form, status=400)


@require_POST
@login_required
@domain_errors
def removal_restore(request, pk: int):
    removal = selectors.removal_get(viewer=request.user, pk=pk)
    form = RestoreForm(request.POST)
    if form.is_valid():
        try:
            services.removal_restore(
                actor=request.user, removal_id=removal.pk, reason=form.cleaned_data["reason"]
            )
        except NotPermitted:
            raise
        except DomainError as exc:
            add_form_error(form, exc)
        else:
            messages.success(request, "Restored: a new grant is being provisioned.")
            return redirect("usage:detail", pk=removal.pk)
    return _detail(request, removal, restore_form=form, status=400)


@require_http_methods(["GET", "POST"])
@login_required
@domain_errors
def rule_list(request):
    rules = selectors.rules_for_admin(viewer=request.user)  # 404 unless admin
    rule_form = RuleForm(request.POST if request.POST.get("form") == "rule" else None)
    alias_form = AliasForm(request.POST if request.POST.get("form") == "alias" else None)
    if request.method == "POST":
        try:
            if rule_form.is_bound and rule_form.is_valid():
                data = rule_form.cleaned_data
                services.rule_create(
                    actor=request.user,
                    event_source=data["event_source"],
                    event_name=data["event_name"],
                    entitlement=data["entitlement"],
                    source=data["source"],
                    note=data["note"],
                )
                messages.success(request, "Rule added.")
                return redirect("usage:rules")
            if alias_form.is_bound and alias_form.is_valid():
                services.alias_create(
                    actor=request.user,
                    external_id=alias_form.cleaned_data["external_id"],
                    user=alias_form.cleaned_data["user"],
                )
                messages.success(request, "Alias added.")
                return redirect("usage:rules")
        except NotPermitted:
            raise
        except DomainError as exc:
            add_form_error(rule_form if rule_form.is_bound else alias_form, exc)
    from .models import PrincipalAlias

    return render(
        request,
        "usage/rule_list.html",
        {
            "rules": rules,
            "rule_form": rule_form,
            "alias_form": alias_form,
            "aliases": PrincipalAlias.objects.select_related("user")[:200],
            "imports": selectors.recent_imports(viewer=request.user),
        },
        status=400 if request.method == "POST" else 200,
    )


@require_POST
@login_required
@domain_errors
def rule_delete(request, pk: int):
    selectors.rules_for_admin(viewer=request.user)  # 404 unless admin
    try:
        services.rule_delete(actor=request.user, rule_id=pk)
    except NotPermitted:
        raise
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Rule deleted.")
    return redirect("usage:rules")
