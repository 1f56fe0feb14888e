"""Every setting is documented in docs/api.md's table, with its default."""

from __future__ import annotations

import re
from pathlib import Path

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
_ROW = re.compile(r"^\| `(ROUTEIRL_[A-Z0-9_]+)` \| (?P<default>[^|]*) \|", re.M)


def _shown(value: object) -> str:
    if value is None:
        return "(unset)"
    if value == "":
        return "(empty)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def test_every_setting_is_in_the_table_with_its_default() -> None:
    rows = {m.group(1): m.group("default").strip() for m in _ROW.finditer((ROOT / "docs/api.md").read_text())}
    for name, field in Settings.model_fields.items():
        var = f"ROUTEIRL_{name.upper()}"
        assert var in rows, f"{var} is not documented in docs/api.md"
        assert rows[var] == _shown(field.default), f"{var}: documented {rows[var]}, default {field.default!r}"
    assert set(rows) == {f"ROUTEIRL_{n.upper()}" for n in Settings.model_fields}, "a documented setting is gone"
