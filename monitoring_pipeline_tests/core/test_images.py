"""Image layouts (channels first or last, as declared) and zero-size images."""

import re

import numpy as np
import pandas as pd
import pytest

from monitoring_pipeline.core import compute_dataset_profile
from monitoring_pipeline.core.modalities import channels_first


@pytest.fixture
def nchw():
    rng = np.random.default_rng(11)
    images = rng.random((30, 3, 8, 6))  # H != W != C: a wrong transpose cannot pass by symmetry
    images[:, 0] += 0.5
    images[:, 2] *= 0.25
    return images


def test_the_same_images_channels_first_and_channels_last_give_the_same_profile(nchw):
    nhwc = np.transpose(nchw, (0, 2, 3, 1))
    first = compute_dataset_profile({"pixel_values": nchw, "layout": "NCHW"}, "vision")
    last = compute_dataset_profile({"pixel_values": nhwc, "layout": "NHWC"}, "vision")
    assert [n for n in last.features if n.startswith("channel_")] == ["channel_0_mean", "channel_1_mean",
                                                                      "channel_2_mean"]
    assert last.features == first.features and last.histograms == first.histograms
    for ch in range(3):
        pixels = last.features[f"channel_{ch}_mean"].pixels
        assert pixels.count == 30 * 8 * 6
        assert pixels.mean == pytest.approx(nchw[:, ch].mean(), rel=1e-12)
    assert dict(last.features["image_size"].counts) == {"8x6": 30}
    assert (first.dtypes["image_layout"], last.dtypes["image_layout"]) == ("NCHW", "NHWC")
    as_list = compute_dataset_profile({"pixel_values": list(nhwc), "layout": "NHWC"}, "vision")
    assert as_list.features == first.features
    sampled = compute_dataset_profile({"pixel_values": nhwc, "layout": "NHWC"}, "vision", sample_size=10)
    assert sampled.n_rows == 10 and sampled.dtypes["image_layout"] == "NHWC"


def test_channels_first_transposes_only_a_channels_last_batch(nchw):
    nhwc = np.transpose(nchw, (0, 2, 3, 1))
    np.testing.assert_array_equal(channels_first(nhwc, "NHWC"), nchw)
    assert channels_first(nchw) is nchw
    with pytest.raises(ValueError, match="image layout must be one of NCHW, NHWC, got 'NWHC'"):
        channels_first(nchw, "NWHC")
    with pytest.raises(ValueError, match=r"\[N, H, W, C\] \(NHWC\)"):
        channels_first(nchw[0], "NHWC")


def test_channels_last_images_under_the_default_layout_are_caught_or_reported(nchw):
    nhwc = np.transpose(nchw, (0, 2, 3, 1))
    misread = compute_dataset_profile(nhwc, "vision")  # nothing declared: read as NCHW, and it says so
    assert misread.dtypes["image_layout"] == "NCHW"
    assert sum(n.startswith("channel_") for n in misread.features) == 8
    assert dict(misread.features["image_size"].counts) == {"6x3": 30}
    with pytest.raises(ValueError, match=r"the images have 8 channel\(s\) when read as NCHW, not the 3 declared"):
        compute_dataset_profile({"pixel_values": nhwc, "channels": 3}, "vision")
    right = compute_dataset_profile({"pixel_values": nhwc, "layout": "NHWC", "channels": 3}, "vision")
    assert right.features == compute_dataset_profile(nchw, "vision").features


@pytest.mark.parametrize("data,axis", [
    (np.zeros((4, 0, 8, 8)), "C (channels)"),
    (np.zeros((4, 3, 0, 8)), "H (height)"),
    (np.zeros((4, 3, 8, 0)), "W (width)"),
    ({"pixel_values": np.zeros((4, 8, 8, 0)), "layout": "NHWC"}, "C (channels)"),
    ({"pixel_values": np.zeros((4, 0, 8, 3)), "layout": "NHWC"}, "H (height)"),
    ([np.zeros((3, 5, 0))], "W (width)"),
    ({"pixel_values": [np.zeros((5, 5, 3)), np.zeros((0, 5, 3))], "layout": "NHWC"}, "H (height)"),
])
def test_zero_size_images_raise_naming_the_dimension(data, axis):
    with pytest.raises(ValueError, match=f"images have zero size: {re.escape(axis)} is 0"):
        compute_dataset_profile(data, "vision")


def test_an_empty_window_is_still_reported_as_no_images():
    with pytest.raises(ValueError, match="no images"):
        compute_dataset_profile(np.zeros((0, 3, 0, 8)), "vision")


@pytest.mark.parametrize("channels", [0, -1, 2.5, True])
def test_a_declared_channel_count_must_be_a_positive_integer(nchw, channels):
    with pytest.raises(ValueError, match="channels must be a positive integer"):
        compute_dataset_profile({"pixel_values": nchw, "channels": channels}, "vision")


def vision_monitor(tmp_path, layout):
    from monitoring_pipeline.lib.monitors import load_monitors

    path = tmp_path / "monitors.yaml"
    path.write_text(f"""
start_date: 2026-01-01
monitors:
  - name: cams
    modality: vision
    input_column: image
    image_layout: {layout}
    reference: {{source: bundled, dataset: digits}}
""")
    return load_monitors(path).monitors[0]


def test_a_misspelled_image_layout_fails_naming_the_field(tmp_path):
    from monitoring_pipeline.lib.monitors import MonitorConfigError

    with pytest.raises(MonitorConfigError, match="monitor 'cams': field 'image_layout' must be NCHW .* got 'NWHC'"):
        vision_monitor(tmp_path, "NWHC")
    assert vision_monitor(tmp_path, "NHWC").image_layout == "NHWC"


def test_a_channels_last_monitor_profiles_its_images_like_a_channels_first_one(tmp_path, nchw):
    from monitoring_pipeline.lib.references import profile_inputs
    from monitoring_pipeline.lib.sources import model_inputs_of

    first, last = vision_monitor(tmp_path, "NCHW"), vision_monitor(tmp_path, "NHWC")
    frame_first = pd.DataFrame({"image": list(nchw)})
    frame_last = pd.DataFrame({"image": list(np.transpose(nchw, (0, 2, 3, 1)))})
    assert model_inputs_of(last, frame_last, []).shape == (30, 3, 8, 6)
    assert profile_inputs(last, frame_last, []).features == profile_inputs(first, frame_first, []).features
