"""What a torch classifier sees in a batch: its class probabilities and its penultimate layer.

Both come from one forward pass. The penultimate layer is the input of the net's
last ``nn.Linear`` (for ``ImageCNN``, the pooled convolutional features before
``out``), read with a forward pre-hook that returns nothing, so the net's outputs
are exactly those of ``TrainedModel.predict_proba``. These are the model's own views
for drift detection: the probabilities for black-box shift detection (one test per
class), the penultimate activations as row embeddings (Rabanser et al. 2019).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .training import (
    PREDICT_BATCH,
    TORCH_KINDS,
    TrainedModel,
    _check_input,
    _encode,
    _select,
    _single_thread,
)


@dataclass(frozen=True)
class ModelViews:
    """``probabilities`` [N, n_classes] in the order of ``classes``; ``embeddings`` [N, D],
    the activations that enter the last linear layer."""

    probabilities: np.ndarray
    embeddings: np.ndarray
    classes: np.ndarray

    @property
    def predictions(self) -> np.ndarray:
        """The most probable class of each row (the first one on a tie), as ``predict``."""
        return self.classes[self.probabilities.argmax(axis=1)]


def last_linear(net: nn.Module) -> nn.Linear:
    """The net's last ``nn.Linear`` in registration order: the classifier head of every
    net in :mod:`.nets`."""
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(net).__name__} has no linear layer to read a penultimate layer from")
    return linears[-1]


def model_views(model: TrainedModel, X) -> ModelViews:
    """Probabilities and penultimate activations of a torch ``model`` on inputs ``X``
    (for ``image_cnn``, a float array [N, C, H, W]), in batches, on one CPU thread."""
    if model.kind not in TORCH_KINDS:
        raise ValueError(f"a {model.kind} model has no penultimate layer to read; model views need one of "
                         f"{', '.join(TORCH_KINDS)}")
    _check_input(model.kind, X)
    if len(X) == 0:
        raise ValueError("model views need at least one input row")
    net = model.estimator
    head = last_linear(net)
    inputs = _encode(model.kind, net, model.preprocessing, X)
    seen: list[torch.Tensor] = []
    hook = head.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach()))
    net.eval()
    probabilities = []
    try:
        with _single_thread(), torch.no_grad():
            for start in range(0, len(X), PREDICT_BATCH):
                idx = np.arange(start, min(start + PREDICT_BATCH, len(X)))
                logits = net(*_select(model.kind, inputs, idx))
                probabilities.append(torch.softmax(logits.double(), dim=1).numpy())
    finally:
        hook.remove()
    embeddings = torch.cat(seen).double().numpy()
    if embeddings.shape[0] != len(X):
        raise RuntimeError(f"the last linear layer ran on {embeddings.shape[0]} rows for {len(X)} inputs")
    return ModelViews(np.concatenate(probabilities), embeddings, model.classes_)
