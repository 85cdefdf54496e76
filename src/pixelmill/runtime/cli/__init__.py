"""The ``pixelmill`` command line (console script ``pixelmill.runtime.cli:main``).

One module per command group; shared helpers live in :mod:`._common`. This module only
assembles the groups under :func:`main`, so no command module imports another.
"""

from __future__ import annotations

import click

from pixelmill import __version__
from pixelmill.observability.logging import configure_logging
from pixelmill.runtime.cli import (
    admin,
    analysis,
    autoscale,
    autoscaler,
    cluster,
    datasets,
    db,
    jobs,
    keys,
    models,
    server,
    sign,
    train,
    users,
    worker,
)
from pixelmill.settings import Settings

__all__ = ["main"]


@click.group()
@click.version_option(__version__, prog_name="pixelmill")
def main() -> None:
    """pixelmill: image processing and image ML as scalable microservices."""
    configure_logging(Settings().observability)


for _command in (
    server.up_command,
    keys.keys_group,
    users.users_group,
    admin.admin_group,
    db.db_group,
    sign.sign_command,
    datasets.datasets_group,
    train.train_command,
    models.models_group,
    worker.worker_command,
    server.gateway_command,
    jobs.jobs_group,
    analysis.slide_group,
    analysis.presets_command,
    autoscale.autoscale_group,
    cluster.cluster_group,
    autoscaler.autoscaler_command,
):
    main.add_command(_command)
