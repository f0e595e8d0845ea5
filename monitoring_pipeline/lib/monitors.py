"""The monitored models, as declared in ``data/monitors.yaml``.

Loading validates every entry (``monitor_checks``); a bad one raises
``MonitorConfigError`` naming the model and the field, so definition loading fails with
a message a person can act on.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import yaml

from monitoring_pipeline.alerts.routing import AlertPolicy, policy_of

from .monitor_checks import (  # noqa: F401  (re-exported: the constants are part of this module's API)
    EMBEDDERS,
    ESTIMATIONS,
    KINDS,
    MODALITIES,
    REFERENCE_BASES,
    RETRAINING_FIELDS,
    SOURCES,
    MonitorConfigError,
    build_section,
    check_monitor,
    check_name,
    check_number,
    fail,
)
from .ownership import check_owners, check_tags, run_tags

@dataclass(frozen=True)
class Source:
    source: str = "warehouse"  # warehouse | file | bundled | parquet (a traffic lake, lib/lake.py)
    path: str | None = None  # file: a Parquet or CSV glob; parquet: a hive-partitioned directory or a glob
    dataset: str | None = None  # bundled: a data set of monitoring_pipeline.demo
    ts_column: str = "ts"
    rows_per_day: int = 60  # bundled traffic
    columns: dict = field(default_factory=dict)  # CSV files: column -> type (COLUMN_TYPES), else sniffed


@dataclass(frozen=True)
class Thresholds:
    alpha: float = 0.05
    correction: str = "holm"
    drift: dict = field(default_factory=dict)  # compare_profiles' thresholds option
    regression_tolerance: float = 0.05
    improvement_margin: float = 0.01
    max_missing_share: float = 0.05
    max_infinite_share: float = 0.0  # any +-inf in a feature fails the data-quality gate
    min_labeled_rows: int = 30
    slo: dict = field(default_factory=lambda: {"latency_p95_ms": 100.0, "error_rate": 0.05})


@dataclass(frozen=True)
class ServedModel:
    """A model the project trains, serves from data/models/ and retrains (the closed loop)."""

    kind: str  # a kind of monitoring_pipeline.models.training.KINDS
    params: dict = field(default_factory=dict)
    seed: int = 0
    recent_days: int = 14  # labeled traffic a retraining adds to the reference
    holdout_days: int = 3  # the latest labeled days, kept out to compare challenger and champion
    promotion_margin: float = 0.01  # the challenger's accuracy must beat the champion's by this much


@dataclass(frozen=True)
class Monitor:
    name: str
    modality: str
    reference: Source
    traffic: Source = field(default_factory=Source)
    task: str = "classification"
    features: dict | None = None  # name -> numeric | categorical; None: every reference column
    input_column: str | None = None  # text / vision: the column holding the text or the image
    image_layout: str = "NCHW"  # vision: NCHW (channels first) or NHWC (channels last)
    embedder: str = "hashed"  # text: hashed (built in) or minilm (sentence embeddings, the 'embeddings' extra)
    # How performance is estimated before labels: pape (the reference weighted towards the
    # window's inputs, then calibrated), cbpe (calibrated, unweighted); regression: dle or pape.
    estimation: str = "pape"
    ranges: dict = field(default_factory=dict)  # name -> [low, high] valid values
    label_column: str = "label"
    prediction_column: str = "prediction"
    champion: str | None = None  # model version serving traffic
    candidate: str | None = None  # a shadow version compared with the champion
    thresholds: Thresholds = field(default_factory=Thresholds)
    alerts: dict = field(default_factory=dict)  # routing (alerts/routing.py): every channel by default
    retraining: dict = field(default_factory=lambda: {"enabled": True, "cooldown_hours": 24})
    model: ServedModel | None = None  # set: the champion comes from the model registry
    scheduled: bool = True  # false: the schedules leave it out (its traffic is simulated for chosen days)
    # What a promoted version is judged against: "validation" (the labeled days that proved it
    # better), "training" (its training data) or "first_window" (the first window it serves).
    reference_on_promotion: str = "validation"
    # Who answers for this model, and labels for its runs: the runs of its partitions carry
    # them as run tags (lib/ownership.py says why not the shared assets).
    owners: tuple[str, ...] = ()  # e-mail addresses or "team:<name>"
    tags: dict = field(default_factory=dict)  # str -> str, Dagster's tag rules


@dataclass(frozen=True)
class MonitorsConfig:
    start_date: str
    monitors: tuple[Monitor, ...]
    retention_days: int = 30
    path: str | None = None
    owners: tuple[str, ...] = ()  # project-level: on every asset (the window assets are shared by the models)
    tags: dict = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.monitors]

    def monitor(self, name: str) -> Monitor:
        for m in self.monitors:
            if m.name == name:
                return m
        raise KeyError(f"no monitored model named {name!r}; known: {', '.join(self.names)}")


def monitor_run_tags(m: Monitor) -> dict[str, str]:
    """The run tags of a monitor's runs: its tags and ``monitoring/owners``."""
    return run_tags(m.owners, m.tags)


