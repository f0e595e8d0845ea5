from datetime import datetime, timedelta

import pandas as pd

from monitoring_pipeline.definitions import build_definitions
from monitoring_pipeline.storage.results import replace_metrics
from monitoring_pipeline.storage.traffic import append_inference, append_labels

from .conftest import bundled_monitor, config_of, count


def test_retention_deletes_only_old_raw_traffic(warehouse):
    wh = warehouse.get()
    now = datetime.now()
    stamps = [now - timedelta(days=d) for d in (40, 35, 5, 1)]
    append_inference(wh, pd.DataFrame({"ts": stamps, "model_name": "m", "request_id": ["a", "b", "c", "d"],
                                       "features": [{"x": 1}] * 4, "prediction": [1, 0, 1, 0]}))
    append_labels(wh, pd.DataFrame({"request_id": ["a", "b", "c", "d"], "label": [1, 0, 1, 1]}))
    replace_metrics(wh, {"accuracy": 0.9}, model_name="m", model_version=None, data_split="production",
                    window_start=stamps[0], window_end=stamps[0], estimated=False, asset_key="eval_metrics",
                    partition_key="old", run_id=None)
    defs = build_definitions(config_of(bundled_monitor()), warehouse)
    result = defs.resolve_job_def("retention_job").execute_in_process(
        run_config={"ops": {"delete_old_raw_logs": {"config": {"keep_days": 30}}}})
    assert result.success
    assert result.output_for_node("delete_old_raw_logs") == {"inference_log": 2, "labels": 2}
    assert sorted(wh.read("SELECT request_id FROM inference_log")["request_id"]) == ["c", "d"]
    assert sorted(wh.read("SELECT request_id FROM labels")["request_id"]) == ["c", "d"]
    assert count(wh, "ml_performance_metrics") == 1  # history is never deleted
