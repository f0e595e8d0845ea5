"""The Dagster layer: assets, checks, jobs, schedules and sensors that wire the rest."""
