"""The field map of a dataset (rule P2): for each published field, its source system, source table and source
field, and the transformations on the way, read from dbt's manifest and the landing mappings.

Each field is followed upstream model by model: in a model's SQL, the expression aliased to the field (and the
aliases it refers to, CTE by CTE) gives the transformation and the columns it reads; those columns are looked up
in the models and sources the model depends on, down to the raw tables, whose landing mappings name the source
file's columns. Column docs give each field's description.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp

from civicflow_assets.publish.table import ROW_KEY, PublishedTable
from civicflow_assets.settings import DBT_PROJECT_DIR

MAX_EXPRESSION = 240
FIELD_MAP_HEADER = ["PublishedField", "Type", "Description", "SourceSystem", "SourceTable", "SourceField",
                    "Transformation", "Lineage"]


@dataclass
class FieldSource:
    published_field: str
    type: str
    description: str = ""
    source_systems: list[str] = field(default_factory=list)
    source_tables: list[str] = field(default_factory=list)
    source_fields: list[str] = field(default_factory=list)
    transformations: list[str] = field(default_factory=list)
    lineage: list[str] = field(default_factory=list)

    def row(self) -> list[str]:
        return [self.published_field, self.type, self.description, "; ".join(_unique(self.source_systems)),
                "; ".join(_unique(self.source_tables)), "; ".join(_unique(self.source_fields)),
                " <- ".join(_unique(self.transformations)) or "copied unchanged",
                " <- ".join(_unique(self.lineage))]


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(i for i in items if i))


# -- the manifest


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


@dataclass(frozen=True)
class Manifest:
    nodes: dict[str, dict[str, Any]]  # models, seeds and sources by unique id

    @classmethod
    def load(cls, target: Path = DBT_PROJECT_DIR / "target") -> Manifest:
        """target/manifest.json, with compiled SQL taken from the newest run folder that compiled each model."""
        main = json.loads((target / "manifest.json").read_text()) if (target / "manifest.json").exists() else {}
        nodes = {**main.get("nodes", {}), **main.get("sources", {})}
        runs = sorted(target.glob("*/manifest.json"), key=_modified, reverse=True)
        missing = {k for k, n in nodes.items() if n.get("resource_type") == "model" and not n.get("compiled_code")}
        for run in runs:
            if not missing:
                break
            try:
                compiled = json.loads(run.read_text()).get("nodes", {})
            except FileNotFoundError:  # pruned meanwhile by a dbt step (dbt.prune_run_folders)
                continue
            for key in list(missing):
                if compiled.get(key, {}).get("compiled_code"):
                    nodes[key] = {**nodes[key], "compiled_code": compiled[key]["compiled_code"]}
                    missing.discard(key)
        return cls(nodes)

    def find(self, schema: str, name: str) -> str | None:
        for key, node in self.nodes.items():
            if node.get("schema") == schema and (node.get("alias") or node.get("identifier") or node["name"]) == name:
                return key
        return None


def _strip_jinja(code: str) -> str:
    code = re.sub(r"\{\{\s*ref\(\s*['\"]([^'\"]+)['\"]\s*\)\s*\}\}", r"\1", code)
    code = re.sub(r"\{\{\s*source\(\s*['\"]([^'\"]+)['\"]\s*,\s*['\"]([^'\"]+)['\"]\s*\)\s*\}\}", r"\1.\2", code)
    code = re.sub(r"\{#.*?#\}|\{%.*?%\}", "", code, flags=re.S)
    return re.sub(r"\{\{.*?\}\}", "null", code, flags=re.S)


@cache
def _aliases(code: str) -> tuple[tuple[str, exp.Expression], ...]:
    """(name, expression) of every select item, in the order they appear in the SQL: a CTE before its readers."""
    try:
        trees = sqlglot.parse(code, dialect="postgres")
    except sqlglot.errors.SqlglotError:
        return ()
    found: list[tuple[int, int, str, exp.Expression]] = []
    for offset, tree in enumerate(t for t in trees if t is not None):
        for select in tree.find_all(exp.Select):
            for item in select.expressions:
                if isinstance(item, exp.Alias):
                    found.append((offset, item.args["alias"].meta.get("start", 0), item.alias, item.this))
                elif isinstance(item, exp.Column) and not isinstance(item.this, exp.Star):
                    found.append((offset, item.this.meta.get("start", 0), item.name, item))
    found.sort(key=lambda f: (f[0], f[1]))
    return tuple((name, expression) for _, _, name, expression in found)


def _column_names(expression: exp.Expression) -> list[str]:
    if isinstance(expression, exp.Column):
        return [expression.name]
    return _unique(c.name for c in expression.find_all(exp.Column))


def _is_plain(expression: exp.Expression) -> bool:
    return isinstance(expression, exp.Column)


class FieldMapper:
    def __init__(self, manifest: Manifest, mappings: dict[str, Any] | None = None,
                 warehouse_columns: dict[tuple[str, str], set[str]] | None = None):
        self.manifest = manifest
        self.mappings = mappings or {}
        self.warehouse_columns = warehouse_columns or {}

    def _code(self, key: str) -> str:
        node = self.manifest.nodes[key]
        return node.get("compiled_code") or _strip_jinja(node.get("raw_code") or "")

    def _columns(self, key: str) -> set[str]:
        node = self.manifest.nodes[key]
        name = node.get("alias") or node.get("identifier") or node["name"]
        names = set(node.get("columns", {})) | self.warehouse_columns.get((node.get("schema"), name), set())
        if node.get("resource_type") == "source":
            for mapping in self._mappings_for(name):
                names |= {f.name for f in mapping.fields}
        elif node.get("resource_type") == "model":
            names |= {alias for alias, _ in _aliases(self._code(key))}
        return names

    def _mappings_for(self, table: str) -> list[Any]:
        return [m for m in self.mappings.values() if getattr(m, "target", None) == table]

    def _description(self, key: str, column: str) -> str:
        return (self.manifest.nodes[key].get("columns", {}).get(column) or {}).get("description", "").strip()

    def trace(self, key: str, column: str, entry: FieldSource, depth: int = 0) -> None:
        node = self.manifest.nodes[key]
        kind = node.get("resource_type")
        if not entry.description and column == entry.published_field:
            entry.description = self._description(key, column)
        if kind == "source":
            self._source(node, column, entry)
            return
        if kind == "seed":
            entry.source_systems.append(f"CivicFlow reference data (dbt seed {node['name']})")
            entry.source_tables.append(f"{node.get('schema')}.{node['name']}")
            entry.source_fields.append(column)
            return
        entry.lineage.append(f"{node['name']}.{column}")
        reads = self._resolve(self._code(key), column, entry, node["name"])
        upstream = node.get("depends_on", {}).get("nodes", [])
        matched = False
        for name in reads:
            for parent in upstream:
                if parent in self.manifest.nodes and name in self._columns(parent) and depth < 25:
                    matched = True
                    self.trace(parent, name, entry, depth + 1)
        if not matched:
            entry.source_systems.append(f"CivicFlow (computed in dbt model {node['name']})")
            entry.source_tables.append(node.get("relation_name", node["name"]).replace('"', ""))
            entry.source_fields.append(column)

    def _resolve(self, code: str, column: str, entry: FieldSource, model: str) -> list[str]:
        """Follow the field through the model's own aliases; return the upstream columns it reads."""
        aliases = _aliases(code)
        reads: list[str] = []
        seen: set[int] = set()
        pending = [(column, len(aliases))]
        while pending:
            name, before = pending.pop()
            position = next((i for i in range(before - 1, -1, -1) if aliases[i][0] == name and i not in seen), None)
            if position is None:
                reads.append(name)
                continue
            seen.add(position)
            expression = aliases[position][1]
            if not _is_plain(expression):
                text = expression.sql("postgres")
                entry.transformations.append(
                    f"{model}: {text if len(text) <= MAX_EXPRESSION else text[:MAX_EXPRESSION] + '...'}")
            for read in _column_names(expression):
                pending.append((read, position))
        return _unique(reads)

    def _source(self, node: dict[str, Any], column: str, entry: FieldSource) -> None:
        table = node.get("identifier") or node["name"]
        entry.source_tables.append(f"{node.get('schema')}.{table}")
        mappings = self._mappings_for(table)
        if not mappings:
            entry.source_systems.append(node.get("source_description") or node.get("source_name", ""))
            entry.source_fields.append(column)
            return
        for mapping in mappings:
            try:
                spec = mapping.field(column)
            except KeyError:
                entry.source_systems.append(f"CivicFlow landing ({column} added on load)")
                entry.source_fields.append(column)
                continue
            files = ", ".join(mapping.files) or mapping.format
            entry.source_systems.append(f"{mapping.name}: {mapping.description or files}".strip())
            entry.source_fields.append(f"{' + '.join(spec.source_columns)} ({files})")

    def field_map(self, table: PublishedTable) -> list[FieldSource]:
        spec = table.spec
        key = self.manifest.find(spec.schema_name, spec.table_name)
        entries = []
        for column in table.columns:
            entry = FieldSource(column.name, column.datastore_type, column.description)
            if column.name == ROW_KEY and table.has_row_key:
                entry.source_systems.append("CivicFlow publication")
                entry.transformations.append("the key fields " + ", ".join(spec.key) + " joined with |")
            elif key is None:
                entry.source_systems.append("unknown: the table is not a dbt model in the manifest")
                entry.source_tables.append(spec.table)
                entry.source_fields.append(column.name)
            else:
                self.trace(key, column.name, entry)
            entries.append(entry)
        return entries


def field_map_csv(entries: list[FieldSource]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FIELD_MAP_HEADER)
    writer.writerows(entry.row() for entry in entries)
    return out.getvalue().encode()


def descriptions(entries: list[FieldSource]) -> dict[str, str]:
    return {e.published_field: e.description for e in entries if e.description}
