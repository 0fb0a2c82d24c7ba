"""The studio page in headless Chromium (Debian's ``chromium`` and ``chromium-driver``,
driven through WebDriver by Selenium): sign in, open an experiment of 1,500 records,
page through it, compare two experiments record by record, diff two template
versions, the health panel, users; screenshots of each view.

Without a browser the test is skipped on a developer's machine and fails in CI
(where ``CI`` is set): CI must not pass without having run it. Set
``PROMPTLAB_STUDIO_SCREENSHOTS=DIR`` to keep the screenshots (docs/studio.png is the
comparison one).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from studiotools import ROOT_PASSWORD, Studio, experiment_payload, seed

RECORDS = 1500
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
DRIVERS = ("chromedriver", "/usr/lib/chromium/chromedriver", "/usr/bin/chromedriver")


def _find(names):
    for name in names:
        path = shutil.which(name) or (name if os.path.isfile(name) else None)
        if path:
            return path
    return None


def _unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the browser test: {reason} (.ci/run installs chromium, "
                    "chromium-driver and the test extras)")
    pytest.skip(reason)


@pytest.fixture
def browser(tmp_path: Path):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("selenium is not installed (pip install '.[test]')")
    chromium, driver = _find(BROWSERS), _find(DRIVERS)
    if not chromium or not driver:
        _unavailable("no chromium and chromedriver (apt-get install chromium chromium-driver)")
    options = Options()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1440,1000", "--force-device-scale-factor=1",
                "--lang=en-US",  # numbers as the test reads them: 1,500
                f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The sanitizer run preloads ASan into this process; the browser must not inherit it.
    env = {k: v for k, v in os.environ.items()
           if k not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS")}
    service = Service(executable_path=driver, env=env, log_output=str(tmp_path / "driver.log"))
    session = webdriver.Chrome(service=service, options=options)
    session.set_page_load_timeout(60)
    yield session
    session.quit()


@pytest.fixture
def studio(studio: Studio) -> Studio:
    """conftest's studio, with an engineer, "eng", beside the admin."""
    studio.add_user("eng", "eng-password", "engineer")
    return studio


def _errors(browser):
    """Script errors and CSP violations (failed requests, like the wrong password's 401,
    are the network's and expected)."""
    return [e for e in browser.get_log("browser")
            if e["level"] == "SEVERE" and e.get("source") != "network"]


