"""What a person reads in the Dagster UI after a short story, read in headless Chromium.

One 5-day story (drift from day 3) runs through the real ``dagster job execute`` CLI on a fresh
DAGSTER_HOME (the session's ``short_story``); ``dagster dev -w workspace.yaml`` then opens a copy
of that home, and Playwright drives Debian's ``chromium`` (``executable_path``, never
``playwright install``) through the pages a user would open: ``monitoring_job``'s Runs tab, the retraining sensor's runs, the summary of a day whose
drift gate failed and that gate's execution history. Each test asserts text the page shows, and
on failure saves a full-page screenshot whose path is in the assertion message.

What the UI must show is read from the instance and the warehouse before the server starts:
the runs of each job, and each window with alert-severity input drift and its drifted features.
"""

import contextlib
import re
import shutil
import subprocess
import urllib.parse

import dagster as dg
import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect, sync_playwright

from monitoring_pipeline.defs.origin import LOCATION, REPOSITORY_LABEL, SENSOR_NAME_TAG, WINDOW_TAG
from monitoring_pipeline.storage import Warehouse
from monitoring_pipeline_tests.dagster_processes import BIN, ROOT, default_signals, stop, wait_for_location
from monitoring_pipeline_tests.receivers import free_port
from monitoring_pipeline_tests.short_story import DAYS, copy_of, story_env
from monitoring_pipeline_tests.test_report_browser import CHROMIUM

pytestmark = [
    pytest.mark.integration, pytest.mark.slow,
    pytest.mark.skipif(shutil.which(CHROMIUM) is None,
                       reason=f"{CHROMIUM} is missing: install Debian's browser with `apt-get install -y chromium`"),
]

SENSOR = "retrain_on_drift_sensor"
GATE_ASSET, DRIFT_CHECK = "window_gate", "no_drift_alert"  # defs/gate_assets.py: the window's drift gate
WAIT_MS = 120_000  # per assertion: the UI's first queries load the code location's snapshot on a busy machine
# Repository "__repository__" is addressed by its location alone in the UI's paths (Dagster's buildRepoPath).
REPO_NAME = REPOSITORY_LABEL.split("@")[0]
REPO_PATH = LOCATION if REPO_NAME == "__repository__" else REPOSITORY_LABEL


def run_records(instance: dg.DagsterInstance, **filters) -> list[dict]:
    return [{"id": r.dagster_run.run_id, "tags": r.dagster_run.tags}
            for r in instance.get_run_records(filters=dg.RunsFilter(**filters))]


