from django.conf import settings


def portal(request):
    return {"TOLLGATE_ENV": settings.TOLLGATE_ENV, "DEMO_ALLOWED": settings.DEMO_ALLOWED}
