from django import template

from recommend.policies import may_see_model_status

register = template.Library()


@register.simple_tag(takes_context=True)
def may_see_recommendations(context) -> bool:
    """Only hides the nav link; the views check the policy themselves."""
    request = context.get("request")
    return bool(request) and may_see_model_status(request.user)
