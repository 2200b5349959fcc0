"""Template helpers of the dashboard: query-string links and safe report links."""

from urllib.parse import urlsplit

from django import template

register = template.Library()


@register.simple_tag(takes_context=True)
def query(context, **changes):
    """The current query string with `changes`; an empty value removes a key.

    Any change other than the page itself goes back to the first page.
    """
    params = context.request.GET.copy()
    if "page" not in changes:
        params.pop("page", None)
    params.pop("format", None)
    for name, value in changes.items():
        if value in (None, ""):
            params.pop(name, None)
        else:
            params[name] = value
    return "?" + params.urlencode() if params else "?"


@register.filter
def http_url(value):
    """`value` if it is an absolute http(s) address, else an empty string."""
    try:
        parts = urlsplit(str(value or "").strip())
    except ValueError:
        return ""
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        return parts.geturl()
    return ""
