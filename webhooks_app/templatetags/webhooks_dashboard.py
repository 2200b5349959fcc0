"""Template helpers of the dashboard: query-string links and safe report links."""

from urllib.parse import urlsplit

from django import template
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.timesince import timesince
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

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


# Tags rather than included templates: a page shows them once per row, and an
# include costs a template render each time.


@register.simple_tag
def status_badge(status, count):
    """A status in words with an icon: never colour alone."""
    if status == "alerting":
        icon, text = "▲", ngettext("%(count)d alert", "%(count)d alerts", count)
        text %= {"count": count}
    elif status == "passed":
        icon, text = "✓", _("all checks passed")
    else:
        icon, text = "?", _("no checks reported")
    return format_html(
        '<span class="status status-{}"><span class="icon" aria-hidden="true">{}'
        "</span> {}</span>",
        status,
        icon,
        text,
    )


@register.simple_tag
def when(value):
    """How long ago, with the exact time beside it."""
    if not value:
        return "—"
    local = timezone.localtime(value)
    exact = stamp(value)
    return format_html(
        '<time datetime="{}" title="{}">{}</time><span class="exact">{}</span>',
        value.isoformat(),
        date_format(local, "Y-m-d H:i T"),
        _("%(since)s ago") % {"since": timesince(value, depth=1)},
        exact,
    )


@register.simple_tag
def report_link(notification):
    """A link to the NannyML report, only when it is an http(s) address."""
    link = http_url(notification.report_link) if notification else ""
    if not link:
        return ""
    return format_html(
        '<a href="{}" rel="noopener noreferrer" class="report-link">{}'
        '<span class="visually-hidden"> {}</span></a>',
        link,
        _("Report"),
        _("in NannyML"),
    )


@register.filter
def stamp(value, precision="minute"):
    """`value` in the current time zone as 2024-03-05 06:00, or 2024-03-05 (day).

    A fixed numeric format needs no locale lookups, which `date` does on every
    call: tables show many of these.
    """
    if not value:
        return ""
    local = timezone.localtime(value)
    return f"{local:%Y-%m-%d}" if precision == "day" else f"{local:%Y-%m-%d %H:%M}"
