"""factory_boy factories for the objects most tests need: teams, people, services,
entitlements and held grants. The persona fixtures (``tests/conftest.py``) and the small
builders (``make_team``, ``make_user``, ``tests/access/factories.py``) are made with them.

Test set-up only: they write rows directly, never through the services (a grant made here has
no request, no audit event and no sync job)."""

from __future__ import annotations

import datetime as dt

import factory
from django.contrib.auth.models import Group
from django.utils import timezone
from factory.django import DjangoModelFactory

from access.models import Entitlement, Grant, Service
from accounts.models import Membership, Team, User

PASSWORD = "tollgate-test-pw"


class TeamFactory(DjangoModelFactory):
    class Meta:
        model = Team

    slug = factory.Sequence(lambda n: f"team-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.replace("-", " ").title())
    parent = None


class UserFactory(DjangoModelFactory):
    """A person with a password, a membership of ``team`` (``lead=True``: as its lead) and
    the platform ``roles`` given (auth group names)."""

    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    name = factory.LazyAttribute(lambda o: o.email.split("@")[0].title())
    team = None
    manager = None

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        email = kwargs.pop("email")
        return model_class.objects.create_user(email, PASSWORD, **kwargs)

    @factory.post_generation
    def membership(obj, create, extracted, **kwargs):  # noqa: N805 (factory_boy's signature)
        if create and obj.team_id is not None:
            lead = kwargs.get("lead", False)
            Membership.objects.create(
                team=obj.team,
                user=obj,
                role=Membership.Role.LEAD if lead else Membership.Role.MEMBER,
            )

    @factory.post_generation
    def roles(obj, create, extracted, **kwargs):  # noqa: N805
        for role in extracted or ():
            obj.groups.add(Group.objects.get_or_create(name=role)[0])


class ServiceFactory(DjangoModelFactory):
    class Meta:
        model = Service

    slug = factory.Sequence(lambda n: f"service-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.replace("-", " ").title())
    owner_team = factory.SubFactory(TeamFactory)
    tier = 2
    connector = ""


class EntitlementFactory(DjangoModelFactory):
    class Meta:
        model = Entitlement

    service = factory.SubFactory(ServiceFactory)
    slug = "read"
    name = factory.LazyAttribute(lambda o: o.slug.title())
    risk = "low"
    max_duration_days = 90
    default_duration_days = factory.LazyAttribute(lambda o: min(30, o.max_duration_days))
    policy = None


class GrantFactory(DjangoModelFactory):
    """A held grant without the workflow (peers who already hold access)."""

    class Meta:
        model = Grant

    class Params:
        days = 30

    principal = factory.SubFactory(UserFactory)
    entitlement = factory.SubFactory(EntitlementFactory)
    status = "active"
    ends_at = factory.LazyAttribute(lambda o: timezone.now() + dt.timedelta(days=o.days))
    reason = "test set-up"
