"""``pixelmill users ...``: accounts from the shell (passwords are printed once)."""

from __future__ import annotations

import json

import click

from pixelmill.runtime.cli._common import open_container


@click.group("users")
def users_group() -> None:
    """Manage users (site roles: admin, member)."""


@users_group.command("add")
@click.argument("username")
@click.option("--admin", "is_admin", is_flag=True, help="A site admin (default: member).")
@click.option("--name", "display_name", default="", help="Display name.")
@click.option("--data-dir", default=None)
def users_add(username: str, is_admin: bool, display_name: str, data_dir: str | None) -> None:
    """Create a user with a random password, printed once."""
    from pixelmill.backends.metadata.events import Actor

    c = open_container(data_dir)
    user, password = c.accounts.create_user(
        Actor(), username, site_role="admin" if is_admin else "member", display_name=display_name
    )
    click.echo(
        json.dumps(
            {
                "id": user.id,
                "username": user.username,
                "site_role": user.site_role,
                "password": password,
            }
        )
    )


@users_group.command("list")
@click.option("--data-dir", default=None)
def users_list(data_dir: str | None) -> None:
    """List users: id, username, site role, state."""
    c = open_container(data_dir)
    after = None
    while page := c.users.list(limit=500, after=after):
        for u in page:
            state = "disabled" if u.disabled_at else "active"
            click.echo(f"{u.id}\t{u.username}\t{u.site_role}\t{state}\t{u.display_name}")
        after = page[-1].username


@users_group.command("disable")
@click.argument("username")
@click.option("--enable", is_flag=True, help="Enable the user again.")
@click.option("--data-dir", default=None)
def users_disable(username: str, enable: bool, data_dir: str | None) -> None:
    """Disable a user (their sessions end and their keys stop working), or --enable."""
    from pixelmill.backends.metadata.events import Actor

    c = open_container(data_dir)
    user = c.users.by_username(username)
    c.accounts.set_disabled(Actor(), user.id, not enable)
    click.echo(f"{'enabled' if enable else 'disabled'} {username}")


@users_group.command("reset-password")
@click.argument("username")
@click.option("--data-dir", default=None)
def users_reset_password(username: str, data_dir: str | None) -> None:
    """Give a user a new random password (printed once); ends their sessions."""
    from pixelmill.backends.metadata.events import Actor

    c = open_container(data_dir)
    user = c.users.by_username(username)
    click.echo(c.accounts.reset_password(Actor(), user.id))
