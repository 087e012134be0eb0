"""Headless Chromium for tests: find it, launch it through Selenium and the system chromedriver, take screenshots.

Reusable by any test that needs a real browser on a local page::

    from browser import chromium_driver, screenshot_rgba   # pytest puts tests/ on sys.path

    def test_my_page(chromium_driver):                      # the fixture skips when no browser is installed
        chromium_driver.get("http://127.0.0.1:PORT/")
        rgba = screenshot_rgba(chromium_driver)             # (H, W, 4) uint8, RGBA

Or, outside pytest: ``with launch_chromium(420, 360) as driver: ...``.

Nothing is downloaded: the browser is Debian's ``chromium`` and the driver Debian's ``chromium-driver``
(``apt-get install chromium chromium-driver``), Selenium from PyPI (``pip install selenium``). Set
``MINDFLOW_CHROMIUM`` / ``MINDFLOW_CHROMEDRIVER`` to use other binaries.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMEDRIVER_CANDIDATES = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")

#: Flags for a quiet, offline, reproducible headless Chromium (as root it needs --no-sandbox).
CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-quic", "--disable-extensions", "--disable-default-apps", "--hide-scrollbars",
    "--force-device-scale-factor=1", "--mute-audio", "--no-default-browser-check",
)


def _first(env: str, candidates: tuple[str, ...], name: str) -> str | None:
    if os.environ.get(env):
        return os.environ[env] if os.access(os.environ[env], os.X_OK) else None
    for path in candidates:
        if os.access(path, os.X_OK):
            return path
    return shutil.which(name)


def find_browser() -> tuple[str | None, str | None, str]:
    """``(chromium, chromedriver, reason)``: the paths, or ``None`` with ``reason`` saying what to install."""
    missing = []
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install selenium)")
    chromium = _first("MINDFLOW_CHROMIUM", CHROMIUM_CANDIDATES, "chromium")
    driver = _first("MINDFLOW_CHROMEDRIVER", CHROMEDRIVER_CANDIDATES, "chromedriver")
    if chromium is None:
        missing.append("chromium (apt-get install chromium, or set MINDFLOW_CHROMIUM)")
    if driver is None:
        missing.append("chromedriver (apt-get install chromium-driver, or set MINDFLOW_CHROMEDRIVER)")
    if missing:
        return None, None, "headless browser tests need " + ", ".join(missing)
    return chromium, driver, ""


@contextlib.contextmanager
def launch_chromium(width: int = 420, height: int = 360, extra_flags: tuple[str, ...] = ()) -> Iterator[Any]:
    """A headless Chromium WebDriver with a ``width``×``height`` CSS-pixel viewport (device scale 1).

    Raises ``RuntimeError`` naming what to install when the browser, the driver or Selenium is missing."""
    chromium, chromedriver, reason = find_browser()
    if chromium is None:
        raise RuntimeError(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="mindflow-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS + (f"--window-size={width},{height}", f"--user-data-dir={profile}") + extra_flags:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # driver.get_log("browser") for console errors
    driver = None
    try:
        driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
        driver.set_page_load_timeout(30)
        set_viewport(driver, width, height)
        yield driver
    finally:
        if driver is not None:
            with contextlib.suppress(Exception):
                driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def set_viewport(driver: Any, width: int, height: int) -> None:
    """Make the page's viewport exactly ``width``×``height`` CSS pixels at device scale 1."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})


def screenshot_png(driver: Any, transparent: bool = False) -> bytes:
    """A PNG of the viewport. ``transparent=True`` keeps the page's transparency (alpha 0 where nothing is
    painted) instead of Chromium's default white backdrop."""
    if transparent:
        driver.execute_cdp_cmd("Emulation.setDefaultBackgroundColorOverride",
                               {"color": {"r": 0, "g": 0, "b": 0, "a": 0}})
    try:
        return driver.get_screenshot_as_png()
    finally:
        if transparent:
            driver.execute_cdp_cmd("Emulation.setDefaultBackgroundColorOverride", {})


def decode_png(png: bytes) -> np.ndarray:
    """PNG bytes → ``(H, W, 4)`` uint8 RGBA array."""
    import cv2

    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f"not a PNG image ({len(png)} bytes)")
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGRA)
    elif img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)
    return cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)


def screenshot_rgba(driver: Any, transparent: bool = False, save_to: str | os.PathLike | None = None) -> np.ndarray:
    """The viewport as an ``(H, W, 4)`` uint8 RGBA array; also written to ``save_to`` as PNG when given."""
    png = screenshot_png(driver, transparent=transparent)
    if save_to is not None:
        with open(save_to, "wb") as f:
            f.write(png)
    return decode_png(png)


def wait_until(predicate: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned) or ``timeout_s`` seconds pass
    (``AssertionError`` saying ``what`` was awaited and the last value/exception seen)."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while True:
        try:
            last = predicate()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 — the page may be mid-reload; report the last one
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s:.1f} s waiting for {what}; last seen: {last!r}")
        time.sleep(interval_s)


@pytest.fixture(scope="module")
def chromium_driver() -> Iterator[Any]:
    """A module-wide headless Chromium (420×360 viewport); skips the test when none is installed."""
    chromium, _, reason = find_browser()
    if chromium is None:
        pytest.skip(reason)
    with launch_chromium(420, 360) as driver:
        yield driver
