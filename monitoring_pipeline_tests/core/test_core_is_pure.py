"""monitoring_pipeline.core must import without dagster, duckdb or torch."""

import json
import subprocess
import sys

FORBIDDEN = ("dagster", "duckdb", "torch")


def test_core_imports_no_dagster_duckdb_or_torch():
    code = (
        "import json, sys\n"
        "import monitoring_pipeline.core\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert "monitoring_pipeline" in loaded
    assert not loaded & set(FORBIDDEN), f"core loaded {sorted(loaded & set(FORBIDDEN))}"


def test_core_sources_name_no_forbidden_module():
    from pathlib import Path

    import monitoring_pipeline.core as core

    for path in Path(core.__file__).parent.glob("*.py"):
        text = path.read_text()
        for name in FORBIDDEN:
            assert f"import {name}" not in text and f"from {name}" not in text, f"{path.name} imports {name}"
        assert "monitoring_pipeline." not in text.replace("monitoring_pipeline.core", ""), (
            f"{path.name} imports another part of the project")
