"""The transparency index (index.yaml): what CKAN and the warehouse show about each published dataset (the
evidence), and the score it earns. Scoring is a pure function of the evidence, so a test can take one criterion
away and see the score fall by exactly its weight."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg2.extensions
import yaml

from civicflow_assets.publish.catalog import Catalog, DatasetSpec
from civicflow_assets.publish.client import CkanClient, NotFound
from civicflow_assets.publish.metadata import accrual_periodicity
from civicflow_assets.publish.publisher import DATASTORE_ROLE, FIELD_MAP_ROLE, ROLE
from civicflow_assets.reports.tables import INDEX_COLUMNS

INDEX_PATH = Path(__file__).with_name("index.yaml")
CRITERIA = ("machine_readable", "open_format", "open_license", "bulk_download", "api_access", "freshness", "owner",
            "field_map", "conversion_doc", "check_pass_rate")


class IndexConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Criterion:
    name: str
    weight: float
    rule: str
    census: str
    toronto: str
    measure: str


@dataclass(frozen=True)
class Method:
    """index.yaml: the criteria with their weights, and what counts as open, machine-readable and fresh."""

    version: int
    criteria: dict[str, Criterion]
    machine_readable_formats: frozenset[str]
    open_formats: frozenset[str]
    proprietary_formats: frozenset[str]
    open_alternatives: frozenset[str]
    open_licenses: frozenset[str]
    freshness_hours: dict[str, float]
    source: str  # the YAML text, published as the methodology

    def weight(self, criterion: str) -> float:
        return self.criteria[criterion].weight

    def target_hours(self, update_frequency: str) -> float:
        periodicity = accrual_periodicity(update_frequency)
        return self.freshness_hours.get(periodicity, self.freshness_hours["irregular"])

    def methodology_csv(self) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["Criterion", "Weight", "Rule", "OpenDataCensusQuestion", "TorontoQualityDimension",
                         "Measure"])
        for c in self.criteria.values():
            writer.writerow([c.name, f"{c.weight:g}", c.rule, c.census, c.toronto, c.measure])
        return out.getvalue().encode()


def _upper(values: Any) -> frozenset[str]:
    return frozenset(str(v).upper() for v in values or ())


def load_method(path: Path = INDEX_PATH) -> Method:
    text = path.read_text()
    raw = yaml.safe_load(text) or {}
    declared = raw.get("criteria") or {}
    if set(declared) != set(CRITERIA):
        raise IndexConfigError(f"{path}: criteria must be exactly {sorted(CRITERIA)}, not {sorted(declared)}")
    criteria = {name: Criterion(name, float(declared[name]["weight"]), str(declared[name].get("rule", "")),
                                declared[name].get("census", ""), declared[name].get("toronto", ""),
                                declared[name].get("measure", "")) for name in CRITERIA}
    total = sum(c.weight for c in criteria.values())
    if abs(total - 100) > 1e-9 or any(c.weight < 0 for c in criteria.values()):
        raise IndexConfigError(f"{path}: weights must be non-negative and add up to 100, not {total:g}")
    hours = {str(k): float(v) for k, v in (raw.get("freshness_hours") or {}).items()}
    if "irregular" not in hours:
        raise IndexConfigError(f"{path}: freshness_hours needs an `irregular` target")
    return Method(int(raw.get("version", 1)), criteria, _upper(raw.get("machine_readable_formats")),
                  _upper(raw.get("open_formats")), _upper(raw.get("proprietary_formats")),
                  _upper(raw.get("open_alternatives")), frozenset(raw.get("open_licenses") or ()), hours, text)


# -- evidence


@dataclass(frozen=True)
class Evidence:
    """What can be measured about one dataset of the catalog, from CKAN and the warehouse."""

    dataset: str
    ckan_name: str
    title: str
    update_frequency: str
    published: bool = False
    file_formats: tuple[str, ...] = ()  # formats of the downloadable file resources (upper case)
    api: bool = False  # an active DataStore table
    license_id: str = ""
    owner: str = ""
    field_map: bool = False
    conversion: str = ""
    software_versions: str = ""
    last_published: datetime | None = None
    checks_passed: int = 0
    checks_run: int = 0


def _last_published(conn: psycopg2.extensions.connection, dataset: str) -> datetime | None:
    with conn.cursor() as cur:
        cur.execute("select to_regclass('publish.audit')")
        if cur.fetchone()[0] is None:
            conn.commit()
            return None
        cur.execute("select max(published_at) from publish.audit where dataset = %s", (dataset,))
        found = cur.fetchone()[0]
    conn.commit()
    return found


def _latest_checks(conn: psycopg2.extensions.connection, dataset: str) -> tuple[int, int]:
    """(passed, run) of the latest check run on the dataset; a waived rule counts as passed, as the checks say."""
    with conn.cursor() as cur:
        cur.execute("select to_regclass('quality.check_results')")
        if cur.fetchone()[0] is None:
            conn.commit()
            return 0, 0
        cur.execute("""
            select count(*) filter (where passed), count(*)
            from quality.check_results
            where dataset = %(d)s and run_id = (
                select run_id from quality.check_results where dataset = %(d)s order by checked_at desc limit 1)
        """, {"d": dataset})
        passed, run = cur.fetchone()
    conn.commit()
    return passed, run


def evidence_for(spec: DatasetSpec, package: dict[str, Any] | None, conn: psycopg2.extensions.connection) -> Evidence:
    passed, run = _latest_checks(conn, spec.name)
    base = Evidence(spec.name, spec.ckan_name, spec.title, spec.update_frequency, checks_passed=passed,
                    checks_run=run, last_published=_last_published(conn, spec.name))
    if package is None or package.get("state") != "active":
        return base
    extras = {e["key"]: e["value"] for e in package.get("extras", [])}
    resources = package.get("resources", [])
    files = tuple(sorted({(r.get("format") or "").upper() for r in resources
                          if r.get("url") and r.get(ROLE) not in (DATASTORE_ROLE, FIELD_MAP_ROLE)} - {""}))
    return Evidence(
        spec.name, spec.ckan_name, package.get("title") or spec.title, spec.update_frequency, published=True,
        file_formats=files, api=any(r.get("datastore_active") for r in resources),
        license_id=package.get("license_id") or "", owner=extras.get("owner") or package.get("author") or "",
        field_map=any(r.get(ROLE) == FIELD_MAP_ROLE for r in resources),
        conversion=extras.get("conversion", ""), software_versions=extras.get("software_versions", ""),
        last_published=base.last_published, checks_passed=passed, checks_run=run)


def gather_evidence(client: CkanClient, conn: psycopg2.extensions.connection, catalog: Catalog) -> list[Evidence]:
    found = []
    for spec in catalog.datasets.values():
        try:
            package = client.call("package_show", {"id": spec.ckan_name})
        except NotFound:
            package = None
        found.append(evidence_for(spec, package, conn))
    return found


# -- scores


@dataclass(frozen=True)
class DatasetScore:
    evidence: Evidence
    points: dict[str, float]  # criterion -> points earned, 0..weight
    target_hours: float

    @property
    def total(self) -> float:
        return sum(self.points.values())

    @property
    def fresh(self) -> bool:
        return self.points["freshness"] > 0

    def missing(self, method: Method) -> list[str]:
        return [name for name, points in self.points.items() if points < method.weight(name)]


@dataclass(frozen=True)
class PortalScore:
    datasets: list[DatasetScore]
    points: dict[str, float] = field(default_factory=dict)  # criterion -> mean points over the datasets

    @property
    def total(self) -> float:
        return sum(self.points.values())


def met(evidence: Evidence, method: Method, now: datetime) -> dict[str, float]:
    """Each criterion's share met, 0..1 (all of them 0 or 1 but the check pass rate)."""
    formats = set(evidence.file_formats) | ({"API"} if evidence.api else set())
    proprietary = formats & method.proprietary_formats
    target = method.target_hours(evidence.update_frequency)
    age = (now - evidence.last_published).total_seconds() / 3600 if evidence.last_published else None
    shares = {
        "machine_readable": bool(formats & method.machine_readable_formats),
        "open_format": bool(formats & method.open_formats)
        and (not proprietary or bool(formats & method.open_alternatives)),
        "open_license": evidence.license_id in method.open_licenses,
        "bulk_download": bool(evidence.file_formats),
        "api_access": evidence.api,
        "freshness": age is not None and age <= target,
        "owner": bool(evidence.owner.strip()),
        "field_map": evidence.field_map,
        "conversion_doc": bool(evidence.conversion.strip() and evidence.software_versions.strip()),
    }
    if not evidence.published:  # what is not on the portal is neither open nor documented there
        shares = dict.fromkeys(shares, False)
    rate = evidence.checks_passed / evidence.checks_run if evidence.checks_run else 0.0
    return {**{k: float(v) for k, v in shares.items()}, "check_pass_rate": rate}


