"""The interactive page in a real browser: Debian's chromium driven by Playwright.

Starts ``ecology app`` on a free loopback port, moves the context-length and a prior slider,
presses Reset (controls apply on Reset, as in every Mesa page) and Step, and checks through the
page that the run description, the window and every plot changed; then plays and pauses. Skipped only when
``/usr/bin/chromium`` is absent (``.ci/run`` installs it: ``apt-get install -y chromium``).
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "waluigi.toml"
SHOTS = os.environ.get("ECOLOGY_SCREENSHOTS")  # a directory to keep the screenshots in, if set

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is absent (apt-get install -y chromium)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "ecology", "app", str(SCENARIO), "--port", str(port)],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                os.killpg(process.pid, signal.SIGTERM)
                pytest.fail(f"the app did not start: {process.stdout.read().decode()[-2000:]}")
            time.sleep(0.5)
    yield url
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=20)


def slider(page, label: str):
    """The thumb of the slider whose label is ``label`` (focused, ready for arrow keys)."""
    field = page.locator(".v-input", has=page.locator("label", has_text=re.compile(f"^{re.escape(label)}$")))
    thumb = field.locator(".v-slider__thumb-container")
    thumb.focus()
    return thumb


def plots(page, attempts: int = 10) -> list[bytes]:
    """Screenshots (PNG bytes) of the figures on the page, in page order. The page re-renders a
    figure by replacing its <img>, so an element can detach between finding and shooting it: the
    whole set is taken again until it is taken from one stable page (the page settles within
    seconds; ``attempts`` bounds the wait)."""
    from playwright.sync_api import Error as PlaywrightError

    for _ in range(attempts):
        try:
            return [img.screenshot() for img in page.locator(".vue-grid-item img").all()]
        except PlaywrightError as err:
            if "not attached" not in str(err):
                raise
            page.wait_for_timeout(500)
    raise AssertionError("the figures kept re-rendering: no stable screenshot")


def shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def test_controls_reset_and_step_change_the_page(server):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-background-networking", "--disable-gpu", "--headless"])
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1400})
            errors = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.goto(server)
            window = page.locator(".ecology-window")
            expect(window).to_have_attribute("data-step", "0", timeout=60_000)
            assert window.get_attribute("data-window") == " ".join(["N"] * 8)
            expect(page.get_by_text("k = 8 (fifo)")).to_be_visible()
            # the figures arrive after the window: wait for them (a loaded machine showed 1 of 4)
            expect(page.locator(".vue-grid-item img")).to_have_count(4, timeout=60_000)
            before = plots(page)
            assert len(before) == 4  # populations, amplitudes, criteria, network
            shot(page, "0-loaded")

            slider(page, "context length k").press("ArrowRight")
            slider(page, "context length k").press("ArrowRight")  # k = 10
            for _ in range(20):
                slider(page, "prior of premise waluigi").press("ArrowRight")  # 0.1 -> 0.3
            page.wait_for_timeout(2000)  # the browser sends slider values to the server with a short delay
            page.get_by_role("button", name="Reset").click()
            expect(page.get_by_text("k = 10 (fifo)")).to_be_visible(timeout=30_000)
            expect(page.get_by_text("waluigi 0.3")).to_be_visible()
            assert window.get_attribute("data-window") == " ".join(["N"] * 10)

            step = page.get_by_role("button", name="Step")
            for expected in range(1, 6):
                step.click()
                expect(window).to_have_attribute("data-step", str(expected), timeout=30_000)
            shot(page, "1-after-5-steps")
            tokens = window.get_attribute("data-window").split()
            assert len(tokens) == 10 and tokens[:5] == ["N"] * 5 and set(tokens[5:]) <= {"F", "U"}
            expect(page.get_by_text("step 5 of 400")).to_be_visible()
            after = plots(page)  # at k = 10 the chain exceeds the page's exact budget: no network
            expect(page.get_by_text("No page-state network")).to_be_visible()
            assert len(after) == 3 and all(a != b for a, b in zip(after, before))

            page.get_by_role("button", name="▶").click()  # play until step 8 at least, then pause
            page.wait_for_function("Number(document.querySelector('.ecology-window').dataset.step) >= 8", timeout=60_000)
            page.get_by_role("button", name="❚❚").click()
            expect(page.get_by_role("button", name="▶")).to_be_visible(timeout=30_000)
            page.wait_for_timeout(1500)
            paused = window.get_attribute("data-step")
            page.wait_for_timeout(1500)
            assert window.get_attribute("data-step") == paused and int(paused) >= 8
            assert not errors
        finally:
            browser.close()
