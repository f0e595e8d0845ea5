"""The README opens with the two set-up commands, and CI runs exactly the second."""

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index("```bash")
    assert start <= 3, "the README must open with the commands"
    end = lines.index("```", start + 1)
    return lines[start + 1:end]


def test_readme_opens_with_the_main_job_and_the_test_command():
    main, tests = readme_commands()
    # dg launch: Dagster 1.13's command for it (`dagster job execute` still works, for CI, and
    # prints a SupersessionWarning pointing here)
    assert main.endswith(".venv/bin/dg launch --job closed_loop_job")
    assert "DAGSTER_HOME=$PWD/data/dagster_home" in main  # kept, so `dagster dev` shows the same runs
    assert "pytest" in tests


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci


def test_top_level_layout_is_the_designed_one():
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    top = {f.split("/")[0] for f in files}
    assert top == {"monitoring_pipeline", "monitoring_pipeline_tests", "data", "workspace.yaml",
                   "pyproject.toml", "README.md", "benchmarks", "configs", ".ci", ".gitignore"}
