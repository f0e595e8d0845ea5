"""Owners and tags of monitors.yaml: validated at load as Dagster requires, with errors naming the field."""

from copy import deepcopy

import dagster as dg
import pytest

from monitoring_pipeline.lib.monitors import MonitorConfigError, load_monitors, monitor_run_tags, parse_monitors
from monitoring_pipeline.lib.ownership import OWNERS_TAG, check_owners, check_tags

BASE = {"start_date": "2026-01-01", "monitors": [
    {"name": "m1", "modality": "tabular", "reference": {"source": "bundled", "dataset": "breast_cancer"}}]}

GOOD_OWNERS = ["team:ml-platform", "alice@example.com", "a.b+c@sub.example.org", "team:x"]
BAD_OWNERS = ["team:", "ml-platform", "alice@", "alice@example", "alice example.com", "", 7]
GOOD_TAGS = [{"dataset": "uci-digits"}, {"cost.center": ""}, {"ns/key_1": "v.1-2"}, {"a" * 63: "b" * 63}]
BAD_TAGS = [{"key with space": "v"}, {"k": "has space"}, {"k": "x" * 64}, {"a/b/c": "v"}, {"k": 3},
            {"k": "a:b"}, {"": "v"}, {"k" * 64: "v"}]


def config(**changes) -> dict:
    data = deepcopy(BASE)
    top = {k: v for k, v in changes.items() if not k.startswith("monitor_")}
    data.update(top)
    data["monitors"][0].update({k.removeprefix("monitor_"): v for k, v in changes.items() if k.startswith("monitor_")})
    return data


def test_default_monitors_file_declares_owners_and_tags():
    monitors = load_monitors("data/monitors.yaml")
    assert "team:ml-platform" in monitors.owners
    assert all(monitors.tags.values()) and monitors.tags
    digits = monitors.monitor("digits_classifier")
    assert monitor_run_tags(digits)[OWNERS_TAG] == ",".join(digits.owners)
    assert monitor_run_tags(digits)["dataset"] == digits.tags["dataset"]


def test_owners_and_tags_are_optional():
    monitors = parse_monitors(config())
    assert monitors.owners == () and monitors.tags == {}
    assert monitors.monitors[0].owners == () and monitor_run_tags(monitors.monitors[0]) == {}


def test_valid_owners_and_tags_load_at_both_levels():
    monitors = parse_monitors(config(owners=["team:ml-platform"], tags={"project": "mp"},
                                     monitor_owners=["alice@example.com", "team:vision"],
                                     monitor_tags={"dataset": "digits"}))
    assert monitors.owners == ("team:ml-platform",) and monitors.tags == {"project": "mp"}
    m = monitors.monitors[0]
    assert m.owners == ("alice@example.com", "team:vision")
    assert monitor_run_tags(m) == {"dataset": "digits", OWNERS_TAG: "alice@example.com,team:vision"}


@pytest.mark.parametrize("owner", BAD_OWNERS)
def test_an_invalid_owner_names_the_monitor_and_the_field(owner):
    with pytest.raises(MonitorConfigError, match=r"monitor 'm1': field 'owners' entry .* must be an e-mail"):
        parse_monitors(config(monitor_owners=[owner]))
    with pytest.raises(MonitorConfigError, match=r"monitors file: field 'owners' entry"):
        parse_monitors(config(owners=[owner]))


def test_owners_must_be_a_list_without_repeats():
    with pytest.raises(MonitorConfigError, match="field 'owners' must be a list"):
        parse_monitors(config(monitor_owners="team:ml-platform"))
    with pytest.raises(MonitorConfigError, match="lists an owner twice"):
        parse_monitors(config(owners=["team:a", "team:a"]))


@pytest.mark.parametrize("tags", BAD_TAGS)
def test_an_invalid_tag_names_the_monitor_and_the_field(tags):
    with pytest.raises(MonitorConfigError, match=r"monitor 'm1': field 'tags' (key|value)"):
        parse_monitors(config(monitor_tags=tags))


def test_tags_must_be_a_mapping_and_not_reserved():
    with pytest.raises(MonitorConfigError, match="field 'tags' must be a mapping"):
        parse_monitors(config(tags=["project"]))
    for key in ("dagster/priority", OWNERS_TAG):
        with pytest.raises(MonitorConfigError, match="is reserved"):
            parse_monitors(config(monitor_tags={key: "x"}))


@pytest.mark.parametrize("owner", GOOD_OWNERS + BAD_OWNERS[:-1])
def test_owner_verdicts_agree_with_dagster(owner):
    """Dagster accepts exactly the owners this module accepts (its validator is private)."""
    try:
        check_owners([owner])
        ours = True
    except MonitorConfigError:
        ours = False
    try:
        dg.AssetSpec("x", owners=[owner])
        theirs = True
    except dg.DagsterInvalidDefinitionError:
        theirs = False
    assert ours == theirs


@pytest.mark.parametrize("tags", GOOD_TAGS + BAD_TAGS)
def test_tag_verdicts_agree_with_dagster_asset_tags(tags):
    """Asset tags are Dagster's strict tags: it accepts exactly what this module accepts."""
    try:
        check_tags(tags)
        ours = True
    except MonitorConfigError:
        ours = False
    try:
        dg.AssetSpec("x", tags=tags)
        theirs = True
    except (dg.DagsterInvalidDefinitionError, dg.DagsterInvariantViolationError):
        theirs = False
    assert ours == theirs, tags
