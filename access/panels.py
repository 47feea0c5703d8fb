"""Panels other apps add to the request page (recommendations, standards), without access
importing them: an app appends a callable to REQUEST_PANELS in its AppConfig.ready().

A panel is called with (request=<AccessRequest>, viewer=<User>) and returns None (nothing to
show this viewer) or a ``Panel``; the request page renders each panel's template with its
context, in registration order. Panels must scope by viewer themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

REQUEST_PANELS: list = []


@dataclass
class Panel:
    title: str
    template: str
    context: dict = field(default_factory=dict)


def request_panels(*, request, viewer) -> list[Panel]:
    panels = []
    for build in REQUEST_PANELS:
        panel = build(request=request, viewer=viewer)
        if panel is not None:
            panels.append(panel)
    return panels
