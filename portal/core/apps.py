from django.apps import AppConfig

from . import nav


class CoreConfig(AppConfig):
    name = "portal.core"
    label = "core"
    verbose_name = "Tollgate core"

    def ready(self) -> None:
        nav.autodiscover()  # each installed app's nav.py registers its entries
