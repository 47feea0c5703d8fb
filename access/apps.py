from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "access"

    def ready(self) -> None:
        from .sync.lifecycle import register_leaver_hook
        from .sync.outbox import register_provisioners

        register_provisioners()  # grants of services with a connector go through the outbox
        register_leaver_hook()  # a leaver's grants are revoked in the leaver's transaction
        from . import check, check_api  # noqa: F401  (check/token cache invalidation signals)
