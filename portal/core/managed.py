"""Objects whose truth lives elsewhere (a configuration repository): a guard the write
services ask before a person edits one.

``portal.core`` knows no app: the app that manages objects from outside (``gitops``)
registers a guard in its ``AppConfig.ready()``; a service that edits a catalog object calls
:func:`refuse_if_managed` first. A guard answers None (edit allowed) or the message of the
refusal, which points at the repository.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import NotPermitted

#: guard(obj, actor) -> None when the edit may go on, else the reason it is refused.
EDIT_GUARDS: list[Callable[[Any, Any], str | None]] = []

MANAGED_ELSEWHERE = "managed-elsewhere"


def register_edit_guard(guard: Callable[[Any, Any], str | None]) -> None:
    if guard not in EDIT_GUARDS:
        EDIT_GUARDS.append(guard)


#: describer(obj) -> a note for the object's page ("managed in …"), or None.
DESCRIBERS: list[Callable[[Any], str | None]] = []


def register_describer(describer: Callable[[Any], str | None]) -> None:
    if describer not in DESCRIBERS:
        DESCRIBERS.append(describer)


def managed_note(obj: Any) -> str | None:
    """The mark shown on a managed object's page, or None when nothing manages it."""
    for describer in DESCRIBERS:
        note = describer(obj)
        if note:
            return note
    return None


def refuse_if_managed(obj: Any, *, actor: Any) -> None:
    """Raise ``NotPermitted`` (reason ``managed-elsewhere``) when a guard refuses the edit."""
    for guard in EDIT_GUARDS:
        message = guard(obj, actor)
        if message:
            raise NotPermitted(message, reason_code=MANAGED_ELSEWHERE)


def _register_status() -> None:
    from .errors import refusal_statuses_register

    refusal_statuses_register({MANAGED_ELSEWHERE: 403})


_register_status()
