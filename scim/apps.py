from django.apps import AppConfig


class ScimConfig(AppConfig):
    name = "scim"
    verbose_name = "SCIM provisioning"

    def ready(self) -> None:
        from . import registry  # noqa: F401  (audit actions)
