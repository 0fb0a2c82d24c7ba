"""Issue 17 in the browser (headless Chromium, as test_studio_e2e.py), at 1400 and
1024 px wide: the experiments list (id column, no overflow, empty metric columns
hidden, sorting, a sticky "Compare selected"), the comparison (no column cut off,
deltas as precise as the values, the "differ" and "failures" filters), record search
in the inputs, users (state, reactivate, role, password reset), the account page
(own password, a token for a remote tracer), datasets (counts, preview, a file not
on this machine) and the health panel when the migration status cannot be read.
Checks are by element geometry, order and text; every wait is bounded.

``PROMPTLAB_STUDIO_SCREENSHOTS=DIR`` keeps the screenshots; ``experiments-1400.png``
is the README's docs/studio.png.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from promptlab import _core
from promptlab.types import Dataset
from studiotools import ROOT_PASSWORD, Studio, experiment_payload, seed
from test_studio_e2e import _errors, browser, studio  # noqa: F401 - the fixtures

# A real browser, at two widths, over a populated studio: the full suite runs these; the
# inner loop keeps test_studio_e2e.py's short browser test.
pytestmark = pytest.mark.slow

WIDTHS = (1400, 1024)


def _experiment(studio: Studio, experiment_id: str, records: int, scores, metric="exact_match",
                latency=None, completions=None, model="ollama/llama3.2"):
    payload = experiment_payload(experiment_id, records, model=model)
    for i, record in enumerate(payload["experiment_summary"]):
        score = scores[i] if isinstance(scores, list) else scores
        record["evaluation"] = json.dumps([{"metric": metric, "result": score}])
        if latency is not None:
            record["latency_ms"] = latency
        if completions is not None:
            record["completion"] = completions[i]
        record["prompt_tokens"] = 123_456 + i
        record["completion_tokens"] = 98_765
    status, data = studio.post("/api/experiments", payload)
    assert status == 200, data


def _populate(studio: Studio, tmp_path: Path):
    ids = seed(studio.tracer, tmp_path, records=40,
               models=("ollama/llama3.2", "openai/gpt-4o", "ollama/qwen2.5"))
    for k in range(22):
        _experiment(studio, f"batch-{k:02d}", 3, round(k / 30, 3),
                    model="a-rather-long-model-name/qwen2.5-coder:32b-instruct")
    _experiment(studio, "rare-metric-only", 2, 0.5, metric="rare_metric")
    # two experiments whose records differ in 2 (completion) and 3 (a failed metric)
    _experiment(studio, "cmp-a", 4, 1, metric="accuracy", latency=2045.785,
                completions=["w", "x", "y", "z"])
    _experiment(studio, "cmp-b", 4, [1, 1, 1, 0], metric="accuracy", latency=2019.8,
                completions=["w", "x", "other", "z"])
    return ids


class Page:
    def __init__(self, browser, studio: Studio):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        self.b = browser
        self.studio = studio
        self.css = By.CSS_SELECTOR
        from selenium.common.exceptions import (
            NoSuchElementException,
            StaleElementReferenceException,
        )

        # the page redraws a view after each action: an element read mid-redraw is
        # looked up again, within the same bounded wait
        self.wait = WebDriverWait(browser, 30, ignored_exceptions=(
            NoSuchElementException, StaleElementReferenceException))

    def width(self, px: int, height: int = 900) -> None:
        self.b.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": px, "height": height, "deviceScaleFactor": 1, "mobile": False})
        self.wait.until(lambda b: b.execute_script("return window.innerWidth") == px)

    def find(self, selector: str):
        from selenium.webdriver.support import expected_conditions as EC

        return self.wait.until(EC.presence_of_element_located((self.css, selector)))

    def all(self, selector: str):
        return self.b.find_elements(self.css, selector)

    def go(self, fragment: str, ready: str) -> None:
        self.b.get(self.studio.url + fragment)
        self.find(ready)

    def sign_in(self, username: str, password: str) -> None:
        self.b.get(self.studio.url)
        self.find("#login-username").send_keys(username)
        self.b.find_element(self.css, "#login-password").send_keys(password + "\n")
        self.find("#topbar:not(.hidden)")

    def rect(self, selector: str):
        return self.b.execute_script(
            "const r = document.querySelector(arguments[0]).getBoundingClientRect();"
            "return {left: r.left, right: r.right, top: r.top, bottom: r.bottom};", selector)

    def fits(self, table: str) -> None:
        """The table's right edge within the viewport and its box: nothing cut off."""
        view = self.b.execute_script("return document.documentElement.clientWidth")
        wrap = self.b.execute_script(
            "const t = document.querySelector(arguments[0]), w = t.parentElement;"
            "return [w.scrollWidth, w.clientWidth, document.documentElement.scrollWidth];",
            table)
        right = self.rect(table)["right"]
        last = self.b.execute_script(
            "const c = document.querySelectorAll(arguments[0] + ' thead th');"
            "return c[c.length - 1].getBoundingClientRect().right;", table)
        widths = self.b.execute_script(
            "return [...document.querySelectorAll(arguments[0] + ' thead th')].map("
            "(c) => c.textContent + '=' + Math.round(c.getBoundingClientRect().width))", table)
        assert right <= view and last <= view, f"{table} {right} {last} {view} {' '.join(widths)}"
        assert wrap[0] <= wrap[1] and wrap[2] <= view, (table, wrap, view)

    def headers(self, table: str):
        return [th.text.replace(" ▲", "").replace(" ▼", "").strip()
                for th in self.all(f"{table} thead th")]

    def ids(self):
        return self.record_ids("#experiments", "experimentId")

    def record_ids(self, table: str, key: str = "recordId"):
        """The rows' ids, read at once (a redraw between reads would leave stale rows)."""
        return self.b.execute_script(
            "return [...document.querySelectorAll(arguments[0] + ' tbody tr')]"
            ".map((r) => r.dataset[arguments[1]]).filter((v) => v !== undefined)", table, key)


