from django.apps import AppConfig


class PatternsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "patterns"
    verbose_name = "Access patterns and standards"
