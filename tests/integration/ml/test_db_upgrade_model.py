"""``pixelmill db upgrade`` is the one set-up step of a distributed deployment (its
migrate job runs it before the gateways start, which never register models): it leaves
``nuclei@production`` resolvable on the deployment's PostgreSQL and S3, as
``pixelmill up`` does on its own; twice is the same as once; ``--no-default-model``
leaves the registry empty."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from pixelmill.runtime.cli import main
from pixelmill.runtime.container import build_container
from pixelmill.settings import Settings, StorageSettings

pytestmark = [pytest.mark.server]

SHIPPED = Path(__file__).resolve().parents[3] / "src" / "pixelmill" / "ml" / "models"


def _env(postgres_url: str, storage: StorageSettings, data_dir: Path) -> dict[str, str]:
    return {
        "PIXELMILL_DATA_DIR": str(data_dir),
        "PIXELMILL_DATABASE__URL": postgres_url,
        "PIXELMILL_STORAGE__URL": storage.url,
        "PIXELMILL_STORAGE__S3_ENDPOINT_URL": str(storage.s3_endpoint_url),
        "PIXELMILL_STORAGE__S3_REGION": str(storage.s3_region),
        "PIXELMILL_STORAGE__S3_ACCESS_KEY": str(storage.s3_access_key),
        "PIXELMILL_STORAGE__S3_SECRET_KEY": str(storage.s3_secret_key),
        "PIXELMILL_STORAGE__S3_PREFIX": str(storage.s3_prefix),
    }


def _settings(postgres_url: str, storage: StorageSettings, data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, database={"url": postgres_url}, storage=storage)  # type: ignore[arg-type]


def test_db_upgrade_registers_the_shipped_model_on_postgres_and_s3(
    tmp_path: Path, postgres_url: str, s3_settings: StorageSettings
) -> None:
    env = _env(postgres_url, s3_settings, tmp_path / "d")
    # when the migrate step runs twice (a re-run job, an upgrade)
    for _ in range(2):
        result = CliRunner().invoke(main, ["db", "upgrade"], env=env)
        assert result.exit_code == 0, result.output
        assert "nuclei:1 is nuclei@production" in result.output
    # then a gateway of that deployment resolves nuclei@production to one version whose
    # ONNX bytes, read from S3, are the shipped model's
    container = build_container(_settings(postgres_url, s3_settings, tmp_path / "d"), migrate=False)
    try:
        version = container.models.resolve("nuclei@production")
        assert version.version == 1
        shipped = (SHIPPED / "nuclei.onnx").read_bytes()
        assert container.models.artifact(version) == shipped
        assert version.sha256 == hashlib.sha256(shipped).hexdigest()
    finally:
        container.close()


def test_no_default_model_leaves_the_registry_empty(
    tmp_path: Path, postgres_url: str, s3_settings: StorageSettings
) -> None:
    env = _env(postgres_url, s3_settings, tmp_path / "d")
    result = CliRunner().invoke(main, ["db", "upgrade", "--no-default-model"], env=env)
    assert result.exit_code == 0, result.output
    assert "nuclei@production" not in result.output
    listed = CliRunner().invoke(main, ["models", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    assert "nuclei" not in listed.output
