from django.apps import AppConfig


class TokensConfig(AppConfig):
    name = "tokens"
    verbose_name = "API tokens"

    def ready(self) -> None:
        from accounts.services import LEAVER_HOOKS, ROLE_REMOVED_HOOKS

        from . import registry, schema  # noqa: F401  (audit actions, OpenAPI auth scheme)
        from .services import api_tokens_revoke_for_leaver, api_tokens_revoke_for_lost_role

        if api_tokens_revoke_for_leaver not in LEAVER_HOOKS:
            LEAVER_HOOKS.append(api_tokens_revoke_for_leaver)
        if api_tokens_revoke_for_lost_role not in ROLE_REMOVED_HOOKS:
            ROLE_REMOVED_HOOKS.append(api_tokens_revoke_for_lost_role)
