"""The operation contract: one small module per operation, typed validated parameters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import pyvips
from pydantic import BaseModel, ConfigDict

from pixelmill.queues import Queue as Queue  # re-exported: each op names its queue


class Params(BaseModel):
    """Base of every operation's parameters: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


P = TypeVar("P", bound=Params)


@dataclass
class OpContext:
    """What an operation may ask of its caller. Operations do no I/O of their own: the
    service that runs them passes callables here.

    ``load_image`` resolves another stored image id to its bytes (watermarks);
    ``resolve_model`` turns a model reference into a runnable predictor (segmentation);
    ``artifacts`` collects non-image outputs (tables, JSON) keyed by name;
    ``pixel_size_um`` is the physical pixel size when known, else ``None``.
    """

    load_image: Callable[[str], bytes] | None = None
    resolve_model: Callable[[str], Any] | None = None
    artifacts: dict[str, Any] = field(default_factory=dict)
    pixel_size_um: float | None = None
    #: the image as it was before the pipeline ran (for overlays, side-by-side)
    original: pyvips.Image | None = None


class Operation(Generic[P]):
    """An image operation.

    Subclasses set ``name``, ``Params`` (a :class:`Params` model), ``summary`` and
    ``queue`` (the kind of worker that runs it in async jobs), and implement
    :meth:`apply`. Register with :func:`pixelmill.imaging.ops.register`.
    """

    name: ClassVar[str]
    Params: ClassVar[type[Params]]
    summary: ClassVar[str] = ""
    queue: ClassVar[Queue] = "transform"
    #: False for ops that must see the full-resolution image (no shrink-on-load before them)
    geometric: ClassVar[bool] = False

    def apply(self, image: pyvips.Image, params: P, ctx: OpContext) -> pyvips.Image:
        raise NotImplementedError

    def load(self, source: bytes | str, params: P, ctx: OpContext) -> pyvips.Image | None:
        """Optionally fuse this op with decoding (shrink-on-load). ``None``: not fusable."""
        return None


@dataclass(frozen=True)
class Step:
    """One validated pipeline step."""

    op: Operation[Any]
    params: Params

    def to_json(self) -> dict[str, Any]:
        return {"op": self.op.name, **self.params.model_dump(mode="json", exclude_defaults=True)}
