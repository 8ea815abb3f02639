"""The dashboard (edge/viewer/) in a real browser: Debian's chromium driven headless by
Playwright (never a downloaded browser), on a live two-source run with the stand-in model.

Skips where chromium or playwright is missing, except under CI (``CI`` set), where that is
a failure: `bash run.sh test` installs chromium with apt when it may.
"""
import json
import os
import re
import shutil
import threading
import urllib.request

import pytest

from edge.multisource import MultiStream, source_names
from edge.runtime import run_pipeline
from edge.sinks import ViewerSink
from edge.sources import open_source
from edge.stats import LiveStats, StatsSink
from edge.viewer import MjpegViewer
from tests.multisource_helpers import standin_backend, write_camvid_videos
from tests.video_helpers import wait_until

CHROMIUM = os.environ.get("NANOSEG_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def browser_missing():
    """Why the browser tests cannot run here, or None."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return "{} is missing (apt-get install chromium; bash run.sh test does it as " \
               "root)".format(CHROMIUM)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing (requirements-desktop.txt)"
    return None


@pytest.fixture
def browser_page(tmp_path):
    reason = browser_missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail("CI needs the browser tests: " + reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 1000})
        try:
            yield context.new_page()
        finally:
            context.close()


class KeptViewerSink(ViewerSink):
    """The viewer sink, but the viewer outlives the run: the page is read after it ends."""

    def close(self):
        pass


def fetch_stats(viewer):
    with urllib.request.urlopen(viewer.url + "stats.json", timeout=10) as response:
        return json.loads(response.read().decode("utf-8"))


def test_the_dashboard_shows_every_source_and_the_numbers_of_stats_json(
        browser_page, tmp_path, camvid_dir):
    videos = write_camvid_videos(tmp_path, camvid_dir)
    names = source_names(videos)
    backend = standin_backend(33.0)
    live = LiveStats(backend.contract, names, "bundles/street")
    viewer = MjpegViewer("127.0.0.1", 0, title="bundles/street", sources=names,
                         stats_provider=live.snapshot).start()
    stop = threading.Event()
    summaries = []
    try:
        browser_page.goto(viewer.url, wait_until="domcontentloaded")  # MJPEG never "loads"
        assert browser_page.locator("section.source img").count() == 2
        sinks = [KeptViewerSink(viewer, max_fps=10.0),
                 StatsSink(backend.contract, names, None, live)]
        stream = MultiStream([open_source(v, loop=True) for v in videos], names)
        runner = threading.Thread(target=lambda: summaries.append(run_pipeline(
            stream, backend, sinks, max_frames=90, stop_event=stop, monitor=live)))
        runner.start()
        # one stream per source, each showing decoded JPEGs
        browser_page.wait_for_function(
            "Array.from(document.querySelectorAll('section.source img'))"
            ".every(img => img.complete && img.naturalWidth === 480)", timeout=20000)
        runner.join(60)
        assert not runner.is_alive() and summaries[0]["error"] is None
        # the run has ended: the next refresh (every 0.5 s) shows the final numbers
        final = fetch_stats(viewer)
        # (a loaded machine can hold chromium back for seconds: wait for that refresh)
        assert wait_until(lambda: float(browser_page.get_attribute("body", "data-stats-time")
                                        or 0) > final["time"], timeout=30.0), \
            "the page did not fetch /stats.json again after the run ended"
        browser_page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
        stats = fetch_stats(viewer)
        assert stats["sources"] == final["sources"]
        page_model = browser_page.inner_text('[data-field="model"]')
        assert page_model == "bundles/street | {} | fp32".format(backend.describe())
        for source in stats["sources"]:
            panel = browser_page.locator("#source-{}".format(source["index"]))
            text = panel.locator('[data-field="numbers"]').inner_text()
            assert "fps {:.1f}".format(source["fps"]) in text
            assert "frames {} ".format(source["frames"]) in text and source["frames"] == 45
            stages = re.findall(r"(\w+) ([\d.]+)", text.split("ms:")[1])
            assert [(k, float(v)) for k, v in stages] == [
                (k, round(v, 1)) for k, v in source["stages_ms"].items()]
            assert panel.locator('[data-field="state"]').inner_text() == "ended"
            for name, share in source["class_shares"].items():
                bar = panel.locator('.share[data-class="{}"] .value'.format(name))
                assert bar.inner_text() == "{:.1f} %".format(share * 100)
        rows = browser_page.locator('[data-field="outputs"] tr')
        assert rows.count() == len(stats["outputs"]) == 2
        assert (tmp_path / "dashboard.png").stat().st_size > 10000
    finally:
        stop.set()
        viewer.close()
    shutil.rmtree(str(tmp_path / "chromium-profile"), ignore_errors=True)
