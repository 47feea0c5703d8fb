from django.apps import AppConfig

from . import home, metrics, nav, tracing


class CoreConfig(AppConfig):
    name = "portal.core"
    label = "core"
    verbose_name = "Tollgate core"

    def ready(self) -> None:
        nav.autodiscover()  # each installed app's nav.py registers its entries
        home.autodiscover()  # and its home.py the to-do items of the home page
        metrics.autodiscover()  # ... and its metrics.py its scrape-time collectors
        metrics.connect_celery_signals()
        tracing.setup()  # OpenTelemetry, only when OTEL_EXPORTER_OTLP_ENDPOINT is set
