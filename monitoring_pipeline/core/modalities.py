"""Turning each modality's input into feature summaries.

Each modality has a loader, which checks the input and brings it to one canonical
form (a DataFrame, a list of token lists, image batches, output arrays), and a
summarizer, which builds the feature summaries against an optional reference.
"""

from __future__ import annotations

import math
import os
import re
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
import pandas as pd

from .categorical import CategoricalSummary, TokenSummary, category_label
from .columns import column_kind, float_values, unsupported_type
from .embedding import EmbeddingSummary
from .numeric import ChannelSummary, FixedHistogram, Moments, NumericSummary
from .text_embedding import check_documents
from .timestamps import DatetimeSummary

_TOKEN = re.compile(r"\w+|[^\w\s]")
BRIGHTNESS_BINS = 5


def tokenize(text: str) -> list[str]:
    """Lower-cased words and punctuation marks.

    >>> tokenize("The vaccine, again!")
    ['the', 'vaccine', ',', 'again', '!']
    """
    return _TOKEN.findall(text.lower())


def _to_numpy(x) -> np.ndarray:
    # torch tensors, without importing torch: core stays free of it.
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


_THREAD_CAP: ContextVar[int | None] = ContextVar("profile_threads", default=None)


def _cpus() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    cap = _THREAD_CAP.get()
    return cpus if cap is None else max(1, min(cpus, cap))


@contextmanager
def profile_threads(n: int):
    """Tabular columns are profiled on at most ``n`` threads inside the block (by default on as
    many as there are cores). A caller that already runs one profile per core, as the shard
    workers of a Parquet lake window do, asks for 1: a process's threads would otherwise compete
    with the other processes' for the same cores."""
    if n < 1:
        raise ValueError(f"profile_threads needs at least 1 thread, got {n}")
    token = _THREAD_CAP.set(n)
    try:
        yield
    finally:
        _THREAD_CAP.reset(token)


def _ref_summary(reference, name, kind):
    summary = reference.features.get(name) if reference is not None else None
    return summary if summary is not None and summary.kind == kind else None


def _ref_edges(reference, name):
    summary = _ref_summary(reference, name, "numeric")
    return summary.edges if summary is not None else None


# --- tabular -------------------------------------------------------------------------

def load_tabular(data) -> pd.DataFrame:
    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"tabular data must be a pandas DataFrame, got {type(data).__name__}")
    if data.shape[1] == 0:
        raise ValueError("tabular data is empty: the DataFrame has no columns")
    if len(data) == 0:
        raise ValueError("tabular data is empty: the DataFrame has no rows")
    names = [str(c) for c in data.columns]
    if len(set(names)) != len(names):
        raise ValueError("tabular data has duplicate column names")
    return data


def summarize_tabular(df: pd.DataFrame, reference):
    """Summaries of every column by its kind (see :mod:`.columns`); unsupported columns
    are left out of the features and named in the dtypes as ``unsupported: <type>``."""
    columns = {str(c): c for c in df.columns}
    kinds = {}
    for name, col in columns.items():
        ref = reference.features.get(name) if reference is not None else None
        kinds[name] = column_kind(df[col], ref.kind if ref is not None else None)

    def summarize(name):
        values = df[columns[name]]
        if kinds[name] == "numeric":
            return NumericSummary.from_array(float_values(values), _ref_edges(reference, name))
        if kinds[name] == "datetime":
            return DatetimeSummary.from_series(values)
        return CategoricalSummary.from_series(values, _ref_summary(reference, name, "categorical"))

    profiled = [name for name, kind in kinds.items() if kind != "unsupported"]
    # numpy releases the GIL while binning, so numeric columns profile in parallel
    # and overlap with the categorical ones (whose hashing holds it).
    workers = min(len(profiled), _cpus(), 8)
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            features = dict(zip(profiled, pool.map(summarize, profiled)))
    else:
        features = {name: summarize(name) for name in profiled}
    dtypes = {name: str(df[columns[name]].dtype) for name in profiled}
    dtypes.update({name: f"unsupported: {unsupported_type(df[columns[name]])}"
                   for name, kind in kinds.items() if kind == "unsupported"})
    return features, {}, dtypes


# --- text ----------------------------------------------------------------------------

