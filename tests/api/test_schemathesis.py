"""A property-based run of the committed OpenAPI schema against the app (schemathesis).

Every operation of docs/openapi.yaml is called in-process through Django's WSGI handler
with generated input, valid and invalid (the stateless phase), and in sequences that feed
one answer's ids into the next call (the stateful phase, from links schemathesis infers),
as the engineer (a personal token) and as nobody (no credentials). Every answer must
conform: no 5xx, a documented status, the documented content type and body schema.

Bounded and reproducible: a fixed number of examples per operation, derandomized (the
same cases every run), no deadline.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from hypothesis.stateful import run_state_machine_as_test
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from access import services
from access.models import AccessRequest
from portal.core.actors import CLI
from tests.access.factories import grant_directly
from tokens.management.commands.create_service_token import service_token_create
from tokens.services import api_token_create

from .test_schema import COMMITTED

EXAMPLES = 20
STATEFUL_STEPS = 10

# Schema-valid bodies that the rules refuse with 400 naming the field: an entitlement id
# that names no entitlement, a duration over the entitlement's maximum. The schema cannot
# say which ids exist, so here the "schema-valid input is accepted" check does not apply;
# every other check does (tests/api/test_requests.py pins those 400s).
RULES_REFUSE_VALID_BODIES = {
    "POST /api/v1/requests/",
    # cost rules the schema cannot carry (a team the caller may see, a service scope needs a
    # service, a dismissal needs a reason, no value for a future day): pinned in
    # tests/costs/test_anomaly_alerts.py and tests/costs/test_unit_costs.py
    "POST /api/v1/costs/anomaly-subscriptions/",
    "POST /api/v1/costs/anomalies/{id}/decision",
    "POST /api/v1/metrics/",
    "POST /api/v1/metrics/{slug}/values",
}


def _settings(examples: int, **extra) -> hypothesis_settings:
    return hypothesis_settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        **extra,
    )


@pytest.fixture
def wsgi_app(settings):
    """Django's WSGI handler, sharing the test's database transaction: the handler would
    otherwise close the connection at the start and end of each request. A server error
    propagates with its traceback (a 500 fails the run either way). The throttle's rate is
    out of reach: a run makes more calls a minute than a person would (tests/api/
    test_contract.py tests the 429s), and a 429 would cut the stateful phase's chains."""
    settings.DEBUG_PROPAGATE_EXCEPTIONS = True
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": "1000000/minute"},
    }
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def dataset(catalog, personas):
    """A small organisation's week: requests pending, approved, denied and cancelled, grants
    held and revoked, so that lists are not empty and ids point at real rows."""
    requester, manager = personas["requester"], personas["manager"]
    pending = services.access_request_submit(
        actor=requester,
        principal=requester,
        entitlement=catalog["admin"],
        justification="on call next week",
        duration_days=7,
    )
    cancelled = services.access_request_submit(
        actor=requester,
        principal=requester,
        entitlement=catalog["deploy"],
        justification="release train",
    )
    if cancelled.status == AccessRequest.Status.PENDING:
        services.access_request_cancel(
            actor=requester, request_id=cancelled.pk, reason="not needed"
        )
    held = grant_directly(requester, catalog["read"], days=30)
    gone = grant_directly(personas["other_team_user"], catalog["deploy"], days=10)
    services.grant_revoke(actor=personas["admin"], grant_id=gone.pk, reason="left the project")
    return {"pending": pending, "held": held, "manager": manager}


def _engineer_headers(user) -> dict:
    _token, plaintext = api_token_create(actor=user, user=user, name="schemathesis")
    return {"Authorization": f"Bearer {plaintext}"}


def _schema(app, *, credentials: bool):
    schema = schemathesis.openapi.from_path(COMMITTED)
    schema.app = app
    if credentials:
        # The caller's own token is sent; a made-up session cookie beside it would make the
        # "invalid credentials are refused" check read the token's success as a breach.
        # Without credentials, made-up tokens and cookies are generated and must be refused.
        schema.config.generation.update(with_security_parameters=False)
    return schema


def _operations(schema):
    return [result.ok() for result in schema.get_all_operations()]


def _excluded(operation) -> list:
    return [positive_data_acceptance] if operation.label in RULES_REFUSE_VALID_BODIES else []


def _fuzz(operation, mode, app, headers: dict) -> None:
    excluded = _excluded(operation)

    @given(case=operation.as_strategy(generation_mode=mode))
    @_settings(EXAMPLES)
    def run(case):
        response = case.call(app=app, headers=headers)
        case.validate_response(response, headers=headers, excluded_checks=excluded)

    run()


def _run_stateless(schema, app, headers: dict) -> list[str]:
    failures: list[str] = []
    for operation in _operations(schema):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation, mode, app, headers)
            except Unsatisfiable:
                # Nothing of this operation can be made invalid (no parameters, no body).
                assert mode == GenerationMode.NEGATIVE, operation.label
            except (Exception, BaseExceptionGroup) as exc:  # collect every operation's failures
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    return failures


def _run_stateful(schema, app, headers: dict) -> dict[str, int]:
    calls: dict[str, int] = {}

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case):
            calls[case.operation.label] = calls.get(case.operation.label, 0) + 1
            return {"app": app, "headers": headers}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            # As in the stateless phase: the checks know the token is ours, not generated.
            case.validate_response(
                response,
                additional_checks=additional_checks,
                headers=headers,
                excluded_checks=_excluded(case.operation),
                transport_kwargs=kwargs or None,
                recorder=getattr(self, "recorder", None),
            )

    # No shrinking: the database keeps what earlier scenarios did, so a replay would not
    # draw the same links; a failure is reported as found.
    run_state_machine_as_test(
        Workflow,
        settings=_settings(
            EXAMPLES,
            stateful_step_count=STATEFUL_STEPS,
            phases=[Phase.explicit, Phase.generate],
        ),
    )
    return calls


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["engineer", "nobody"])
def test_the_api_answers_as_its_schema_says(who, wsgi_app, dataset, requester):
    headers = _engineer_headers(requester) if who == "engineer" else {}
    schema = _schema(wsgi_app, credentials=bool(headers))
    failures = _run_stateless(schema, wsgi_app, headers)
    assert not failures, "\n\n".join(failures)
    calls = _run_stateful(schema, wsgi_app, headers)
    # The stateful phase chained calls: ids from one answer fed into a path of the next.
    assert calls.get("POST /api/v1/requests/{id}/approve", 0) > 0, calls


@pytest.mark.django_db
def test_the_check_api_answers_a_service_as_its_schema_says(wsgi_app, dataset, catalog):
    """The check API as its callers use it: a service token (the hot path and DRF)."""
    _token, plaintext = service_token_create(
        actor=CLI, service=catalog["search_db"], name="schemathesis"
    )
    schema = _schema(wsgi_app, credentials=True).include(path_regex="^/api/v1/check")
    assert {op.label for op in _operations(schema)} == {
        "POST /api/v1/check",
        "POST /api/v1/check/batch",
    }
    failures = _run_stateless(schema, wsgi_app, {"Authorization": f"Bearer {plaintext}"})
    assert not failures, "\n\n".join(failures)