def expected(home) -> dict:
    """What the pages must show, read from the instance and the warehouse the story wrote."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        day_runs = run_records(instance, job_name="monitoring_job")
        retrains = run_records(instance, tags={SENSOR_NAME_TAG: SENSOR})
    drifted = Warehouse(home / "w.duckdb").read(
        "SELECT partition_key, feature_name, method FROM ml_drift_history "
        "WHERE drift_type = 'data' AND severity = 'alert' ORDER BY partition_key, feature_name")
    failed = {key: list(zip(rows["feature_name"], rows["method"])) for key, rows in drifted.groupby("partition_key")}
    assert len(day_runs) == DAYS, [r["tags"].get("dagster/partition") for r in day_runs]
    assert failed, "the story's drift raised no alert-severity input drift: no drift gate failed"
    assert retrains and {r["tags"][WINDOW_TAG] for r in retrains} & set(failed), retrains
    return {"day_runs": day_runs, "retrains": retrains, "failed": failed}


@pytest.fixture(scope="module")
def ui(short_story, tmp_path_factory):
    """A copy of the short story's DAGSTER_HOME served by ``dagster dev``, one Chromium page on it,
    and what it must show."""
    home = copy_of(short_story, tmp_path_factory.mktemp("ui") / "home")
    must_show = expected(home)
    port, log = free_port(), home / "dagster_dev.log"
    with log.open("w") as sink:
        process = subprocess.Popen([str(BIN / "dagster"), "dev", "-w", str(ROOT / "workspace.yaml"), "-h", "127.0.0.1",
                                    "-p", str(port)], cwd=ROOT, env=story_env(home), stdout=sink,
                                   stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=default_signals)
    try:
        repos = wait_for_location(process, port, f"dagster dev: see {log}")
        assert [f"{r['name']}@{r['location']['name']}" for r in repos] == [REPOSITORY_LABEL]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            # A fresh instance greets the first visit with a "Join the Dagster community" dialog over the page.
            page.add_locator_handler(page.get_by_role("button", name="Skip"), lambda skip: skip.click())
            shots = tmp_path_factory.mktemp("screenshots")
            yield {**must_show, "page": page, "base": f"http://127.0.0.1:{port}", "shots": shots}
            browser.close()
    finally:
        stop(process)


@contextlib.contextmanager
def screenshot_on_failure(ui, name: str):
    """Re-raise a failed assertion (or a Playwright timeout) with the path of a full-page screenshot."""
    try:
        yield
    except (AssertionError, PlaywrightError) as failure:
        path = ui["shots"] / f"{name}.png"
        ui["page"].screenshot(path=str(path), full_page=True)
        raise AssertionError(f"{failure}\nscreenshot of {ui['page'].url}: {path} (all in {ui['shots']})") from failure


def open_page(ui, path: str) -> None:
    ui["page"].goto(ui["base"] + path)


def row_of(ui, text: str):
    """The row holding ``text``: a table row, or a row of the UI's virtualized lists (the runs feeds), which
    are divs that carry their index in ``data-index``."""
    return ui["page"].locator("tr, [data-index]").filter(has_text=text)


def test_the_jobs_runs_tab_lists_the_storys_runs(ui):
    with screenshot_on_failure(ui, "monitoring_job_runs"):
        open_page(ui, f"/locations/{REPO_PATH}/jobs/monitoring_job/runs")
        for run in ui["day_runs"]:  # the Runs tab shows each run's short id and its partition tag
            row = row_of(ui, run["id"][:8])
            expect(row).to_be_visible(timeout=WAIT_MS)
            expect(row).to_contain_text(f"partition: {run['tags']['dagster/partition']}")
            if run["tags"]["dagster/partition"] in ui["failed"]:
                expect(row).to_contain_text("Failure")  # its blocking gate stopped the day's run


def test_the_sensors_page_lists_its_retrain_runs(ui):
    with screenshot_on_failure(ui, "sensor_runs"):
        open_page(ui, f"/locations/{REPO_PATH}/sensors/{SENSOR}")
        ui["page"].get_by_role("button", name="Runs", exact=True).click(timeout=WAIT_MS)
        for run in ui["retrains"]:
            row = row_of(ui, run["id"][:8])
            expect(row).to_be_visible(timeout=WAIT_MS)
            expect(row).to_contain_text("retrain_model_job")
            expect(row).to_contain_text(SENSOR)  # "Launched by"
            expect(row).to_contain_text(f"{WINDOW_TAG}: {run['tags'][WINDOW_TAG]}")


def test_the_summary_has_a_materialization_on_a_day_whose_drift_gate_failed(ui):
    page = ui["page"]
    with screenshot_on_failure(ui, "monitoring_summary"):
        for key, features in ui["failed"].items():
            [run] = [r for r in ui["day_runs"] if r["tags"]["dagster/partition"] == key]
            open_page(ui, "/assets/monitoring_summary?" + urllib.parse.urlencode({"view": "events", "partition": key}))
            expect(page.get_by_text(f"Partition {key} materialized in run {run['id'][:8]}")).to_be_visible(
                timeout=WAIT_MS)
            # The summary names the worst drifted features with their method's effect (the rest as "and N more").
            effects = "|".join(rf"\b{re.escape(feature)}: {re.escape(method)} [0-9.]+" for feature, method in features)
            expect(page.get_by_text(re.compile(effects)).first).to_be_visible(timeout=WAIT_MS)


def test_the_failed_checks_page_shows_the_drifted_features(ui):
    page = ui["page"]
    with screenshot_on_failure(ui, "drift_check"):
        open_page(ui, f"/assets/{GATE_ASSET}?" + urllib.parse.urlencode({"view": "checks", "checkDetail": DRIFT_CHECK}))
        page.get_by_role("tab", name="Execution history").click(timeout=WAIT_MS)
        for key, features in ui["failed"].items():
            row = row_of(ui, f"{DRIFT_CHECK} failed for {key}:")
            expect(row).to_be_visible(timeout=WAIT_MS)
            expect(row).to_contain_text("Failed")
            for feature, method in features:  # the one-line reason: each feature, its method, effect and severity
                effect = rf"\b{re.escape(feature)} {re.escape(method)} [0-9.]+ \(alert\)"
                expect(row).to_contain_text(re.compile(effect))
