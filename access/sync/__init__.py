"""Provisioning: the outbox (SyncJob), reconciliation, expiry, leavers, movers, break-glass.

* :mod:`access.sync.outbox` writes jobs in the grant's transaction, runs them through the
  service's connector, retries transient failures and records the outcome.
* :mod:`access.sync.reconcile` compares grants with who really holds what downstream.
* :mod:`access.sync.lifecycle` expires grants, reminds holders, handles leavers and
  movers, and takes break-glass grants with their follow-up reviews.

See docs/PROVISIONING.md.
"""
