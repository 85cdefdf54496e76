"""``pixelmill sign URL``: a signed render URL, for deployments with a signing key."""

from __future__ import annotations

import time
from pathlib import Path

import click


@click.command("sign")
@click.argument("url")
@click.option(
    "--key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File holding the signing key (its first line). Default: the "
    "PIXELMILL_SECURITY__SIGNING_KEY environment variable.",
)
@click.option(
    "--key",
    envvar="PIXELMILL_SECURITY__SIGNING_KEY",
    help="Signing key. Prefer --key-file or the environment: a key on the command line "
    "is visible to other users in the process list and stays in shell history.",
)
@click.option("--key-id", help="Id of the key in security.signing_keys (adds kid=ID).")
@click.option(
    "--expires-in",
    type=click.IntRange(min=1),
    help="Seconds the URL stays valid (adds expires=UNIX-TIME, covered by the signature).",
)
def sign_command(
    url: str,
    key_file: Path | None,
    key: str | None,
    key_id: str | None,
    expires_in: int | None,
) -> None:
    """Print URL (a render path and query) with its HMAC signature appended."""
    from pixelmill.services.gateway.signing import sign_url

    if key_file is not None:
        key = key_file.read_text(encoding="utf-8").splitlines()[0].strip() or None
    if not key:
        raise click.UsageError("give the signing key with --key-file or the environment")
    expires = int(time.time()) + expires_in if expires_in else None
    click.echo(sign_url(key, url, expires=expires, key_id=key_id))
