"""The pure statistics core: profiles, drift verdicts, metrics and comparisons.

Only numpy, scipy, pandas and scikit-learn are imported here; no dagster, duckdb or
torch (``test_core_is_pure`` keeps it so).
"""

from .comparison import compare_models
from .concept import ConceptDriftResult, concept_drift
from .drift import compare_profiles
from .methods import DEFAULT_METHODS, METHODS
from .metrics import evaluate_predictions
from .profiles import DatasetProfile, compute_dataset_profile, merge_profiles
from .status import monitoring_status, summarize

__all__ = [
    "ConceptDriftResult",
    "DEFAULT_METHODS",
    "DatasetProfile",
    "METHODS",
    "compare_models",
    "compare_profiles",
    "compute_dataset_profile",
    "concept_drift",
    "evaluate_predictions",
    "merge_profiles",
    "monitoring_status",
    "summarize",
]
