"""Screenshots of the web page for the README: a new user rates films on a running service and
the page is captured at two moments (recommendations with reasons; the operate view), and with
the service's admin token, a third: the operate view's online figures, experiments and rounds.

    python scripts/page_screenshots.py http://127.0.0.1:8000 docs/ [ADMIN_TOKEN]
(docs/page-online.png was taken with an A/B experiment running and one retrain round written;
README.md says how)
(needs Debian's chromium and chromium-driver, and the dev extras' selenium)
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

FILMS = ("Star Wars", "Fargo", "Toy Story", "Godfather, The", "Raiders of the Lost Ark")


def _first_result(driver, film: str):
    """The new search's first result (the previous search's list stays until it is replaced)."""
    found = driver.find_elements(By.CSS_SELECTOR, "#results li[data-item] button.link")
    if found and film.lower() in found[0].text.lower():
        return driver.find_elements(By.CSS_SELECTOR, "#results li[data-item]")[0]
    return False


def main() -> None:
    base, out = sys.argv[1], Path(sys.argv[2])
    token = sys.argv[3] if len(sys.argv) > 3 else None
    out.mkdir(parents=True, exist_ok=True)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for flag in ("--headless=new", "--no-sandbox", "--window-size=1280,1100"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    # A search replaces the list while it is read: an element gone stale is read again.
    wait = WebDriverWait(driver, 20, ignored_exceptions=(StaleElementReferenceException,))
    try:
        driver.get(base + "/")
        wait.until(lambda d: "Serving" in d.find_element(By.ID, "served").text)
        driver.find_element(By.ID, "new-user").click()
        for film in FILMS:
            query = driver.find_element(By.ID, "query")
            query.clear()
            query.send_keys(film)
            driver.find_element(By.CSS_SELECTOR, "#search button[type=submit]").click()
            first = wait.until(lambda d, f=film: _first_result(d, f))
            title = first.find_element(By.CSS_SELECTOR, "button.link").text
            first.find_element(By.CSS_SELECTOR, "button[data-rating='5']").click()
            wait.until(lambda d, t=title: f"Rated {t}" in d.find_element(By.ID, "rated-note").text)
        wait.until(lambda d: "fold_in" in d.find_element(By.ID, "recs-source").text)
        driver.save_screenshot(str(out / "page-try.png"))
        driver.find_element(By.ID, "tab-operate").click()
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#traffic tbody tr"))
        driver.save_screenshot(str(out / "page-operate.png"))
        if token is not None:
            wait.until(lambda d: d.find_element(By.ID, "admin-form").is_displayed())
            driver.find_element(By.ID, "admin-token").send_keys(token)
            driver.find_element(By.CSS_SELECTOR, "#admin-form button[type=submit]").click()
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#online tbody tr"))
            heading = driver.find_element(By.ID, "online-note")
            driver.execute_script(
                "arguments[0].scrollIntoView(true); window.scrollBy(0, -60)", heading
            )
            driver.save_screenshot(str(out / "page-online.png"))
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
