"""docker-compose.yml, checked structurally (Docker cannot run here): images or build contexts, ports, volumes,
dependencies, and every environment variable the code reads, found by scanning the code, not listed by hand."""

from __future__ import annotations

import ast
import copy
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml

from civicflow_assets.runtime import export_connection_env
from civicflow_assets.settings import DBT_PROJECT_DIR, PACKAGE_DIR, REPO_ROOT

COMPOSE = REPO_ROOT / "docker-compose.yml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")
INTERPOLATION = re.compile(r"(?<!\$)\$(?:\{([A-Za-z_][A-Za-z0-9_]*)|([A-Za-z_][A-Za-z0-9_]*))")
CODE_LOCATION_MODULE = "civicflow_assets.definitions"


# ---------------------------------------------------------------- what the code reads

def _constants(tree: ast.Module) -> dict[str, str]:
    return {target.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
            for target in node.targets if isinstance(target, ast.Name)}


def _env_reads(tree: ast.Module) -> Iterator[str]:
    """Names in os.environ[...], os.getenv(...), <env mapping>.get(...) and EnvVar(...), literal or constant."""
    constants = _constants(tree)

    def name(node: ast.expr) -> str | None:
        value = node.value if isinstance(node, ast.Constant) else constants.get(getattr(node, "id", ""))
        return value if isinstance(value, str) and ENV_NAME.match(value) else None

    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            on_env = isinstance(func, ast.Attribute) and re.search(r"\benv(iron)?\b", ast.unparse(func.value))
            if ((called == "get" and on_env) or called in ("getenv", "EnvVar")) and (found := name(node.args[0])):
                yield found
        elif (isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load)
              and ast.unparse(node.value) == "os.environ" and (found := name(node.slice))):
            yield found


def _yaml_env_refs(node: Any) -> Iterator[str]:
    """dagster.yaml's `{env: NAME}` values."""
    if isinstance(node, dict):
        if set(node) == {"env"} and isinstance(node["env"], str):
            yield node["env"]
        for value in node.values():
            yield from _yaml_env_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _yaml_env_refs(value)


def derived_variables() -> set[str]:
    """What the code location sets itself from CIVICFLOW_DATABASE_URL at import (for dbt's profiles.yml)."""
    with mock.patch.dict(os.environ, clear=True):
        export_connection_env("postgresql://user:password@host:5432/database")
        return set(os.environ)


def code_variables() -> set[str]:
    """Every environment variable the package, dbt's profiles and the Dagster instance read."""
    names = {n for path in PACKAGE_DIR.rglob("*.py") for n in _env_reads(ast.parse(path.read_text()))}
    names |= set(re.findall(r"env_var\(\s*['\"]([A-Z0-9_]+)['\"]", (DBT_PROJECT_DIR / "profiles.yml").read_text()))
    names |= dagster_variables()
    return names - derived_variables()


def dagster_variables() -> set[str]:
    return set(_yaml_env_refs(yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())))


# ---------------------------------------------------------------- the checks

def env_example_names(text: str) -> set[str]:
    return {line.split("=", 1)[0].strip() for line in text.splitlines()
            if "=" in line and not line.lstrip().startswith("#")}


def _environment(service: dict[str, Any]) -> dict[str, Any]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the `- NAME=value` form
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return env


def _command(service: dict[str, Any]) -> str:
    command = service.get("command") or []
    return command if isinstance(command, str) else " ".join(map(str, command))


def _named_volume(volume: str | dict[str, Any]) -> str | None:
    """The named volume a mount uses; None for bind mounts (a path) and anonymous volumes."""
    if isinstance(volume, dict):
        return volume.get("source") if volume.get("type") == "volume" else None
    source, separator, _ = volume.partition(":")
    return source if separator and not source.startswith((".", "/", "~", "$")) else None


def _port_mapped(port: Any) -> bool:
    """host:container, the host part optionally bound to an address and taken from .env."""
    return bool(re.fullmatch(r"(?:[\d.]+:)?(?:\$\{[A-Z_]+(?::-\d+)?\}|\d+):\d+(?:/(?:tcp|udp))?", str(port)))


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def problems(compose: dict[str, Any], env_example: set[str], needed: set[str], dagster_needs: set[str],
             root: Path = REPO_ROOT) -> list[str]:
    found: list[str] = []
    services: dict[str, dict[str, Any]] = compose.get("services") or {}
    declared_volumes = set(compose.get("volumes") or {})
    for name, service in services.items():
        build = service.get("build")
        if build is not None:
            context = root / (build if isinstance(build, str) else build.get("context", "."))
            dockerfile = context / ("Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile"))
            if not dockerfile.is_file():
                found.append(f"{name}: no Dockerfile at {dockerfile}")
        elif not service.get("image"):
            found.append(f"{name}: neither image nor build")
        found += [f"{name}: port {p} does not map host:container" for p in service.get("ports") or []
                  if not _port_mapped(p)]
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith(("./", "../")) and not (root / source).exists() and "$" not in source:
                found.append(f"{name}: bind-mounted {source} does not exist")
            elif (named := _named_volume(volume)) and named not in declared_volumes:
                found.append(f"{name}: volume {named} is not declared under volumes:")
        depends = service.get("depends_on") or []
        for target in depends if isinstance(depends, list) else depends.keys():
            if target not in services:
                found.append(f"{name}: depends_on {target}, which is not a service")
        environment = _environment(service)
        if build is not None:  # the repo's image runs Dagster, whose instance reads dagster.yaml's variables
            found += [f"{name}: {var} (dagster.yaml) is not set" for var in sorted(dagster_needs - set(environment))]
        if CODE_LOCATION_MODULE in _command(service):
            found += [f"{name}: {var}, read by the code, is not set" for var in sorted(needed - set(environment))]
    if not any(CODE_LOCATION_MODULE in _command(s) for s in services.values()):
        found.append(f"no service serves the code location {CODE_LOCATION_MODULE}")
    used = {a or b for text in _strings(compose) for a, b in INTERPOLATION.findall(text)}
    found += [f"${{{var}}} is used but not in .env.example" for var in sorted(used - env_example)]
    return found


