"""The privacy and quality configuration: thresholds (settings.yaml) and per-dataset metadata (datasets.yaml).

Both files are validated on load, so a waiver without a reason or a PII rule made non-blocking fails at
import time, not in the middle of a publication.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

CHECKS_DIR = Path(__file__).resolve().parent
DEFAULT_SETTINGS_PATH = CHECKS_DIR / "settings.yaml"
DEFAULT_DATASETS_PATH = CHECKS_DIR / "datasets.yaml"
SETTINGS_PATH_ENV = "CIVICFLOW_CHECKS_SETTINGS"
DATASETS_PATH_ENV = "CIVICFLOW_DATASETS"

PII_RULES = ("PII1", "PII2", "PII3", "PII4")
PII_KINDS = ("email", "card", "ssn", "phone", "name", "address")
CAMEL_CASE = re.compile(r"^[A-Z][A-Za-z0-9]*$")
TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class PatternStep:
    kind: str
    pattern: str
    replacement: str
    scope: Literal["all", "person"] = "all"


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    blocking: bool


@dataclass(frozen=True)
class CityExtent:
    min_longitude: float
    max_longitude: float
    min_latitude: float
    max_latitude: float


@dataclass(frozen=True)
class CheckSettings:
    small_cell_min: int
    coordinate_decimals: int
    sensitive_request_types: tuple[str, ...]
    public_asset_request_types: tuple[str, ...]
    city_extent: CityExtent
    pii_patterns: tuple[PatternStep, ...]
    pii_prefilter: str
    rules: dict[str, Rule]
    data_docs_history: int
    path: Path
    sha256: str

    def steps(self, kind: str, scope: str | None = None) -> list[PatternStep]:
        return [s for s in self.pii_patterns if s.kind == kind and (scope is None or s.scope == scope)]

    def detection_regex(self, kinds: tuple[str, ...], scope: str = "all") -> str:
        """One case-insensitive alternation of the patterns of these kinds: one regex pass per value."""
        alternatives = [f"(?:{s.pattern})" for s in self.pii_patterns if s.kind in kinds and s.scope == scope]
        return "(?i)" + "|".join(alternatives) if alternatives else ""

    def as_policy(self) -> dict[str, Any]:
        """What the dbt publish models need from the thresholds, as stored in raw.publish_policy."""
        return {
            "small_cell_min": self.small_cell_min,
            "coordinate_decimals": self.coordinate_decimals,
            "sensitive_request_types": list(self.sensitive_request_types),
            "public_asset_request_types": list(self.public_asset_request_types),
            "pii_prefilter": self.pii_prefilter,
            "pii_patterns": [
                {"kind": s.kind, "pattern": s.pattern, "replacement": s.replacement, "scope": s.scope}
                for s in self.pii_patterns
            ],
        }


@dataclass(frozen=True)
class CountField:
    """PII3: a count over people, the flag that says it was suppressed, and the values derived from it."""

    name: str
    flag: str
    dependents: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dataset:
    name: str
    title: str
    owner: str
    update_frequency: str
    publication: str
    grain: Literal["record", "aggregate"]
    source_model: str
    published_table: str
    id_fields: tuple[str, ...] = ()
    coded_fields: dict[str, str] = field(default_factory=dict)
    timestamp_fields: tuple[str, ...] = ()
    created_field: str | None = None
    modified_field: str | None = None
    required_fields: tuple[str, ...] = ()
    free_text_fields: tuple[str, ...] = ()
    request_type_field: str | None = None
    longitude_field: str | None = None
    latitude_field: str | None = None
    geometry_field: str | None = None
    address_fields: tuple[str, ...] = ()
    identifier_fields: tuple[str, ...] = ()
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    count_fields: tuple[CountField, ...] = ()
    waivers: dict[str, str] = field(default_factory=dict)
    description: str = ""

    @property
    def schema(self) -> str:
        return self.published_table.split(".")[0]

    @property
    def table(self) -> str:
        return self.published_table.split(".")[1]

    @property
    def asset_key_path(self) -> list[str]:
        # The dbt translator keys a model by [schema, model name].
        return [self.schema, self.table]

    @property
    def not_personal_fields(self) -> tuple[str, ...]:
        """Machine identifiers: their digit runs look like phone numbers, so PII1 does not scan them."""
        return (*self.id_fields, *self.identifier_fields)

    def as_policy(self) -> dict[str, Any]:
        """What the dataset's publish model needs to know, as stored in raw.publish_policy."""
        return {
            "grain": self.grain,
            "free_text_fields": list(self.free_text_fields),
            "request_type_field": self.request_type_field,
            "geometry_field": self.geometry_field,
            "longitude_field": self.longitude_field,
            "latitude_field": self.latitude_field,
            "address_fields": list(self.address_fields),
            # A list, not a mapping: jsonb reorders keys, and the flag columns follow this order.
            "count_fields": [{"name": c.name, "flag": c.flag, "dependents": list(c.dependents)}
                             for c in self.count_fields],
        }


def settings_path(env: dict[str, str] | None = None) -> Path:
    value = (os.environ if env is None else env).get(SETTINGS_PATH_ENV)
    return Path(value).expanduser().resolve() if value else DEFAULT_SETTINGS_PATH


def datasets_path(env: dict[str, str] | None = None) -> Path:
    value = (os.environ if env is None else env).get(DATASETS_PATH_ENV)
    return Path(value).expanduser().resolve() if value else DEFAULT_DATASETS_PATH


def _read_yaml(path: Path) -> tuple[dict[str, Any], str]:
    text = path.read_text()
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data, hashlib.sha256(text.encode()).hexdigest()


