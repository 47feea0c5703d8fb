"""gunicorn settings for Tollgate: ``gunicorn -c deploy/gunicorn.conf.py portal.wsgi``.

With ``PROMETHEUS_MULTIPROC_DIR`` set, every worker process writes its metric values to that
directory and ``/metrics`` adds them up. The directory is emptied when the master starts
(values of a previous run would otherwise be added in) and a dead worker's files are marked.
"""

import multiprocessing
import os
import shutil

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")  # noqa: S104 (behind the load balancer)
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
worker_class = "sync"
timeout = 30
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))


def on_starting(server):
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path, exist_ok=True)


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
