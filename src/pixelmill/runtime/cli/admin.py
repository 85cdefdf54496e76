"""``pixelmill admin ...``: an operator's remediations, run against the metadata DB.

``foreign-links`` finds (and with ``--remove`` unlinks) the study links a member made
to someone else's image before only an image's owner (or a site admin) could add it
to a study: such a link still lets the study's members read the image.
"""

from __future__ import annotations

from typing import Any

import click

from pixelmill.runtime.cli._common import CleanErrors, print_json, settings_for

#: the reason the unlink event records
FOREIGN_LINK = "foreign-link"


@click.group("admin", cls=CleanErrors)
def admin_group() -> None:
    """Operator remediations (run them after `pixelmill db upgrade`)."""


def _open(data_dir: str | None, database_url: str | None) -> Any:
    from pixelmill.runtime.container import build_container

    return build_container(settings_for(data_dir, database={"url": database_url}), migrate=True)


def _line(link: Any) -> str:
    owner = link.owner or link.owner_id or "(unowned)"  # the id: no such user now
    return "\t".join(
        [
            link.study_id,
            link.study_name,
            link.image_id,
            link.filename or "",
            owner,
            link.added_by,
            link.added_at.isoformat(timespec="seconds"),
        ]
    )


@admin_group.command("foreign-links")
@click.option("--remove", is_flag=True, help="Unlink them (the images themselves stay).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of lines.")
@click.option("--data-dir", default=None, help="Data folder (SQLite, local objects).")
@click.option("--database-url", default=None, help="postgresql+psycopg://... or sqlite.")
def foreign_links(
    remove: bool, as_json: bool, data_dir: str | None, database_url: str | None
) -> None:
    """List the study links to images that whoever added them did not own (and was
    not a site admin now): each still shares its image with the study's members. With
    --remove, unlink each as an unlink from the API does (threads lose their pin,
    annotations stay as history; the event `image.remove` says reason 'foreign-link').
    Running it again finds nothing more to do."""
    from pixelmill.backends.metadata.events import Actor
    from pixelmill.errors import NotFound

    c = _open(data_dir, database_url)
    try:
        links = c.study_images.foreign_links()
        removed = []
        if remove:
            for link in links:
                try:
                    c.study_images.remove_image(
                        Actor(), link.study_id, link.image_id, reason=FOREIGN_LINK
                    )
                except NotFound:  # unlinked meanwhile (by a member, or a second run)
                    continue
                removed.append(link)
    finally:
        c.close()
    if as_json:
        gone = {(link.study_id, link.image_id) for link in removed}
        items = [
            {**link.to_json(), "removed": (link.study_id, link.image_id) in gone} for link in links
        ]
        print_json({"found": len(links), "removed": len(removed), "links": items})
        return
    for link in links:
        click.echo(_line(link))
    if remove:
        for link in removed:
            click.echo(
                f"unlinked image {link.image_id} from study {link.study_id} "
                f"(added by {link.added_by}, reason {FOREIGN_LINK})"
            )
        click.echo(f"removed {len(removed)} of {len(links)} foreign link(s)")
    else:
        click.echo(f"{len(links)} foreign link(s); --remove unlinks them")
