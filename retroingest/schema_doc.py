"""Render docs/SCHEMA.md from the migration files, so the column reference cannot drift.

Run ``python -m retroingest.schema_doc > docs/SCHEMA.md``; tests/test_docs.py fails when the
committed file differs from what this prints.
"""

from __future__ import annotations

import re
import sys

from retroingest.warehouse import migrations

_TABLE = re.compile(r"^CREATE TABLE (\w+) \(")
_COLUMN = re.compile(r"^\s+(\w+)\s+([A-Z][A-Z0-9_ ()]*?)(?:\s+(?:NOT NULL|PRIMARY KEY|DEFAULT|CHECK).*?)?,?\s*(?:--\s*(.*))?$")
_SKIP = ("PRIMARY KEY", "UNIQUE", "CHECK", "FOREIGN", ")")

HEADER = """# Warehouse schema

Generated from `schemas/migrations/*.sql` by `python -m retroingest.schema_doc`; do not edit by
hand. These tables and columns are a public contract: users' SQL, dashboards and our own checks
rely on them. Units are in column names. Times are UTC (`TIMESTAMPTZ`).

Counting rule: every decoded copy of an activity is stored (nothing is thrown away), but only the
richest copy of one real activity has `activities.duplicate_of IS NULL`. Use the views
`v_activities` and `v_records` (or that filter) to count each real activity once.
"""


def tables() -> list[tuple[str, str, list[tuple[str, str, str]]]]:
    """(table, migration file, [(column, type, comment)]) for every CREATE TABLE, in order."""
    out = []
    for _version, _name, path in migrations():
        current = None
        for line in path.read_text().splitlines():
            m = _TABLE.match(line)
            if m:
                current = (m.group(1), path.name, [])
                out.append(current)
                continue
            if current is None:
                continue
            if line.startswith(");"):
                current = None
                continue
            stripped = line.strip()
            if not stripped or stripped.startswith("--") or stripped.startswith(_SKIP):
                continue
            c = _COLUMN.match(line)
            if c:
                current[2].append((c.group(1), c.group(2).strip(), (c.group(3) or "").strip()))
    return out


def render() -> str:
    parts = [HEADER]
    for table, fname, cols in tables():
        parts.append(f"\n## `{table}`\n\nDefined in `schemas/migrations/{fname}`.\n")
        parts.append("| column | type | meaning |\n| --- | --- | --- |")
        for name, typ, comment in cols:
            parts.append(f"| `{name}` | {typ} | {comment.replace('|', '/')} |")
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
