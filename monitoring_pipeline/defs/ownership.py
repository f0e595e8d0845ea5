"""The project's owners and tags (monitors.yaml) on every asset.

The window assets are shared by every monitored model, so only the project-level
``owners`` and ``tags`` belong on them; a monitor's own go on its runs as run tags
(``lib.ownership``, :func:`monitoring_pipeline.lib.monitors.monitor_run_tags`).
"""

import dagster as dg

from monitoring_pipeline.lib.monitors import MonitorsConfig


def with_ownership(config: MonitorsConfig, assets: list) -> list:
    """The assets with the project's owners added to theirs and its tags under theirs."""
    if not config.owners and not config.tags:
        return list(assets)

    def own(spec: dg.AssetSpec) -> dg.AssetSpec:
        owners = [*spec.owners, *(o for o in config.owners if o not in spec.owners)]
        return spec.replace_attributes(owners=owners, tags={**config.tags, **spec.tags})

    return dg.map_asset_specs(own, assets)
