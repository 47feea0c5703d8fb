from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "access"

    def ready(self) -> None:
        from . import outcomes  # noqa: F401  (registers the HTTP status of each refusal code)
        from .services.lifecycle import leaver_hooks_register

        leaver_hooks_register()  # a leaver's requests and grants go in the leaver's transaction
        from . import check, check_api  # noqa: F401  (check/token cache invalidation signals)
