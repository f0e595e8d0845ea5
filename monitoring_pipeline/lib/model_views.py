"""Profiles seen through the served model: its class probabilities and penultimate layer.

For a vision monitor whose model is a torch net the project serves (the digits CNN),
the outputs profile carries the class probabilities (one "probability_<class>" feature
each: black-box shift detection) and the inputs carry the penultimate activations as
row embeddings beside the pixels. The log keeps only each request's prediction and
confidence, so both are recomputed from the logged images with the checkpoint of the
version that served the window; a reference and the windows judged against it then
see the images through the same net.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from monitoring_pipeline.core import DatasetProfile, compute_dataset_profile
from monitoring_pipeline.models import TrainedModel, load_checkpoint
from monitoring_pipeline.models.training import TORCH_KINDS
from monitoring_pipeline.models.views import model_views
from monitoring_pipeline.storage import Warehouse, registry

from .monitors import Monitor
from .settings import models_dir
from .sources import labels_of, model_inputs_of


def has_views(monitor: Monitor) -> bool:
    """Whether the monitor's profiles go through its model: a served torch net on images."""
    return monitor.modality == "vision" and monitor.model is not None and monitor.model.kind in TORCH_KINDS


def load_version(wh: Warehouse, model_name: str, version: str) -> TrainedModel:
    """The registered checkpoint of ``version`` (verified against the registry's sha256)."""
    rows = registry.versions(wh, model_name)
    rows = rows[rows["model_version"].astype(str) == str(version)]
    if rows.empty or not isinstance(rows["path"].iloc[0], str):
        raise ValueError(f"model {model_name!r} has no registered checkpoint of version {version!r}")
    model, _ = load_checkpoint(Path(rows["path"].iloc[0]), registered=registry.recorded_checkpoints(wh),
                               models_root=models_dir())
    return model


def model_profiles(monitor: Monitor, model: TrainedModel, frame: pd.DataFrame, features: list[str], *,
                   inputs_reference: DatasetProfile | None = None, outputs_reference: DatasetProfile | None = None,
                   output_rows: np.ndarray | None = None, logged: bool = False,
                   ) -> tuple[DatasetProfile, DatasetProfile | None]:
    """The inputs profile (pixels and penultimate embeddings) of every row of ``frame`` and
    the outputs profile (predictions and class probabilities) of the rows ``output_rows``
    (a boolean mask; all rows by default), binned on the given references.

    The predicted classes are the model's, or with ``logged`` the ``prediction`` the log
    holds for each row (what was served); the probabilities are the model's on the
    image. The outputs profile is None when no row is in ``output_rows``.
    """
    images = model_inputs_of(monitor, frame, features)
    views = model_views(model, images)
    inputs = compute_dataset_profile({"pixel_values": images, "embeddings": views.embeddings}, "vision",
                                     reference=inputs_reference)
    rows = np.ones(len(frame), dtype=bool) if output_rows is None else np.asarray(output_rows, dtype=bool)
    if not rows.any():
        return inputs, None
    predictions = frame["prediction"].to_numpy()[rows] if logged else views.predictions[rows]
    outputs = compute_dataset_profile(
        {"predictions": labels_of(predictions), "probabilities": views.probabilities[rows],
         "classes": labels_of(views.classes)}, "outputs", reference=outputs_reference)
    return inputs, outputs