def _token_ids(ids, mask=None) -> list:
    ids = _to_numpy(ids).ravel()
    if mask is not None:
        ids = ids[_to_numpy(mask).ravel().astype(bool)]
    whole = ids.dtype.kind in "iu" or (ids.dtype.kind == "f" and bool(np.isfinite(ids).all())
                                       and bool((ids == np.round(ids)).all()))
    if ids.size and not whole:
        raise ValueError(f"token ids must be integers; got {ids.dtype} values such as {ids[:3].tolist()}")
    return [int(t) for t in ids.tolist()]


def _document(item):
    if item is None or item is pd.NA or (isinstance(item, float) and math.isnan(item)):
        return None
    if isinstance(item, str):
        return tokenize(item)
    if isinstance(item, dict):
        if "input_ids" in item:
            return _token_ids(item["input_ids"], item.get("attention_mask"))
        if "text" in item:
            return _document(item["text"])
        raise ValueError(f"a text item needs 'input_ids' or 'text'; got keys {sorted(item)}")
    if isinstance(item, (list, tuple)) and all(isinstance(t, str) for t in item):
        return list(item)  # already tokenized
    if isinstance(item, (list, tuple, np.ndarray)) or hasattr(item, "detach"):
        return _token_ids(item)
    raise ValueError(f"cannot read a text item of type {type(item).__name__}")


def _documents(items) -> list:
    """Each item read by :func:`_document`; a bad one is named by its index."""
    docs = []
    for i, item in enumerate(items):
        try:
            docs.append(_document(item))
        except ValueError as error:
            raise ValueError(f"text item {i}: {error}") from None
    return docs


class Documents(list):
    """Token lists (None for a missing document), and optionally one embedding per document."""

    def __init__(self, docs=(), embeddings: np.ndarray | None = None):
        super().__init__(docs)
        self.embeddings = embeddings


def _embeddings(values, n: int, what: str) -> np.ndarray:
    """Precomputed embeddings [n, D] given with the inputs (a sentence model's, a network's layer)."""
    array = _to_numpy(values)
    if array.dtype == object or array.dtype.kind not in "fiu" or array.ndim != 2 or array.shape[1] == 0:
        raise ValueError(f"embeddings must be a numeric [{n}, dimensions] array, one row per {what}; "
                         f"got {array.dtype} of shape {array.shape}")
    if array.shape[0] != n:
        raise ValueError(f"embeddings have {array.shape[0]} rows for {n} {what}s")
    return array if array.dtype.kind == "f" else array.astype(np.float64)  # float32 stays: it may be large


def load_text(data) -> Documents:
    """Token lists (None for a missing document) from strings, ids or dicts of them.

    A dict may carry "embeddings": one precomputed vector per document (e.g. from a
    sentence-embedding model), profiled as the feature "embedding".
    """
    embeddings = None
    if isinstance(data, dict) and "embeddings" in data:
        data = dict(data)
        embeddings = data.pop("embeddings")
    if isinstance(data, str):
        items = [data]
    elif isinstance(data, dict):
        if "input_ids" in data:
            ids, masks = data["input_ids"], data.get("attention_mask")
            items = [{"input_ids": row, "attention_mask": None if masks is None else masks[i]}
                     for i, row in enumerate(ids)]
        elif "text" in data:
            items = list(data["text"])
        else:
            raise ValueError(f"text data needs 'input_ids' or 'text'; got keys {sorted(data)}")
    elif isinstance(data, (list, tuple, pd.Series, np.ndarray)):
        items = list(data)
    else:
        raise ValueError(f"cannot read text data of type {type(data).__name__}")
    if not items:
        raise ValueError("text data is empty: no documents")
    docs = Documents(_documents(items))
    if embeddings is not None:
        docs.embeddings = _embeddings(embeddings, len(docs), "document")
    return docs


def _embedding_feature(values: np.ndarray, reference, name: str = "embedding") -> EmbeddingSummary:
    return EmbeddingSummary.from_array(values, _ref_summary(reference, name, "embedding"), what=name)


