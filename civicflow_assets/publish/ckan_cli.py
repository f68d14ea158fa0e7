"""`civicflow ckan start|stop|status`: the local CKAN portal (mounted by civicflow_assets.cli)."""

from __future__ import annotations

import time

import click

from civicflow_assets.publish.ckan_server import CkanError, ckan_server, external_ckan


@click.group("ckan", help="The local CKAN portal (ignored when CIVICFLOW_CKAN_URL is set).")
def ckan() -> None:
    pass


@ckan.command("start", help="Install CKAN (first time), start Redis, the Solr stand-in and CKAN; print the URL.")
def ckan_start() -> None:
    external = external_ckan()
    if external:
        click.echo(f"external CKAN: {external[0]} (nothing started)")
        return
    server = ckan_server()
    started = time.monotonic()
    try:
        url = server.start()
    except CkanError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{url} (API token in {server.token_file}; ready in {time.monotonic() - started:.1f}s)")


@ckan.command("stop", help="Stop CKAN, the Solr stand-in and Redis.")
def ckan_stop() -> None:
    ckan_server().stop()
    click.echo("stopped")


@ckan.command("status", help="Say whether the local CKAN is running, and where.")
def ckan_status() -> None:
    external = external_ckan()
    if external:
        click.echo(f"external CKAN: {external[0]}")
        return
    click.echo(ckan_server().status())
