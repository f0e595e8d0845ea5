"""Hostile but fair monitors.yaml entries: names that would be paths outside the data
folders, config that would switch a check off or fail every run later, features that
are not columns, and CSV columns whose type changes after DuckDB's sniffing sample."""

from datetime import date
from pathlib import Path

import duckdb
import pytest

from monitoring_pipeline.defs.resources import WarehouseResource
from monitoring_pipeline.defs.story import build_story
from monitoring_pipeline.lib.monitors import (Monitor, MonitorConfigError, MonitorsConfig, ServedModel, Source,
                                              load_monitors, parse_monitors)
from monitoring_pipeline.lib.paths import child
from monitoring_pipeline.lib.references import build_reference
from monitoring_pipeline.lib.report import report_path
from monitoring_pipeline.lib.sources import Window, reference_frame, window_frame

BASE = {"name": "m", "modality": "tabular", "reference": {"source": "bundled", "dataset": "breast_cancer"}}


def parse(**overrides):
    return parse_monitors({"start_date": "2026-01-01", "monitors": [{**BASE, **overrides}]})


def refused(field: str, **overrides) -> str:
    with pytest.raises(MonitorConfigError, match=f"monitor 'm': field '{field}'") as caught:
        parse(**overrides)
    return str(caught.value)


# 1. Names are identifiers, and paths built from them stay under their root.

@pytest.mark.parametrize("name", ["../victim", "/abs/path"])
def test_a_name_that_is_a_path_fails_at_load(tmp_path, name):
    path = tmp_path / "monitors.yaml"
    path.write_text(f'start_date: "2026-01-01"\nmonitors:\n  - name: {name}\n    modality: tabular\n'
                    "    reference: {source: bundled, dataset: breast_cancer}\n")
    with pytest.raises(MonitorConfigError, match=f"monitor '{name}': field 'name'"):
        load_monitors(path)


@pytest.mark.parametrize("name", ["a/b", "..", ".hidden", "a..b", "-x", "x" * 65, "a|b", "a b", "a\\b"])
def test_names_outside_the_safe_set_are_refused(name):
    with pytest.raises(MonitorConfigError, match="field 'name'"):
        parse(name=name)


def test_safe_names_load():
    assert parse(name="credit-risk_v2.1").monitors[0].name == "credit-risk_v2.1"
    assert parse(name="x" * 64).monitors[0].name == "x" * 64


@pytest.mark.parametrize("parts", [("..",), ("../victim",), ("/abs/path",), ("a", ".."), ("a/b",), ("",), (".",)])
def test_the_path_helper_refuses_what_leaves_its_root(tmp_path, parts):
    root = tmp_path / "models"
    with pytest.raises(ValueError, match=str(root)):
        child(root, *parts)


def test_the_path_helper_refuses_a_symbolic_link_out_of_its_root(tmp_path):
    root, outside = tmp_path / "models", tmp_path / "elsewhere"
    root.mkdir()
    outside.mkdir()
    (root / "m").symlink_to(outside)
    with pytest.raises(ValueError, match="leads outside"):
        child(root, "m", "v1")
    assert child(root, "n", "v1") == (root / "n" / "v1").resolve()


def test_a_report_path_stays_under_the_reports_folder(tmp_path):
    assert report_path(tmp_path, "m", "2026-01-01|m") == tmp_path.resolve() / "m" / "2026-01-01_m.html"
    with pytest.raises(ValueError, match="not a plain name"):
        report_path(tmp_path, "..", "2026-01-01|m")


