"""``pixelmill keys ...``: API keys from the shell (secrets are printed once, never stored)."""

from __future__ import annotations

import json

import click

from pixelmill.runtime.cli._common import open_container


@click.group("keys")
def keys_group() -> None:
    """Manage API keys."""


@keys_group.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(["read", "write", "admin"]), default="write")
@click.option("--user", "username", default="admin", show_default=True, help="Whose key.")
@click.option("--data-dir", default=None)
def keys_create(name: str, role: str, username: str, data_dir: str | None) -> None:
    """Create a key of a user's; its secret is printed once and never stored. Its role
    is capped by the user's site role (a member's admin key acts as write)."""
    c = open_container(data_dir)
    record, secret = c.keys.create(name, role=role, user_id=c.users.by_username(username).id)
    click.echo(
        json.dumps({"id": record.id, "name": record.name, "role": record.role, "key": secret})
    )


@keys_group.command("list")
@click.option("--data-dir", default=None)
def keys_list(data_dir: str | None) -> None:
    """List keys (ids, names, roles; never secrets)."""
    c = open_container(data_dir)
    for r in c.keys.list():
        state = f"revoked {r.revoked_at.isoformat()}" if r.revoked_at else "active"
        click.echo(f"{r.id}\t{r.role}\t{state}\t{r.name}")


@keys_group.command("revoke")
@click.argument("key_id")
@click.option("--data-dir", default=None)
def keys_revoke(key_id: str, data_dir: str | None) -> None:
    """Revoke a key by id; requests with it get 401 from then on."""
    c = open_container(data_dir)
    c.keys.revoke(key_id)
    click.echo(f"revoked {key_id}")
