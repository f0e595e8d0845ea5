"""Paths built from names (a model, a version, a window), kept under their root folder.

Names are validated when monitors.yaml loads; this is the second line: every path
that is written or deleted is resolved (symbolic links followed) and refused unless
it lies strictly inside its root.
"""

from __future__ import annotations

from pathlib import Path

_BAD_PARTS = ("", ".", "..")


def child(root: Path | str, *parts: str) -> Path:
    """``root / parts[0] / ...`` resolved; ValueError naming the root and the part when
    a part is not a plain file name or the result is not strictly inside ``root``."""
    base = Path(root).resolve()
    for part in parts:
        if not isinstance(part, str) or part in _BAD_PARTS or "/" in part or "\\" in part or "\0" in part:
            raise ValueError(f"{part!r} is not a plain name, refused as a path under {base}")
    path = base.joinpath(*parts).resolve()
    if path == base or not path.is_relative_to(base):
        raise ValueError(f"{'/'.join(parts)!r} leads outside {base} (to {path}), refused")
    return path
