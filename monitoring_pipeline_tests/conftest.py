"""Every test writes its Prometheus file and HTML reports under its own tmp_path, never
into the checkout's data/ folder (subprocesses inherit the variables)."""

import pytest


@pytest.fixture(autouse=True)
def _outputs_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("MONITORING_METRICS", str(tmp_path / "metrics" / "monitoring.prom"))
    monkeypatch.setenv("MONITORING_REPORTS", str(tmp_path / "reports"))
