from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from portal.core.home import todo_for

from . import selectors


@require_GET
@login_required
def home(request):
    user = request.user
    return render(
        request,
        "accounts/home.html",
        {
            "team": user.team,
            "manager": user.manager,
            "direct_reports": selectors.user_reports(user=user, transitive=False).order_by("name"),
            "report_count": selectors.user_reports(user=user).count(),
            "roles": selectors.user_roles(user=user),
            # what waits on the viewer, from the installed apps' home.py providers
            "sections": todo_for(user),
        },
    )


@require_GET
@login_required
def team_detail(request, slug: str):
    team = selectors.team_get_for_viewer(viewer=request.user, slug=slug)
    return render(
        request,
        "accounts/team_detail.html",
        {
            "team": team,
            "members": selectors.team_members(team=team),
            "leads": selectors.team_leads(team=team),
            "children": team.children.order_by("name"),
        },
    )


@require_GET
@login_required
def team_list(request):
    return render(
        request,
        "accounts/team_list.html",
        {"teams": selectors.teams_for_viewer(viewer=request.user).order_by("name")},
    )
