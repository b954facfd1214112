"""Headless-Chromium tests of the matcher box and the bulk delete (issue 20): the server
evaluates the PromQL selector, the delete shows the dry run before anything is deleted."""
import json
import time

import pytest
from selenium.webdriver.common.keys import Keys

from conftest import TARGET
from test_ui import BACKUP, BROKEN, WEIRD, WORKER1, WORKER2, seed

# The reference behind devserver.py has no /api/v1/groups.
pytestmark = pytest.mark.skipif(TARGET == "dev", reason="api/v1/groups is ours only")

SELECTOR = '{job="batch",instance=~"worker-.*"}'


def set_matcher(page, text):
    box = page.css("#matcher")
    box.clear()
    before = page.generation()
    box.send_keys(text, Keys.ENTER)
    page.wait(lambda: page.generation() > before, message="the list was not rendered again")


def test_matcher_filters_and_bulk_delete_shows_the_dry_run_first(page, gateway_factory):
    gw = gateway_factory(admin=True)
    seed(gw)
    page.open(gw)
    button = page.css("#delete-matching")
    assert not button.is_displayed(), "no matcher, no bulk delete"
    set_matcher(page, SELECTOR)
    page.wait(lambda: page.group_labels() == [WORKER1, WORKER2], message="the matcher did not filter")
    assert "match=" in page.d.current_url
    page.wait(button.is_displayed, message="the bulk delete shows with a matcher and the admin API")

    # The dialog lists what the dry run found; cancelling deletes nothing.
    button.click()
    page.wait(lambda: page.css("#confirm").is_displayed())
    text = page.css("#confirm").text
    assert "Delete 2 groups?" in text and "dry run" in text, text
    assert 'instance="worker-1"' in text and 'instance="worker-2"' in text, text
    assert "backup" not in text, text
    page.shot("dry-run")
    page.css("#confirm-cancel").click()
    page.wait(lambda: not page.css("#confirm").is_displayed())
    time.sleep(0.3)
    assert len(gw.groups()) == 5

    button.click()
    page.wait(lambda: page.css("#confirm").is_displayed())
    page.css("#confirm-ok").click()
    gw.wait_groups(lambda gs: WORKER1 not in gs and WORKER2 not in gs)
    def canonical(groups):
        return sorted(json.dumps(g, sort_keys=True) for g in groups)
    assert canonical(gw.groups()) == canonical([BACKUP, WEIRD, BROKEN])
    page.wait(lambda: "Deleted 2 groups" in page.css("#notice").text)
    page.wait(lambda: page.group_labels() == [])

    # Clearing the box shows every remaining group again.
    set_matcher(page, "")
    page.wait(lambda: len(page.group_labels()) == 3)
    assert not button.is_displayed()


def test_matcher_without_the_admin_api_only_filters(page, gateway):
    seed(gateway)
    page.open(gateway, "/?match=" + "%7Bjob%3D%22backup%22%7D")
    page.wait(lambda: page.group_labels() == [BACKUP], message="the matcher from the URL did not filter")
    assert page.css("#matcher").get_attribute("value") == '{job="backup"}'
    time.sleep(0.3)
    assert not page.css("#delete-matching").is_displayed()


def test_an_invalid_matcher_says_why(page, gateway):
    seed(gateway)
    page.open(gateway)
    set_matcher(page, '{job=~"("}')
    page.wait(lambda: "Invalid matcher" in page.css("#notice").text)
    assert "invalid regex" in page.css("#notice").text
    assert page.css("#matcher").get_attribute("aria-invalid") == "true"
    # The browser logs the 400 of that request; it is the only error allowed here.
    errors = page.console_errors()
    assert errors and all("api/v1/groups" in e.get("message", "") and "400" in e.get("message", "")
                          for e in errors), errors
    set_matcher(page, '{job="broken"}')
    page.wait(lambda: page.group_labels() == [BROKEN])
    assert page.css("#matcher").get_attribute("aria-invalid") is None
