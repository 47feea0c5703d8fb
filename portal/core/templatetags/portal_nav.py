"""``{% nav_groups as groups %}``: the navigation the installed apps contribute (see
``portal.core.nav``), computed once per request."""

from __future__ import annotations

from typing import Any

from django import template

from portal.core.nav import NavGroup, nav_for

register = template.Library()


@register.simple_tag(takes_context=True)
def nav_groups(context: template.Context) -> list[NavGroup]:
    request = context.get("request")
    user = getattr(request, "user", None)
    if request is None or user is None or not user.is_authenticated:
        return []
    cached: Any = getattr(request, "_tollgate_nav", None)
    if cached is None:
        cached = nav_for(user)
        request._tollgate_nav = cached
    return cached
