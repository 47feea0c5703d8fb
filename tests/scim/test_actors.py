"""The SCIM family of system actors: admitted where SCIM is named, nowhere else."""

from __future__ import annotations

import pytest

from portal.core.actors import (
    DIRECTORY_IMPORT,
    LEAVER,
    SCIM,
    SystemActor,
    actor_may,
    is_scim_actor,
    scim_client_actor,
)


def test_a_client_actor_is_named_after_the_client():
    actor = scim_client_actor("okta")
    assert actor == SystemActor("scim.okta") and actor.label == "system:scim.okta"
    with pytest.raises(ValueError):
        scim_client_actor("Bad Name")


@pytest.mark.parametrize(
    ("actor", "family"),
    [
        (SCIM, True),
        (SystemActor("scim.okta"), True),
        (SystemActor("scimx"), False),
        (SystemActor("scim-okta"), False),
        (DIRECTORY_IMPORT, False),
    ],
)
def test_only_the_scim_family_is_admitted_where_scim_is_named(actor, family):
    assert is_scim_actor(actor) is family
    assert actor_may(actor, lambda person: True, systems=(LEAVER, SCIM)) is family
    # Where SCIM is not named, no SCIM actor passes.
    if actor != DIRECTORY_IMPORT:
        assert actor_may(actor, lambda person: True, systems=(LEAVER, DIRECTORY_IMPORT)) is False


def test_strings_are_still_refused():
    with pytest.raises(TypeError):
        is_scim_actor("scim.okta")
