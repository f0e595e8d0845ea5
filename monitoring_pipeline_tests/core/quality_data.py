"""The reference and windows both data-quality suites judge: a frame's verdict (test_quality) and
its merged profile's (test_profile_quality) are checked on the same data."""

import numpy as np
import pandas as pd

from monitoring_pipeline.core import compute_dataset_profile

RNG = np.random.default_rng(0)
REFERENCE_FRAME = pd.DataFrame({"age": RNG.normal(40, 10, 2000), "income": RNG.lognormal(10, 1, 2000),
                                "city": RNG.choice(["paris", "lyon", "nice"], 2000)})
REFERENCE = compute_dataset_profile(REFERENCE_FRAME, "tabular")


def window(n=200, seed=1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"age": rng.normal(40, 10, n), "income": rng.lognormal(10, 1, n),
                         "city": rng.choice(["paris", "lyon", "nice"], n)})
