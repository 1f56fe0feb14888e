"""Every example of docs/interfaces.md runs as written: in order, in one namespace, from the repository root.

The page is the Python reference of the packages; its ``python`` blocks assert the shapes and errors
the page states, so a drift between the reference and the code fails here. They run in a fresh
interpreter (nothing they import or start stays in the test process), with ``HOME`` in a temporary
folder (``RoadNetwork.default()`` caches its build there), each block compiled under the page's file
name with its own line numbers: a failure's traceback points at the line of the page. A block that
cannot run says why in ``<!-- not executed: ... -->`` on the line before it, as in
tests/docs/test_examples.py, whose block reader this test shares.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import evaluation
import maxent_irl
import maxent_irl.roads
from tests.docs.test_examples import fenced_blocks
from tests.servers import ROOT

DOC = "docs/interfaces.md"

#: Runs the blocks it reads from stdin (``[[line, code], ...]``) in one namespace; exit 1 at the first failure.
_RUNNER = r"""
import json, sys, traceback
namespace = {"__name__": "__main__"}
for line, code in json.load(sys.stdin):
    try:
        exec(compile("\n" * (line - 1) + code, "docs/interfaces.md", "exec"), namespace)
    except BaseException:
        traceback.print_exc()
        sys.exit(f"docs/interfaces.md: the example at line {line} failed")
"""


def test_every_block_is_run_or_says_why() -> None:
    found = fenced_blocks(DOC)
    run = [b for b in found if b.lang == "python" and b.why is None]
    assert len(run) >= 10, "the reference lost its examples"
    for b in found:
        if b.why is not None:
            assert len(b.why) > 10, f"{DOC}:{b.line}: say why this block is not executed"
        else:
            assert b.lang in ("python", "text", "json", ""), f"{DOC}:{b.line}: a {b.lang!r} block is neither run " \
                                                             "nor explained"


@pytest.mark.parametrize("package", [maxent_irl, maxent_irl.roads, evaluation], ids=lambda p: p.__name__)
def test_every_public_name_is_documented(package: object) -> None:
    text = (ROOT / DOC).read_text()
    missing = [name for name in package.__all__  # type: ignore[attr-defined]
               if not re.search(rf"`[^`\n]*\b{re.escape(name)}\b[^`\n]*`", text)]
    assert not missing, f"{DOC} does not mention {missing} of {package.__name__}.__all__"  # type: ignore[attr-defined]


@pytest.mark.slow
def test_examples_run_in_order(tmp_path: Path) -> None:
    runnable = [[b.line, b.code] for b in fenced_blocks(DOC) if b.lang == "python" and b.why is None]
    env = {**os.environ, "HOME": str(tmp_path), "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, "-c", _RUNNER], input=json.dumps(runnable), cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-6000:]}"
