"""Text drift in human units: the hashed embedder, document frequencies, readable token
details, the top-k turnover's noise floor, and bad text input; on real tweets."""

import json
import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from monitoring_pipeline.core.categorical import TokenSummary
from monitoring_pipeline.core.drift import compare_profiles
from monitoring_pipeline.core.methods import FeaturePair, token_turnover
from monitoring_pipeline.core.modalities import load_text, summarize_text
from monitoring_pipeline.core.noise import corrected, noise_floor
from monitoring_pipeline.core.profiles import compute_dataset_profile
from monitoring_pipeline.core.text_effects import token_details, top_turnover, turnover_floor
from monitoring_pipeline.core.text_embedding import hashed_embedding

from .text_data import null_split, topic_shift


def tokens_row(report: dict) -> dict:
    return next(r for r in report["features"] if r["name"] == "tokens")


def summaries(ref_texts, cur_texts):
    ref = TokenSummary.from_documents(load_text(ref_texts))
    return ref, TokenSummary.from_documents(load_text(cur_texts), ref)


# --- the hashed embedder -------------------------------------------------------------

def test_embedding_rows_are_unit_length_and_identical_for_identical_documents():
    docs = load_text(["The vaccine works", "the VACCINE works", "markets fell again", "", None])
    e = hashed_embedding(docs, dim=64)
    assert e.shape == (5, 64) and e.dtype == np.float64
    assert np.array_equal(e[0], e[1])
    assert np.allclose(np.linalg.norm(e[:3], axis=1), 1.0)
    assert not np.allclose(e[0], e[2])
    assert np.array_equal(e[3], np.zeros(64))  # empty document: zeros
    assert np.isnan(e[4]).all()  # missing document: NaN


def test_embedding_uses_sublinear_term_frequency():
    # one token repeated t times: the row is that token's signed bucket, unit length whatever t is;
    # with a second token once, the repeated one weighs 1 + log t against 1.
    e = hashed_embedding([["a", "b"], ["a", "a", "a", "b"]], dim=4096)
    (ia,) = np.flatnonzero(hashed_embedding([["a"]], dim=4096)[0])
    (ib,) = np.flatnonzero(hashed_embedding([["b"]], dim=4096)[0])
    assert ia != ib
    assert abs(e[0, ia]) == pytest.approx(abs(e[0, ib]))
    assert abs(e[1, ia]) / abs(e[1, ib]) == pytest.approx(1 + np.log(3))


def test_integer_ids_and_strings_hash_apart():
    e = hashed_embedding([[1, 2, 3], ["1", "2", "3"], [np.int64(1), 2, 3]], dim=1024)
    assert not np.allclose(e[0], e[1])
    assert np.array_equal(e[0], e[2])  # numpy and Python integers are the same id


def test_embedding_is_the_same_in_another_process():
    texts = ["Crooked Hillary", "Make America Great Again!", "ids", "😀 привет 你好"]
    here = hashed_embedding(load_text(texts) + [[5, 7, 5]], dim=32)
    code = ("import json, sys\n"
            "from monitoring_pipeline.core.modalities import load_text\n"
            "from monitoring_pipeline.core.text_embedding import hashed_embedding\n"
            "texts = json.loads(sys.argv[1])\n"
            "print(json.dumps(hashed_embedding(load_text(texts) + [[5, 7, 5]], dim=32).tolist()))\n")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(texts)], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONHASHSEED": "12345"})
    assert np.array_equal(np.array(json.loads(out.stdout)), here)


@pytest.mark.parametrize("docs,message", [
    ([["a"], "not a token list"], "document 1 must be a token list or None, got str"),
    ([["a", 3.5]], "document 0 holds a token of type float"),
    ([[True]], "document 0 holds a token of type bool"),
    ("a string", "documents must be a list of token lists"),
])
def test_embedding_names_bad_documents(docs, message):
    with pytest.raises(ValueError, match=message):
        hashed_embedding(docs)


@pytest.mark.parametrize("dim", [0, -3, 2.5, True])
def test_embedding_dim_must_be_a_positive_integer(dim):
    with pytest.raises(ValueError, match="dim must be a positive integer"):
        hashed_embedding([["a"]], dim=dim)


# --- document frequencies in the token summary ---------------------------------------