def alert_policy(m: Monitor) -> AlertPolicy:
    """The monitor's alert routing (validated at load)."""
    return policy_of(m.alerts)


def retraining_policy(m: Monitor):
    """The monitor's retraining settings as core's policy."""
    from monitoring_pipeline.core.retraining import RetrainingPolicy

    return RetrainingPolicy(**{k: m.retraining[k] for k in RETRAINING_FIELDS if k in m.retraining})


def parse_monitors(data: dict, path: str | None = None) -> MonitorsConfig:
    if not isinstance(data, dict) or not isinstance(data.get("monitors"), list) or not data["monitors"]:
        raise MonitorConfigError("monitors file needs a non-empty 'monitors' list")
    start = str(data.get("start_date", ""))
    try:
        date.fromisoformat(start)
    except ValueError as error:
        raise MonitorConfigError(f"start_date must be a date like 2026-01-01, got {start!r}") from error
    monitors = []
    for i, raw in enumerate(data["monitors"]):
        name = raw.get("name") if isinstance(raw, dict) else None
        if not isinstance(name, str) or not name:
            raise MonitorConfigError(f"monitor #{i + 1}: field 'name' must be a non-empty string")
        check_name(name, "name", name)
        raw = dict(raw)
        if isinstance(raw.get("thresholds"), dict) and isinstance(raw["thresholds"].get("slo"), dict):
            raw["thresholds"] = {**raw["thresholds"], "slo": {**Thresholds().slo, **raw["thresholds"]["slo"]}}
        for key, cls in (("reference", Source), ("traffic", Source), ("thresholds", Thresholds),
                         ("model", ServedModel)):
            if key in raw:
                raw[key] = build_section(cls, raw[key], name, key)
        if "reference" not in raw:
            fail(name, "reference", "is required")
        monitor = build_section(Monitor, raw, name, "")
        monitor = replace(monitor, owners=check_owners(monitor.owners, name), tags=check_tags(monitor.tags, name))
        check_monitor(monitor)
        monitors.append(monitor)
    names = [m.name for m in monitors]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise MonitorConfigError(f"monitor {duplicate!r}: field 'name' is used twice")
    retention = data.get("retention_days", 30)
    check_number("*", "retention_days", retention, 1, 100_000, integer=True)
    return MonitorsConfig(start, tuple(monitors), int(retention), path, owners=check_owners(data.get("owners")),
                          tags=check_tags(data.get("tags")))


def load_monitors(path: Path | str) -> MonitorsConfig:
    path = Path(path)
    if not path.exists():
        raise MonitorConfigError(f"monitors file {path} does not exist")
    with path.open() as f:
        data = yaml.safe_load(f)
    return parse_monitors(data, str(path))
