from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "People and teams"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (auth audit plumbing)