def test_token_summary_counts_documents_new_and_rare():
    ref = TokenSummary.from_documents([["the", "cat", "cat"], ["the", "dog"], ["the", "cat"]])
    assert dict(ref.counts) == {"the": 3, "cat": 3, "dog": 1}
    assert dict(ref.doc_counts) == {"the": 3, "cat": 2, "dog": 1}
    assert [t for t, _ in ref.doc_counts] == [t for t, _ in ref.counts]
    assert ref.n_docs_rare == 1  # only the second document holds a token no other document holds
    assert ref.n_docs_new == 0 and not ref.has_reference
    cur = TokenSummary.from_documents([["the", "cat"], ["a", "new", "cat"], ["bird"]], ref)
    assert cur.has_reference and cur.n_docs_new == 2


def test_document_counts_match_a_direct_count_on_real_tweets():
    ref_texts, cur_texts = topic_shift(300, 300, seed=5)
    ref_docs, cur_docs = load_text(ref_texts), load_text(cur_texts) + [[], [7, "7", 7]]
    ref = TokenSummary.from_documents(ref_docs)
    assert ref.other == 0  # 300 tweets keep their whole vocabulary
    held = Counter(t for d in ref_docs for t in set(d))
    assert dict(ref.doc_counts) == dict(held)
    assert ref.n_docs_rare == sum(any(held[t] == 1 for t in d) for d in ref_docs)
    cur = TokenSummary.from_documents(cur_docs, ref)
    assert cur.n_docs == 302 and dict(cur.doc_counts)[7] == 1 and dict(cur.counts)[7] == 2
    assert cur.n_docs_new == sum(any(t not in held for t in d) for d in cur_docs)
    assert cur.n_oov == sum(t not in held for d in cur_docs for t in d)


def test_expected_new_share_matches_leaving_each_document_out_when_the_tail_is_folded():
    docs = load_text(null_split(300, 10, seed=6)[0])
    cap = 400
    summary = TokenSummary.from_documents(docs, max_tokens=cap)
    assert summary.other > 0
    everything = Counter(t for d in docs for t in d)

    def new_when_left_out(doc) -> bool:
        rest = everything.copy()
        rest.subtract(doc)
        kept = sorted(((t, c) for t, c in rest.items() if c > 0), key=lambda kv: (-kv[1], str(kv[0])))[:cap]
        return not set(doc) <= {t for t, _ in kept}

    left_out = np.mean([new_when_left_out(d) for d in docs])
    assert summary.n_docs_rare / summary.n_docs == pytest.approx(left_out, abs=0.01)  # without the
    # tail rule (tokens at the cut) the estimate reads 0.897 here, against 0.92 left out


def test_merged_document_frequencies_are_exact_when_nothing_was_folded():
    docs = load_text(null_split(150, 150, seed=4)[0])
    whole = TokenSummary.from_documents(docs)
    merged = TokenSummary.from_documents(docs[:70]).merge(TokenSummary.from_documents(docs[70:]))
    assert whole.other == 0 and merged.other == 0
    assert dict(merged.counts) == dict(whole.counts)
    assert dict(merged.doc_counts) == dict(whole.doc_counts)
    ref = whole
    cur_docs = load_text(null_split(150, 150, seed=4)[1])
    cur = TokenSummary.from_documents(cur_docs, ref)
    parts = TokenSummary.from_documents(cur_docs[:40], ref).merge(TokenSummary.from_documents(cur_docs[40:], ref))
    assert parts.n_docs_new == cur.n_docs_new and parts.n_oov == cur.n_oov and parts.has_reference
    assert merged.n_docs_rare >= whole.n_docs_rare  # after a merge, an upper bound


def test_token_summary_round_trips_and_reads_profiles_stored_before_document_counts():
    ref, cur = summaries(*topic_shift(80, 80, seed=1))
    again = TokenSummary.from_dict(json.loads(json.dumps(cur.to_dict())))
    assert again == cur
    old = {k: v for k, v in cur.to_dict().items()
           if k not in ("doc_counts", "n_docs_new", "n_docs_rare", "has_reference")}
    stored = TokenSummary.from_dict(old)
    assert stored.counts == cur.counts and not stored.has_doc_stats
    details = token_details(ref, stored)
    assert details["new_token_doc_share"] is None and details["top_gained"] == []
    assert "before document frequencies" in details["details_unavailable"]
    assert not ref.merge(stored).has_doc_stats  # a merge with an old profile knows no document counts
    with pytest.raises(ValueError, match="document counts for"):
        TokenSummary.from_dict({**cur.to_dict(), "doc_counts": [1, 2]})


