"""Who owns the monitoring, as monitors.yaml declares it: ``owners`` and ``tags``.

The window assets are shared by every monitored model (one partition per day and model),
so an asset cannot carry one model's owners. The project-level ``owners`` and ``tags`` of
monitors.yaml go on every asset (the UI's owner and tag filters); a monitor's own
``owners`` and ``tags`` go on the runs of its partitions (the schedules' run requests and
the retraining sensor's), where the Runs page filters by them.

Values follow Dagster's rules, checked here so that a bad entry fails at load naming the
field instead of deep inside Dagster: an owner is an e-mail address or ``team:<name>``; a
tag key is up to 63 letters, digits, '_', '-' or '.', optionally after a namespace of the
same form and a '/'; a tag value is up to 63 of the same characters (asset tags are strict).
"""

from __future__ import annotations

import re

from .monitor_checks import MonitorConfigError

# Dagster's own patterns (dagster._core.utils.is_valid_email, dagster._utils.tags), copied
# because they are private; test_monitor_owners checks that Dagster agrees with each verdict.
EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Z|a-z]{2,7}\b")
TAG_KEY = re.compile(r"([A-Za-z0-9_.-]{1,63}/)?[A-Za-z0-9_.-]{1,63}")
TAG_VALUE = re.compile(r"[A-Za-z0-9_.-]{0,63}")
OWNERS_TAG = "monitoring/owners"  # the run tag listing a monitor's owners


def _where(model: str | None, key: str) -> str:
    return f"monitor {model!r}: field {key!r}" if model else f"monitors file: field {key!r}"


def check_owners(value, model: str | None = None) -> tuple[str, ...]:
    """The owners as a tuple; raises MonitorConfigError naming the bad entry."""
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)):
        raise MonitorConfigError(f"{_where(model, 'owners')} must be a list of e-mail addresses or 'team:<name>', "
                                 f"got {type(value).__name__} {value!r}")
    for owner in value:
        team = isinstance(owner, str) and owner.startswith("team:") and len(owner) > len("team:")
        if not (team or (isinstance(owner, str) and EMAIL.fullmatch(owner))):
            raise MonitorConfigError(f"{_where(model, 'owners')} entry {owner!r} must be an e-mail address or "
                                     "'team:<name>' (e.g. team:ml-platform)")
    if len(set(value)) != len(value):
        raise MonitorConfigError(f"{_where(model, 'owners')} lists an owner twice: {list(value)!r}")
    return tuple(value)


def check_tags(value, model: str | None = None) -> dict[str, str]:
    """The tags as a str -> str dict; raises MonitorConfigError naming the bad key or value."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MonitorConfigError(f"{_where(model, 'tags')} must be a mapping of names to values, "
                                 f"got {type(value).__name__} {value!r}")
    for key, tag in value.items():
        if not isinstance(key, str) or not TAG_KEY.fullmatch(key):
            raise MonitorConfigError(f"{_where(model, 'tags')} key {key!r} must be 1 to 63 letters, digits, '_', "
                                     "'-' or '.', optionally after a 'namespace/' of the same kind")
        if key.startswith("dagster/") or key == OWNERS_TAG:
            raise MonitorConfigError(f"{_where(model, 'tags')} key {key!r} is reserved (dagster/ and "
                                     f"{OWNERS_TAG} are set by Dagster and this project)")
        if not isinstance(tag, str) or not TAG_VALUE.fullmatch(tag):
            raise MonitorConfigError(f"{_where(model, 'tags')} value of {key!r} must be a string of at most 63 "
                                     f"letters, digits, '_', '-' or '.', got {tag!r} (quote numbers in YAML)")
    return dict(value)


def run_tags(owners: tuple[str, ...], tags: dict[str, str]) -> dict[str, str]:
    """A monitor's run tags: its tags, and its owners joined by commas under ``monitoring/owners``."""
    return {**tags, **({OWNERS_TAG: ",".join(owners)} if owners else {})}
