"""A monitor's data: its reference, its traffic windows, and the model inputs in them.

Sources are the warehouse's inference log (traffic only), Parquet/CSV files that
DuckDB reads in place, a Parquet lake of traffic (:mod:`.lake`, read in shards), or a
bundled real data set replayed through bundled models.
Every window comes back in one shape (see :mod:`monitoring_pipeline.storage.traffic`).
"""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

import duckdb
import numpy as np
import pandas as pd
from sklearn.model_selection import cross_val_predict

from monitoring_pipeline.core.categorical import category_label
from monitoring_pipeline.core.modalities import channels_first
from monitoring_pipeline.demo.bundled import bundled
from monitoring_pipeline.demo.models import make_estimator, model_inputs
from monitoring_pipeline.demo.replay import replay_window
from monitoring_pipeline.storage import Warehouse
from monitoring_pipeline.storage.traffic import read_log_window

from .monitors import Monitor, MonitorConfigError


@dataclass(frozen=True)
class Window:
    """One daily window of one monitored model."""

    day: date
    model: str
    partition_key: str

    @property
    def start(self) -> datetime:
        return datetime(self.day.year, self.day.month, self.day.day)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=1)


def _quote(identifier: str) -> str:
    """A SQL identifier from user data, quoted."""
    return '"' + identifier.replace('"', '""') + '"'


def _csv_error(what: str, pattern: str, error: duckdb.Error) -> ValueError:
    """DuckDB's CSV error as one sentence naming the file, the line and the column."""
    text = str(error)
    found = [m.group(1) if m else None for m in (re.search(r"^\s*file = (.+)$", text, re.M),
                                                  re.search(r"CSV Error on Line: (\d+)", text),
                                                  re.search(r'converting column "((?:[^"]|"")*)"', text))]
    file, line, column = found[0] or pattern, found[1], found[2]
    detail = next((row for row in text.splitlines()[1:] if row.startswith(("Error", "Expected"))), text.splitlines()[0])
    if column is None:  # not a value of a column: a malformed line
        return ValueError(f"{what} file {file}: line {line}: {detail}")
    return ValueError(f"{what} file {file}: line {line}, column {column}: {detail}. Declare the column's type under "
                      f"the source's columns: in monitors.yaml, e.g. columns: {{{column}: VARCHAR}}")


def read_files(pattern: str, columns: dict | None = None, *, what: str = "reference", where: str = "",
               params: tuple = ()) -> pd.DataFrame:
    """Parquet or CSV files matching ``pattern``, CSV columns typed as ``columns`` declares
    (else as DuckDB sniffs them); ``where`` (with ``params``) filters and orders the rows."""
    if not glob.glob(pattern):
        raise ValueError(f"no {what} files match {pattern!r}")
    if pattern.endswith(".parquet"):
        source, args = "read_parquet(?)", [pattern]
    elif columns:
        source, args = "read_csv(?, types = ?)", [pattern, {k: v.upper() for k, v in columns.items()}]
    else:
        source, args = "read_csv(?)", [pattern]
    conn = duckdb.connect()
    try:
        return conn.execute(f"SELECT * FROM {source} {where}", [*args, *params]).df()
    except (duckdb.ConversionException, duckdb.InvalidInputException) as error:
        if "CSV Error on Line" not in str(error):  # not a CSV cell or line: DuckDB's own message
            raise
        raise _csv_error(what, pattern, error) from error
    except duckdb.BinderException as error:
        if "COLUMN_TYPES" not in str(error):
            raise
        raise ValueError(f"{what} files {pattern!r}: columns: declares a column they do not have "
                         f"({str(error).splitlines()[0]})") from error
    finally:
        conn.close()


def reference_frame(monitor: Monitor) -> pd.DataFrame:
    """The reference rows with the monitor's label column named ``label``."""
    src = monitor.reference
    if src.source == "bundled":
        return bundled(src.dataset).reference
    frame = read_files(src.path, src.columns, what=f"monitor {monitor.name!r}: reference")
    if monitor.label_column not in frame.columns:
        raise ValueError(f"monitor {monitor.name!r}: reference has no label column {monitor.label_column!r}")
    return frame.rename(columns={monitor.label_column: "label"})


