"""Progress bars (tqdm, on stderr) and step timings for the long steps of an evaluation."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["progress_bar", "timed"]


@contextmanager
def progress_bar(enabled: bool, **kwargs: Any) -> Iterator[Any]:
    """A tqdm bar on stderr (a no-op object when disabled), closed on exit."""
    from tqdm import tqdm

    bar = tqdm(file=sys.stderr, disable=not enabled, dynamic_ncols=True, leave=False, **kwargs)
    try:
        yield bar
    finally:
        bar.close()


@contextmanager
def timed(timings: dict[str, float], name: str) -> Iterator[None]:
    """Record the wall time of the block in ``timings[name]`` (seconds), even if it raises."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = round(time.perf_counter() - start, 3)
