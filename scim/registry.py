"""Audit action names of the SCIM app."""

from audit.registry import register

CLIENT_CREATED = register("scim.client_created", "A SCIM client was created")
CLIENT_ROTATED = register("scim.client_rotated", "A SCIM client's token was rotated")
CLIENT_REVOKED = register("scim.client_revoked", "A SCIM client was revoked")
RATE_LIMITED = register("scim.rate_limited", "A SCIM client went over its rate limit")
CHANGE_HELD = register("scim.change_held", "A SCIM push was held: too many leavers in an hour")
HELD_CONFIRMED = register("scim.held_confirmed", "A held SCIM change was confirmed and applied")
HELD_DISCARDED = register("scim.held_discarded", "A held SCIM change was discarded")
