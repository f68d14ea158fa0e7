"""Publishing to CKAN: the local CKAN portal for development and tests (ckan_server.py, its Solr stand-in), and
the publication layer (definitions_part.build_publication: assets, sensor, schedule, the `ckan` resource).

`build_publication` is imported lazily, so that `civicflow ckan ...` does not pay for importing Dagster.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("build_publication", "PublicationDefinitions"):
        from civicflow_assets.publish import definitions_part

        return getattr(definitions_part, name)
    raise AttributeError(name)
