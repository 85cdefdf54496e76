"""The model registry service: immutable versions in object storage (by sha256), movable
aliases, an audit trail, and reference resolution. Used by the gateway, the trainer
and the inference service alike."""

from __future__ import annotations

import builtins
import hashlib
import importlib.resources
import json
import logging
from typing import Any

from pydantic import ValidationError

from pixelmill.backends.metadata.evaluations import EvaluationRepository
from pixelmill.backends.metadata.events import EventLog
from pixelmill.backends.metadata.model_permissions import (
    ModelPermissionRepository,
)
from pixelmill.backends.metadata.models import (
    AliasRecord,
    AuditRecord,
    ModelRepository,
    VersionRecord,
)
from pixelmill.backends.storage.base import Storage
from pixelmill.errors import (
    Conflict,
    InvalidParameter,
    NotFound,
    QuotaExceeded,
    StorageError,
)
from pixelmill.imaging.ops import validation_errors
from pixelmill.ml import registry_rules as rules
from pixelmill.ml.onnx_bounds import Bounds
from pixelmill.ml.spec import InputSpec
from pixelmill.services import promotion_gate
from pixelmill.services.model_access import DEFAULT_MODEL, Caller, ModelAccess
from pixelmill.services.promotion_gate import Gate

log = logging.getLogger(__name__)

#: the memory bounds of ml.max_tensor_bytes, ml.max_activation_bytes and ml.tile_size by
#: default (kept equal to settings_parts.MLSettings; the registry imports no onnx)
DEFAULT_BOUNDS = Bounds(1 << 30, 4 << 30, 1024)
#: who registers and promotes the shipped model (in the audit trail)
SHIPPED_BY = "pixelmill (shipped model)"


