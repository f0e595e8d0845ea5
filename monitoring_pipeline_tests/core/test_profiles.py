import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from monitoring_pipeline.core.categorical import MAX_CATEGORIES
from monitoring_pipeline.core.histogram import PERCENTILES
from monitoring_pipeline.core.profiles import DatasetProfile, compute_dataset_profile, merge_profiles


def frame(rng, n):
    return pd.DataFrame({
        "num": rng.normal(10, 3, n),
        "count": rng.poisson(4, n),
        "cat": rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1]),
        "flag": rng.random(n) < 0.3,
    })


def roundtrip(profile):
    return DatasetProfile.from_dict(json.loads(json.dumps(profile.to_dict(), allow_nan=False)))


def test_numeric_columns_record_moments_percentiles_and_bins():
    rng = np.random.default_rng(0)
    df = frame(rng, 5000)
    s = compute_dataset_profile(df, "tabular").features["num"]
    x = df["num"].to_numpy()
    assert s.kind == "numeric"
    assert s.moments.count == 5000 and sum(s.counts) == 5000
    assert s.moments.mean == pytest.approx(x.mean(), rel=1e-12)
    assert s.moments.std == pytest.approx(x.std(ddof=1), rel=1e-12)
    assert (s.moments.min, s.moments.max) == (x.min(), x.max())
    assert s.percentiles == pytest.approx(np.percentile(x, PERCENTILES), rel=1e-12)
    assert s.percentiles_exact
    assert s.counts[0] == 0 and s.counts[-1] == 0  # its own reference: nothing out of range
    assert sum(s.sums) == pytest.approx(x.sum(), rel=1e-12)
    # quantile bins of its own data hold about 1% each
    assert max(s.counts[1:-1]) < 0.02 * 5000


def test_bin_edges_come_from_the_reference():
    rng = np.random.default_rng(1)
    ref = compute_dataset_profile(frame(rng, 2000), "tabular")
    shifted = frame(rng, 1000).assign(num=lambda d: d["num"] + 100)
    cur = compute_dataset_profile(shifted, "tabular", reference=ref)
    assert cur.features["num"].edges == ref.features["num"].edges
    assert cur.features["num"].counts[-1] == 1000  # all above the reference's range
    assert cur.features["num"].out_of_range == 1000


def test_nan_and_inf_are_counted_apart_and_kept_out_of_statistics():
    df = pd.DataFrame({"x": [1.0, np.nan, np.inf, -np.inf, 3.0, None]})
    s = compute_dataset_profile(df, "tabular").features["x"]
    assert (s.n_missing, s.n_infinite, s.moments.count) == (2, 2, 2)
    assert s.moments.mean == 2.0
    assert s.missing_share == pytest.approx(2 / 6)
    assert s.infinite_share == pytest.approx(2 / 6)


def test_all_missing_numeric_column_is_recorded_not_crashed():
    df = pd.DataFrame({"x": [np.nan, np.nan], "y": [1.0, 2.0]})
    s = compute_dataset_profile(df, "tabular").features["x"]
    assert s.moments.count == 0 and s.n_missing == 2 and s.percentiles is None


def test_categorical_bool_and_string_columns_are_counted():
    df = pd.DataFrame({"c": ["a", "b", "a", None, np.nan], "b": [True, False, True, True, False],
                       "n": pd.array([1, 2, None, 2, 2], dtype="Int64")})
    p = compute_dataset_profile(df, "tabular")
    assert dict(p.features["c"].counts) == {"a": 2, "b": 1} and p.features["c"].n_missing == 2
    assert dict(p.features["b"].counts) == {"True": 3, "False": 2}
    assert p.features["n"].kind == "numeric" and p.features["n"].n_missing == 1
    assert p.dtypes["b"] == "bool"


def test_long_tail_is_folded_into_other():
    values = [f"id{i}" for i in range(MAX_CATEGORIES + 50)] + ["id0"] * 10
    s = compute_dataset_profile(pd.DataFrame({"c": values}), "tabular").features["c"]
    assert len(s.counts) == MAX_CATEGORIES
    assert s.other == 50
    assert s.n_valid == len(values)
    assert s.counts[0] == ("id0", 11)


def test_reference_categories_are_kept_and_new_ones_counted():
    ref = compute_dataset_profile(pd.DataFrame({"c": ["a", "b"] * 50}), "tabular")
    cur = compute_dataset_profile(pd.DataFrame({"c": ["a"] * 5 + ["zzz"] * 3}), "tabular", reference=ref)
    assert dict(cur.features["c"].counts) == {"a": 5, "zzz": 3}


