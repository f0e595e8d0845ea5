"""Helpers of the Dagster layer that are not definitions: configuration, data sources,
reference handling and plots. defs/ wires them; they wire core, storage and demo."""
