"""Profiles and drift reports of the real data sets bundled with scikit-learn.

A small end-to-end run of the statistics core, with nothing to configure: each data
set's reference split is profiled once, its current split against it, and the two
are compared.
"""

import dagster as dg

from monitoring_pipeline.core import DatasetProfile, compare_profiles, compute_dataset_profile
from monitoring_pipeline.demo.bundled import bundled_datasets

from .metadata import drift_table

GROUP = "bundled_data"


class DriftOptions(dg.Config):
    """Options of compare_profiles; see the README's "Drift verdicts" section."""

    alpha: float = 0.05
    correction: str = "holm"
    methods: dict[str, str] = {}  # feature kind or name -> drift method
    thresholds: dict[str, float] = {}  # feature kind or name -> threshold of its method

    def spec(self) -> dict:
        keys = set(self.methods) | set(self.thresholds)
        return {k: {**({"method": self.methods[k]} if k in self.methods else {}),
                    **({"threshold": self.thresholds[k]} if k in self.thresholds else {})} for k in keys}


@dg.asset(group_name=GROUP)
def reference_profile(context: dg.AssetExecutionContext) -> dg.Output[dict[str, DatasetProfile]]:
    """Profiles of each bundled data set's reference split."""
    profiles = {d.name: compute_dataset_profile(d.reference, d.modality) for d in bundled_datasets()}
    rows = {name: p.n_rows for name, p in profiles.items()}
    context.log.info(f"profiled references: {rows}")
    return dg.Output(profiles, metadata={
        "rows": dg.MetadataValue.json(rows),
        "features": dg.MetadataValue.json({n: len(p.features) for n, p in profiles.items()}),
    })


@dg.asset(group_name=GROUP)
def current_profile(reference_profile: dict[str, DatasetProfile]) -> dg.Output[dict[str, DatasetProfile]]:
    """Profiles of each bundled data set's current split, binned on its reference."""
    profiles = {d.name: compute_dataset_profile(d.current, d.modality, reference=reference_profile[d.name])
                for d in bundled_datasets()}
    return dg.Output(profiles, metadata={"rows": dg.MetadataValue.json({n: p.n_rows for n, p in profiles.items()})})


@dg.asset(group_name=GROUP)
def data_drift_report(
    context: dg.AssetExecutionContext,
    config: DriftOptions,
    reference_profile: dict[str, DatasetProfile],
    current_profile: dict[str, DatasetProfile],
) -> dg.Output[dict[str, dict]]:
    """Drift of each bundled data set's current split against its reference."""
    reports = {name: compare_profiles(reference_profile[name], current_profile[name], alpha=config.alpha,
                                      correction=config.correction, thresholds=config.spec())
               for name in current_profile}
    metadata = {}
    for name, report in reports.items():
        context.log.info(f"{name}: {report['status']} - {report['summary']}")
        metadata[f"{name}_summary"] = dg.MetadataValue.text(f"{report['status']}: {report['summary']}")
        metadata[f"{name}_most_drifted"] = dg.MetadataValue.md(drift_table(report))
    worst = max(reports.values(), key=lambda r: ("ok", "warn", "alert").index(r["status"]))
    metadata["status"] = dg.MetadataValue.text(worst["status"])
    metadata["max_drift"] = dg.MetadataValue.float(max(float(r["max_drift"]) for r in reports.values()))
    return dg.Output(reports, metadata=metadata)


monitoring_job = dg.define_asset_job(
    "monitoring_job",
    selection=dg.AssetSelection.groups(GROUP),
    description="Profile the bundled data sets and report their drift.",
)