def test_numbers_and_their_float_forms_share_a_category_label():
    ref = compute_dataset_profile(pd.DataFrame({"c": pd.Series([1, 2, 1], dtype=object)}), "tabular")
    cur = compute_dataset_profile(pd.DataFrame({"c": pd.Series([1.0, np.nan], dtype=object)}),
                                  "tabular", reference=ref)
    assert dict(cur.features["c"].counts) == {"1": 1}


def test_text_profile_from_strings_ids_and_dicts():
    docs = ["The cat sat on the mat.", "A dog!", None]
    p = compute_dataset_profile(docs, "text")
    assert p.n_rows == 3
    length = p.features["length"]
    assert length.n_missing == 1 and length.moments.mean == pytest.approx((7 + 3) / 2)
    assert dict(p.features["tokens"].counts)["the"] == 2
    ids = compute_dataset_profile([{"input_ids": [5, 6, 5]}, {"input_ids": np.array([7])}], "text")
    assert dict(ids.features["tokens"].counts) == {5: 2, 6: 1, 7: 1}
    batch = compute_dataset_profile({"input_ids": [[1, 2, 0], [3, 0, 0]],
                                     "attention_mask": [[1, 1, 0], [1, 0, 0]]}, "text")
    assert batch.features["length"].moments.mean == 1.5
    assert compute_dataset_profile([{"text": "Hello hello"}], "text").features["tokens"].counts == (("hello", 2),)


def test_text_records_top_tokens_and_oov_against_the_reference():
    rng = np.random.default_rng(2)
    words = [f"w{i}" for i in range(300)]
    ref_docs = [" ".join(rng.choice(words, 20)) for _ in range(500)]
    ref = compute_dataset_profile(ref_docs, "text")
    assert len(ref.features["tokens"].counts) >= 100
    cur = compute_dataset_profile(["w1 w2 brandnew unseen"], "text", reference=ref)
    assert cur.features["tokens"].n_oov == 2
    assert cur.features["tokens"].oov_share == 0.5


def test_vision_profile_from_arrays_tensors_and_dicts():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    images = rng.random((20, 3, 8, 8))
    images[:, 0] += 0.5
    p = compute_dataset_profile(images, "vision")
    c0, c1 = p.features["channel_0_mean"], p.features["channel_1_mean"]
    assert c0.pixels.count == 20 * 64
    assert c0.pixels.mean == pytest.approx(images[:, 0].mean(), rel=1e-12)
    assert c0.pixels.std == pytest.approx(images[:, 0].std(ddof=1), rel=1e-12)
    assert c0.per_image.moments.mean == pytest.approx(images[:, 0].mean(axis=(1, 2)).mean())
    assert c1.pixels.mean < c0.pixels.mean
    assert p.features["brightness"].moments.count == 20
    assert sum(p.histograms["brightness_5bin"].counts) == 20
    assert len(p.histograms["brightness_5bin"].counts) == 5
    assert dict(p.features["image_size"].counts) == {"8x8": 20}
    from_tensor = compute_dataset_profile(torch.tensor(images), "vision")
    assert from_tensor.features["channel_0_mean"].pixels == c0.pixels
    as_dicts = [{"pixel_values": img} for img in images[:5]] + [{"pixel_values": rng.random((3, 4, 4))}]
    mixed = compute_dataset_profile(as_dicts, "vision")
    assert dict(mixed.features["image_size"].counts) == {"8x8": 5, "4x4": 1}


def test_vision_rejects_ambiguous_shapes():
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        compute_dataset_profile(np.zeros((4, 8, 8)), "vision")


def test_outputs_profile_classes_confidences_and_regression():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    p = compute_dataset_profile({"predictions": [0, 1, 1, 0], "probabilities": probs}, "outputs")
    assert dict(p.features["predicted_class"].counts) == {"0": 2, "1": 2}
    assert p.features["confidence"].moments.mean == pytest.approx(probs.max(axis=1).mean())
    from_matrix = compute_dataset_profile(probs, "outputs")
    assert from_matrix.features["predicted_class"] == p.features["predicted_class"]
    reg = compute_dataset_profile(np.array([1.5, 2.25, 3.0]), "outputs")
    assert set(reg.features) == {"prediction"}
    with pytest.raises(ValueError, match="probabilities"):
        compute_dataset_profile({"predictions": [0, 1], "probabilities": probs}, "outputs")


@pytest.mark.parametrize("modality,data,word", [
    ("tabular", pd.DataFrame({"x": []}), "no rows"),
    ("tabular", pd.DataFrame(), "no columns"),
    ("text", [], "no documents"),
    ("vision", np.zeros((0, 3, 4, 4)), "no images"),
    ("outputs", [], "no predictions"),
])
def test_empty_data_raises_naming_what_is_empty(modality, data, word):
    with pytest.raises(ValueError, match=word):
        compute_dataset_profile(data, modality)


