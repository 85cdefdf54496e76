"""``pixelmill sign URL``: a signed render URL, for deployments with a signing key."""

from __future__ import annotations

import click


@click.command("sign")
@click.argument("url")
@click.option("--key", envvar="PIXELMILL_SECURITY__SIGNING_KEY", required=True, help="Signing key.")
def sign_command(url: str, key: str) -> None:
    """Print URL (a render path and query) with its HMAC signature appended."""
    from pixelmill.services.gateway.signing import sign_url

    click.echo(sign_url(key, url))