def _shots(tmp_path: Path) -> Path:
    shots = tmp_path / "shots"
    shots.mkdir(exist_ok=True)
    return shots


def _keep(shots: Path) -> None:
    keep = os.environ.get("PROMPTLAB_STUDIO_SCREENSHOTS")
    if keep:
        os.makedirs(keep, exist_ok=True)
        for shot in shots.iterdir():
            shutil.copy(shot, Path(keep) / shot.name)


def _signed_in(browser, studio: Studio, tmp_path: Path):
    ids = _populate(studio, tmp_path)
    page = Page(browser, studio)
    page.width(1400)
    page.sign_in("root", ROOT_PASSWORD)
    page.find("#experiments tbody tr")
    return ids, page


def test_item1_experiments_list_at_two_widths(browser, studio: Studio,  # noqa: F811
                                              tmp_path: Path):
    ids, page = _signed_in(browser, studio, tmp_path)
    shots = _shots(tmp_path)

    for px in WIDTHS:
        page.width(px)
        page.go("#/experiments", "#experiments tbody tr")
        # the id column, and every column inside the page
        assert page.headers("#experiments")[1] == "Id"
        row = browser.find_element(page.css, f'tr[data-experiment-id="{ids[0]}"]')
        assert row.find_elements(page.css, "td")[1].text == ids[0]
        page.fits("#experiments")
        assert "Tokens (prompt / completion)" in page.headers("#experiments")
        if px == 1400:
            browser.execute_script("window.scrollTo(0, 0)")
            browser.save_screenshot(str(shots / "experiments-1400.png"))
        # a metric no shown row has is not a column; filtering by id finds rows
        assert "rare_metric" in page.headers("#experiments")  # rare-metric-only is shown
        box = browser.find_element(page.css, "#experiment-filter")
        box.clear()
        box.send_keys("exp-")
        page.wait.until(lambda b: len(page.ids()) == 3)
        assert page.ids() == ids[::-1]
        assert "rare_metric" not in page.headers("#experiments")
        assert {"exact_match", "fluency"} <= set(page.headers("#experiments"))
        page.fits("#experiments")
        box.clear()
        box.send_keys("rare-metric")
        page.wait.until(lambda b: page.ids() == ["rare-metric-only"])
        assert "rare_metric" in page.headers("#experiments")
        assert "exact_match" not in page.headers("#experiments")
        box.clear()
        box.send_keys(" ")  # an empty filter
        page.wait.until(lambda b: len(page.ids()) == 28)

        # "Compare selected" stays on screen when the list scrolls
        button = page.rect("#compare-selected")
        browser.execute_script("window.scrollTo(0, 700)")
        page.wait.until(lambda b: b.execute_script("return window.scrollY") > 300)
        after = page.rect("#compare-selected")
        height = browser.execute_script("return window.innerHeight")
        assert 48 <= after["top"] and after["bottom"] <= height, (button, after)
        assert browser.find_element(page.css, "#compare-selected").is_displayed()
        browser.execute_script("window.scrollTo(0, 0)")

    # sorting: the best exact_match first, then the worst; rows without it stay last
    page.width(1400)
    page.go("#/experiments", "#experiments tbody tr")
    browser.find_element(page.css, 'th[data-col="metric:exact_match"]').click()
    page.wait.until(lambda b: page.ids()[0] == ids[0])
    assert page.ids()[:3] == [ids[0], ids[1], "batch-21"]  # 1.0, 0.75, 0.7
    assert set(page.ids()[-3:]) == {"rare-metric-only", "cmp-a", "cmp-b"}  # none: last
    th = browser.find_element(page.css, 'th[data-col="metric:exact_match"]')
    assert th.get_attribute("aria-sort") == "descending"
    th.click()
    page.wait.until(lambda b: page.ids()[0] == "batch-00")
    assert set(page.ids()[-3:]) == {"rare-metric-only", "cmp-a", "cmp-b"}
    browser.find_element(page.css, 'th[data-col="experiment_id"]').click()
    page.wait.until(lambda b: page.ids()[0] == "batch-00")
    assert page.ids() == sorted(page.ids())
    browser.find_element(page.css, 'th[data-col="tokens"]').click()  # the most tokens first
    page.wait.until(lambda b: page.ids()[0] in ("cmp-a", "cmp-b"))  # 4 records x 222,221

    assert _errors(browser) == []
    _keep(shots)


