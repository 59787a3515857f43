"""The web page at / in a real browser: headless Chromium (Debian's `chromium` with
`chromium-driver`) driven through Selenium against `python -m app` over a real socket. As a new
user it rates five films, sees recommendations that leave them out and give reasons, opens a
film's similar list, filters by genre, and finds the operate view showing the served version.
Each step's screenshot lands in test-artifacts/browser/ (RECSYS_TEST_ARTIFACTS to move it)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest

from recsys_client import Client
from tests.helpers import ROOT, running_site

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
ARTIFACTS = Path(os.environ.get("RECSYS_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "browser"
WAIT = 20  # seconds for the page to settle after an action


@pytest.fixture(scope="module")
def site(default_version, tmp_path_factory):
    models_dir, _ = default_version
    with running_site(models_dir, tmp_path_factory.mktemp("site") / "server.log") as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None or DRIVER is None:
        pytest.skip(
            "NOT TESTED IN A BROWSER: Debian's chromium and chromium-driver are not installed "
            "(apt-get install chromium chromium-driver; .ci/run installs them)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.implicitly_wait(0)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def settle(driver, condition, what: str):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # A list the page replaces while it is read goes stale: read it again.
    wait = WebDriverWait(driver, WAIT, ignored_exceptions=(StaleElementReferenceException,))
    return wait.until(condition, message=f"the page never {what}")


def shown(driver, element_id: str, what: str):
    """The element with `element_id`, once the page shows it."""
    from selenium.webdriver.common.by import By

    def visible(d):
        found = d.find_element(By.ID, element_id)
        return found.is_displayed() and found

    return settle(driver, visible, what)


def search(driver, text: str):
    """Type `text` in the title search, submit, and return the listed results."""
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "query").send_keys(text)
    driver.find_element(By.CSS_SELECTOR, "#search button[type=submit]").click()
    return settle(
        driver,
        lambda d: d.find_elements(By.CSS_SELECTOR, "#results li[data-item]"),
        "listed search results",
    )


def shot(driver, name: str) -> None:
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def test_a_new_user_rates_films_and_gets_reasoned_recommendations(site, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = browser
    driver.get(site + "/")
    settle(
        driver,
        lambda d: "Serving both version 1" in d.find_element(By.ID, "served").text,
        "showed the served version",
    )
    shot(driver, "1-start")

    driver.find_element(By.ID, "new-user").click()
    user = driver.find_element(By.ID, "user").get_attribute("value")
    assert user.startswith("web-")
    settle(
        driver,
        lambda d: "popular" in d.find_element(By.ID, "recs-source").text,
        "showed popular films to a new user",
    )

    results = search(driver, "movie")
    rated = []
    for item in results[:5]:
        title = item.find_element(By.CSS_SELECTOR, "button.link").text
        item.find_element(By.CSS_SELECTOR, "button[data-rating='5']").click()
        settle(
            driver,
            lambda d, t=title: f"Rated {t} 5 stars" in d.find_element(By.ID, "rated-note").text,
            f"confirmed the rating of {title}",
        )
        rated.append(item.get_attribute("data-item"))

    settle(
        driver,
        lambda d: "fold_in" in d.find_element(By.ID, "recs-source").text,
        "switched to folded-in recommendations",
    )
    recommended = driver.find_elements(By.CSS_SELECTOR, "#recs li[data-item]")
    assert recommended and not {r.get_attribute("data-item") for r in recommended} & set(rated)
    reasons = [r.find_element(By.CSS_SELECTOR, ".reason").text for r in recommended]
    assert all(reasons)  # every item says why it is there
    named = [reason for reason in reasons if reason.startswith("Because you rated ")]
    assert named and all("5 stars" in reason for reason in named)
    shot(driver, "2-recommendations")

    # The same answer the API gives this user (the page is only a client of it).
    with Client(site) as client:
        body = client.recommend(user, n=10)
    assert [r.get_attribute("data-item") for r in recommended] == [i.item_id for i in body.items]

    recommended[0].find_element(By.CSS_SELECTOR, "button.link").click()
    settle(driver, lambda d: d.find_element(By.ID, "film").is_displayed(), "opened the film")
    similar = settle(
        driver,
        lambda d: d.find_elements(By.CSS_SELECTOR, "#similar li[data-item]"),
        "listed similar films",
    )
    assert len(similar) == 6
    predicted = driver.find_element(By.ID, "film-predicted").text
    assert predicted.startswith(f"Predicted rating for {user}:") and "80% sure between" in predicted
    shot(driver, "3-film")
    driver.find_element(By.ID, "film-close").click()

    Select(driver.find_element(By.ID, "genre")).select_by_visible_text("Drama")
    driver.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()

    def only_drama(d):
        items = d.find_elements(By.CSS_SELECTOR, "#recs li[data-item] .meta")
        return items and all("Drama" in meta.text for meta in items)

    settle(driver, only_drama, "filtered to Drama")
    shot(driver, "4-filtered")

    driver.find_element(By.ID, "tab-operate").click()
    settle(driver, lambda d: "both" in d.find_element(By.ID, "version").text, "showed the version")
    version = driver.find_element(By.ID, "version").text
    assert "version\n1" in version or "version 1" in version
    assert driver.switch_to.active_element.get_attribute("id") == "operate-title"  # focus moved
    settle(
        driver,
        lambda d: d.find_elements(By.CSS_SELECTOR, "#curves svg polyline"),
        "drew the training curves",
    )
    assert "1 (served)" in driver.find_element(By.ID, "on-disk").text
    assert "5 accepted" in driver.find_element(By.ID, "ingested").text  # the five ratings
    shot(driver, "5-operate")

    # A phone-sized viewport: one column, nothing wider than the screen.
    driver.set_window_size(390, 844)
    driver.get(site + "/")
    settle(
        driver,
        lambda d: d.find_elements(By.CSS_SELECTOR, "#recs li[data-item]"),
        "recommended on a phone",
    )
    overflow = driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    shot(driver, "6-phone")


def test_with_a_write_token_the_page_is_read_only_and_never_holds_the_token(
    default_version, browser, tmp_path
):
    from selenium.webdriver.common.by import By

    models_dir, _ = default_version
    token = "page-must-not-know-this"
    with running_site(models_dir, tmp_path / "server.log", write_token=token) as base:
        driver = browser
        driver.set_window_size(1280, 1000)
        driver.get(base + "/")
        first = search(driver, "movie")[0]
        first.find_element(By.CSS_SELECTOR, "button[data-rating='4']").click()
        note = shown(driver, "readonly", "said it is read-only")
        assert "requires a write token" in note.text
        assert token not in driver.page_source
        for path in ("/", "/static/app.js", "/static/style.css"):
            assert token not in httpx.get(base + path).text
        shot(driver, "7-read-only")


def test_with_api_keys_the_page_asks_for_one_and_keeps_it_in_the_tab_only(
    default_version, browser, tmp_path
):
    from selenium.webdriver.common.by import By

    models_dir, _ = default_version
    key = "tab-memory-only"
    with running_site(models_dir, tmp_path / "server.log", api_key=key) as base:
        driver = browser
        driver.set_window_size(1280, 1000)
        driver.get(base + "/")
        form = shown(driver, "key-form", "asked for an API key")
        assert "needs an API key" in driver.find_element(By.ID, "key-note").text
        shot(driver, "8-api-key")
        driver.find_element(By.ID, "key").send_keys("not-the-key")
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        settle(
            driver,
            lambda d: "refused" in d.find_element(By.ID, "key-note").text,
            "said the wrong key was refused",
        )
        driver.find_element(By.ID, "key").send_keys(key)
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        settle(
            driver,
            lambda d: d.find_elements(By.CSS_SELECTOR, "#recs li[data-item]"),
            "recommended once it had the key",
        )
        assert not driver.find_element(By.ID, "key-form").is_displayed()
        rated = search(driver, "movie")[0]
        rated.find_element(By.CSS_SELECTOR, "button[data-rating='5']").click()
        settle(
            driver,
            lambda d: "Rated" in d.find_element(By.ID, "rated-note").text,
            "stored a rating with the key",
        )
        # Held in the tab's memory only: no storage, no cookie, no URL, not in the page.
        stored = driver.execute_script(
            "return [JSON.stringify(localStorage), JSON.stringify(sessionStorage),"
            " document.cookie, location.href, document.documentElement.outerHTML]"
        )
        assert not [place for place in stored if key in place]
        driver.refresh()  # a new page: the key is gone with the old one
        settle(
            driver,
            lambda d: d.find_element(By.ID, "key-form").is_displayed(),
            "asked again after a reload",
        )


def test_the_operate_view_shows_online_metrics_and_experiments_behind_the_admin_token(
    default_version, browser, tmp_path
):
    from selenium.webdriver.common.by import By

    models_dir, _ = default_version
    token = "operate-token"
    with running_site(models_dir, tmp_path / "server.log", admin_token=token) as base:
        with Client(base, token=token) as client:
            client.put_experiment("page-test", "ab", {"control": 1, "treatment": 1})
        driver = browser
        driver.set_window_size(1280, 1000)
        driver.get(base + "/")
        settle(
            driver,
            lambda d: "Experiment page-test" in d.find_element(By.ID, "recs-source").text,
            "said which experiment and variant answered",
        )
        driver.find_element(By.ID, "tab-operate").click()
        form = shown(driver, "admin-form", "asked for the admin token")
        driver.find_element(By.ID, "admin-token").send_keys(token)
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        rows = settle(
            driver,
            lambda d: [
                r.text
                for r in d.find_elements(By.CSS_SELECTOR, "#online tbody tr")
                if r.text.startswith("1 ")
            ],  # fmt: skip
            "listed the served version's online figures",
        )
        assert rows and ("control" in rows[0] or "treatment" in rows[0])
        # The page's own impression, one slice: drawn as a dot on the shared scale.
        assert driver.find_elements(By.CSS_SELECTOR, "#online-chart circle")
        listed = driver.find_element(By.ID, "experiments").text
        assert "page-test (ab, running)" in listed and "Winner: none yet" in listed
        assert "none yet" in driver.find_element(By.ID, "rounds").text
        shot(driver, "9-online")
        assert token not in driver.execute_script(
            "return JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + document.cookie"
        )
