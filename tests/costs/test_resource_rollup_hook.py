"""An import (and a re-attribution) refreshes the resource rollups the dashboards read,
after commit, without waiting for the hourly beat task."""

import pytest

from costs.analytics.models import CostResourceDaily
from costs.models import CostLine

from .conftest import do_import


@pytest.mark.sqlite
@pytest.mark.django_db
def test_import_rebuilds_resource_rollups_after_commit(
    sample_path, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        run = do_import(sample_path)
    assert run.status == "succeeded"
    assert len(callbacks) >= 1
    lines_total = sum(CostLine.objects.values_list("billed_cost", flat=True))
    rollup_total = sum(CostResourceDaily.objects.values_list("billed_cost", flat=True))
    assert CostResourceDaily.objects.exists()
    assert abs(lines_total - rollup_total) < 1e-6


@pytest.mark.django_db
def test_without_commit_no_rollup_is_built(sample_path):
    do_import(sample_path)  # the test transaction never commits: the task is not enqueued
    assert not CostResourceDaily.objects.exists()
