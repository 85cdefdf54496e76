"""/v1/studies/{id}/patients: a study's pseudonymised patients (subjects).

Each patient gets the study's next code (``S-0001`` ...). Attributes come from a fixed
allow-list (sex, age band, diagnosis, arm/group, tags): anything else is a 422, so no
free-form identifying data gets in. An external id is stored only as a keyed HMAC;
look a patient up by it with ``POST .../patients/lookup`` (a body, not a query string,
so the id stays out of access logs)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from pixelmill.errors import InvalidParameter
from pixelmill.services.gateway.auth import require
from pixelmill.services.gateway.deps import deps
from pixelmill.services.workspace.access import actor_of
from pixelmill.services.workspace.principal import Principal

router = APIRouter(prefix="/v1/studies/{study_id}/patients", tags=["patients"])

Sex = Literal["female", "male", "other", "unknown"]
AGE_BANDS: tuple[str, ...] = (*(f"{d}-{d + 9}" for d in range(0, 90, 10)), "90+")
Tag = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=40, pattern=r"^[^\x00-\x1f]+$"
    ),
]
ExternalId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class _Attributes(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    sex: Sex | None = None
    age_band: str | None = Field(None, description="0-9, 10-19, ... 80-89 or 90+.")
    diagnosis: str | None = Field(None, max_length=200)
    arm: str | None = Field(
        None,
        max_length=64,
        validation_alias=AliasChoices("arm", "group"),
        description="Arm or group.",
    )
    tags: list[Tag] | None = Field(None, max_length=20, description="At most 20 short tags.")
    external_id: ExternalId | None = Field(
        None, description="Stored only as a keyed HMAC; never shown again."
    )

    @field_validator("age_band")
    @classmethod
    def _band(cls, value: str | None) -> str | None:
        if value is not None and value not in AGE_BANDS:
            raise ValueError(f"age_band is one of {', '.join(AGE_BANDS)}")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else list(dict.fromkeys(value))


class NewPatient(_Attributes):
    pass


class PatientChange(_Attributes):
    """Only the fields given change; ``null`` clears one (``external_id: null`` too)."""


class Lookup(BaseModel):
    model_config = ConfigDict(extra="forbid")
    external_id: ExternalId


def _values(request: Request, body: _Attributes, *, only_set: bool) -> dict[str, Any]:
    values = body.model_dump(exclude_unset=only_set, exclude={"external_id"})
    if not only_set:
        values = {k: v for k, v in values.items() if v is not None}
    elif "tags" in values and values["tags"] is None:
        values["tags"] = []
    if "external_id" in body.model_fields_set or (not only_set and body.external_id):
        values["external_id_hmac"] = (
            deps(request).external_ids.digest(body.external_id) if body.external_id else None
        )
    return values


@router.post("", status_code=201, summary="Add a patient (gets the study's next code)")
def create_patient(
    request: Request,
    response: Response,
    study_id: str,
    body: NewPatient,
    principal: Principal = Depends(require("write")),
) -> dict[str, Any]:
    c = deps(request)
    c.access.study(principal, study_id, "patient.write")
    patient = c.patients.create(
        actor_of(principal), study_id, **_values(request, body, only_set=False)
    )
    response.headers["Location"] = f"/v1/studies/{study_id}/patients/{patient.id}"
    return patient.to_json()


@router.get("", summary="The study's patients in code order, with image counts (pages)")
def list_patients(
    request: Request,
    study_id: str,
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0, le=10_000_000),
    principal: Principal = Depends(require("read")),
) -> dict[str, Any]:
    c = deps(request)
    c.access.study(principal, study_id, "patient.read")
    items, total = c.patients.page(study_id, limit=limit, offset=offset)
    return {
        "items": [p.to_json() for p in items],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@router.post("/lookup", summary="Find a patient by external id (compared as keyed HMACs)")
def lookup_patient(
    request: Request, study_id: str, body: Lookup, principal: Principal = Depends(require("read"))
) -> dict[str, Any]:
    c = deps(request)
    c.access.study(principal, study_id, "patient.read")
    return c.patients.find_by_external(study_id, c.external_ids.digest(body.external_id)).to_json()


@router.get("/{patient_id}", summary="A patient")
def get_patient(
    request: Request,
    study_id: str,
    patient_id: str,
    principal: Principal = Depends(require("read")),
) -> dict[str, Any]:
    c = deps(request)
    c.access.study(principal, study_id, "patient.read")
    return c.patients.get(study_id, patient_id).to_json()


@router.patch("/{patient_id}", summary="Change a patient's attributes")
def change_patient(
    request: Request,
    study_id: str,
    patient_id: str,
    body: PatientChange,
    principal: Principal = Depends(require("write")),
) -> dict[str, Any]:
    c = deps(request)
    c.access.study(principal, study_id, "patient.write")
    changes = _values(request, body, only_set=True)
    if not changes:
        raise InvalidParameter("nothing to change")
    return c.patients.update(actor_of(principal), study_id, patient_id, **changes).to_json()


@router.delete(
    "/{patient_id}",
    status_code=204,
    summary="Delete a patient (their images stay in the study, unlinked)",
)
def delete_patient(
    request: Request,
    study_id: str,
    patient_id: str,
    principal: Principal = Depends(require("write")),
) -> Response:
    c = deps(request)
    c.access.study(principal, study_id, "patient.write")
    c.patients.delete(actor_of(principal), study_id, patient_id)
    return Response(status_code=204)
