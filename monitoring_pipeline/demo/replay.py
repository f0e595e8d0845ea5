"""Traffic of the embedded default: each day, real rows of a bundled data set's current
split go through the champion (and a shadow candidate), with measured latency.

The same (monitor, day) always yields the same requests, so a window can be read
again without storing it. Labels are the data set's own, known at once.
"""

from __future__ import annotations

import time
import zlib
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from .bundled import bundled
from .models import bundled_model, model_inputs


def replay_window(monitor_name: str, dataset_name: str, day: date, rows_per_day: int,
                  versions: list[str]) -> pd.DataFrame:
    """One row per (request, model version) for the day."""
    dataset = bundled(dataset_name)
    seed = zlib.crc32(f"{monitor_name}|{day.isoformat()}".encode())
    rng = np.random.default_rng(seed)
    n = min(rows_per_day, len(dataset.current))
    rows = dataset.current.iloc[np.sort(rng.choice(len(dataset.current), n, replace=False))].reset_index(drop=True)
    start = datetime(day.year, day.month, day.day)
    ts = [start + timedelta(seconds=float(s)) for s in np.sort(rng.uniform(0, 86_400, n))]
    request_ids = [f"{monitor_name}-{day.isoformat()}-{i:05d}" for i in range(n)]
    frames = []
    for version in versions:
        model = bundled_model(dataset_name, version)
        predictions, confidences, latencies = [], [], []
        for i in range(n):  # one request at a time, as served
            began = time.perf_counter()
            proba = model.predict_proba(model_inputs(dataset, rows.iloc[i:i + 1]))[0]
            latencies.append((time.perf_counter() - began) * 1000.0)
            predictions.append(model.classes_[int(proba.argmax())])
            confidences.append(float(proba.max()))
        frame = rows.drop(columns="label").copy()
        frame.insert(0, "ts", ts)
        frame.insert(1, "request_id", request_ids)
        frame.insert(2, "model_version", version)
        frame["prediction"] = predictions
        frame["confidence"] = confidences
        frame["latency_ms"] = latencies
        frame["error"] = None
        frame["label"] = rows["label"].to_numpy()
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