def summarize_text(docs: list, reference):
    check_documents(docs)
    lengths = np.array([np.nan if d is None else len(d) for d in docs], dtype=np.float64)
    present = [d for d in docs if d is not None]
    features = {
        "length": NumericSummary.from_array(lengths, _ref_edges(reference, "length")),
        "tokens": TokenSummary.from_documents(present, _ref_summary(reference, "tokens", "tokens")),
    }
    embeddings = getattr(docs, "embeddings", None)
    if embeddings is not None:
        features["embedding"] = _embedding_feature(embeddings, reference)
    return features, {}, {}


# --- vision --------------------------------------------------------------------------

IMAGE_LAYOUTS = ("NCHW", "NHWC")
_IMAGE_AXES = {"NCHW": ("C (channels)", "H (height)", "W (width)"),
               "NHWC": ("H (height)", "W (width)", "C (channels)")}


class ImageBatches(list):
    """Image batches, each [N, C, H, W] float64, the layout the images came in, and
    optionally one precomputed embedding per image (rows in the batches' order)."""

    def __init__(self, batches=(), layout: str = "NCHW", embeddings: np.ndarray | None = None):
        super().__init__(batches)
        self.layout = layout
        self.embeddings = embeddings


def _check_layout(layout) -> None:
    if layout not in IMAGE_LAYOUTS:
        raise ValueError(f"image layout must be one of {', '.join(IMAGE_LAYOUTS)}, got {layout!r}")


def _check_image_size(shape: tuple, layout: str) -> None:
    """ValueError naming the axis of a zero-size image (``shape`` without N, in ``layout``)."""
    for axis, size in zip(_IMAGE_AXES[layout], shape):
        if size == 0:
            raise ValueError(f"images have zero size: {axis} is 0 in shape {shape} (read as {layout[1:]}); "
                             "an image needs at least one channel, row and column")


def channels_first(images, layout: str = "NCHW") -> np.ndarray:
    """A batch of images in ``layout`` ("NCHW" or "NHWC") as a C-contiguous [N, C, H, W] array.

    >>> channels_first(np.zeros((2, 8, 8, 3)), "NHWC").shape
    (2, 3, 8, 8)
    """
    _check_layout(layout)
    array = _to_numpy(images)
    if array.ndim != 4:
        raise ValueError(
            f"vision data must be [N, {', '.join(layout[1:])}] ({layout}); got shape {array.shape} "
            "(add a channel axis for grayscale images)"
        )
    if array.shape[0]:
        _check_image_size(array.shape[1:], layout)
    return array if layout == "NCHW" else np.ascontiguousarray(array.transpose(0, 3, 1, 2))


def load_vision(data) -> ImageBatches:
    """Batches of images, each [N, C, H, W] float64 (one batch per image shape).

    ``data`` is an [N, C, H, W] array or tensor, a list of [C, H, W] images, or a dict
    with "pixel_values" (either of those) and optionally "layout" ("NCHW", the default,
    or "NHWC" for channels-last images) and "channels" (the channel count the images
    must have: images read in the wrong layout then fail instead of being profiled).
    """
    layout, channels, embeddings, order = "NCHW", None, None, None
    if isinstance(data, dict):
        if "pixel_values" not in data:
            raise ValueError(f"vision data needs 'pixel_values'; got keys {sorted(data)}")
        layout, channels, embeddings = data.get("layout", "NCHW"), data.get("channels"), data.get("embeddings")
        _check_layout(layout)
        if channels is not None and (isinstance(channels, bool) or not isinstance(channels, int) or channels < 1):
            raise ValueError(f"channels must be a positive integer, got {channels!r}")
        data = data["pixel_values"]
    if isinstance(data, (list, tuple)):
        if not data:
            raise ValueError("vision data is empty: no images")
        images = [_to_numpy(i["pixel_values"] if isinstance(i, dict) else i) for i in data]
        for image in images:
            if image.ndim != 3:
                raise ValueError(f"each image must be [{', '.join(layout[1:])}] ({layout}); got shape {image.shape}")
            _check_image_size(image.shape, layout)
        if layout == "NHWC":
            images = [image.transpose(2, 0, 1) for image in images]
        by_shape: dict[tuple, list] = {}
        for i, image in enumerate(images):
            by_shape.setdefault(image.shape, []).append(i)
        order = [i for group in by_shape.values() for i in group]
        batches = ImageBatches([np.stack([images[i] for i in group]).astype(np.float64)
                                for group in by_shape.values()], layout)
    else:
        array = channels_first(data, layout)
        if array.shape[0] == 0:
            raise ValueError("vision data is empty: no images")
        batches = ImageBatches([array.astype(np.float64, copy=False)], layout)
    if channels is not None:
        found = sorted({b.shape[1] for b in batches})
        if found != [channels]:
            raise ValueError(f"the images have {' or '.join(map(str, found))} channel(s) when read as {layout}, "
                             f"not the {channels} declared; is the layout right (NCHW: channels first, "
                             "NHWC: channels last)?")
    if embeddings is not None:
        embeddings = _embeddings(embeddings, sum(b.shape[0] for b in batches), "image")
        batches.embeddings = embeddings if order is None else embeddings[order]
    return batches


