from django.apps import AppConfig


class RecommendConfig(AppConfig):
    name = "recommend"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Recommendations"

    def ready(self) -> None:
        from access.panels import REQUEST_PANELS
        from access.workflow import REQUEST_CHECKS

        from . import registry  # noqa: F401  (registers the audit action names)
        from .checks import recommendation_offer
        from .panels import recommendation_panel

        if recommendation_panel not in REQUEST_PANELS:
            REQUEST_PANELS.append(recommendation_panel)
        if recommendation_offer not in REQUEST_CHECKS:
            REQUEST_CHECKS.append(recommendation_offer)
