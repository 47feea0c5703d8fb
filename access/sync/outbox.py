"""Moved to :mod:`access.services.provisioning` (re-exported here for old imports)."""

from access.services.provisioning import (  # noqa: F401
    backoff_seconds,
    cancel_open_jobs,
    enqueue_job,
    job_create,
    job_create_safely,
    manual_task_answer,
    refs_for,
    sync_job_retry,
    sync_job_run,
    sync_jobs_sweep,
)
