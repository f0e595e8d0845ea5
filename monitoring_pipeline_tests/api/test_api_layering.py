"""DESIGN.md: the HTTP API is a thin reader and an intake; it imports no ``defs`` (it reads
through storage and lib and launches runs through Dagster's GraphQL client)."""

import subprocess
import sys


def test_the_api_imports_no_dagster_definitions():
    out = subprocess.run([sys.executable, "-c", "import sys, monitoring_pipeline.api; "
                          "print(sorted(m for m in sys.modules if m.startswith('monitoring_pipeline.defs')))"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]", out.stdout
