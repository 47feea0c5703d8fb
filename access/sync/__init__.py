"""Provisioning pages, selectors, policies, notifications and metrics.

The services moved to :mod:`access.services` (``provisioning``, ``reconciliation``,
``lifecycle``, ``grants``); :mod:`access.sync.outbox`, :mod:`access.sync.reconcile` and
:mod:`access.sync.lifecycle` only re-export them for old imports.

See docs/PROVISIONING.md.
"""