POOL_GRID = 8  # images are pooled to 8 x 8 cells per channel for the pixel embedding


def _cells(size: int, grid: int) -> tuple[np.ndarray, np.ndarray]:
    """Start and stop of ``grid`` cells over ``size`` pixels (a pixel repeats when size < grid)."""
    start = np.arange(grid) * size // grid
    stop = np.maximum((np.arange(grid) + 1) * size // grid, start + 1)
    return start, stop


def pooled_pixels(batch: np.ndarray, n_channels: int, grid: int = POOL_GRID) -> np.ndarray:
    """Each image of an [N, C, H, W] batch as its channels' means over a ``grid`` x ``grid``
    layout of cells ([N, n_channels * grid * grid]; a channel the batch lacks is NaN).

    >>> pooled_pixels(np.arange(16.0).reshape(1, 1, 4, 4), 1, grid=2).tolist()
    [[2.5, 4.5, 10.5, 12.5]]
    """
    n, c, h, w = batch.shape
    out = np.full((n, n_channels, grid, grid), np.nan)
    rows, cols = _cells(h, grid), _cells(w, grid)
    # cumulative sums give every cell's sum in O(1)
    acc = np.zeros((n, c, h + 1, w + 1))
    acc[:, :, 1:, 1:] = batch.cumsum(axis=2).cumsum(axis=3)
    r0, r1 = rows[0][:, None], rows[1][:, None]
    c0, c1 = cols[0][None, :], cols[1][None, :]
    sums = acc[:, :, r1, c1] - acc[:, :, r0, c1] - acc[:, :, r1, c0] + acc[:, :, r0, c0]
    out[:, :c] = sums / ((r1 - r0) * (c1 - c0))
    return out.reshape(n, -1)


def summarize_vision(batches: list[np.ndarray], reference):
    """Per-channel statistics, brightness, contrast and sizes of [N, C, H, W] batches; the
    dtypes name the layout the images came in ("image_layout")."""
    n_channels = max(b.shape[1] for b in batches)
    chan_means, brightness, contrast, sizes = [], [], [], []
    pixels = [Moments() for _ in range(n_channels)]
    for batch in batches:
        n, c, h, w = batch.shape
        ok = np.isfinite(batch).all(axis=(1, 2, 3))
        means = np.full((n, n_channels), np.nan)
        good = batch[ok]
        if good.shape[0]:
            per = good.mean(axis=(2, 3))
            means[ok, :c] = per
            m2 = np.square(good - per[:, :, None, None]).sum(axis=(2, 3))
            for ch in range(c):
                mean = float(per[:, ch].mean())
                spread = float(m2[:, ch].sum() + h * w * np.square(per[:, ch] - mean).sum())
                pixels[ch] = pixels[ch].merge(Moments(
                    good.shape[0] * h * w, mean, spread,
                    float(good[:, ch].min()), float(good[:, ch].max())))
        chan_means.append(means)
        flat = np.where(ok[:, None], batch.reshape(n, -1), np.nan)
        brightness.append(flat.mean(axis=1))
        contrast.append(flat.std(axis=1))
        sizes.extend([f"{h}x{w}"] * n)
    chan_means_all = np.concatenate(chan_means)
    bright = np.concatenate(brightness)
    features = {}
    for ch in range(n_channels):
        ref = _ref_summary(reference, f"channel_{ch}_mean", "channel")
        edges = ref.per_image.edges if ref is not None else None
        features[f"channel_{ch}_mean"] = ChannelSummary(
            NumericSummary.from_array(chan_means_all[:, ch], edges), pixels[ch])
    features["brightness"] = NumericSummary.from_array(bright, _ref_edges(reference, "brightness"))
    features["contrast"] = NumericSummary.from_array(np.concatenate(contrast),
                                                     _ref_edges(reference, "contrast"))
    features["image_size"] = CategoricalSummary.from_series(
        pd.Series(sizes, dtype=object), _ref_summary(reference, "image_size", "categorical"))
    features["pixels"] = _embedding_feature(
        np.concatenate([pooled_pixels(b, n_channels) for b in batches]), reference, "pixels")
    if getattr(batches, "embeddings", None) is not None:
        features["embedding"] = _embedding_feature(batches.embeddings, reference)
    ref_hist = reference.histograms.get("brightness_5bin") if reference is not None else None
    histograms = {"brightness_5bin": FixedHistogram.equal_width(
        bright, BRIGHTNESS_BINS, ref_hist.edges if ref_hist is not None else None)}
    return features, histograms, {"image_layout": getattr(batches, "layout", "NCHW")}


# --- outputs -------------------------------------------------------------------------

SCORE_BOUNDS = (0.0, 1.0)  # the range of confidences and class probabilities
_SCORE_SLACK = 1e-6  # float rounding a softmax may show past 0 or 1


def _probability_classes(classes, n_classes: int) -> tuple[str, ...]:
    """The class label of each probability column, as the labels predictions get."""
    if classes is None:
        return tuple(str(i) for i in range(n_classes))
    labels = tuple(category_label(c) for c in _to_numpy(classes).ravel().tolist())
    if len(labels) != n_classes:
        raise ValueError(f"classes names {len(labels)} labels for {n_classes} probability columns")
    if len(set(labels)) != len(labels):
        raise ValueError(f"classes has duplicate labels: {list(labels)}")
    return labels


def _check_scores(values: np.ndarray, what: str) -> None:
    finite = values[np.isfinite(values)]
    if finite.size and (finite.min() < SCORE_BOUNDS[0] - _SCORE_SLACK or finite.max() > SCORE_BOUNDS[1] + _SCORE_SLACK):
        raise ValueError(f"{what} must lie in [0, 1]; found values from {finite.min():.6g} to {finite.max():.6g}")


def load_outputs(data) -> dict:
    """Predictions with optional class probabilities or confidences, as arrays.

    ``data`` is a prediction array, an [N, n_classes] probability matrix alone, or a
    dict with "predictions" and optionally "probabilities" ([N, n_classes]), "classes"
    (the label of each probability column; column indices "0", "1", ... without it),
    "confidences" (replaced by the largest probability when probabilities are given)
    and "task". Probabilities and confidences must lie in [0, 1]; NaN counts as missing.
    """
    probabilities = confidences = task = classes = None
    if isinstance(data, dict):
        if "predictions" not in data:
            raise ValueError(f"outputs data needs 'predictions'; got keys {sorted(data)}")
        predictions = _to_numpy(data["predictions"])
        probabilities = data.get("probabilities")
        confidences = data.get("confidences")
        task = data.get("task")
        classes = data.get("classes")
    else:
        predictions = _to_numpy(data)
        if predictions.ndim == 2:  # a probability matrix alone
            probabilities, predictions = predictions, predictions.argmax(axis=1)
    predictions = predictions.ravel() if predictions.ndim > 1 else predictions
    n = predictions.shape[0] if predictions.ndim else 0
    if n == 0:
        raise ValueError("outputs data is empty: no predictions")
    if probabilities is not None:
        probabilities = _to_numpy(probabilities).astype(np.float64)
        if probabilities.ndim != 2 or probabilities.shape[0] != n or probabilities.shape[1] == 0:
            raise ValueError(f"probabilities must be [{n}, n_classes]; got {probabilities.shape}")
        _check_scores(probabilities, "probabilities")
        classes = _probability_classes(classes, probabilities.shape[1])
        confidences = probabilities.max(axis=1)  # NaN where a row's probabilities are missing
    elif classes is not None:
        raise ValueError("classes names the probability columns; it needs 'probabilities'")
    if confidences is not None:
        confidences = _to_numpy(confidences).astype(np.float64).ravel()
        if confidences.shape[0] != n:
            raise ValueError(f"confidences must have {n} values; got {confidences.shape[0]}")
        _check_scores(confidences, "confidences")
    if task not in (None, "classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    return {"predictions": predictions, "confidences": confidences, "probabilities": probabilities,
            "classes": classes, "task": task}


def _output_task(outputs: dict, reference) -> str:
    if outputs["task"] is not None:
        return outputs["task"]
    if reference is not None:
        return "regression" if "prediction" in reference.features else "classification"
    p = outputs["predictions"]
    if p.dtype.kind == "f":
        finite = p[np.isfinite(p)]
        if finite.size and not np.array_equal(finite, np.round(finite)):
            return "regression"
    return "classification"


def summarize_outputs(outputs: dict, reference):
    """The predicted classes, the confidence and, with class probabilities, one numeric
    feature per class, "probability_<label>" (black-box shift detection, Rabanser et
    al. 2019: each class's probability gets the report's KS test, corrected across
    the report). Confidences and probabilities carry their [0, 1] bounds. A regression's
    outputs are its "prediction" values."""
    if _output_task(outputs, reference) == "regression":
        values = outputs["predictions"].astype(np.float64)
        return {"prediction": NumericSummary.from_array(values, _ref_edges(reference, "prediction"))}, {}, {}
    classes = pd.Series(outputs["predictions"], dtype=object)
    if pd.api.types.infer_dtype(classes, skipna=True) == "string":  # each its own label: no call per row
        classes = classes.where(classes.notna(), None)
    else:
        classes = classes.map(lambda v: None if v is None or (isinstance(v, float) and math.isnan(v))
                              else category_label(v))
    features = {"predicted_class": CategoricalSummary.from_series(
        classes, _ref_summary(reference, "predicted_class", "categorical"))}
    if outputs["confidences"] is not None:
        features["confidence"] = NumericSummary.from_array(
            outputs["confidences"], _ref_edges(reference, "confidence"), bounds=SCORE_BOUNDS)
    if outputs.get("probabilities") is not None:
        for label, column in zip(outputs["classes"], outputs["probabilities"].T):
            name = f"probability_{label}"
            features[name] = NumericSummary.from_array(column, _ref_edges(reference, name), bounds=SCORE_BOUNDS)
    return features, {}, {}


def take(canonical, rows: np.ndarray):
    """The rows ``rows`` of a canonical input (for sampling)."""
    if isinstance(canonical, pd.DataFrame):
        return canonical.iloc[rows]
    if isinstance(canonical, dict):
        return {k: (v[rows] if isinstance(v, np.ndarray) else v) for k, v in canonical.items()}
    embeddings = getattr(canonical, "embeddings", None)
    kept = embeddings[rows] if embeddings is not None else None
    if isinstance(canonical, list) and canonical and isinstance(canonical[0], np.ndarray):
        offsets = np.cumsum([0] + [b.shape[0] for b in canonical])
        picked = []
        for start, stop, batch in zip(offsets[:-1], offsets[1:], canonical):
            local = rows[(rows >= start) & (rows < stop)] - start
            if local.size:
                picked.append(batch[local])
        return ImageBatches(picked, canonical.layout, kept) if isinstance(canonical, ImageBatches) else picked
    if isinstance(canonical, Documents):
        return Documents([canonical[i] for i in rows], kept)
    return [canonical[i] for i in rows]


def length(canonical) -> int:
    if isinstance(canonical, pd.DataFrame):
        return len(canonical)
    if isinstance(canonical, dict):
        return int(canonical["predictions"].shape[0])
    if isinstance(canonical, list) and canonical and isinstance(canonical[0], np.ndarray):
        return sum(b.shape[0] for b in canonical)
    return len(canonical)


LOADERS = {"tabular": load_tabular, "text": load_text, "vision": load_vision, "outputs": load_outputs}
SUMMARIZERS = {"tabular": summarize_tabular, "text": summarize_text,
               "vision": summarize_vision, "outputs": summarize_outputs}
