"""monitoring_pipeline: Dagster-native monitoring of ML models in production.

``import monitoring_pipeline`` stays light: the Dagster definitions load only when
asked for, so ``dagster job execute -m monitoring_pipeline`` finds them while
``monitoring_pipeline.core`` imports without dagster. (The attribute cannot be called
``defs`` or ``definitions``: those names are the subpackage and module.)
"""


def __getattr__(name: str):
    if name == "all_definitions":
        from .definitions import defs

        return defs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return ["all_definitions"]