def feature_names(monitor: Monitor, reference: pd.DataFrame) -> list[str]:
    """The columns to profile; MonitorConfigError when a declared one is not in the reference."""
    if monitor.input_column or monitor.features is not None:
        key, names = ("input_column", [monitor.input_column]) if monitor.input_column else \
            ("features", list(monitor.features))
        missing = [n for n in names if n not in reference.columns]
        if missing:
            have = [str(c) for c in reference.columns]
            shown = ", ".join(have[:40]) + (f", ... ({len(have)} in all)" if len(have) > 40 else "")
            raise MonitorConfigError(f"monitor {monitor.name!r}: field {key!r} names columns the reference "
                                     f"does not have: {', '.join(missing)}; it has: {shown}")
        return names
    skip = {"label", monitor.prediction_column, "ts", "request_id", "model_version", "confidence",
            "latency_ms", "error"}
    return [c for c in reference.columns if c not in skip]


def window_frame(monitor: Monitor, wh: Warehouse, window: Window) -> pd.DataFrame:
    """The window's predictions, every model version, with labels known so far."""
    src = monitor.traffic
    if src.source == "bundled":
        versions = [v for v in (monitor.champion, monitor.candidate) if v]
        return replay_window(monitor.name, src.dataset, window.day, src.rows_per_day, versions)
    if src.source == "parquet":  # the whole window at once; lib.lake profiles it shard by shard
        from .lake import window_frame as lake_window

        return lake_window(monitor, window)
    if src.source == "file":
        ts = _quote(src.ts_column)
        frame = read_files(src.path, src.columns, what=f"monitor {monitor.name!r}: traffic",
                           where=f"WHERE CAST({ts} AS TIMESTAMP) >= ? AND CAST({ts} AS TIMESTAMP) < ? ORDER BY {ts}",
                           params=(window.start, window.end)).rename(columns={src.ts_column: "ts"})
        renames = {monitor.label_column: "label", monitor.prediction_column: "prediction"}
        frame = frame.rename(columns={k: v for k, v in renames.items() if k in frame.columns})
        for column in ("request_id", "model_version", "confidence", "latency_ms", "error", "label"):
            if column not in frame.columns:
                frame[column] = [f"{window.partition_key}-{i}" for i in range(len(frame))] \
                    if column == "request_id" else None
        return frame
    return read_log_window(wh, monitor.name, window.start, window.end)


def serving_monitor(wh: Warehouse, monitor: Monitor) -> Monitor:
    """The monitor with its champion filled in from the registry, for a served model."""
    if monitor.model is None:
        return monitor
    from monitoring_pipeline.storage.registry import champion

    row = champion(wh, monitor.name)
    return replace(monitor, champion=row["model_version"] if row else None)


def served_rows(frame: pd.DataFrame, monitor: Monitor) -> pd.DataFrame:
    """The rows that answered the window's requests, whichever version served each one.

    A request answered by more than one version was shadowed: the row of the configured
    candidate (or, without one, of a version other than the configured champion, else
    of the version that answered fewer requests) is the shadow's and is dropped.
    """
    if frame.empty or not frame["request_id"].duplicated().any():
        return frame.reset_index(drop=True)
    versions = frame["model_version"].astype(str)
    counts = versions.value_counts()
    rank = versions.map(lambda v: (0 if v == monitor.champion else 2 if v == monitor.candidate else 1,
                                   -int(counts[v]), v))
    order = sorted(range(len(frame)), key=lambda i: rank.iloc[i])
    kept = frame.iloc[order].drop_duplicates("request_id", keep="first")
    return kept.sort_index().reset_index(drop=True)


def primary_version(monitor: Monitor, served: pd.DataFrame) -> str | None:
    """The version that served most of the window's requests (ties: the configured
    champion, then the first by name); the configured champion for an empty window."""
    versions = served["model_version"].dropna().astype(str) if len(served) else pd.Series(dtype=str)
    if versions.empty:
        return monitor.champion
    counts = versions.value_counts()
    top = sorted(counts[counts == counts.max()].index)
    return monitor.champion if monitor.champion in top else top[0]


def version_rows(frame: pd.DataFrame, version: str | None) -> pd.DataFrame:
    if version is None:
        return frame
    return frame[frame["model_version"].astype(str) == version].reset_index(drop=True)


