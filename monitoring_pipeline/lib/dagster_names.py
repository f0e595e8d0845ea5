"""The names by which the Dagster instance knows this project's runs: its code location and
repository, the monitoring job, the window days' dynamic partitions and the run tags.

``defs`` builds the definitions with them, and the HTTP API (which imports no ``defs``) launches
and finds runs on a webserver with the same names. The run tag label is explained in
``defs/origin.py``.
"""

# Dagster's own names (private modules, pinned version): the tags the UI filters on and the
# repository name a Definitions object gets.
from dagster._core.definitions.repository_definition.valid_definitions import SINGLETON_REPOSITORY_NAME
from dagster._core.storage.tags import PARTITION_NAME_TAG, REPOSITORY_LABEL_TAG, RUN_KEY_TAG, SENSOR_NAME_TAG

LOCATION = "monitoring_pipeline"  # workspace.yaml, [tool.dagster] and [tool.dg.project] code_location_name
REPOSITORY_NAME = SINGLETON_REPOSITORY_NAME  # "__repository__": the one Definitions object
REPOSITORY_LABEL = f"{REPOSITORY_NAME}@{LOCATION}"  # "__repository__@monitoring_pipeline"
RUN_TAGS = {REPOSITORY_LABEL_TAG: REPOSITORY_LABEL}
WINDOW_TAG = "monitoring/window"  # the window whose findings triggered a retraining

MONITORING_JOB = "monitoring_job"  # the whole monitoring of one window (defs/operations.py)
DAYS_PARTITIONS = "monitoring_days"  # the window's dynamic day dimension (defs/partitions.py)
DAY, MODEL = "day", "model"  # the window partitions' dimensions


def window_partition(day: str, model: str) -> str:
    """A window's partition key as Dagster writes it in the ``dagster/partition`` tag: "<day>|<model>"."""
    return f"{day}|{model}"


__all__ = ["DAY", "DAYS_PARTITIONS", "LOCATION", "MODEL", "MONITORING_JOB", "PARTITION_NAME_TAG", "REPOSITORY_LABEL",
           "REPOSITORY_LABEL_TAG", "REPOSITORY_NAME", "RUN_KEY_TAG", "RUN_TAGS", "SENSOR_NAME_TAG", "WINDOW_TAG",
           "window_partition"]
