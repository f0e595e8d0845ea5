"""The lib tests take their warehouses from the same backend fixtures as the Dagster-layer tests."""

from monitoring_pipeline_tests.defs.conftest import module_targets, more_targets  # noqa: F401