class ModelRegistry(ModelAccess):
    def __init__(
        self,
        *,
        storage: Storage,
        models: ModelRepository,
        permissions: ModelPermissionRepository | None = None,
        events: EventLog | None = None,
        evaluations: EvaluationRepository | None = None,
    ) -> None:
        self.storage = storage
        self.models = models
        #: evaluation scores and promotion gates (services/promotion_gate.py)
        self.evaluations = evaluations or EvaluationRepository(models.db)
        self.permissions = permissions or ModelPermissionRepository(models.db)
        #: permission denials are security events
        self.events = events or EventLog(models.db)
        #: memory bounds a registered model must fit (ml.max_tensor_bytes and friends;
        #: the container sets them from the settings)
        self.bounds = DEFAULT_BOUNDS

    # -- permissions (services/workspace/model_rules.py) --------------------------------
    # -- register -----------------------------------------------------------------------
    def register(
        self,
        onnx_bytes: bytes,
        *,
        name: str,
        input_spec: dict[str, Any],
        metrics: dict[str, Any] | None = None,
        train_config: dict[str, Any] | None = None,
        dataset_sha256: str | None = None,
        card: dict[str, Any] | None = None,
        reference: dict[str, Any] | None = None,
        description: str = "",
        actor: str | None = None,
        job_id: str | None = None,
        manager: str | None = None,
        new_only: bool = False,
        max_stored_bytes: int | None = None,
    ) -> VersionRecord:
        """Store the ONNX artifact (content-addressed) and record a new version. A new
        model is managed by ``manager`` (a user id); ``new_only``: 409 if it exists now;
        ``max_stored_bytes``: ``actor``'s storage quota (403, and no artifact stays).

        The artifact is checked and loaded by ONNX Runtime once first, so an unsafe or
        broken file, or one that cannot run with ``input_spec``, is refused (422) before
        anything is written.
        """
        from pixelmill.ml import onnx_bounds, onnx_check
        from pixelmill.ml.onnx_check import check_fits
        from pixelmill.ml.onnx_model import session

        rules.check_name(name)
        if not onnx_bytes:
            raise InvalidParameter("the model file is empty")
        try:
            spec = InputSpec.model_validate(input_spec)
        except ValidationError as exc:  # per-field errors, not pydantic's text
            raise InvalidParameter(
                "invalid input_spec", errors=validation_errors(exc, prefix="input_spec.")
            ) from None
        onnx_check.refuse_unsafe(onnx_bytes)
        onnx_bounds.refuse_oversized(onnx_bytes, spec, self.bounds)  # before it loads
        check_fits(session(onnx_bytes, threads=1, arena_max_bytes=self.bounds.arena_bytes), spec)
        digest = hashlib.sha256(onnx_bytes).hexdigest()
        key = f"models/{digest[:2]}/{digest}.onnx"
        if not self.storage.exists(key):
            self.storage.put(key, onnx_bytes, content_type="application/octet-stream")
        card = dict(card or {})
        card.setdefault("sha256", digest)
        try:
            return self.models.add_version(
                model=name,
                task=spec.task,
                description=description or str(card.get("description", "")),
                sha256=digest,
                size_bytes=len(onnx_bytes),
                framework="onnx",
                input_spec=spec.model_dump(mode="json"),
                train_config=train_config or {},
                dataset_sha256=dataset_sha256,
                metrics=metrics or {},
                card={k: v for k, v in card.items() if k != "reference"},
                reference=reference or {},
                created_by=actor,
                job_id=job_id,
                manager=manager or None,
                new_only=new_only,
                max_stored_bytes=max_stored_bytes,
            )
        except QuotaExceeded:
            if not self.models.sha256_in_use(digest):
                self.storage.delete(key)
            raise

    def register_card(
        self,
        card: dict[str, Any],
        onnx_bytes: bytes,
        *,
        actor: str | None,
        job_id: str | None = None,
        manager: str | None = None,
    ) -> VersionRecord:
        """Register from a model card (as written by ``pixelmill train``)."""
        return self.register(
            onnx_bytes,
            name=card["name"],
            input_spec=card["input_spec"],
            metrics=card.get("metrics"),
            train_config=card.get("train_config"),
            dataset_sha256=(card.get("dataset") or {}).get("sha256"),
            card=card,
            reference=card.get("reference"),
            description=card.get("description", ""),
            actor=actor,
            job_id=job_id,
            manager=manager,
        )

    def ensure_default(self) -> VersionRecord | None:
        """Register the shipped ``nuclei`` model and point ``nuclei@production`` at it
        unless that alias exists already — or, on an upgrade that ships a new model,
        unless someone other than pixelmill moved it there (a user's choice is kept; an
        alias pixelmill set itself follows the shipped model, recorded in the audit).
        Idempotent; returns the shipped version."""
        files = importlib.resources.files("pixelmill.ml") / "models"
        onnx_file, card_file = files / f"{DEFAULT_MODEL}.onnx", files / f"{DEFAULT_MODEL}.json"
        if not onnx_file.is_file() or not card_file.is_file():
            log.warning("the shipped model %r is missing from the package", DEFAULT_MODEL)
            return None
        data = onnx_file.read_bytes()
        card = json.loads(card_file.read_text())
        digest = hashlib.sha256(data).hexdigest()
        version = self.models.find_version_by_sha256(DEFAULT_MODEL, digest)
        if version is None:
            version = self.register_card(card, data, actor=SHIPPED_BY)
        try:
            alias = self.models.alias(DEFAULT_MODEL, rules.DEFAULT_ALIAS)
        except NotFound:
            alias = None
        if alias is None or (alias.updated_by == SHIPPED_BY and alias.version != version.version):
            try:
                self.promote(DEFAULT_MODEL, version.version, rules.DEFAULT_ALIAS, actor=SHIPPED_BY)
            except Conflict as exc:  # a user's promotion gate holds the alias: theirs to move
                log.warning("the shipped model stays off its alias: %s", exc.detail)
        return version

    # -- read ---------------------------------------------------------------------------
    def resolve(self, ref: str | rules.ModelRef) -> VersionRecord:
        """The version a reference names; unknown model, alias or version → 404."""
        parsed = rules.parse_ref(ref) if isinstance(ref, str) else ref
        if parsed.version is not None:
            return self.models.version(parsed.name, parsed.version)
        if parsed.alias is not None:
            return self.models.version(
                parsed.name, self.models.alias(parsed.name, parsed.alias).version
            )
        if parsed.latest:
            return self.models.latest(parsed.name)
        try:
            alias = self.models.alias(parsed.name, rules.DEFAULT_ALIAS)
        except NotFound:
            return self.models.latest(parsed.name)
        return self.models.version(parsed.name, alias.version)

    def artifact(self, version: VersionRecord) -> bytes:
        """The ONNX bytes of ``version``, checked against its sha256."""
        data = self.storage.get(version.storage_key)
        if hashlib.sha256(data).hexdigest() != version.sha256:
            raise StorageError(f"the artifact of {version.ref} does not match its sha256")
        return data

    def describe(self, name: str) -> dict[str, Any]:
        model = self.models.get_model(name)
        versions = self.models.versions(name)
        aliases = self.models.aliases(name)
        by_version: dict[int, list[str]] = {}
        for a in aliases:
            by_version.setdefault(a.version, []).append(a.alias)
        return {
            **model.to_json(),
            "aliases": {a.alias: a.version for a in aliases},
            "latest": versions[-1].version if versions else None,
            "versions": [
                {**v.to_json(), "aliases": by_version.get(v.version, [])} for v in versions
            ],
        }

    def list(self, caller: Caller | None = None) -> builtins.list[dict[str, Any]]:
        """Every model (``caller``: those the caller may read)."""
        wanted = None if caller is None else self.readable(caller)
        out = []
        for model in self.models.list_models():
            if wanted is not None and model.name not in wanted:
                continue
            versions = self.models.versions(model.name)
            out.append(
                {
                    **model.to_json(),
                    "versions": len(versions),
                    "latest": versions[-1].version if versions else None,
                    "aliases": {a.alias: a.version for a in self.models.aliases(model.name)},
                }
            )
        return out

    def compare(self, name: str, versions: builtins.list[int] | None = None) -> dict[str, Any]:
        records = self.models.versions(name)
        if not records:
            self.models.get_model(name)
        if versions:
            wanted = set(versions)
            missing = wanted - {r.version for r in records}
            if missing:
                raise NotFound(f"model {name!r} has no version(s) {sorted(missing)}")
            records = [r for r in records if r.version in wanted]
        return {"model": name, **rules.compare((r.version, r.metrics) for r in records)}

    def audit(self, name: str) -> builtins.list[AuditRecord]:
        self.models.get_model(name)
        return self.models.audit(name)

    # -- alias moves --------------------------------------------------------------------
    def promote(
        self,
        name: str,
        version: int,
        alias: str,
        *,
        actor: str | None,
        note: str | None = None,
        gate: Gate | None = None,
    ) -> AliasRecord:
        """Point ``name@alias`` at ``version`` (audited as ``promote``) once it passes the
        promotion gate: ``gate``, else the one set on the alias (409 when it loses)."""
        rules.check_alias(alias)
        note = promotion_gate.apply(
            self.models, self.evaluations, name, version, alias, gate, actor=actor, note=note
        )
        _previous, record = self.models.move_alias(
            name, alias, version, action="promote", actor=actor, note=note
        )
        return record

    def rollback(
        self,
        name: str,
        alias: str,
        *,
        actor: str | None,
        to_version: int | None = None,
        note: str | None = None,
        expected: int | None = None,
    ) -> AliasRecord:
        """Move ``alias`` back: to ``to_version`` if given (one the alias held before, else
        409: that is a promotion, through the gate), else to where it pointed before its
        last promotion (see :func:`pixelmill.ml.registry_rules.rollback_target`).
        ``expected``: the version being rolled back (409 if the alias holds another)."""
        current = self.models.alias(name, alias)
        if expected is not None and current.version != expected:
            raise Conflict(f"{name}@{alias} moved meanwhile (to {current.version})")
        audit = self.models.audit(name)
        if to_version is not None:
            target = rules.check_rollback_to(audit, name, alias, to_version)
        else:
            target = rules.rollback_target(audit, alias, current.version)
        # only from the holder the target was worked out for: a promotion or another
        # rollback in between is not undone by this one (409)
        _previous, record = self.models.move_alias(
            name,
            alias,
            target,
            action="rollback",
            actor=actor,
            note=note,
            expected=current.version,
        )
        return record

    def delete_alias(self, name: str, alias: str, *, actor: str | None) -> AliasRecord:
        return self.models.delete_alias(name, alias, actor=actor)

    def delete_version(self, name: str, version: int, *, actor: str | None) -> VersionRecord:
        """Delete a version (409 while an alias points at it); its artifact goes too
        unless another version shares the same bytes."""
        record = self.models.delete_version(name, version, actor=actor)
        self.evaluations.delete_version(name, version)
        if not self.models.sha256_in_use(record.sha256):
            self.storage.delete(record.storage_key)
        return record
