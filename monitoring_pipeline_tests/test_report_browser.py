"""A window's report opens in headless Chromium with no server and no network, every image decoded.

CI installs the browser with ``apt-get install -y chromium``; without it this test fails.
"""

import re
import shutil
import subprocess
from html import unescape

import pytest

from monitoring_pipeline.lib.report import write_report
from monitoring_pipeline_tests.defs.conftest import MODEL
from monitoring_pipeline_tests.lib.test_report import DRIFTED, HEADINGS, key, monitored_warehouse

pytestmark = [pytest.mark.integration]

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def dump_dom(page, profile) -> str:
    """The DOM after the page's load event (and its scripts) ran, as Chromium serializes it."""
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: install Debian's browser with `apt-get install -y chromium`")
    done = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=5000",
                           "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip(), done.stderr[-2000:]
    return done.stdout


def text_of(dom: str) -> str:
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", body)).split())


def test_the_report_renders_in_chromium_with_every_image_loaded(tmp_path):
    wh = monitored_warehouse(tmp_path, str(tmp_path / "warehouse.duckdb"))  # the browser test needs one backend
    report = write_report(wh, MODEL, DRIFTED, key(DRIFTED), root=tmp_path / "reports")
    images = report.path.read_text().count("<img ")
    dom = dump_dom(report.path, tmp_path / "profile")
    text = text_of(dom)
    summary = wh.read("SELECT payload->>'summary' AS s FROM artifacts WHERE name = 'monitoring_summary' "
                      "AND partition_key = ?", [key(DRIFTED)])["s"][0]
    assert " ".join(summary.split()) in text
    assert all(heading in text for heading in HEADINGS)
    assert "WARN" in text and "The input data shifted" in text
    assert images == 5 and f"images loaded: {images} of {images}" in text  # the page's own check ran
