"""A fresh DAGSTER_HOME initialised once, before anything runs on it at once.

Dagster creates its SQLite storage (runs, schedules, the event-log index) when the first
process opens a fresh home; several processes doing that at the same time race
(`UNIQUE constraint failed: alembic_version.version_num`, `table instigators already
exists`). `dagster instance migrate` creates all of it in one process first.
"""

import os
import subprocess
import sys
from pathlib import Path

DAGSTER = str(Path(sys.executable).parent / "dagster")


def is_initialised(home: Path) -> bool:
    return (Path(home) / "history" / "runs.db").exists() and (Path(home) / "schedules" / "schedules.db").exists()


def init_dagster_home(home: Path) -> None:
    """Create the storage of the Dagster instance at ``home`` (a no-op on one already made)."""
    Path(home).mkdir(parents=True, exist_ok=True)
    out = subprocess.run([DAGSTER, "instance", "migrate"], env={**os.environ, "DAGSTER_HOME": str(home)},
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert is_initialised(home), out.stdout[-2000:]
