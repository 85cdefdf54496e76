"""/v1/datasets: upload (zip), list, read and delete training datasets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import anyio
from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.datastructures import UploadFile

from pixelmill.errors import ImageTooLarge, InvalidInput
from pixelmill.services.gateway.auth import require
from pixelmill.services.gateway.deps import deps
from pixelmill.services.workspace.principal import Principal

if TYPE_CHECKING:
    from pixelmill.services.trainer.service import TrainerService

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])


def _trainer(request: Request) -> TrainerService:
    return deps(request).trainer


def dataset_owner(key: Principal | None) -> str | None:
    """Whose datasets the caller sees: their own (``None``: everyone's, for admins)."""
    if key is None:
        return ""
    return None if key.is_admin or key.via == "local" else key.user_id


def actor(key: Principal | None) -> str:
    """Who did it, as datasets and the model audit record it: a user id."""
    if key is None:
        return "anonymous"
    return key.user_id or "local"


async def read_body(request: Request, limit: int, what: str) -> bytes:
    """The raw body, or the multipart field ``file``; refuses more than ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise ImageTooLarge(
            f"the {what} is larger than the limit of {limit} bytes", max_bytes=limit
        )
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=10)
        upload = next((v for v in form.values() if isinstance(v, UploadFile)), None)
        if upload is None:
            raise InvalidInput(
                f"multipart upload has no file part (use the field 'file' for the {what})"
            )
        data = await upload.read()
        await form.close()
    else:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ImageTooLarge(
                    f"the {what} is larger than the limit of {limit} bytes", max_bytes=limit
                )
            chunks.append(chunk)
        data = b"".join(chunks)
    if len(data) > limit:
        raise ImageTooLarge(
            f"the {what} is larger than the limit of {limit} bytes", max_bytes=limit
        )
    return data


def dataset_json(record: Any) -> dict[str, Any]:
    body = record.to_json()
    body["links"] = {"self": f"/v1/datasets/{record.id}"}
    return body


@router.post(
    "",
    status_code=201,
    summary="Upload a dataset: a zip of images/ + masks/ (segmentation) or images/<class>/ folders",
    responses={
        200: {"description": "You uploaded the same bytes before (your dataset comes back)."},
        422: {"description": "Validation failed; `files` names each offending file."},
    },
)
async def upload_dataset(
    request: Request,
    response: Response,
    name: str | None = Query(None, max_length=200),
    task: Literal["segmentation", "classification", "graph", "timelapse"] | None = Query(
        None,
        description="Default: detected (cells.csv → graph, masks/ → segmentation); "
        "timelapse (multi-page TIFF frames and mask stacks) is never detected: name it.",
    ),
    val_fraction: float = Query(
        0.15, ge=0, lt=1, description="Share of items held out for validation."
    ),
    seed: int = Query(0, ge=0, description="Seed of the recorded train/val split."),
    key: Principal | None = Depends(require("write")),
) -> dict[str, Any]:
    trainer = _trainer(request)
    data = await read_body(request, trainer.settings.max_dataset_bytes, "dataset")
    record, created = await anyio.to_thread.run_sync(
        lambda: trainer.add_dataset(
            data, name=name, task=task, val_fraction=val_fraction, seed=seed, actor=actor(key)
        )
    )
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/v1/datasets/{record.id}"
    return dataset_json(record)


@router.get("", summary="Your datasets (admins: everyone's), newest first")
def list_datasets(
    request: Request, key: Principal | None = Depends(require("read"))
) -> dict[str, Any]:
    records = _trainer(request).datasets.list(owner=dataset_owner(key))
    return {"items": [dataset_json(r) for r in records]}


@router.get("/{dataset_id}", summary="A dataset: counts, classes, the recorded split")
def get_dataset(
    request: Request, dataset_id: str, key: Principal | None = Depends(require("read"))
) -> dict[str, Any]:
    record = _trainer(request).datasets.get(dataset_id, owner=dataset_owner(key))
    deps(request).access.owner_read(key, record.created_by, "dataset", dataset_id)
    return dataset_json(record)


@router.delete("/{dataset_id}", status_code=204, summary="Delete one of your datasets")
def delete_dataset(
    request: Request, dataset_id: str, key: Principal | None = Depends(require("write"))
) -> Response:
    _trainer(request).delete_dataset(dataset_id, owner=dataset_owner(key))
    return Response(status_code=204)
