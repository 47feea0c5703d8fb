from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Chat integrations"

    def ready(self) -> None:
        from access.events import REQUEST_EVENT_HOOKS

        from . import registry  # noqa: F401  (audit actions)
        from .slack.outbox import on_request_event

        if on_request_event not in REQUEST_EVENT_HOOKS:
            REQUEST_EVENT_HOOKS.append(on_request_event)
