"""Routes of provisioning pages, mounted at /provisioning/."""

from django.urls import path

from . import views

app_name = "access_sync"

urlpatterns = [
    path("", views.hub, name="hub"),
    path("jobs/failed/", views.failed_jobs, name="failed-jobs"),
    path("jobs/<int:pk>/retry/", views.job_retry, name="job-retry"),
    path("tasks/", views.manual_tasks, name="manual-tasks"),
    path("tasks/<int:pk>/answer/", views.manual_task_answer, name="manual-task-answer"),
    path("drift/", views.drift_overview, name="drift"),
    path("services/<slug:slug>/", views.service_sync, name="service"),
    path("services/<slug:slug>/reconcile/", views.service_reconcile, name="service-reconcile"),
    path(
        "services/<slug:slug>/reconcile/<int:pk>/progress/",
        views.service_reconcile_progress,
        name="service-reconcile-progress",
    ),
    path("reviews/", views.follow_ups, name="follow-ups"),
    path("reviews/<int:pk>/answer/", views.follow_up_answer, name="follow-up-answer"),
    path("break-glass/", views.break_glass, name="break-glass"),
    path("metrics", views.metrics_view, name="metrics"),
]