@pytest.mark.slow  # 1,500 records through a real browser; the next test stays in the inner loop
def test_sign_in_open_an_experiment_and_compare_two(browser, studio: Studio, tmp_path: Path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    ids = seed(studio.tracer, tmp_path, records=RECORDS,
               models=("ollama/llama3.2", "openai/gpt-4o", "ollama/qwen2.5"))
    long = experiment_payload("long-texts", 3)
    for record in long["experiment_summary"]:
        record["completion"] = "\n".join(f"line {i} of a long answer" for i in range(200))
    assert studio.post("/api/experiments", long)[0] == 200

    shots = tmp_path / "shots"
    shots.mkdir()
    wait = WebDriverWait(browser, 30)
    css = By.CSS_SELECTOR

    def find(selector):
        return wait.until(EC.presence_of_element_located((css, selector)))

    def rows(selector):
        return browser.find_elements(css, selector)

    # sign in: a wrong password is refused on the page, the right one opens the list
    browser.get(studio.url)
    find("#login-username").send_keys("root")
    browser.find_element(css, "#login-password").send_keys("not the password")
    browser.find_element(css, "#login-submit").click()
    message = wait.until(EC.visibility_of_element_located((css, "#login-message")))
    assert "Wrong username or password" in message.text
    browser.save_screenshot(str(shots / "login.png"))
    browser.find_element(css, "#login-password").clear()
    browser.find_element(css, "#login-password").send_keys(ROOT_PASSWORD)
    browser.find_element(css, "#login-submit").click()
    find("#experiments tbody tr")
    table = browser.find_element(css, "#experiments")
    headers = [th.text for th in table.find_elements(css, "thead th")]
    assert {"Model", "Prompt template", "Dataset", "User", "exact_match", "fluency",
            "Avg latency (ms)"} <= set(headers)
    listed = rows("#experiments tbody tr")
    assert [r.get_attribute("data-experiment-id") for r in listed] == ["long-texts"] + ids[::-1]
    first = browser.find_element(css, f'tr[data-experiment-id="{ids[0]}"]')
    cells = [td.text for td in first.find_elements(css, "td")]
    assert cells[1] == ids[0]  # the id column
    assert cells[3:9] == ["ollama/llama3.2", "qa v0", "arith v0", "admin", "1,500", "1"]
    browser.save_screenshot(str(shots / "experiments.png"))

    # one experiment: 1,500 records in pages of 50, inputs from the dataset file
    first.click()
    find("#records tbody tr")
    assert browser.find_element(css, "#experiment-title").text == ids[0]
    assert len(rows("#records tbody tr")) == 50
    assert "records 1–50 of 1,500" in browser.find_element(css, ".pager").text
    record = rows("#records tbody tr")[7]
    assert record.get_attribute("data-record-id") == "7"
    assert "What is 7 + 7?" in record.text and "ollama/llama3.2 says 14" in record.text
    browser.save_screenshot(str(shots / "experiment.png"))
    browser.find_element(css, ".pager .page-next").click()
    wait.until(lambda b: b.find_element(css, "#records tbody tr").get_attribute(
        "data-record-id") == "50")
    search = browser.find_element(css, "#record-search")
    search.send_keys("says 2998\n")
    wait.until(lambda b: len(b.find_elements(css, "#records tbody tr")) == 1
               and b.find_element(css, "#records tbody tr").get_attribute("data-record-id")
               == "1499")

    # long texts are clipped with a way to read them whole
    browser.get(studio.url + "#/experiment/long-texts")
    toggle = find("#records tbody tr .more")
    clip = browser.find_element(css, "#records tbody tr .clip")
    clipped = clip.size["height"]
    toggle.click()
    assert "open" in clip.get_attribute("class") and clip.size["height"] > 3 * clipped
    assert "line 199 of a long answer" in clip.text

    # compare two experiments, selected in the list
    browser.get(studio.url + "#/experiments")
    find("#experiments tbody tr")
    for experiment_id in ids[:2]:
        browser.find_element(css, f'tr[data-experiment-id="{experiment_id}"] '
                                  "input.select-experiment").click()
    compare = browser.find_element(css, "#compare-selected")
    assert compare.text == "Compare selected (2)" and compare.is_enabled()
    compare.click()
    find("#compare-table tbody tr")
    compared = rows("#compare-table tbody tr")
    assert len(compared) == 50
    cells = compared[3].find_elements(css, "td")
    assert len(cells) == 4  # record, input, one column per experiment
    assert "What is 3 + 3?" in cells[1].text
    assert "ollama/llama3.2 says 6" in cells[2].text and "openai/gpt-4o says 6" in cells[3].text
    assert "exact_match: 0.75" in cells[3].text
    summary = browser.find_element(css, "#compare-summary").text
    assert "(-0.25)" in summary and "baseline" in summary
    browser.execute_script("window.scrollTo(0, 0)")
    browser.save_screenshot(str(shots / "compare.png"))

    # prompt templates: versions and a diff with the changed words marked
    browser.get(studio.url + "#/prompts/qa")
    diff = find("#template-diff")
    marks = [m.text for m in diff.find_elements(css, "mark")]
    assert "careful" in marks and "Answer:" in diff.text
    assert len(rows("#template-versions tbody tr")) == 2
    browser.save_screenshot(str(shots / "prompts.png"))

    browser.get(studio.url + "#/datasets")
    assert "arith.jsonl" in find("#datasets tbody tr").text

    browser.get(studio.url + "#/health")
    assert find("#health-status").text == "healthy"
    counts = browser.find_element(css, "#row-counts").text
    assert "experiment_result" in counts and f"{3 * RECORDS + 3:,}" in counts
    browser.save_screenshot(str(shots / "health.png"))

    browser.get(studio.url + "#/users")
    assert "eng" in find("#users tbody").text
    browser.save_screenshot(str(shots / "users.png"))
    assert _errors(browser) == []  # no script error, no CSP violation

    # an engineer has no user management
    browser.find_element(css, "#logout").click()
    find("#login-username").send_keys("eng")
    browser.find_element(css, "#login-password").send_keys("eng-password\n")
    find("#experiments tbody tr")
    assert not browser.find_element(css, "#nav-users").is_displayed()

    keep = os.environ.get("PROMPTLAB_STUDIO_SCREENSHOTS")
    if keep:
        os.makedirs(keep, exist_ok=True)
        for shot in shots.iterdir():
            shutil.copy(shot, Path(keep) / shot.name)
    assert (shots / "compare.png").stat().st_size > 10_000


XSS = ['<img src=x onerror="window.__xss=1">', "<script>window.__xss=2</script>",
       '"><svg onload="window.__xss=3">']


def test_stored_values_are_shown_as_text_not_run(browser, studio: Studio):
    """Stored XSS: names, completions and evaluations holding markup are shown as
    the text they are, under the page's CSP, in the list and in one experiment."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    payload = experiment_payload("xss-1", 3, model=XSS[0])
    for record, text in zip(payload["experiment_summary"], XSS):
        record["completion"] = text
        record["dataset_record_id"] = text
    payload["experiment_config"]["dataset"]["name"] = "xss"
    assert studio.post("/api/experiments", payload)[0] == 200
    wait = WebDriverWait(browser, 30)
    css = By.CSS_SELECTOR
    browser.get(studio.url)
    wait.until(EC.presence_of_element_located((css, "#login-username"))).send_keys("root")
    browser.find_element(css, "#login-password").send_keys(ROOT_PASSWORD + "\n")
    row = wait.until(EC.presence_of_element_located((css, "#experiments tbody tr")))
    assert XSS[0] in row.text
    browser.get(studio.url + "#/experiment/xss-1")
    wait.until(EC.presence_of_element_located((css, "#records tbody tr")))
    shown = browser.find_element(css, "#records").text
    assert all(text in shown for text in XSS)
    assert browser.execute_script("return window.__xss") is None
    assert browser.find_elements(css, "#records img, #records svg, #records script") == []
    assert _errors(browser) == []
