"""Audit action names of the tokens app."""

from audit.registry import register

TOKEN_CREATED = register("api_token.created", "An API token was created")
TOKEN_REVOKED = register("api_token.revoked", "An API token was revoked")
