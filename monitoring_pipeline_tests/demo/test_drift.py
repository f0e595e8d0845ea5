"""Injected drift: each kind changes what it says and nothing else."""

import numpy as np
import pandas as pd
import pytest

from monitoring_pipeline.demo.bundled import bundled
from monitoring_pipeline.demo.drift import inject


def test_shift_moves_numeric_features_by_their_standard_deviation_and_keeps_labels():
    frame = bundled("breast_cancer").current.iloc[:60]
    out = inject(frame, "shift", 1.0)
    moved = (out["mean radius"] - frame["mean radius"]).to_numpy()
    assert np.allclose(moved, frame["mean radius"].std())
    assert out["label"].equals(frame["label"]) and frame is not out


def test_scale_multiplies_and_categoricals_stay():
    frame = pd.DataFrame({"x": [1.0, 2.0], "c": ["a", "b"], "label": [0, 1]})
    out = inject(frame, "scale", 3.0)
    assert out["x"].tolist() == [3.0, 6.0] and out["c"].tolist() == ["a", "b"]


@pytest.mark.parametrize("kind,size", [("brightness", 0.2), ("noise", 0.1), ("rotation", 30.0)])
def test_image_drift_changes_pixels_within_range(kind, size):
    frame = bundled("digits").current.iloc[:20]
    out = inject(frame, kind, size, image_column="image")
    before, after = np.stack(frame["image"]), np.stack(out["image"])
    assert after.shape == before.shape and after.min() >= 0 and after.max() <= 1
    assert not np.allclose(after, before)
    if kind == "brightness":
        assert after.mean() > before.mean() + 0.1


def test_bad_requests_are_refused():
    frame = pd.DataFrame({"c": ["a"], "label": [0]})
    with pytest.raises(ValueError, match="no numeric features"):
        inject(frame, "shift", 1.0)
    with pytest.raises(ValueError, match="unknown drift kind"):
        inject(frame, "melt", 1.0)
    with pytest.raises(ValueError, match="image column"):
        inject(frame, "noise", 0.1)