def load_check_settings(path: Path | None = None) -> CheckSettings:
    path = path or settings_path()
    data, digest = _read_yaml(path)
    steps = []
    for kind, kind_steps in (data.get("pii_patterns") or {}).items():
        if kind not in PII_KINDS:
            raise ConfigError(f"{path}: unknown PII kind {kind!r} (known: {', '.join(PII_KINDS)})")
        for step in kind_steps:
            scope = step.get("scope", "all")
            if scope not in ("all", "person"):
                raise ConfigError(f"{path}: {kind} pattern scope must be 'all' or 'person', not {scope!r}")
            steps.append(PatternStep(kind, step["pattern"], step["replacement"], scope))
    rules = {rid: Rule(rid, spec["title"], bool(spec.get("blocking", True)))
             for rid, spec in (data.get("rules") or {}).items()}
    for rid in PII_RULES:
        if rid not in rules:
            raise ConfigError(f"{path}: rule {rid} must be configured")
        if not rules[rid].blocking:
            raise ConfigError(f"{path}: {rid} cannot be made non-blocking (PII5: a PII violation blocks publication)")
    settings = CheckSettings(
        small_cell_min=int(data.get("small_cell_min", 5)),
        coordinate_decimals=int(data.get("coordinate_decimals", 3)),
        sensitive_request_types=tuple(data.get("sensitive_request_types") or ()),
        public_asset_request_types=tuple(data.get("public_asset_request_types") or ()),
        city_extent=CityExtent(**data["city_extent"]),
        pii_patterns=tuple(steps),
        pii_prefilter=data.get("pii_prefilter") or ".",
        rules=rules,
        data_docs_history=int(data.get("data_docs_history", 30)),
        path=path,
        sha256=digest,
    )
    if settings.small_cell_min < 1 or not 0 <= settings.coordinate_decimals <= 6:
        raise ConfigError(f"{path}: small_cell_min must be >= 1 and coordinate_decimals within 0..6")
    overlap = set(settings.sensitive_request_types) & set(settings.public_asset_request_types)
    if overlap:
        raise ConfigError(f"{path}: request types both sensitive and public assets: {sorted(overlap)}")
    return settings


def _ranges(name: str, raw: dict[str, Any]) -> dict[str, tuple[float | None, float | None]]:
    ranges = {}
    for column, bounds in (raw or {}).items():
        if not isinstance(bounds, dict) or not set(bounds) <= {"min", "max"}:
            raise ConfigError(f"dataset {name}: range of {column} must be {{min: .., max: ..}}")
        ranges[column] = (bounds.get("min"), bounds.get("max"))
    return ranges


def _dataset(name: str, raw: dict[str, Any], settings: CheckSettings) -> Dataset:
    for key in ("title", "owner", "update_frequency", "publication", "grain", "source_model", "published_table"):
        if not raw.get(key):
            raise ConfigError(f"dataset {name}: {key} is required (the owner is rule P1)")
    if not TABLE_NAME.match(raw["published_table"]):
        raise ConfigError(f"dataset {name}: published_table must be schema.table in lowercase")
    waivers = {}
    for rule, reason in (raw.get("waivers") or {}).items():
        if rule not in settings.rules:
            raise ConfigError(f"dataset {name}: waiver of unknown rule {rule}")
        if rule in PII_RULES:
            raise ConfigError(f"dataset {name}: {rule} cannot be waived (privacy rules protect people, PII5)")
        if not isinstance(reason, str) or len(reason.strip()) < 20:
            raise ConfigError(f"dataset {name}: the waiver of {rule} needs a written reason, published with it")
        waivers[rule] = reason.strip()
    location = raw.get("location") or {}
    counts = tuple(
        CountField(column, spec.get("flag", f"{column}Suppressed"), tuple(spec.get("dependents") or ()))
        for column, spec in (raw.get("count_fields") or {}).items()
    )
    dataset = Dataset(
        name=name,
        title=raw["title"],
        description=raw.get("description", ""),
        owner=raw["owner"],
        update_frequency=raw["update_frequency"],
        publication=raw["publication"],
        grain=raw["grain"],
        source_model=raw["source_model"],
        published_table=raw["published_table"],
        id_fields=tuple(raw.get("id_fields") or ()),
        coded_fields=dict(raw.get("coded_fields") or {}),
        timestamp_fields=tuple(raw.get("timestamp_fields") or ()),
        created_field=raw.get("created_field"),
        modified_field=raw.get("modified_field"),
        required_fields=tuple(raw.get("required_fields") or ()),
        free_text_fields=tuple(raw.get("free_text_fields") or ()),
        request_type_field=raw.get("request_type_field"),
        longitude_field=location.get("longitude"),
        latitude_field=location.get("latitude"),
        geometry_field=location.get("geometry"),
        address_fields=tuple(raw.get("address_fields") or ()),
        identifier_fields=tuple(raw.get("identifier_fields") or ()),
        ranges=_ranges(name, raw.get("ranges")),
        count_fields=counts,
        waivers=waivers,
    )
    if dataset.grain not in ("record", "aggregate"):
        raise ConfigError(f"dataset {name}: grain must be record or aggregate")
    return dataset


def load_datasets(path: Path | None = None, settings: CheckSettings | None = None) -> dict[str, Dataset]:
    path = path or datasets_path()
    settings = settings or load_check_settings()
    data, _ = _read_yaml(path)
    return {name: _dataset(name, raw, settings) for name, raw in (data.get("datasets") or {}).items()}