# ---------------------------------------------------------------- the tests

@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def env_example() -> set[str]:
    return env_example_names(ENV_EXAMPLE.read_text())


@pytest.fixture(scope="module")
def needed() -> set[str]:
    return code_variables()


def test_the_scan_finds_the_settings_the_code_reads(needed: set[str]) -> None:
    found = needed
    # A sample, to show the scan works; the real list is whatever the code reads.
    assert {"CIVICFLOW_DATABASE_URL", "CIVICFLOW_DATA_DIR", "CENSUS_API_KEY", "CIVICFLOW_CKAN_URL",
            "CIVICFLOW_CKAN_API_TOKEN", "CIVICFLOW_CHECKS_SETTINGS", "CIVICFLOW_DAGSTER_PG_URL"} <= found
    assert "CIVICFLOW_PG_PASSWORD" not in found  # derived from CIVICFLOW_DATABASE_URL by the code itself


def test_compose_is_complete(compose: dict[str, Any], env_example: set[str], needed: set[str]) -> None:
    assert problems(compose, env_example, needed, dagster_variables()) == []
    assert {"postgis", "dagster-code", "dagster-webserver", "dagster-daemon", "ckan", "solr", "redis"} <= set(
        compose["services"])
    assert compose["services"]["solr"]["image"].startswith("ckan/ckan-solr:2.11")
    assert compose["services"]["ckan"]["image"].startswith("ckan/ckan-base:2.11")


def test_env_example_holds_no_real_secret(env_example: set[str]) -> None:
    for line in ENV_EXAMPLE.read_text().splitlines():
        name, _, value = line.partition("=")
        if re.search(r"PASSWORD|SECRET|TOKEN|KEY", name) and not line.startswith("#"):
            assert value == "" or value.startswith("change-me"), line


def _drop_service(name: str) -> Callable[[dict[str, Any]], None]:
    return lambda c: c["services"].pop(name)


def _drop_code_env(var: str) -> Callable[[dict[str, Any]], None]:
    return lambda c: c["services"]["dagster-code"]["environment"].pop(var)


def _set(path: list[str], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(c: dict[str, Any]) -> None:
        node = c
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return mutate


MUTATIONS = {
    # A dependency gone: ckan needs solr.
    "no solr service": (_drop_service("solr"), "depends_on solr"),
    # The code location gone altogether.
    "no code location": (_drop_service("dagster-code"), "no service serves the code location"),
    "no CKAN token for the code": (_drop_code_env("CIVICFLOW_CKAN_API_TOKEN"), "CIVICFLOW_CKAN_API_TOKEN, read by"),
    "no warehouse for the code": (_drop_code_env("CIVICFLOW_DATABASE_URL"), "CIVICFLOW_DATABASE_URL, read by"),
    "no Dagster storage for the daemon": (
        lambda c: c["services"]["dagster-daemon"].__setitem__("environment", {"DAGSTER_HOME": "/opt/dagster/home"}),
        "CIVICFLOW_DAGSTER_PG_URL (dagster.yaml)"),
    "an undeclared volume": (lambda c: c["volumes"].pop("solr_data"), "volume solr_data is not declared"),
    "neither image nor build": (lambda c: c["services"]["redis"].pop("image"), "redis: neither image nor build"),
    "a build context without Dockerfile": (_set(["services", "dagster-code", "build"], "docker"), "no Dockerfile"),
    "a variable missing from .env.example": (
        _set(["services", "ckan", "environment", "CKAN_SITE_URL"], "${CKAN_PUBLIC_URL}"), "${CKAN_PUBLIC_URL}"),
    "a missing init script": (_set(["services", "postgis", "volumes"], ["./docker/initdb/gone.sh:/x.sh:ro"]),
                              "bind-mounted ./docker/initdb/gone.sh does not exist"),
    "a port without its host side": (_set(["services", "ckan", "ports"], ["5000"]), "does not map host:container"),
}


@pytest.mark.parametrize("mutation", MUTATIONS, ids=list(MUTATIONS))
def test_a_broken_compose_fails(compose: dict[str, Any], env_example: set[str], needed: set[str],
                                mutation: str) -> None:
    mutate, expected = MUTATIONS[mutation]
    broken = copy.deepcopy(compose)
    mutate(broken)
    found = problems(broken, env_example, needed, dagster_variables())
    assert any(expected in problem for problem in found), found


def test_a_new_variable_in_the_code_fails_until_compose_sets_it(compose: dict[str, Any], env_example: set[str],
                                                                  needed: set[str]) -> None:
    module = "import os\n\nNEW_SETTING = os.environ.get('CIVICFLOW_NEW_SETTING', '')\n"
    names = set(_env_reads(ast.parse(module)))
    assert names == {"CIVICFLOW_NEW_SETTING"}
    found = problems(compose, env_example, needed | names, dagster_variables())
    assert found == ["dagster-code: CIVICFLOW_NEW_SETTING, read by the code, is not set"]
