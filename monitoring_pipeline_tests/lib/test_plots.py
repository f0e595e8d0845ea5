"""Bin labels of the drift plots tell adjacent bins apart."""

import numpy as np

from monitoring_pipeline.core.methods import FeaturePair
from monitoring_pipeline.core.numeric import NumericSummary
from monitoring_pipeline.lib.plots import edge_labels, feature_shares


def test_edges_close_to_one_get_the_digits_that_tell_them_apart():
    assert edge_labels([0.97, 0.99]) == ["0.97", "0.99"]
    assert edge_labels([0.99, 0.9991, 0.9996, 0.99995]) == ["0.99", "0.9991", "0.9996", "0.99995"]
    assert edge_labels([1.23456, 5.6789, 120.5]) == ["1.23", "5.68", "120"]  # ordinary edges keep 3 digits
    assert edge_labels([1e6, 1e6 + 1]) == ["1000000", "1000001"]
    assert edge_labels([]) == [] and edge_labels([2.5]) == ["2.5"]


def test_every_label_is_within_half_a_gap_of_its_edge_and_labels_stay_ordered():
    rng = np.random.default_rng(0)
    for _ in range(200):
        edges = np.unique(1.0 - rng.exponential(10.0 ** rng.uniform(-7, 0), 9))
        labels = edge_labels(edges)
        parsed = np.array([float(x) for x in labels])
        gaps = np.diff(edges)
        near = np.minimum(np.concatenate([[np.inf], gaps]), np.concatenate([gaps, [np.inf]]))
        assert np.all(np.abs(parsed - edges) <= near / 20), (edges, labels)
        assert np.all(np.diff(parsed) > 0), labels


def test_a_confident_models_confidence_bins_do_not_read_1_1():
    rng = np.random.default_rng(1)
    ref = NumericSummary.from_array(np.clip(1 - rng.exponential(0.0005, 1000), 0, 1), bounds=(0.0, 1.0))
    cur = NumericSummary.from_array(np.clip(1 - rng.exponential(0.0005, 60), 0, 1), ref.edges, bounds=(0.0, 1.0))
    labels, _, _ = feature_shares(FeaturePair("confidence", "numeric", ref, cur))
    assert len(set(labels)) == len(labels) and "1-1" not in labels, labels
