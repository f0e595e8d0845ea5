"""Service metrics and SLO verdicts (estimation is tested in test_estimation.py)."""

import numpy as np
import pytest

from monitoring_pipeline.core.service import service_metrics, slo_breaches


def test_service_metrics_percentiles_and_error_rate():
    latency = np.arange(1, 101, dtype=float)
    errors = [None] * 95 + ["timeout"] * 4 + [float("nan")]
    out = service_metrics(latency, errors)
    assert out["request_count"] == 100
    assert out["error_rate"] == pytest.approx(0.04)
    assert out["latency_p50_ms"] == pytest.approx(np.percentile(latency, 50))
    assert out["latency_p95_ms"] == pytest.approx(np.percentile(latency, 95))


def test_service_metrics_skip_missing_latency_and_handle_an_empty_window():
    out = service_metrics([np.nan, 10.0, np.inf, 30.0], [None] * 4)
    assert out["latency_p50_ms"] == pytest.approx(20.0)
    empty = service_metrics([], [])
    assert empty["error_rate"] is None and empty["latency_p95_ms"] is None


def test_slo_breaches_follow_each_slo_direction():
    measured = {"accuracy": 0.85, "latency_p95_ms": 120.0, "error_rate": 0.01}
    breaches = slo_breaches(measured, {"accuracy": 0.9, "latency_p95_ms": 100, "error_rate": 0.05})
    assert [b["slo"] for b in breaches] == ["accuracy", "latency_p95_ms"]
    assert "below its SLO" in breaches[0]["message"] and "above its SLO" in breaches[1]["message"]
    assert slo_breaches({"accuracy": None}, {"accuracy": 0.9}) == []
    with pytest.raises(ValueError, match="unknown SLO"):
        slo_breaches(measured, {"throughput": 1})

