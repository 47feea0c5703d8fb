from django.apps import AppConfig

from . import home, nav


class CoreConfig(AppConfig):
    name = "portal.core"
    label = "core"
    verbose_name = "Tollgate core"

    def ready(self) -> None:
        nav.autodiscover()  # each installed app's nav.py registers its entries
        home.autodiscover()  # and its home.py the to-do items of the home page