def score(evidence: Evidence, method: Method, now: datetime) -> DatasetScore:
    shares = met(evidence, method, now)
    return DatasetScore(evidence, {name: method.weight(name) * shares[name] for name in CRITERIA},
                        method.target_hours(evidence.update_frequency))


def portal(evidence: list[Evidence], method: Method, now: datetime) -> PortalScore:
    scores = [score(e, method, now) for e in evidence]
    points = {name: sum(s.points[name] for s in scores) / len(scores) if scores else 0.0 for name in CRITERIA}
    return PortalScore(scores, points)


def index_rows(scores: PortalScore, method: Method) -> list[dict[str, Any]]:
    """reports.transparency_index: a row per dataset and one for the portal."""
    rows = []
    for s in scores.datasets:
        e = s.evidence
        rows.append({"Scope": "dataset", "Dataset": e.dataset, "CkanDataset": e.ckan_name, "Title": e.title,
                     "Score": s.total, **dict(zip(INDEX_COLUMNS, (s.points[n] for n in CRITERIA), strict=True)),
                     "LastPublished": e.last_published, "FreshnessTargetHours": s.target_hours,
                     "ChecksPassed": e.checks_passed, "ChecksRun": e.checks_run, "MethodVersion": method.version})
    rows.append({"Scope": "portal", "Dataset": "portal", "Title": "All published datasets",
                 "Score": scores.total, **dict(zip(INDEX_COLUMNS, (scores.points[n] for n in CRITERIA), strict=True)),
                 "ChecksPassed": sum(s.evidence.checks_passed for s in scores.datasets),
                 "ChecksRun": sum(s.evidence.checks_run for s in scores.datasets), "MethodVersion": method.version})
    return rows
