"""Every example in README.md and docs/api.md runs as written, against a real service on the embedded network.

The ``bash`` blocks are run by bash against a fresh ``uvicorn app.main:app`` (the demo model trained, as
after ``./scripts/serve``), with ``curl`` failing on any HTTP error; ``python`` blocks run in the project's
interpreter from the repository root. A block the test cannot run must say why, in a comment
``<!-- not executed: ... -->`` on the line before it; anything else is executed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import ROOT, uvicorn_server

pytestmark = pytest.mark.slow

DOCS = ["README.md", "docs/api.md"]
_BLOCK = re.compile(r"(?P<before>[^\n]*)\n(?P<indent>[ \t]*)```(?P<lang>[a-z]*)\n(?P<code>.*?)\n(?P=indent)```", re.S)
_SKIP = re.compile(r"<!--\s*not executed:\s*(?P<why>[^>]+?)\s*-->")


@dataclass(frozen=True)
class Block:
    """A fenced block of a Markdown file: its language, code (de-indented), why it is not run, where it is."""

    lang: str
    code: str
    why: str | None  # the reason given in a "not executed" comment; None: the block is run
    line: int  # the file's line (1-based) of the block's first line of code


def fenced_blocks(doc: str) -> list[Block]:
    """Every fenced block of a Markdown file (a path relative to the repository root), in order."""
    text = "\n" + (ROOT / doc).read_text()
    out = []
    for m in _BLOCK.finditer(text):
        skip = _SKIP.search(m.group("before"))
        code = "\n".join(line[len(m.group("indent")):] for line in m.group("code").split("\n"))
        line = text.count("\n", 0, m.start("code"))  # with the leading "\n": the 1-based line of the code
        out.append(Block(m.group("lang"), code, skip.group("why") if skip else None, line))
    return out


def blocks(doc: str) -> list[tuple[str, str, str | None]]:
    """``(language, code, reason not executed or None)`` of every fenced block of a Markdown file."""
    return [(b.lang, b.code, b.why) for b in fenced_blocks(doc)]


def test_every_block_is_run_or_says_why() -> None:
    for doc in DOCS:
        found = blocks(doc)
        assert found, doc
        for lang, code, why in found:
            if lang not in ("bash", "python") and why is None:
                assert lang in ("json", "text", ""), f"{doc}: a {lang!r} block is neither run nor explained"
            if why is not None:
                assert len(why) > 10, f"{doc}: say why this block is not executed:\n{code}"


def _bash(code: str, port: int, cwd: Path) -> subprocess.CompletedProcess[str]:
    prelude = (
        "set -euo pipefail\n"
        f"curl() {{ command curl --fail-with-body -sS --max-time 120 \"${{@//localhost:8000/127.0.0.1:{port}}}\"; }}\n"
    )
    return subprocess.run(["bash", "-c", prelude + code], cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("doc", DOCS)
def test_examples_run_as_written(doc: str, tmp_path: Path) -> None:
    env = {"ROUTEIRL_DATA_DIR": str(tmp_path / "var"), "ROUTEIRL_NETWORK": "default", "ROUTEIRL_DEMO": "auto"}
    with uvicorn_server(env, tmp_path / "server.log", ready_timeout_s=240, wait_ready=True) as client:
        for lang, code, why in blocks(doc):
            if why is not None or lang not in ("bash", "python"):
                continue
            if lang == "bash":
                done = _bash(code, client.port, ROOT)  # type: ignore[attr-defined]
            else:
                done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                                      timeout=600)
            assert done.returncode == 0, f"{doc}: this example failed:\n{code}\n--- stdout\n{done.stdout[-2000:]}" \
                                         f"\n--- stderr\n{done.stderr[-2000:]}"