def typed_features(monitor: Monitor, frame: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """The feature columns, with declared kinds enforced (categorical as labels, numeric as
    numbers, datetime as times: text that does not parse is missing)."""
    out = frame[features].copy()
    for name, kind in (monitor.features or {}).items():
        if name not in out.columns:  # not profiled from this frame (missing from the traffic, or counted elsewhere)
            continue
        if kind == "categorical" and pd.api.types.infer_dtype(out[name], skipna=True) == "string":
            out[name] = out[name].astype(object).where(out[name].notna(), None)  # str(v) is v: no call per row
        elif kind == "categorical":
            out[name] = out[name].astype(object).where(out[name].notna(), None).map(
                lambda v: v if v is None else str(v))
        elif kind == "datetime":
            if not pd.api.types.is_datetime64_any_dtype(out[name].dtype):
                out[name] = pd.to_datetime(out[name], errors="coerce", utc=True, format="mixed")
        else:
            out[name] = pd.to_numeric(out[name], errors="coerce")
    return out


def model_inputs_of(monitor: Monitor, frame: pd.DataFrame, features: list[str]):
    """The data to profile: a feature frame, a list of texts, or an [N, C, H, W] array."""
    if monitor.modality == "text":
        return frame[monitor.input_column].astype(str).tolist()
    if monitor.modality == "vision":  # as [N, C, H, W] whatever the declared layout
        return channels_first(np.stack([np.asarray(x, dtype=np.float32) for x in frame[monitor.input_column]]),
                              monitor.image_layout)
    return frame[features]


def profile_inputs_of(monitor: Monitor, frame: pd.DataFrame, features: list[str]):
    """The model inputs as profiled: :func:`model_inputs_of`, except that a text monitor with
    ``embedder: minilm`` gives ``{"text": texts, "embeddings": [N, 384] sentence embeddings}``
    (a missing text is None, its embedding a row of NaN), profiled as the feature ``embedding``.
    A missing text is profiled as missing, not as the word "None" the model is given."""
    if monitor.modality != "text":
        return model_inputs_of(monitor, frame, features)
    texts = [None if _missing(v) else str(v) for v in frame[monitor.input_column]]
    if monitor.embedder != "minilm":
        return texts
    from monitoring_pipeline.models.text_embedder import sentence_embeddings  # torch, only when asked for

    return {"text": texts, "embeddings": sentence_embeddings(texts)}


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value is pd.NA or value is pd.NaT


def labels_of(values) -> np.ndarray:
    """Class labels as strings, so 1, 1.0 and "1" from different sources compare equal."""
    if pd.api.types.infer_dtype(values, skipna=True) == "string":  # labels already: no call per row
        labels = pd.Series(values, dtype=object)
        return labels.where(labels.notna(), None).to_numpy(dtype=object)
    return np.array([None if v is None or (isinstance(v, float) and v != v) else category_label(v)
                     for v in values], dtype=object)


def outputs_of(predictions, confidences=None, task: str = "classification") -> dict:
    """The outputs-profile input for a window's predictions."""
    if task == "regression":
        return {"predictions": pd.to_numeric(pd.Series(predictions), errors="coerce").to_numpy(np.float64),
                "task": "regression"}
    out = {"predictions": labels_of(predictions)}
    if confidences is not None and pd.notna(confidences).all():
        out["confidences"] = np.asarray(confidences, dtype=np.float64)
    return out


def reference_outputs(monitor: Monitor, reference: pd.DataFrame) -> dict | None:
    """The champion's outputs on the reference, out of fold for bundled models.

    A bundled champion is refitted in 5 folds so that every reference row gets a
    prediction from a model that did not train on it; its out-of-fold class
    probabilities are kept too (``probabilities`` [n, k] in the order of ``classes``),
    the labeled sample a performance estimate is calibrated on. A file reference must
    carry its own prediction column. None when neither is available.
    """
    if monitor.reference.source == "bundled" and monitor.champion:
        dataset = bundled(monitor.reference.dataset)
        estimator = make_estimator(dataset.modality, monitor.champion)
        proba = cross_val_predict(estimator, model_inputs(dataset, reference), reference["label"].to_numpy(),
                                  cv=5, method="predict_proba")
        classes = np.unique(reference["label"].to_numpy())
        return {"predictions": labels_of(classes[proba.argmax(axis=1)]), "confidences": proba.max(axis=1),
                "labels": reference["label"].to_numpy(), "probabilities": proba, "classes": labels_of(classes)}
    if monitor.prediction_column in reference.columns:
        conf = reference["confidence"] if "confidence" in reference.columns else None
        return {**outputs_of(reference[monitor.prediction_column], conf, monitor.task),
                "labels": reference["label"].to_numpy()}
    return None
