"""Where this project's runs belong in the Dagster UI: its code location and repository.

The UI lists a job's runs with the filter ``job_name`` AND the hidden tag
``.dagster/repository = "<repository>@<location>"``, and a sensor's runs with
``dagster/sensor_name`` AND that tag. Dagster writes the tag only on runs it creates from a
loaded code location (the Launchpad, the daemon's schedules and sensors); a run made by
``dagster job execute``, ``dg launch`` in process or ``execute_in_process`` (the closed loop's
day runs) has no such origin and is listed under no job. So every job of the project carries
the label as a run tag (``RUN_TAGS``, applied to every run of the job however it is
launched). It is the label Dagster itself computes for the location of workspace.yaml,
``[tool.dagster]`` and ``[tool.dg.project]`` (all named ``LOCATION``), so runs that Dagster
labels itself get the same value and nothing changes for them.

Why a tag and not runs created with a remote origin: the CLI builds its own runs, and a run
tag is the one thing that reaches every path the same way (checked against the GraphQL of
``dagster-webserver -w workspace.yaml`` in test_run_origins).
"""

# The names live in lib.dagster_names: the HTTP API, which imports no defs, launches runs with them.
from monitoring_pipeline.lib.dagster_names import (LOCATION, REPOSITORY_LABEL, REPOSITORY_LABEL_TAG, RUN_KEY_TAG,
                                                   RUN_TAGS, SENSOR_NAME_TAG, WINDOW_TAG)

__all__ = ["LOCATION", "REPOSITORY_LABEL", "REPOSITORY_LABEL_TAG", "RUN_KEY_TAG", "RUN_TAGS", "SENSOR_NAME_TAG",
           "WINDOW_TAG"]