def test_details_say_when_the_current_profile_had_no_reference():
    ref = TokenSummary.from_documents(load_text(["the cat sat", "a dog ran"]))
    cur = TokenSummary.from_documents(load_text(["the bird flew"]))  # profiled alone
    details = token_details(ref, cur)
    assert details["new_token_doc_share"] is None
    assert "without the reference" in details["details_unavailable"]
    assert details["top_gained"]  # shares of documents are still known


# --- readable details on real text ---------------------------------------------------

def test_topic_shift_reads_in_documents_and_topical_words():
    ref_texts, cur_texts = topic_shift(1000, 1000, seed=0)
    ref = compute_dataset_profile(ref_texts, "text")
    row = tokens_row(compare_profiles(ref, compute_dataset_profile(cur_texts, "text", reference=ref)))
    assert row["new_token_doc_share"] > row["new_token_doc_share_expected"] + 0.04
    gained = [g["token"] for g in row["top_gained"]]
    lost = [g["token"] for g in row["top_lost"]]
    assert len(gained) == 5 and len(lost) == 5
    assert "hillary" in gained and "obama" in lost
    for entry in row["top_gained"] + row["top_lost"]:
        assert entry["token"] not in ENGLISH_STOP_WORDS and entry["token"].isalnum()
        assert set(entry) <= {"token", "ref_share", "cur_share", "bound"}
    assert all(g["cur_share"] > g["ref_share"] for g in row["top_gained"])
    assert all(g["cur_share"] < g["ref_share"] for g in row["top_lost"])
    hillary = row["top_gained"][gained.index("hillary")]
    assert hillary["cur_share"] > 0.08
    assert "hillary" in row["top_changes"] and "of documents" in row["top_changes"]
    assert row["effect_size"] > 0.3  # top-100 turnover net of its floor


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_null_split_new_token_share_is_close_to_its_expected_value(seed):
    ref, cur = summaries(*null_split(1000, 1000, seed=seed))
    details = token_details(ref, cur)
    assert abs(details["new_token_doc_share"] - details["new_token_doc_share_expected"]) < 0.03


def test_null_split_turnover_is_mostly_noise_and_the_floor_nets_it_out():
    raws, floors, nets = [], [], []
    for seed in range(10):
        ref, cur = summaries(*null_split(60, 60, seed=seed))
        pair = FeaturePair("tokens", "tokens", ref, cur)
        raw, floor = token_turnover(pair), noise_floor("token_topk", pair)
        raws.append(raw)
        floors.append(floor)
        nets.append(corrected("token_topk", raw, floor))
    assert abs(np.mean(raws) - np.mean(floors)) < 0.08  # the floor is the chance turnover
    # Without stop words, 60 tweets against 60 others turn over about 0.6 of their
    # top-100 informative tokens by chance alone.
    assert 0.5 < np.mean(raws) < 0.75
    assert np.mean(nets) < 0.05 and max(nets) < 0.2
    ref, cur = summaries(*topic_shift(60, 60, seed=0))
    pair = FeaturePair("tokens", "tokens", ref, cur)
    assert corrected("token_topk", token_turnover(pair), noise_floor("token_topk", pair)) > 0.3


def test_turnover_ignores_stop_words_and_punctuation():
    ref = TokenSummary.from_documents(load_text(["the , . ! and of vaccine"] * 5))
    cur = TokenSummary.from_documents(load_text(["a ; ? is to vaccine"] * 5), ref)
    assert top_turnover(ref, cur) == 0.0  # the only informative token is on both sides


def test_turnover_floor_is_deterministic_and_shrinks_with_size():
    small = summaries(*null_split(60, 60, seed=3))
    large = summaries(*null_split(600, 600, seed=3))
    assert turnover_floor(*small) == turnover_floor(*small)
    assert turnover_floor(*large) < turnover_floor(*small) - 0.2
    same = TokenSummary.from_documents(load_text(["only words here"] * 20))
    assert turnover_floor(same, same) == 0.0  # every token in every document: nothing can turn over


# --- bad text input ------------------------------------------------------------------