def test_the_story_leaves_a_file_next_to_the_models_folder_alone(tmp_path, monkeypatch):
    """A Monitor built in code skips load-time validation; the story still refuses the path."""
    models, victim = tmp_path / "data" / "models", tmp_path / "data" / "victim"
    models.mkdir(parents=True)
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    monkeypatch.setenv("MONITORING_MODELS", str(models))
    monitor = Monitor(name="../victim", modality="tabular", reference=Source("bundled", dataset="breast_cancer"),
                      model=ServedModel("logistic_regression"))
    job = build_story(MonitorsConfig("2026-01-01", (monitor,)))
    result = job.execute_in_process(run_config={"ops": {"run_story": {"config": {"model": "../victim"}}}},
                                    resources={"warehouse": WarehouseResource(path=str(tmp_path / "w.duckdb"))},
                                    raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    cause = failure.step_failure_data.error.cause
    assert cause.cls_name == "ValueError" and "'../victim' is not a plain name" in cause.message
    assert (victim / "keep.txt").read_text() == "precious"


# 2. Every field validated at load, with its type.

def test_a_nan_drift_threshold_from_yaml_is_refused(tmp_path):
    path = tmp_path / "monitors.yaml"
    path.write_text('start_date: "2026-01-01"\nmonitors:\n  - name: m\n    modality: tabular\n'
                    "    reference: {source: bundled, dataset: breast_cancer}\n"
                    "    thresholds: {drift: {numeric: .nan}}\n")
    with pytest.raises(MonitorConfigError, match="monitor 'm': field 'thresholds.drift.numeric' must be a finite"):
        load_monitors(path)


@pytest.mark.parametrize("drift,field", [
    ({"numeric": float("nan")}, "thresholds.drift.numeric"),
    ({"numeric": -1}, "thresholds.drift.numeric"),
    ({"numeric": float("inf")}, "thresholds.drift.numeric"),
    ({"numeric": {"threshold": 0.3, "alert": 0.2}}, "thresholds.drift.numeric.alert"),
    ({"numeric": {"alert": 0.1}}, "thresholds.drift.numeric.alert"),  # below wasserstein's own 0.236
    ({"numeric": {"method": "psi", "alert": float("nan")}}, "thresholds.drift.numeric.alert"),
    ({"numeric": {"warn": 0.1}}, "thresholds.drift.numeric.warn"),
    ({"numeric": {"method": ["psi"]}}, "thresholds.drift.numeric.method"),
    ({"categorical": "ks"}, "thresholds.drift.categorical"),  # ks takes numeric features only
    ({"numeric": True}, "thresholds.drift.numeric"),
])
def test_a_bad_drift_spec_names_its_field(drift, field):
    refused(field, thresholds={"drift": drift})


def test_a_drift_spec_of_a_declared_feature_is_checked_against_its_kind():
    refused("thresholds.drift.city.method", features={"city": "categorical"},
            thresholds={"drift": {"city": {"method": "wasserstein"}}})
    ok = parse(features={"age": "numeric"}, thresholds={"drift": {"age": {"method": "ks", "threshold": 0.2}}})
    assert ok.monitors[0].thresholds.drift == {"age": {"method": "ks", "threshold": 0.2}}


def test_good_drift_specs_load():
    drift = {"numeric": "psi", "categorical": {"threshold": 0.15, "alert": 0.3}, "tokens": 0.4}
    assert parse(thresholds={"drift": drift}).monitors[0].thresholds.drift == drift


@pytest.mark.parametrize("bad", [["a", "b"], "a"])
@pytest.mark.parametrize("field", ["features", "ranges", "retraining", "thresholds.drift", "thresholds.slo"])
def test_a_mapping_field_given_as_a_list_or_a_string_is_named(field, bad):
    overrides = {"thresholds": {field.split(".")[1]: bad}} if "." in field else {field: bad}
    message = refused(field, **overrides)
    assert "must be a mapping" in message and type(bad).__name__ in message


def test_a_feature_list_says_what_to_write_instead():
    assert "column -> numeric | categorical" in refused("features", features=["a", "b"])


@pytest.mark.parametrize("overrides,field", [
    ({"thresholds": {"alpha": float("nan")}}, "thresholds.alpha"),
    ({"thresholds": {"slo": {"latency_p95_ms": float("inf")}}}, "thresholds.slo.latency_p95_ms"),
    ({"thresholds": {"slo": {"accuracy": 1.5}}}, "thresholds.slo.accuracy"),
    ({"thresholds": {"min_labeled_rows": float("inf")}}, "thresholds.min_labeled_rows"),
    ({"traffic": {"source": "bundled", "dataset": "breast_cancer", "rows_per_day": float("inf")}},
     "traffic.rows_per_day"),
    ({"retraining": {"cooldown_hours": float("inf")}}, "retraining.cooldown_hours"),
    ({"retraining": {"max_accuracy_drop": float("nan")}}, "retraining.max_accuracy_drop"),
    ({"ranges": {"x": [float("nan"), 1]}}, "ranges.x"),
    ({"ranges": {"x": ["0", "1"]}}, "ranges.x"),
    ({"alerts": {"dedupe_hours": float("nan")}}, "alerts.dedupe_hours"),
    ({"alerts": {"routes": "log"}}, "alerts.routes"),
    ({"alerts": {"rules": ["slack"]}}, "alerts.rules"),
    ({"alerts": ["log"]}, "alerts"),
    ({"label_column": ["y"]}, "label_column"),
    ({"reference": {"source": "bundled", "dataset": ["breast_cancer"]}}, "reference.dataset"),
    ({"reference": {"source": "file", "path": 3}}, "reference.path"),
    ({"features": {}}, "features"),
    ({"model": {"kind": "logistic_regression", "promotion_margin": float("nan")}}, "model.promotion_margin"),
    ({"model": {"kind": "logistic_regression", "params": [1]}}, "model.params"),
    ({"model": {"kind": "logistic_regression", "seed": -1}}, "model.seed"),
])
def test_non_finite_numbers_and_wrong_types_are_named(overrides, field):
    refused(field, **overrides)


def test_an_open_range_end_is_allowed():
    assert parse(ranges={"x": [0, float("inf")]}).monitors[0].ranges == {"x": [0, float("inf")]}


# 3. A feature that is not a column of the reference.

def write_csv(path: Path, rows: int, bad_row: int | None = None) -> Path:
    """ts, dep_time (a number, except "n/a" at ``bad_row``), carrier, label."""
    lines = ["ts,dep_time,carrier,label"]
    for i in range(rows):
        value = "n/a" if i == bad_row else f"{(i % 1440) / 60:.2f}"
        lines.append(f"2026-01-0{1 + i % 2} {i % 24:02d}:00:00,{value},{'AA' if i % 3 else 'DL'},{i % 2}")
    path.write_text("\n".join(lines) + "\n")
    return path


def file_monitor(path: Path, **overrides) -> Monitor:
    source = {"source": "file", "path": str(path), **overrides.pop("source", {})}
    return parse(reference=source, traffic=source, **overrides).monitors[0]


def test_an_unknown_feature_names_the_monitor_field_and_columns(tmp_path):
    monitor = file_monitor(write_csv(tmp_path / "ref.csv", 50), features={"dep_time": "numeric", "arr_time": "numeric"})
    with pytest.raises(MonitorConfigError) as caught:
        build_reference(monitor)
    message = str(caught.value)
    assert "monitor 'm': field 'features'" in message and "arr_time" in message
    assert "it has: ts, dep_time, carrier, label" in message


# 4. CSV column types.

def test_a_cell_that_turns_into_a_string_late_names_file_line_and_column(tmp_path):
    path = write_csv(tmp_path / "ref.csv", 30_000, bad_row=29_995)
    with pytest.raises(ValueError) as caught:
        reference_frame(file_monitor(path))
    message = str(caught.value)
    assert str(path) in message and "line 29997" in message and "column dep_time" in message
    assert "columns: {dep_time: VARCHAR}" in message
    assert isinstance(caught.value.__cause__, duckdb.ConversionException)


def test_a_declared_column_type_reads_the_file(tmp_path):
    path = write_csv(tmp_path / "ref.csv", 30_000, bad_row=29_995)
    frame = reference_frame(file_monitor(path, source={"columns": {"dep_time": "varchar"}}))
    assert len(frame) == 30_000 and frame["dep_time"].iloc[29_995] == "n/a"
    assert frame["dep_time"].iloc[1] == "0.02"  # declared VARCHAR: kept as written


def test_a_traffic_window_reads_with_declared_types_and_names_a_bad_cell(tmp_path):
    path = write_csv(tmp_path / "traffic.csv", 30_000, bad_row=29_995)
    window = Window(date(2026, 1, 2), "m", "2026-01-02|m")
    with pytest.raises(ValueError, match="traffic file .*line 29997, column dep_time"):
        window_frame(file_monitor(path), None, window)
    frame = window_frame(file_monitor(path, source={"columns": {"dep_time": "VARCHAR"}}), None, window)
    assert len(frame) == 15_000 and (frame["ts"].dt.date == date(2026, 1, 2)).all()
    assert "n/a" in set(frame["dep_time"])


@pytest.mark.parametrize("source,field", [
    ({"source": "file", "path": "x.csv", "columns": {"dep_time": "FLOAT128"}}, "reference.columns.dep_time"),
    ({"source": "file", "path": "x.csv", "columns": ["dep_time"]}, "reference.columns"),
    ({"source": "file", "path": "x.parquet", "columns": {"dep_time": "DOUBLE"}}, "reference.columns"),
    ({"source": "bundled", "dataset": "breast_cancer", "columns": {"x": "DOUBLE"}}, "reference.columns"),
])
def test_bad_column_declarations_are_named(source, field):
    refused(field, reference=source)


def test_a_declared_column_the_file_lacks_is_named(tmp_path):
    monitor = file_monitor(write_csv(tmp_path / "ref.csv", 10), source={"columns": {"dep_tme": "DOUBLE"}})
    with pytest.raises(ValueError, match="columns: declares a column they do not have.*dep_tme"):
        reference_frame(monitor)
