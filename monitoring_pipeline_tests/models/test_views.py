"""The model's own views of a batch (class probabilities and penultimate activations) on real digits."""

import numpy as np
import pytest
import torch

from monitoring_pipeline.models import train
from monitoring_pipeline.models.views import last_linear, model_views


@pytest.fixture(scope="module")
def cnn(datasets):
    d = datasets["digits"]
    return train("image_cnn", d.X_train, d.y_train, seed=0, epochs=3), d


def test_views_do_not_change_the_outputs_and_read_the_layer_before_the_last_linear(cnn):
    model, d = cnn
    X = d.X_test[:60]
    before = model.predict_proba(X)
    views = model_views(model, X)
    assert np.array_equal(views.probabilities, before)  # bit for bit
    assert np.array_equal(model.predict_proba(X), before)  # and the hook is gone afterwards
    assert len(last_linear(model.estimator)._forward_pre_hooks) == 0
    net = model.estimator
    assert views.embeddings.shape == (60, net.out.in_features)
    # the embeddings are the pooled convolutional features: the last layer maps them to the logits
    with torch.no_grad():
        logits = net.out(torch.from_numpy(views.embeddings).float()).double()
    assert np.allclose(torch.softmax(logits, dim=1).numpy(), before, atol=1e-6)
    assert np.all(views.embeddings >= 0)  # after a ReLU and average pooling
    assert np.array_equal(views.predictions, model.predict(X))


def test_the_embeddings_separate_the_classes_they_were_trained_on(cnn):
    """Nearest class centroid in the penultimate space classifies held-out digits well."""
    model, d = cnn
    train_views, test_views = model_views(model, d.X_train), model_views(model, d.X_test)
    centroids = np.stack([train_views.embeddings[d.y_train == c].mean(axis=0) for c in range(10)])
    distance = ((test_views.embeddings[:, None, :] - centroids[None]) ** 2).sum(axis=2)
    assert np.mean(distance.argmin(axis=1) == d.y_test) > 0.8


def test_models_without_a_penultimate_layer_and_bad_inputs_are_refused(cnn, datasets):
    model, d = cnn
    forest = train("random_forest", datasets["flights"].X_train.iloc[:200], datasets["flights"].y_train[:200])
    with pytest.raises(ValueError, match="random_forest model has no penultimate layer"):
        model_views(forest, datasets["flights"].X_test)
    with pytest.raises(ValueError, match="at least one input row"):
        model_views(model, d.X_test[:0])
    with pytest.raises(ValueError, match=r"image_cnn takes a numeric array \[N, C, H, W\]"):
        model_views(model, d.X_test[:5, 0])
