"""The privacy configuration: one settings file (path overridable), one dataset file, validated when loaded."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from dagster import materialize

from civicflow_assets.checks import build_checks, build_publish_policy_asset, load_check_settings, load_datasets
from civicflow_assets.checks.config import (
    DEFAULT_DATASETS_PATH,
    DEFAULT_SETTINGS_PATH,
    PII_RULES,
    ConfigError,
)
from civicflow_assets.checks.rules import CHECK_NAMES, applicable_rules
from civicflow_assets.database import PostgresResource
from civicflow_assets.settings import DBT_PROJECT_DIR
from tests.conftest import scalar
from tests.pii_corpus import CORPUS


def _datasets_with(tmp_path: Path, **changes) -> Path:
    data = yaml.safe_load(DEFAULT_DATASETS_PATH.read_text())
    data["datasets"]["service_levels"].update(changes)
    path = tmp_path / "datasets.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _settings_with(tmp_path: Path, **changes) -> Path:
    data = yaml.safe_load(DEFAULT_SETTINGS_PATH.read_text())
    data.update(changes)
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_every_published_dataset_has_its_metadata_and_its_publish_model() -> None:
    datasets = load_datasets()
    assert {"service_requests", "service_levels", "demographic_equity", "service_coverage",
            "budget_variance"} <= set(datasets)
    for name, dataset in datasets.items():
        assert dataset.owner and dataset.update_frequency and dataset.publication  # P1, P3
        assert dataset.published_table == f"publish.pub_{name}"
        assert (DBT_PROJECT_DIR / "models" / "publish" / f"pub_{name}.sql").is_file()
        assert (DBT_PROJECT_DIR / "models" / "marts" / f"{dataset.source_model}.sql").is_file()
        for rule, reason in dataset.waivers.items():
            assert rule not in PII_RULES and len(reason) > 20


def test_every_dataset_gets_one_check_per_applicable_rule() -> None:
    settings = load_check_settings()
    datasets = load_datasets(settings=settings)
    checks = {c.node_def.name: c for c in build_checks(datasets, settings, Path("/tmp/unused"))}
    for name, dataset in datasets.items():
        specs = checks[f"{name}_open_data_rules"].check_specs
        assert {s.name for s in specs} == {CHECK_NAMES[r] for r in applicable_rules(dataset, settings)}
        assert all(s.blocking for s in specs if s.name.startswith("pii"))
    rules = applicable_rules(datasets["service_requests"], settings)
    assert {"C2", "C4", "F5", "U2", "PII1", "PII2", "PII4", "Q1", "Q2"} == set(rules)
    assert "PII3" in applicable_rules(datasets["service_levels"], settings)


@pytest.mark.parametrize(("changes", "message"), [
    ({"waivers": {"C4": ""}}, "needs a written reason"),
    ({"waivers": {"PII3": "These counts are not about people at all, honestly."}}, "cannot be waived"),
    ({"waivers": {"X9": "A rule that does not exist anywhere in the rules."}}, "unknown rule"),
    ({"owner": None}, "owner is rule P1"),
])
def test_invalid_dataset_declarations_are_refused(tmp_path, changes, message) -> None:
    with pytest.raises(ConfigError, match=message):
        load_datasets(_datasets_with(tmp_path, **changes), load_check_settings())


def test_pii_rules_cannot_be_made_non_blocking(tmp_path) -> None:
    rules = yaml.safe_load(DEFAULT_SETTINGS_PATH.read_text())["rules"]
    rules["PII2"]["blocking"] = False
    with pytest.raises(ConfigError, match="PII2 cannot be made non-blocking"):
        load_check_settings(_settings_with(tmp_path, rules=rules))


def test_the_settings_path_comes_from_the_environment(tmp_path, monkeypatch) -> None:
    path = _settings_with(tmp_path, small_cell_min=11, coordinate_decimals=2)
    monkeypatch.setenv("CIVICFLOW_CHECKS_SETTINGS", str(path))
    settings = load_check_settings()
    assert (settings.small_cell_min, settings.coordinate_decimals, settings.path) == (11, 2, path)
    monkeypatch.delenv("CIVICFLOW_CHECKS_SETTINGS")
    assert load_check_settings().small_cell_min == 5


def test_the_policy_asset_stores_the_settings_for_the_publish_models(warehouse_url, conn, tmp_path) -> None:
    settings = load_check_settings(_settings_with(tmp_path, small_cell_min=11))
    datasets = load_datasets(settings=settings)
    result = materialize([build_publish_policy_asset(settings, datasets)],
                         resources={"postgres": PostgresResource(url=warehouse_url)})
    assert result.success
    policy = scalar(conn, "select policy from raw.publish_policy")
    assert scalar(conn, "select count(*) from raw.publish_policy") == 1
    assert policy["version"] == 2 and policy["small_cell_min"] == 11
    assert policy["sensitive_request_types"] == list(settings.sensitive_request_types)
    assert [c["name"] for c in policy["datasets"]["service_levels"]["count_fields"]] == [
        "RequestsOpened", "RequestsClosed", "RequestsWithSlaOutcome", "OpenBacklogAtMonthEnd"]
    assert scalar(conn, "select settings_sha256 from raw.publish_policy") == settings.sha256


def test_every_match_of_every_pattern_passes_the_prefilter(conn) -> None:
    """The publish models skip values the prefilter rejects: no pattern may match one of them."""
    settings = load_check_settings()
    texts = [item.text for item in CORPUS]
    with conn.cursor() as cur:
        for step in settings.pii_patterns:
            cur.execute("select count(*) filter (where t ~* %s), count(*) filter (where t ~* %s and t !~* %s)"
                        " from unnest(%s::text[]) as t", (step.pattern, step.pattern, settings.pii_prefilter, texts))
            matched, missed = cur.fetchone()
            assert missed == 0, step.kind
            assert matched > 0 or step.scope == "person", step.kind