def test_item2_compare_at_two_widths_with_deltas_and_filters(browser,  # noqa: F811
                                                             studio: Studio, tmp_path: Path):
    ids, page = _signed_in(browser, studio, tmp_path)
    shots = _shots(tmp_path)
    # compare three experiments at 1400 and 1024: no column cut off
    for px in WIDTHS:
        page.width(px)
        page.go("#/compare?ids=" + ",".join(ids), "#compare-table tbody tr")
        assert len(page.all("#compare-table thead th")) == 5
        page.fits("#compare-table")
        page.fits("#compare-summary")
        if px == 1400:
            browser.save_screenshot(str(shots / "compare-1400.png"))

    # deltas as precise as the values; the filters
    page.width(1400)
    page.go("#/compare?ids=cmp-a,cmp-b", "#compare-table tbody tr")
    summary = browser.find_element(page.css, "#compare-summary").text
    assert "2,019.8 (-26.0)" in summary and "25.985" not in summary
    assert [r.get_attribute("data-record-id") for r in page.all("#compare-table tbody tr")] \
        == ["0", "1", "2", "3"]
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element(page.css, "#compare-only")).select_by_value("differ")
    page.wait.until(lambda b: page.record_ids("#compare-table") == ["2", "3"])
    Select(page.find("#compare-only")).select_by_value("failures")
    page.wait.until(lambda b: page.record_ids("#compare-table") == ["3"])
    assert "metric of 0 or false" in browser.find_element(page.css, "#compare-only-help").text

    assert _errors(browser) == []
    _keep(shots)


def test_item3_record_search_reads_the_inputs(browser, studio: Studio,  # noqa: F811
                                              tmp_path: Path):
    ids, page = _signed_in(browser, studio, tmp_path)
    page.go(f"#/experiment/{ids[0]}", "#records tbody tr")
    assert "inputs" in page.find("#record-search").get_attribute("placeholder")
    page.go(f"#/experiment/{ids[0]}?q=" + "What%20is%207%20%2B%207", "#records tbody tr")
    page.wait.until(lambda b: page.record_ids("#records") == ["7"])
    assert _errors(browser) == []


