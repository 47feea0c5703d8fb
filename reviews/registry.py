"""Audit action names of the access-review app (A9)."""

from audit.registry import register

CAMPAIGN_CREATED = register("review.campaign_created", "An access-review campaign was created")
CAMPAIGN_START = register("review.campaign_start", "An access-review campaign started")
CAMPAIGN_CLOSE = register("review.campaign_close", "An access-review campaign closed")
ITEM_KEEP = register("review.item_keep", "A reviewer kept a grant under review")
ITEM_REVOKE = register("review.item_revoke", "A reviewer revoked a grant under review")
ITEM_DEADLINE_REVOKE = register(
    "review.item_deadline_revoke", "An unanswered review item was revoked at the deadline"
)
ITEM_DEADLINE_ESCALATE = register(
    "review.item_deadline_escalate", "An unanswered review item was escalated at the deadline"
)
ITEM_REMINDED = register("review.item_reminded", "A reviewer was reminded of an open item")
ITEM_ESCALATED = register("review.item_escalated", "An open review item was escalated")
TEMPLATE_SAVED = register(
    "review.template_saved", "An access-review campaign template was created or changed"
)
TEMPLATE_DELETED = register(
    "review.template_deleted", "An access-review campaign template was removed"
)
