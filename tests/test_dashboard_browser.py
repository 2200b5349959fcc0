import io

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command

from tests.conftest import screenshot
from webhooks_app.models import MonitoredModel

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "viewer-password-1"
STATE_LABELS = {"alert", "no alert", "not reported"}


@pytest.fixture
def demo_site(live_server):
    call_command("webhooks_demo", "--models", "4", "--runs", "12", stdout=io.StringIO())
    user = User.objects.create_user("viewer", password=PASSWORD)
    user.user_permissions.add(Permission.objects.get(codename="view_notification"))
    return live_server.url


def log_in(page, base_url):
    page.goto(f"{base_url}/alerts/")
    assert "/accounts/login/" in page.url
    page.fill("input[name=username]", "viewer")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/alerts/")


def row_names(page):
    return page.locator("table.models tbody th a").all_inner_texts()


def test_a_viewer_logs_in_sorts_and_filters_the_models(page, demo_site):
    log_in(page, demo_site)
    screenshot(page, "dashboard-models")

    page.click("table.models thead >> text=Model")
    page.wait_for_url("**sort=name**")
    names = row_names(page)
    page.select_option("select[name=filter]", "alerting")
    page.click("form.filters button")
    page.wait_for_url("**filter=alerting**")

    assert names == sorted(names) and len(names) == 4
    statuses = page.locator("table.models tbody .status").all_inner_texts()
    alerting = MonitoredModel.objects.filter(open_alert_count__gt=0).count()
    assert len(statuses) == alerting
    assert all("alert" in status for status in statuses)
    assert "sort=name" in page.url  # the sort stays with the filter


def test_a_viewer_reads_a_model_grid_opens_a_run_and_downloads_the_csv(page, demo_site):
    log_in(page, demo_site)

    page.click("table.models tbody tr:first-child th a")
    page.wait_for_selector("table.grid")
    screenshot(page, "dashboard-model")
    page.emulate_media(color_scheme="dark")
    screenshot(page, "dashboard-model-dark")
    page.emulate_media(color_scheme="light")

    rows = page.locator("table.grid tbody tr:not(.group)")
    assert rows.count() >= 1
    for index in range(rows.count()):
        cells = rows.nth(index).locator("td.cell .visually-hidden").all_inner_texts()
        assert len(cells) == 12
        assert set(cells) <= STATE_LABELS
    assert page.locator("table.grid thead th.run").count() == 12
    assert "Legend" in page.locator(".legend").inner_text()

    with page.expect_download() as download:
        page.click("#grid .exports >> text=CSV")
    lines = download.value.path().read_text().splitlines()
    assert lines[0].startswith("kind,key,metric_name,alerting_now")
    assert len(lines) == rows.count() + 1

    page.click("table.runs tbody tr:first-child th a")
    page.wait_for_selector("text=Checks that passed")
    assert page.locator("h1").inner_text().startswith("Run of")
    screenshot(page, "dashboard-run")


def test_pages_follow_a_dark_browser_and_show_keyboard_focus(page, demo_site):
    page.emulate_media(color_scheme="dark")
    log_in(page, demo_site)

    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.keyboard.press("Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")

    assert background == "rgb(21, 24, 30)"
    assert outline == "solid"
    screenshot(page, "dashboard-models-dark")
