"""A user's own model, monitored end to end as the README's "Your own model" shows: a scikit-learn
classifier trained on scikit-learn's real wine data is declared in monitors.yaml (its reference a
CSV of its validation rows with its predictions), its serving process sends every prediction and
the late labels through the API's client, and the real ``dagster job execute`` of monitoring_job
judges each day from what the API took in. A quiet day passes its gates; a day whose alcohol
readings come from a miscalibrated sensor fails them, and the API then reports that drift."""

import os
import subprocess
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from monitoring_pipeline.client import MonitoringClient
from monitoring_pipeline_tests.api_server import TOKEN, api_server, call
from monitoring_pipeline_tests.dagster_home import DAGSTER, init_dagster_home

MODEL = "wine_classifier"
QUIET, SHIFTED = "2026-01-02", "2026-01-03"


def _wine():
    data = load_wine(as_frame=True)
    frame = data.frame.rename(columns={"target": "label", "od280/od315_of_diluted_wines": "od280_od315"})
    return train_test_split(frame, test_size=0.45, random_state=0, stratify=frame["label"])


def _monitors(path, reference):
    path.write_text(yaml.safe_dump({"start_date": "2026-01-01", "monitors": [{
        "name": MODEL, "modality": "tabular", "task": "classification",
        "reference": {"source": "file", "path": str(reference)},
        "traffic": {"source": "warehouse"},
        "champion": "v1",
        "thresholds": {"slo": {"accuracy": 0.8, "latency_p95_ms": 100, "error_rate": 0.05}},
        "alerts": {"routes": ["log"]},
        "retraining": {"enabled": False},
    }]}))
    return path


def _serve(monitor, model, rows: pd.DataFrame, day: str) -> None:
    """What a serving process does: predict, then log the prediction (and later the label)."""
    inputs = rows.drop(columns="label")
    proba = model.predict_proba(inputs)
    start = datetime.fromisoformat(day)
    for i, (index, row) in enumerate(inputs.iterrows()):
        monitor.log(MODEL, "v1", f"{day}-{index}", row.to_dict(), int(model.classes_[proba[i].argmax()]),
                    scores={str(c): float(p) for c, p in zip(model.classes_, proba[i])}, latency_ms=3.0,
                    ts=start + timedelta(minutes=10 * i))
    for index, label in rows["label"].items():
        monitor.label(f"{day}-{index}", int(label))


def _judge(day: str, home, env) -> subprocess.CompletedProcess:
    return subprocess.run([DAGSTER, "job", "execute", "-m", "monitoring_pipeline", "-j", "monitoring_job",
                           "--tags", '{"dagster/partition": "%s|%s"}' % (day, MODEL)], cwd=home, env=env,
                          capture_output=True, text=True)


@pytest.mark.slow
@pytest.mark.integration
def test_a_users_own_model_is_monitored_from_the_predictions_it_sends(tmp_path):
    train, live = _wine()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(
        train.drop(columns="label"), train["label"])
    # The reference: held-out predictions on the training rows (out of fold), as a user keeps them.
    reference = train.assign(prediction=cross_val_predict(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)), train.drop(columns="label"),
        train["label"], cv=5))
    reference.to_csv(tmp_path / "reference.csv", index=False)
    home = tmp_path / "home"
    init_dagster_home(home)
    env = {**os.environ, "DAGSTER_HOME": str(home), "MONITORING_WAREHOUSE": str(tmp_path / "w.duckdb"),
           "MONITORING_MONITORS": str(_monitors(tmp_path / "monitors.yaml", tmp_path / "reference.csv")),
           "MONITORING_SPOOL": str(tmp_path / "spool"), "MONITORING_MODELS": str(tmp_path / "models")}
    quiet, shifted = live.iloc[: len(live) // 2], live.iloc[len(live) // 2:].copy()
    shifted["alcohol"] = shifted["alcohol"] + 2.0  # a sensor reading 2 % vol too high
    with api_server(env, log=tmp_path / "api.log") as url:
        with MonitoringClient(url, TOKEN, batch_size=50) as monitor:
            _serve(monitor, model, quiet, QUIET)
            _serve(monitor, model, shifted, SHIFTED)
        assert monitor.stats["inferences"] == len(live) and monitor.stats["labels"] == len(live)

        ok = _judge(QUIET, home, env)
        assert ok.returncode == 0, ok.stdout[-3000:] + ok.stderr[-3000:]
        failed = _judge(SHIFTED, home, env)
        assert failed.returncode != 0, "the drifted day must fail its gate"
        assert "no_drift_alert" in failed.stdout + failed.stderr

        status, body = call(f"{url}/monitoring/drift/{MODEL}")
        if status == 200 and body.get("window") != SHIFTED:  # the snapshot is refreshed on a read
            status, body = call(f"{url}/monitoring/drift/{MODEL}")
        assert status == 200, body
        assert body["window"] == SHIFTED and body["drift_detected"], body
        flagged = {row["feature"] for row in body["data_drift"] if row["drift_detected"]}
        assert "alcohol" in flagged, body
        status, perf = call(f"{url}/monitoring/performance/{MODEL}")
        assert status == 200, perf
        realized = {row["window_start"][:10]: row["value"] for row in perf["realized"] if row["metric"] == "accuracy"}
        expected = float(np.mean(model.predict(quiet.drop(columns="label")) == quiet["label"]))
        assert realized[QUIET] == pytest.approx(expected)
