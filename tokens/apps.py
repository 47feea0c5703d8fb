from django.apps import AppConfig


class TokensConfig(AppConfig):
    name = "tokens"
    verbose_name = "API tokens"

    def ready(self) -> None:
        from accounts.services import LEAVER_HOOKS, ROLE_REMOVED_HOOKS
        from portal.core.locks import hook_register

        from . import registry, schema  # noqa: F401  (audit actions, OpenAPI auth scheme)
        from .services import api_tokens_revoke_for_leaver, api_tokens_revoke_for_lost_role

        hook_register(LEAVER_HOOKS, api_tokens_revoke_for_leaver, order="tokens.ApiToken")
        hook_register(ROLE_REMOVED_HOOKS, api_tokens_revoke_for_lost_role, order="tokens.ApiToken")
