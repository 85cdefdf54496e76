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


_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def _quota_value(text: str, *, sizes: bool = False) -> int | None:
    """``default`` (the site default: None), a count, or with ``sizes`` bytes as
    ``500M``, ``50G``, ``1TiB`` (powers of 1024); 0 is unlimited."""
    text = text.strip()
    if text.lower() == "default":
        return None
    number, unit = text, ""
    if sizes:
        stripped = text.upper().removesuffix("IB").removesuffix("B")
        number, unit = (stripped[:-1], stripped[-1]) if stripped[-1:].isalpha() else (stripped, "")
    if not number.isdigit() or unit not in _UNITS:
        raise click.BadParameter(
            f"{text!r}: a whole number{', K/M/G/T' if sizes else ''} or 'default'"
        )
    return int(number) * _UNITS[unit]


@users_group.command("quota")
@click.argument("username")
@click.option("--stored-bytes", help="Bytes stored (500M, 50G, 1T; 0: unlimited; default).")
@click.option("--concurrent-jobs", help="Jobs queued or running at once (0: unlimited; default).")
@click.option("--training-minutes", help="Training minutes per month (0: unlimited; default).")
@click.option("--max-epochs", help="Epochs of one training run (0: unlimited; default).")
@click.option("--reset", is_flag=True, help="Back to the site defaults for every quota.")
@click.option("--data-dir", default=None)
def users_quota(
    username: str,
    stored_bytes: str | None,
    concurrent_jobs: str | None,
    training_minutes: str | None,
    max_epochs: str | None,
    reset: bool,
    data_dir: str | None,
) -> None:
    """Show a user's quotas and usage; with options, set their own limits (the others
    keep theirs). 'default' follows the site's setting for that quota."""
    from pixelmill.backends.metadata.events import Actor
    from pixelmill.backends.metadata.quotas import FIELDS

    given = {
        "stored_bytes": stored_bytes,
        "concurrent_jobs": concurrent_jobs,
        "training_minutes": training_minutes,
        "max_epochs": max_epochs,
    }
    changes = {
        name: _quota_value(text, sizes=name == "stored_bytes")
        for name, text in given.items()
        if text is not None
    }
    c = open_container(data_dir)
    user = c.users.by_username(username)
    if not reset and not changes:
        click.echo(json.dumps(c.quotas.report(user.id), indent=2))
        return
    current = c.quotas.repo.override(user.id)
    limits = {} if reset or current is None else {f: getattr(current, f) for f in FIELDS}
    click.echo(json.dumps(c.quotas.set(Actor(), user.id, {**limits, **changes}), indent=2))
