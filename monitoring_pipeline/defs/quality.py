"""The data-quality verdict of a window, for every modality."""

import pandas as pd

from monitoring_pipeline.core.quality import QualityResult, check_window_quality
from monitoring_pipeline.storage.traffic import LOG_COLUMNS, WINDOW_COLUMNS


def window_quality(step, served: pd.DataFrame) -> QualityResult:
    """Tabular windows are checked feature by feature; text and image windows on their input column."""
    monitor, t = step.monitor, step.monitor.thresholds
    reference = step.reference().inputs
    if monitor.traffic.source == "parquet" and not served.empty:  # its frame holds no features: its profile does
        from .shard_assets import lake_quality

        return lake_quality(step, reference)
    if monitor.modality == "tabular":
        day_end = pd.Timestamp(step.window.day, tz="UTC") + pd.Timedelta(days=1)
        return check_window_quality(served, reference, max_missing_share=t.max_missing_share,
                                    max_infinite_share=t.max_infinite_share, ranges=monitor.ranges,
                                    known_columns={*LOG_COLUMNS, *WINDOW_COLUMNS},
                                    as_of=min(day_end, pd.Timestamp.now(tz="UTC")))
    if served.empty:
        return QualityResult(False, 0, [{"type": "empty_window", "feature": None, "failed": True,
                                         "message": "the window has no rows"}])
    column = monitor.input_column
    if column not in served.columns:
        return QualityResult(False, len(served), [{"type": "missing_column", "feature": column, "failed": True,
                                                   "message": f"{column} is missing from the window"}])
    missing = float(served[column].isna().mean())
    findings = []
    if missing > t.max_missing_share:
        findings.append({"type": "missing_values", "feature": column, "failed": True, "share": missing,
                         "message": f"{column}: {missing:.1%} missing, above the {t.max_missing_share:.1%} bound"})
    return QualityResult(not findings, len(served), findings)
