"""A real browser for the console's tests: Debian's chromium driven by Playwright, signed in through Airflow's own
login page as a person would be. Screenshots go to SCREENSHOT_DIR (outside the repository) for a reader to look at.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"  # local_stack/test-packages.txt installs it
SCREENSHOT_DIR = Path(tempfile.gettempdir()) / "airflow-obs-console-screenshots"
TIMEOUT_MS = 60_000  # the api-server builds the console's app on its first request; a loaded machine is slow


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A browser (no sandbox: tests run as root), closed whatever happens."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Any, dark: bool = False) -> Any:
    context = browser.new_context(viewport={"width": 1400, "height": 900}, color_scheme="dark" if dark else "light")
    context.set_default_timeout(TIMEOUT_MS)
    return context.new_page()


def sign_in_on_the_login_page(page: Any, username: str, password: str) -> None:
    """Fill Airflow's login form (the page a link without a session lands on) and wait to be sent on."""
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/auth/" not in url)


def framed(page: Any, heading: str) -> Any:
    """The UI's iframe (a plugin view) once its page shows `heading` as its title."""
    frame = page.wait_for_selector("iframe").content_frame()
    frame.wait_for_selector(f"h1:has-text({heading!r})")
    return frame


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
