"""Declarative sources: a YAML mapping says how one extract's columns become a raw table's fields.

A new city's 311 or budget CSV needs only a new mapping file (see README, "Add a city").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

FieldType = Literal["text", "integer", "numeric", "boolean", "date", "timestamp", "geometry", "point"]
FIELD_TYPES: tuple[str, ...] = FieldType.__args__  # type: ignore[attr-defined]
FORMATS = ("csv", "geojson", "shapefile", "records")
MODES = ("snapshot", "incremental")


class MappingError(ValueError):
    pass


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str = "text"
    column: str | None = None  # source column; `point` fields use lon/lat instead
    required: bool = False
    format: str | None = None  # strftime-style, or "iso8601"
    lon: str | None = None
    lat: str | None = None
    description: str = ""

    @property
    def source_columns(self) -> tuple[str, ...]:
        if self.type == "point":
            return (self.lon or "", self.lat or "")
        return (self.column or self.name,)


@dataclass(frozen=True)
class Mapping:
    name: str
    target: str
    fields: tuple[FieldSpec, ...]
    files: tuple[str, ...] = ()
    format: str = "csv"
    mode: str = "snapshot"
    key: tuple[str, ...] = ()
    timezone: str = "America/New_York"
    date_format: str = "%m/%d/%Y %I:%M:%S %p"
    null_values: dict[str, str] = field(default_factory=dict)  # marker -> why it means "no value"
    description: str = ""
    origin: Path | None = None

    @property
    def source_columns(self) -> list[str]:
        seen: dict[str, None] = {}
        for spec in self.fields:
            for column in spec.source_columns:
                seen.setdefault(column)
        return list(seen)

    def field(self, name: str) -> FieldSpec:
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def find_files(self, data_dirs: list[Path]) -> list[Path]:
        found: dict[Path, None] = {}
        for folder in data_dirs:
            for pattern in self.files:
                for path in sorted(folder.glob(pattern)):
                    found.setdefault(path.resolve())
        return list(found)


def _field(name: str, raw: Any, where: str) -> FieldSpec:
    if isinstance(raw, str):
        raw = {"column": raw}
    if not isinstance(raw, dict):
        raise MappingError(f"{where}: field {name!r} must be a column name or a mapping")
    unknown = set(raw) - {"column", "type", "required", "format", "lon", "lat", "description"}
    if unknown:
        raise MappingError(f"{where}: field {name!r} has unknown keys {sorted(unknown)}")
    spec = FieldSpec(name=name, **raw)
    if spec.type not in FIELD_TYPES:
        raise MappingError(f"{where}: field {name!r} has type {spec.type!r}; use one of {FIELD_TYPES}")
    if spec.type == "point" and not (spec.lon and spec.lat):
        raise MappingError(f"{where}: point field {name!r} needs `lon` and `lat` columns")
    if not name.isidentifier() or name != name.lower():
        raise MappingError(f"{where}: field name {name!r} must be a lower_snake_case identifier")
    return spec


def parse_mapping(raw: dict[str, Any], origin: Path | None = None) -> Mapping:
    where = str(origin or raw.get("name", "mapping"))
    for required in ("name", "target", "fields"):
        if required not in raw:
            raise MappingError(f"{where}: missing `{required}`")
    files = raw.get("files", [])
    fields = tuple(_field(name, spec, where) for name, spec in raw["fields"].items())
    mapping = Mapping(
        name=raw["name"],
        target=raw["target"],
        fields=fields,
        files=tuple([files] if isinstance(files, str) else files),
        format=raw.get("format", "csv"),
        mode=raw.get("mode", "snapshot"),
        key=tuple(raw.get("key", ())),
        timezone=raw.get("timezone", "America/New_York"),
        date_format=raw.get("date_format", "%m/%d/%Y %I:%M:%S %p"),
        null_values={str(k): str(v) for k, v in (raw.get("null_values") or {}).items()},
        description=raw.get("description", ""),
        origin=origin,
    )
    if mapping.format not in FORMATS:
        raise MappingError(f"{where}: format {mapping.format!r} is not one of {FORMATS}")
    if mapping.mode not in MODES:
        raise MappingError(f"{where}: mode {mapping.mode!r} is not one of {MODES}")
    names = {f.name for f in fields}
    if missing := [k for k in mapping.key if k not in names]:
        raise MappingError(f"{where}: key fields {missing} are not among the fields")
    if mapping.mode == "incremental" and not mapping.key:
        raise MappingError(f"{where}: an incremental source needs a `key` to merge on")
    return mapping


def load_mapping(path: Path) -> Mapping:
    return parse_mapping(yaml.safe_load(path.read_text()), origin=path)


def load_mappings(folders: list[Path]) -> dict[str, Mapping]:
    mappings: dict[str, Mapping] = {}
    for folder in folders:
        for path in sorted(folder.glob("*.yaml")):
            mapping = load_mapping(path)
            if mapping.name in mappings:
                raise MappingError(f"{path}: mapping name {mapping.name!r} is already used")
            mappings[mapping.name] = mapping
    return mappings