def test_unknown_modality_and_bad_input_types_raise():
    with pytest.raises(ValueError, match="modality"):
        compute_dataset_profile([1], "audio")
    with pytest.raises(ValueError, match="DataFrame"):
        compute_dataset_profile([1, 2], "tabular")


def test_sample_size_draws_a_seeded_uniform_sample():
    rng = np.random.default_rng(4)
    df = frame(rng, 10_000)
    a = compute_dataset_profile(df, "tabular", sample_size=1000, seed=7)
    b = compute_dataset_profile(df, "tabular", sample_size=1000, seed=7)
    c = compute_dataset_profile(df, "tabular", sample_size=1000, seed=8)
    assert a == b and a != c
    assert (a.n_rows, a.n_rows_seen) == (1000, 10_000)
    assert a.features["num"].moments.mean == pytest.approx(df["num"].mean(), abs=0.3)
    images = compute_dataset_profile(rng.random((50, 1, 4, 4)), "vision", sample_size=10)
    assert images.n_rows == 10
    with pytest.raises(ValueError, match="sample_size"):
        compute_dataset_profile(df, "tabular", sample_size=0)


def test_every_modality_round_trips_through_json_exactly():
    rng = np.random.default_rng(5)
    profiles = [
        compute_dataset_profile(frame(rng, 300).assign(bad=[np.nan, np.inf] * 150), "tabular"),
        compute_dataset_profile(["one two", {"input_ids": [1, 2]}, None], "text"),
        compute_dataset_profile(rng.random((6, 3, 4, 4)), "vision"),
        compute_dataset_profile({"predictions": ["x", "y"], "confidences": [0.5, 0.9]}, "outputs"),
    ]
    for p in profiles:
        assert roundtrip(p) == p


def test_merge_is_the_profile_of_the_concatenation():
    rng = np.random.default_rng(6)
    ref = compute_dataset_profile(frame(rng, 3000), "tabular")
    a_df, b_df = frame(rng, 1200), frame(rng, 800)
    b_df.loc[:5, "num"] = np.nan
    a = compute_dataset_profile(a_df, "tabular", reference=ref)
    b = compute_dataset_profile(b_df, "tabular", reference=ref)
    whole = compute_dataset_profile(pd.concat([a_df, b_df]), "tabular", reference=ref)
    merged = merge_profiles(a, b)
    assert merged.n_rows == whole.n_rows == 2000
    for name in ("num", "count"):
        m, w = merged.features[name], whole.features[name]
        assert (m.counts, m.n_missing, m.n_infinite) == (w.counts, w.n_missing, w.n_infinite)
        assert m.moments.count == w.moments.count
        assert (m.moments.min, m.moments.max) == (w.moments.min, w.moments.max)
        assert m.moments.mean == pytest.approx(w.moments.mean, rel=1e-12)
        assert m.moments.m2 == pytest.approx(w.moments.m2, rel=1e-10)
        assert m.sums == pytest.approx(w.sums, rel=1e-10)
        # percentiles after a merge are read off the histogram: within a bin width
        assert not m.percentiles_exact
        width = np.diff(np.asarray(w.edges)).max()
        assert np.allclose(m.percentiles, w.percentiles, atol=width)
    assert merged.features["cat"] == whole.features["cat"]
    assert merged.features["flag"] == whole.features["flag"]


