"""HTML pages of approval recommendations (P5). Thin: authorize, call a selector or service."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from portal.core.errors import DomainError
from portal.core.views import add_form_error, domain_errors

from . import policies, selectors, services
from .forms import AdoptionForm


@require_GET
@login_required
@domain_errors
def model_status(request):
    history = selectors.model_history(viewer=request.user)
    return render(
        request,
        "recommend/model_status.html",
        {
            "history": history,
            "live": selectors.live_model(),
            "data": selectors.training_data_status(),
            "may_train": policies.may_train_model(request.user),
            "may_manage": policies.may_manage_adoptions(request.user),
        },
    )


@require_POST
@login_required
@domain_errors
def model_train(request):
    row = services.recommendation_model_train(actor=request.user)
    if row is None:
        status = selectors.training_data_status()
        messages.error(request, "Not trained: " + "; ".join(status["problems"]) + ".")
    else:
        messages.success(request, f"Model v{row.version} trained on {row.training_size} decisions.")
    return redirect("recommend:status")


@require_http_methods(["GET", "POST"])
@login_required
@domain_errors
def candidates(request):
    if not policies.may_see_candidates(request.user):
        raise PermissionDenied("only platform admins see auto-approval candidates")
    result = selectors.auto_approval_candidates(viewer=request.user)
    initial = {}
    if result["model"] is not None and result["model"].threshold is not None:
        initial["min_probability"] = f"{result['model'].threshold:.4f}"
    form = AdoptionForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                adoption = services.adoption_save(
                    actor=request.user,
                    policy=data["policy"],
                    min_probability=data["min_probability"],
                    max_risk=data["max_risk"],
                    enabled=data["enabled"],
                )
            except DomainError as exc:
                add_form_error(form, exc)
            else:
                messages.success(request, f"Saved: {adoption}.")
                return redirect("recommend:candidates")
        status = 400
    return render(
        request,
        "recommend/candidates.html",
        {
            **result,
            "adoptions": selectors.adoptions_for(viewer=request.user),
            "form": form,
        },
        status=status,
    )
