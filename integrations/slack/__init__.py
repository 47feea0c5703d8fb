"""Slack: approvals where people already are (issue #19, docs/SLACK.md).

``signature`` verifies Slack's requests (and refuses replays), ``client`` is the Web API
(slack-sdk), ``blocks`` builds the Block Kit messages and modals, ``outbox`` keeps one row per
copy of a request's message and delivers it, ``identities`` links people, ``decisions`` calls
the same access services as the web and the API, ``interactions`` and ``commands`` answer
Slack's callbacks.
"""
