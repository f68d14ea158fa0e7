"""The DCAT-US (Project Open Data v1.1) catalog, data.json, of every dataset published here: built from the catalog
declaration and what CKAN holds (resource URLs), validated against pod_v1_1.schema.json, and published as a CKAN
resource of its own dataset (replaced only when its content changed)."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

import jsonschema

from civicflow_assets.publish.audit import ResourceOutcome
from civicflow_assets.publish.catalog import Catalog
from civicflow_assets.publish.client import CkanClient, NotFound, ValidationError
from civicflow_assets.publish.metadata import accrual_periodicity

SCHEMA_PATH = Path(__file__).with_name("pod_v1_1.schema.json")
CONFORMS_TO = "https://project-open-data.cio.gov/v1.1/schema"
CONTEXT = "https://project-open-data.cio.gov/v1.1/schema/catalog.jsonld"
DATA_JSON_ROLE = "data_json"


class CatalogInvalid(ValueError):
    pass


def validation_errors(document: dict[str, Any]) -> list[str]:
    schema = json.loads(SCHEMA_PATH.read_text())
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'/'.join(str(p) for p in error.absolute_path) or '(catalog)'}: {error.message}"
            for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))]


def _extras(package: dict[str, Any]) -> dict[str, str]:
    return {e["key"]: e["value"] for e in package.get("extras", [])}


def _distribution(base: str, resource: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {"@type": "dcat:Distribution", "title": resource["name"]}
    if resource.get("description"):
        item["description"] = resource["description"]
    if resource.get("civicflow_role") == "datastore":
        item.update({"accessURL": f"{base}/api/3/action/datastore_search?resource_id={resource['id']}",
                     "format": "API", "mediaType": "application/json",
                     "describedBy": f"{base}/api/3/action/datastore_info?id={resource['id']}",
                     "describedByType": "application/json"})
    else:
        item.update({"downloadURL": resource["url"], "format": resource.get("format") or "file",
                     "mediaType": resource.get("mimetype") or "application/octet-stream"})
    return item


def dataset_entry(base: str, package: dict[str, Any], spec: Any) -> dict[str, Any]:
    extras = _extras(package)
    landing = f"{base}/dataset/{package['name']}"
    resources = sorted(package.get("resources", []), key=lambda r: r.get("position", 0))
    entry: dict[str, Any] = {
        "@type": "dcat:Dataset",
        "identifier": landing,
        "title": package["title"],
        "description": spec.description or package.get("notes") or package["title"],
        "keyword": [t["name"] for t in package.get("tags", [])] or [spec.name],
        "modified": extras.get("data_modified") or package["metadata_modified"][:10],
        "publisher": {"@type": "org:Organization", "name": package["organization"]["title"]},
        "contactPoint": {"@type": "vcard:Contact", "fn": spec.contact_name or package["organization"]["title"],
                         "hasEmail": f"mailto:{spec.contact_email}"},
        "accessLevel": "public",
        "license": spec.license_url or package.get("license_url"),
        "accrualPeriodicity": accrual_periodicity(spec.update_frequency),
        "issued": package["metadata_created"][:10],
        "landingPage": landing,
        "language": [spec.language],
        "distribution": [_distribution(base, r) for r in resources],
    }
    if extras.get("spatial_coverage"):
        entry["spatial"] = extras["spatial_coverage"]
    if extras.get("temporal_coverage"):
        entry["temporal"] = extras["temporal_coverage"]
    field_map = next((r for r in resources if r.get("civicflow_role") == "field_map"), None)
    if field_map:
        entry["describedBy"] = field_map["url"]
        entry["describedByType"] = "text/csv"
    return {k: v for k, v in entry.items() if v not in (None, "", [])}


def build_data_json(client: CkanClient, catalog: Catalog) -> dict[str, Any]:
    """Every dataset of the catalog that CKAN holds (one never published yet is left out)."""
    entries = []
    for spec in catalog.datasets.values():
        try:
            package = client.call("package_show", {"id": spec.ckan_name})
        except NotFound:
            continue
        if package.get("state") != "active" or _extras(package).get("civicflow_managed") != "true":
            continue
        entries.append(dataset_entry(client.url, package, spec))
    return {
        "@context": CONTEXT,
        "@type": "dcat:Catalog",
        "conformsTo": CONFORMS_TO,
        "describedBy": "https://project-open-data.cio.gov/v1.1/schema/catalog.json",
        "dataset": sorted(entries, key=lambda e: e["identifier"]),
    }


def publish_data_json(client: CkanClient, catalog: Catalog, organization_id: str) -> tuple[ResourceOutcome, dict]:
    document = build_data_json(client, catalog)
    errors = validation_errors(document)
    if errors:
        raise CatalogInvalid("data.json does not validate against the Project Open Data v1.1 schema: "
                             + "; ".join(errors[:20]))
    content = (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
    content_hash = hashlib.sha256(content).hexdigest()
    meta = catalog.catalog
    try:
        package = client.call("package_show", {"id": meta.ckan_name})
    except NotFound:
        try:
            package = client.call("package_create", {
                "name": meta.ckan_name, "title": meta.title, "notes": meta.description, "owner_org": organization_id,
                "license_id": catalog.defaults.get("license_id", "cc-zero"), "tags": [{"name": "catalog"}],
                "extras": [{"key": "civicflow_catalog", "value": "true"}]})
        except ValidationError:
            package = client.call("package_show", {"id": meta.ckan_name})
    found = [r for r in package.get("resources", []) if r.get("civicflow_role") == DATA_JSON_ROLE]
    for extra in found[1:]:
        client.call("resource_delete", {"id": extra["id"]})
    resource = found[0] if found else None
    if resource and resource.get("civicflow_content_hash") == content_hash:
        return ResourceOutcome(DATA_JSON_ROLE, "data.json", "unchanged", resource["id"], content_hash=content_hash,
                               previous_hash=content_hash), document
    data = {"name": "data.json", "format": "JSON", "mimetype": "application/json",
            "description": f"DCAT-US (Project Open Data v1.1) catalog of {len(document['dataset'])} datasets.",
            "civicflow_role": DATA_JSON_ROLE, "civicflow_content_hash": content_hash}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.json"
        path.write_bytes(content)
        handles = []

        def upload() -> dict[str, Any]:
            handles.append(path.open("rb"))
            return {"upload": ("data.json", handles[-1])}

        try:
            if resource is None:
                result = client.call("resource_create", {**data, "package_id": package["id"]}, files=upload)
            else:
                result = client.call("resource_patch", {**data, "id": resource["id"]}, files=upload)
        finally:
            for handle in handles:
                handle.close()
    return ResourceOutcome(DATA_JSON_ROLE, "data.json", "updated" if resource else "created", result["id"],
                           content_hash=content_hash, previous_hash=resource.get("civicflow_content_hash")
                           if resource else None, bytes=len(content),
                           details={"datasets": len(document["dataset"])}), document
