"""Train → evaluate → promote-if-better, as one job (issue 20, item 5).

The ``training_loop`` kind trains a new version of a model on a dataset's ``train``
split (typically one built from a study's annotations,
:mod:`pixelmill.services.training_sets`), scores the candidate AND the alias's
current holder on the held-out ``val`` split (:class:`EvaluationService`, scores stored
with each version), and moves the alias to the candidate only through the promotion
gate (:mod:`pixelmill.services.promotion_gate`): when the candidate's score on the
chosen metric beats the holder's. Every step is an event in the study (``training_loop.
started`` / ``.step`` / ``.progress`` / ``.done``), so members watch it on the study's
live stream; the job's own progress shows at ``GET /v1/jobs/{id}``. Cancelling the job
stops it between optimizer steps or scored images. A redelivered run reuses the
version it registered and the evaluations it stored. Undo a promotion with ``POST
/v1/models/{name}/aliases/{alias}/rollback``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from pixelmill.backends.metadata.events import Actor, EventLog
from pixelmill.errors import Conflict, NotFound
from pixelmill.services.evaluation import EvaluationService
from pixelmill.services.jobs import JobCancelled, JobKind
from pixelmill.services.model_registry import Caller
from pixelmill.services.promotion_gate import DEFAULT_METRIC, Gate, check_metric

if TYPE_CHECKING:
    from pixelmill.backends.metadata.evaluations import EvaluationRecord
    from pixelmill.services.jobs import Job, JobContext, SubmitContext

#: the job's progress: training up to here, then the two evaluations
TRAIN_SHARE = 0.7


class LoopParams(BaseModel):
    model_config = ConfigDict(extra="forbid", title="Train from annotations")

    study_id: str = Field(description="The study whose events show the loop's progress.")
    model: str = Field(description="Model name; the run registers its next version.")
    dataset: str = Field(description="Dataset id: trained on 'train', scored on 'val'.")
    spec: dict[str, Any] = Field(default_factory=dict, description="TrainSpec fields.")
    alias: str = Field("production", description="The alias the candidate may take.")
    metric: str = Field(DEFAULT_METRIC, description="The score the candidate must beat.")


class TrainingLoop:
    def __init__(self, evaluation: EvaluationService, events: EventLog) -> None:
        self.evaluation = evaluation
        self.trainer = evaluation.trainer
        self.registry = evaluation.registry
        self.events = events

    def check(self, params: LoopParams, owner: str | None) -> None:
        """Submit-time checks (4xx): the metric, the spec, the dataset (theirs, with a
        held-out split) and the right to register and promote versions of the model."""
        from pixelmill.ml import registry_rules as rules
        from pixelmill.services.trainer.service import parse_spec

        check_metric(params.metric)
        rules.check_alias(params.alias)
        try:
            self.registry.models.get_model(params.model)
            alias: str | None = params.alias
        except NotFound:  # the loop creates the model: its creator may promote in it
            alias = None
        record = self.trainer.check(
            params.model, params.dataset, parse_spec(params.spec), owner=owner, alias=alias
        )
        if not record.split.get("val") or not record.split.get("train"):
            raise Conflict(
                f"dataset {params.dataset!r} needs images in both splits, to train on and to "
                "evaluate on: build it with 0 < val_fraction < 1 and more than one image",
                dataset=params.dataset,
            )

    def run(self, job: Job, ctx: JobContext) -> dict[str, Any]:
        p = LoopParams.model_validate(job.params)
        note = self._notifier(job, p)
        note("started", {"model": p.model, "dataset": p.dataset, "alias": p.alias})
        candidate = self._train(job, ctx, p, note)
        note("step", {"step": "trained", "version": candidate})
        ctx.raise_if_cancelled()
        mine = self._score(job, ctx, p, candidate, (TRAIN_SHARE, 0.85))
        note("step", {"step": "evaluated", "version": candidate, "score": _score(mine, p)})
        holder = self._holder(p)
        theirs = None
        if holder is not None:
            ctx.raise_if_cancelled()
            theirs = self._score(job, ctx, p, holder, (0.85, 1.0))
            note("step", {"step": "evaluated", "version": holder, "score": _score(theirs, p)})
        # asked now, not from the half-second cache: a loop cancelled while it evaluated
        # must not move the alias (it did, and a later loop found a holder it never saw)
        ctx.raise_if_cancelled(fresh=True)
        decision, verdict = self._decide(job, p, candidate)
        if decision == "promoted" and theirs is not None:
            verdict = (
                f"{p.metric} on the held-out split: {p.model}:{candidate} {_score(mine, p):.4f} "
                f"beats {p.model}:{holder} {_score(theirs, p):.4f}"
            )
        result = {
            "study_id": p.study_id,
            "model": p.model,
            "dataset": p.dataset,
            "alias": p.alias,
            "metric": p.metric,
            "split": "val",
            "candidate": _side(candidate, mine, p),
            "holder": None if holder is None else _side(holder, theirs, p),
            "decision": decision,
            "verdict": verdict,
            "rollback": f"/v1/models/{p.model}/aliases/{p.alias}/rollback",
        }
        note("done", {k: result[k] for k in ("candidate", "holder", "decision", "verdict")})
        ctx.progress(1.0, f"{decision}: {verdict}", force=True)
        return result

    def _notifier(self, job: Job, p: LoopParams) -> Any:
        actor = Actor(job.owner or None)

        def note(what: str, after: dict[str, Any]) -> None:
            self.events.record(
                actor,
                f"training_loop.{what}",
                "job",
                job.id,
                study_id=p.study_id,
                after={"job_id": job.id, "model": p.model, **after},
            )

        return note

    def _train(self, job: Job, ctx: JobContext, p: LoopParams, note: Any) -> int:
        from pixelmill.ml.training import TrainingCancelled
        from pixelmill.services.trainer.service import parse_spec

        for done in self._versions(p.model):
            if done.job_id == job.id:  # a redelivered run: the version is registered
                return done.version
        last_epoch = [0]

        def progress(event: dict[str, Any]) -> None:
            fraction = event["step"] / max(event["steps"], 1)
            message = (
                f"training: epoch {event['epoch']}/{event['epochs']}, loss {event['loss']:.4f}"
            )
            ctx.progress(TRAIN_SHARE * fraction, message, force=True)
            if event["epoch"] != last_epoch[0]:
                last_epoch[0] = event["epoch"]
                note(
                    "progress",
                    {
                        "step": "training",
                        "epoch": event["epoch"],
                        "epochs": event["epochs"],
                        "loss": round(event["loss"], 6),
                    },
                )

        try:
            version = self.trainer.train(
                p.model,
                p.dataset,
                parse_spec(p.spec),
                on_progress=progress,
                should_stop=ctx.cancelled,
                actor=job.owner,
                job_id=job.id,
                hold_out_val=True,  # the val split judges the version: never seen before
                command=f"POST /v1/studies/{p.study_id}/training-loops (job {job.id})",
            )
        except TrainingCancelled as exc:
            raise JobCancelled(str(exc)) from None
        return version.version

    def _score(
        self, job: Job, ctx: JobContext, p: LoopParams, version: int, span: tuple[float, float]
    ) -> EvaluationRecord:
        for done in self.evaluation.evaluations.list(p.model, version, dataset_id=p.dataset):
            if done.job_id == job.id and done.split == "val":
                return done
        start, end = span

        def on_item(done: int, total: int) -> None:
            ctx.raise_if_cancelled()
            message = f"evaluating {p.model}:{version}: {done}/{total} images"
            ctx.progress(start + (end - start) * done / total, message)

        return self.evaluation.evaluate(
            Caller(job.owner or "", False),
            p.model,
            version,
            p.dataset,
            split="val",
            job_id=job.id,
            on_item=on_item,
        )

    def _holder(self, p: LoopParams) -> int | None:
        try:
            return self.registry.models.alias(p.model, p.alias).version
        except NotFound:
            return None

    def _decide(self, job: Job, p: LoopParams, candidate: int) -> tuple[str, str]:
        """Promote through the gate: ("promoted", its verdict) or ("kept", why not)."""
        owner = job.owner or ""
        if owner and not self.trainer.is_admin(owner):
            # checked again: at submit time the model may not have existed yet
            self.registry.authorize(Caller(owner, False), p.model, "model.promote")
        try:
            self.registry.promote(
                p.model,
                candidate,
                p.alias,
                actor=job.owner,
                note=f"training loop {job.id}",
                gate=Gate(p.dataset, p.metric),
            )
        except Conflict as exc:  # the candidate does not beat the holder (audited)
            return "kept", str(exc)
        return "promoted", f"{p.model}:{candidate} took @{p.alias} (it had no holder)"

    def _versions(self, name: str) -> list[Any]:
        try:
            return list(self.registry.models.versions(name))
        except NotFound:
            return []


def _score(record: EvaluationRecord | None, p: LoopParams) -> float | None:
    return None if record is None else float(record.scores[p.metric])


def _side(version: int, record: EvaluationRecord | None, p: LoopParams) -> dict[str, Any]:
    return {
        "version": version,
        "score": _score(record, p),
        "evaluation": None if record is None else record.id,
    }


def loop_kind(loop: TrainingLoop) -> JobKind:
    """The ``training_loop`` kind (``POST /v1/studies/{id}/training-loops``)."""

    def check(params: LoopParams, submit: SubmitContext) -> None:
        loop.check(params, submit.owner)

    return JobKind(
        name="training_loop",
        run=loop.run,
        params=LoopParams,
        queue="train",
        validate=check,
        time_limit_s=6 * 3600,
        max_retries=1,
        summary="Train a version, score it and the alias's holder on the held-out split, "
        "promote it only if it wins.",
    )
