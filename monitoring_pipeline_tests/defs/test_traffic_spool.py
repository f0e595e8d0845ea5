"""The traffic step of a warehouse-sourced monitor ingests the API's spool before it reads its
window: predictions and labels accepted by the API and not ingested yet are judged with the day."""

import json
from datetime import datetime, timedelta

import pandas as pd
import pytest

from monitoring_pipeline.lib import loop
from monitoring_pipeline.storage.spool import Spool

from .conftest import count, run_window
from .test_served_history import DAY, MODEL, served_monitor


@pytest.mark.slow
def test_the_traffic_step_ingests_the_spool_and_records_the_counts(tmp_path, warehouse, monkeypatch):
    monkeypatch.setenv("MONITORING_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("MONITORING_SPOOL", str(tmp_path / "spool"))
    config = served_monitor()
    monitor = config.monitor(MODEL)
    wh = warehouse.get()
    assert loop.ensure_champion(wh, monitor) == "v1"
    rows, _ = loop.traffic_day(monitor, 1)
    stamps = pd.Series([datetime(2026, 3, 2, 1) + timedelta(minutes=10 * i) for i in range(len(rows))])
    loop.serve_day(wh, monitor, rows, stamps, label_delay=timedelta(0), prefix="api")
    # the day's predictions and labels move from the warehouse to the spool, as the API would have left them
    log = wh.read("SELECT * FROM inference_log")
    labels = wh.read("SELECT * FROM labels")
    wh.write(lambda conn: conn.execute("DELETE FROM inference_log") and conn.execute("DELETE FROM labels"))
    spool = Spool(tmp_path / "spool")
    spool.accept("inferences", [{**r, "ts": r["ts"].isoformat(), "features": json.loads(r["features"])}
                                for r in log.astype(object).where(log.notna(), None).to_dict("records")])
    spool.accept("labels", [{**r, "labeled_at": r["labeled_at"].isoformat()} for r in labels.to_dict("records")])
    assert count(wh, "inference_log") == 0 and len(log) == 60

    result = run_window(config, warehouse, day=DAY, model=MODEL)
    assert result.success
    meta = result.asset_materializations_for_node("traffic_window")[0].metadata
    assert meta["spool_ingested"].value == {
        "batches": 2, "skipped": 0, "rejected": 0, "inferences_received": 60, "inferences_inserted": 60,
        "labels_received": len(labels), "labels_inserted": len(labels)}
    assert meta["rows"].value == 60 and meta["labeled"].value == len(labels)
    assert spool.pending_files() == [] and count(wh, "inference_log") == 60