def test_items4_and_6_users_and_account(browser, studio: Studio,  # noqa: F811
                                        tmp_path: Path):
    page = Page(browser, studio)
    shots = _shots(tmp_path)
    for px in WIDTHS:
        page.width(px)
        page.sign_in("root", ROOT_PASSWORD)
        page.go("#/users", "#users tbody tr")
        page.fits("#users")
        top = page.rect("#topbar")  # the navigation on one line, "Sign out" on the page
        assert top["bottom"] - top["top"] <= 49 and page.rect("#logout")["right"] <= px
        browser.save_screenshot(str(shots / f"users-{px}.png"))
        browser.find_element(page.css, "#logout").click()
    page.width(1400)
    page.sign_in("root", ROOT_PASSWORD)
    css = page.css

    def user_row(name):
        return page.find(f'#users tr[data-username="{name}"]')

    # deactivate: the user stays listed, with a state, and can be reactivated
    page.go("#/users", "#users tbody tr")
    user_row("eng").find_element(css, ".user-deactivate").click()
    browser.switch_to.alert.accept()
    page.wait.until(lambda b: user_row("eng").find_element(css, ".user-state").text
                    == "deactivated")
    assert studio.tracer.get_user_by_username("eng").status == 0
    page.find("#new-username").send_keys("eng")
    browser.find_element(css, "#new-password").send_keys("another-password")
    browser.find_element(css, "#add-user button").click()
    page.wait.until(lambda b: "reactivate" in b.find_element(css, "#flash").text)
    user_row("eng").find_element(css, ".user-reactivate").click()
    page.wait.until(lambda b: user_row("eng").find_element(css, ".user-state").text
                    == "active")
    assert studio.tracer.get_user_by_username("eng").status == 1
    # role and password reset by the admin
    from selenium.webdriver.support.ui import Select

    Select(user_row("eng").find_element(css, ".user-role")).select_by_value("admin")
    page.wait.until(lambda b: studio.tracer.get_user_by_username("eng").role == "admin")
    page.wait.until(lambda b: "eng is now admin" in b.find_element(css, "#flash").text)
    user_row("eng").find_element(css, ".user-reset").click()
    user_row("eng").find_element(css, ".user-new-password").send_keys("reset-password-1")
    user_row("eng").find_element(css, ".user-reset").click()
    page.wait.until(lambda b: "Set a new password for eng" in b.find_element(css,
                                                                              "#flash").text)
    assert _core.verify_password("reset-password-1",
                                 studio.tracer.get_user_by_username("eng").password_hash)
    assert user_row("root").find_element(css, ".user-role").get_attribute("disabled")
    browser.find_element(css, "#logout").click()

    # the account page: a token for a remote tracer, then one's own password
    page.sign_in("eng", "reset-password-1")
    page.go("#/account", "#new-token")
    Select(browser.find_element(css, "#token-days")).select_by_value("7")
    browser.find_element(css, "#new-token button[type=submit]").click()
    page.wait.until(lambda b: b.find_element(css, "#tracer-config").get_attribute("value"))
    config = json.loads(browser.find_element(css, "#tracer-config").get_attribute("value"))
    assert config["type"] == "remote" and config["endpoint"] == studio.url.rstrip("/")
    assert studio.get("/api/me", token=config["jwt_token"])[1]["username"] == "eng"
    assert "Valid until" in browser.find_element(css, "#token-expiry").text
    browser.save_screenshot(str(shots / "account-1400.png"))
    browser.find_element(css, "#current-password").send_keys("reset-password-1")
    browser.find_element(css, "#own-new-password").send_keys("own-password-2")
    browser.find_element(css, "#own-new-password-again").send_keys("own-password-2")
    browser.find_element(css, "#change-password button[type=submit]").click()
    page.wait.until(lambda b: "password was changed" in b.find_element(css, "#flash").text)
    assert studio.get("/api/me", token=config["jwt_token"])[0] == 401  # signed out
    page.go("#/experiments", "#experiments-toolbar")  # this session goes on
    assert "No experiments yet" in browser.find_element(css, "#app").text
    assert not browser.find_elements(css, "#login-form")
    assert studio.login("eng", "own-password-2")
    assert _errors(browser) == []
    _keep(shots)


def test_items7_and_8_datasets_and_health(browser, studio: Studio,  # noqa: F811
                                          tmp_path: Path, monkeypatch):
    seed(studio.tracer, tmp_path, records=12)
    studio.tracer.create_dataset(Dataset(name="elsewhere", description="on a laptop",
                                         file_path="/home/someone/else.jsonl"))
    page = Page(browser, studio)
    css = page.css
    page.width(1400)
    page.sign_in("root", ROOT_PASSWORD)
    # datasets: counts, a preview, a file that is not on this machine
    for px in WIDTHS:
        page.width(px)
        page.go("#/datasets", "#datasets tbody tr")
        page.fits("#datasets")
    arith = page.find('#datasets tr[data-dataset="arith v0"]')
    assert arith.find_element(css, ".dataset-records").text == "12"
    elsewhere = browser.find_element(css, '#datasets tr[data-dataset="elsewhere v0"]')
    assert "Not readable here" in elsewhere.text
    arith.click()
    page.find("#dataset-preview-table tbody tr")
    assert len(page.all("#dataset-preview-table tbody tr")) == 5
    assert "What is 4 + 4?" in browser.find_element(css, "#dataset-preview-table").text
    assert "first 5 of 12" in browser.find_element(css, "#dataset-preview").text
    shots = _shots(tmp_path)
    browser.save_screenshot(str(shots / "datasets-1024.png"))
    browser.find_element(css, '#datasets tr[data-dataset="elsewhere v0"]').click()
    page.wait.until(lambda b: "cannot be shown" in b.find_element(css, "#dataset-preview").text)

    # health: a migration status that cannot be read is unknown, not "none"
    page.go("#/health", "#health")
    assert "Pending migrations\nnone" in browser.find_element(css, "#health").text

    def broken(path):
        raise _core.DatabaseError("file is not a database")

    monkeypatch.setattr("promptlab.sqlite.migrations.status", broken)
    browser.find_element(css, "#health-refresh").click()
    page.find("#status-error")
    text = browser.find_element(css, "#health").text
    assert "Head\nunknown" in text and "Pending migrations\nunknown" in text
    assert "none" not in text
    browser.save_screenshot(str(shots / "health-unknown-1024.png"))
    assert _errors(browser) == []
    _keep(shots)