def test_merge_text_vision_and_outputs_counts():
    rng = np.random.default_rng(7)
    docs = ["a b c", "a a", "d", None]
    ref = compute_dataset_profile(docs, "text")
    merged = merge_profiles(compute_dataset_profile(docs[:2], "text", reference=ref),
                            compute_dataset_profile(docs[2:], "text", reference=ref))
    whole = compute_dataset_profile(docs, "text", reference=ref)
    a, b = merged.features["tokens"], whole.features["tokens"]
    assert dataclasses.replace(a, documents=None) == dataclasses.replace(b, documents=None)
    # the documents' embedding sums merge exactly up to the order of float additions
    assert a.documents.count == b.documents.count == 3  # held whole: the same rows, keyed apart
    order = [np.lexsort(x.documents.sample.T[::-1]) for x in (a, b)]
    np.testing.assert_allclose(a.documents.sample[order[0]], b.documents.sample[order[1]], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(a.documents.outer, b.documents.outer, rtol=1e-12, atol=1e-12)
    assert merged.features["length"].counts == whole.features["length"].counts
    imgs = rng.random((10, 3, 4, 4))
    vref = compute_dataset_profile(imgs, "vision")
    vm = merge_profiles(compute_dataset_profile(imgs[:4], "vision", reference=vref),
                        compute_dataset_profile(imgs[4:], "vision", reference=vref))
    vw = compute_dataset_profile(imgs, "vision", reference=vref)
    assert vm.histograms == vw.histograms
    assert vm.features["channel_2_mean"].pixels.mean == pytest.approx(vw.features["channel_2_mean"].pixels.mean)
    assert vm.features["channel_2_mean"].pixels.m2 == pytest.approx(vw.features["channel_2_mean"].pixels.m2)


def test_merge_with_a_missing_column_counts_it_missing():
    ref = compute_dataset_profile(pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [1, 2, 3]}), "tabular")
    a = compute_dataset_profile(pd.DataFrame({"x": [1.0, 2.0], "y": [1, 2]}), "tabular", reference=ref)
    b = compute_dataset_profile(pd.DataFrame({"x": [3.0]}), "tabular", reference=ref)
    merged = merge_profiles(a, b)
    assert merged.features["y"].n_missing == 1 and merged.features["y"].moments.count == 2


def test_merge_refuses_profiles_binned_differently_or_of_other_modalities():
    a = compute_dataset_profile(pd.DataFrame({"x": [1.0, 2.0, 3.0]}), "tabular")
    b = compute_dataset_profile(pd.DataFrame({"x": [10.0, 20.0, 30.0]}), "tabular")
    with pytest.raises(ValueError, match="same reference"):
        merge_profiles(a, b)
    with pytest.raises(ValueError, match="merge"):
        merge_profiles(a, compute_dataset_profile(["x"], "text"))


def test_reference_may_be_raw_data_and_must_match_the_modality():
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    p = compute_dataset_profile(df, "tabular", reference=df)
    assert p.features["x"].edges == compute_dataset_profile(df, "tabular").features["x"].edges
    with pytest.raises(ValueError, match="reference profile is text"):
        compute_dataset_profile(df, "tabular", reference=compute_dataset_profile(["a"], "text"))


def test_every_pandas_column_type_keeps_its_meaning():
    """bools, nullable ints, pandas categoricals and time zone-aware times are profiled as
    what they are, and the profile survives a JSON round trip."""
    frame = pd.DataFrame({
        "flag": [True, False, True, True],
        "count": pd.array([1, None, 3, 4], dtype="Int64"),
        "tier": pd.Categorical(["a", "b", "a", "c"]),
        "at": pd.to_datetime(["2026-01-01 08:00", "2026-01-01 09:30", None, "2026-01-02 23:10"]).tz_localize(
            "America/New_York"),
        "blob": [b"x", b"y", None, b"z"],
    })
    p = compute_dataset_profile(frame, "tabular")
    kinds = {name: s.kind for name, s in p.features.items()}
    assert kinds == {"flag": "categorical", "count": "numeric", "tier": "categorical", "at": "datetime"}
    assert dict(p.features["flag"].counts) == {"True": 3, "False": 1}
    assert (p.features["count"].n_missing, p.features["count"].moments.mean) == (1, pytest.approx(8 / 3))
    at = p.features["at"]
    assert at.tz == "America/New_York" and at.n_missing == 1
    assert sorted(h % 24 for h, c in enumerate(at.week_hours) if c) == [8, 9, 23]  # wall-clock hours
    assert p.unsupported == {"blob": "bytes"}
    again = DatasetProfile.from_dict(json.loads(json.dumps(p.to_dict(), allow_nan=False)))
    assert again == p


def test_profile_threads_caps_the_column_threads_and_changes_no_number(monkeypatch):
    import threading

    from monitoring_pipeline.core import modalities

    monkeypatch.setattr(modalities.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    df = frame(np.random.default_rng(3), 4000)
    seen = set()
    real = modalities.NumericSummary.from_array

    def spy(*args, **kwargs):
        seen.add(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr(modalities.NumericSummary, "from_array", spy)
    threaded = compute_dataset_profile(df, "tabular")
    assert modalities._cpus() == 4 and threading.get_ident() not in seen  # a pool's threads profiled them
    seen.clear()
    with modalities.profile_threads(1):
        assert modalities._cpus() == 1
        single = compute_dataset_profile(df, "tabular")
    assert seen == {threading.get_ident()}  # on the caller's thread alone
    assert modalities._cpus() == 4  # the cap ends with the block
    assert single.to_dict() == threaded.to_dict()
    with pytest.raises(ValueError, match="at least 1"):
        with modalities.profile_threads(0):
            pass