@pytest.mark.parametrize("data,message", [
    (["fine", 3.5], "text item 1: cannot read a text item of type float"),
    (["fine", {"title": "no text key"}], "text item 1: a text item needs 'input_ids' or 'text'"),
    ([{"text": 7}], "text item 0: cannot read a text item of type int"),
    ([[1.5, 2]], "text item 0: token ids must be integers"),
    ([b"bytes"], "text item 0: cannot read a text item of type bytes"),
    ([], "text data is empty"),
    (42, "cannot read text data of type int"),
])
def test_load_text_names_the_bad_item(data, message):
    with pytest.raises(ValueError, match=message):
        load_text(data)


def test_summarize_text_checks_its_documents():
    with pytest.raises(ValueError, match="document 1 must be a token list or None, got str"):
        summarize_text([["a"], "raw string"], None)
    with pytest.raises(ValueError, match="document 0 holds a token of type float"):
        summarize_text([["a", 2.5]], None)


def test_empty_missing_long_emoji_and_mixed_script_documents():
    long_doc = "word " * 20_000  # 100,000 characters
    texts = ["", "   ", None, float("nan"), long_doc, "😀 great 👍🏽 🇺🇸", "Привет мир 你好世界 مرحبا hello"]
    docs = load_text(texts)
    assert docs[0] == [] and docs[1] == [] and docs[2] is None and docs[3] is None
    assert len(docs[4]) == 20_000
    # emoji are kept as tokens, one per code point (a skin tone or a flag's letters split)
    assert docs[5] == ["😀", "great", "👍", "🏽", "🇺", "🇸"]
    assert docs[6] == ["привет", "мир", "你好世界", "مرحبا", "hello"]
    profile = compute_dataset_profile(texts, "text")
    tokens = profile.features["tokens"]
    assert tokens.n_docs == 5 and dict(tokens.doc_counts)["word"] == 1
    assert profile.features["length"].n_missing == 2
    e = hashed_embedding(docs)
    assert np.isnan(e[2]).all() and np.isnan(e[3]).all() and not e[0].any()
    assert np.allclose(np.linalg.norm(e[4:], axis=1), 1.0)
    # emoji are not informative words: they never count in the turnover or the top changes
    ref = TokenSummary.from_documents([["😀", "great"]] * 3)
    cur = TokenSummary.from_documents([["👍", "great"]] * 3, ref)
    assert top_turnover(ref, cur) == 0.0 and token_details(ref, cur)["top_gained"] == []


# --- the verdict: the document is the unit ---------------------------------------------

@pytest.mark.parametrize("n_cur", [60, 300])
def test_a_real_topic_shift_is_drift_and_is_tested_with_documents_as_the_unit(n_cur):
    ref_texts, cur_texts = topic_shift(2000, n_cur, seed=1)
    ref = compute_dataset_profile(ref_texts, "text")
    row = tokens_row(compare_profiles(ref, compute_dataset_profile(cur_texts, "text", reference=ref)))
    assert row["test"].startswith("documents_") and row["method"] == "jensenshannon"
    assert row["p_value_adjusted"] < 0.01 and row["drifted"]


def test_random_halves_of_one_period_are_not_drift():
    drifted = 0
    for seed in range(12):
        ref_texts, cur_texts = null_split(2000, 60, seed=seed)
        ref = compute_dataset_profile(ref_texts, "text")
        drifted += compare_profiles(ref, compute_dataset_profile(cur_texts, "text", reference=ref))["n_drifted"] > 0
    assert drifted <= 2  # the rate itself, over 200 windows per size, is in benchmarks/calibration.py


def test_the_old_per_document_chi_square_could_not_see_the_shift():
    # what the tokens row used before: kept for profiles stored without document embeddings
    from monitoring_pipeline.core.stattests import chi2_per_document

    ref_texts, cur_texts = topic_shift(2000, 300, seed=1)
    ref = compute_dataset_profile(ref_texts, "text")
    cur = compute_dataset_profile(cur_texts, "text", reference=ref)
    pair = FeaturePair("tokens", "tokens", ref.features["tokens"], cur.features["tokens"])
    r, c = pair.counts
    docs = pair.ref.n_docs + pair.cur.n_docs
    assert chi2_per_document(r, c, (pair.ref.n_tokens + pair.cur.n_tokens) / docs).p_value > 0.5
    old = json.loads(json.dumps(cur.to_dict()))
    old["features"]["tokens"].pop("documents")  # as a profile stored before documents were embedded
    stored_ref = ref.to_dict()
    stored_ref["features"]["tokens"].pop("documents")
    row = tokens_row(compare_profiles(stored_ref, old))
    assert row["test"] == "chi2_per_document"
