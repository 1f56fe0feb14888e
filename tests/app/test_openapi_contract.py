"""The OpenAPI document is as strict as the server: benchmarks/schemathesis_check.sh (schemathesis, every check, and
the custom check that a schema-valid request is refused only for what no schema can state) finds nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("curl") is None, reason="the script polls the server with curl")
def test_schemathesis_finds_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "MAX_EXAMPLES": "20", "TMPDIR": str(tmp_path)}
    result = subprocess.run([str(ROOT / "benchmarks" / "schemathesis_check.sh")], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    summary = result.stdout[result.stdout.find("SUMMARY"):] if "SUMMARY" in result.stdout else result.stdout[-3000:]
    assert result.returncode == 0, summary + result.stderr[-2000:]
    assert " passed" in summary and "failures" not in summary.lower(), summary
