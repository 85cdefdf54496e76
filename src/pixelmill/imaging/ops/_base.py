"""The operation contract: one small module per operation, typed validated parameters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import pyvips
from pydantic import BaseModel, ConfigDict

from pixelmill.queues import Queue as Queue  # re-exported: each op names its queue

if TYPE_CHECKING:
    from pixelmill.imaging.intermediates import Intermediates


class Params(BaseModel):
    """Base of every operation's parameters: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


P = TypeVar("P", bound=Params)

#: the ``Field`` keywords that say which values a parameter accepts
_BOUND_KEYWORDS = ("ge", "gt", "le", "lt", "min_length", "max_length", "allow_inf_nan")


def bounds_of(params: type[BaseModel], name: str) -> dict[str, Any]:
    """The accepted range of field ``name`` of a parameter model, as ``Field`` keywords
    (``ge``/``gt``/``le``/``lt``, ``min_length``/``max_length``, ``allow_inf_nan``).

    Another grammar for the same operation (the render query string) builds its fields
    from these, so a bound is written once, in the operation's own spec.

    Examples
    --------
    >>> from pydantic import Field
    >>> class Blur(Params):
    ...     sigma: float = Field(ge=0.3, le=500)
    >>> bounds_of(Blur, "sigma")
    {'ge': 0.3, 'le': 500}
    """
    found: dict[str, Any] = {}
    for item in params.model_fields[name].metadata:
        for key in _BOUND_KEYWORDS:
            if hasattr(item, key):
                found[key] = getattr(item, key)
    return found


@dataclass
class OpContext:
    """What an operation may ask of its caller. Operations do no I/O of their own: the
    service that runs them passes callables here.

    ``load_image`` resolves another stored image id to its bytes (watermarks);
    ``resolve_model`` turns a model reference into a runnable predictor (segmentation);
    ``artifacts`` collects non-image outputs (tables, JSON) keyed by name;
    ``pixel_size_um`` is the physical pixel size when known, else ``None``;
    ``keep_16_bit`` resizes 16-bit images in 16 bits (``False`` when the output will be
    8-bit anyway: libvips' 8-bit ``thumbnail`` is about twice as cheap).
    """

    load_image: Callable[[str], bytes] | None = None
    resolve_model: Callable[[str], Any] | None = None
    artifacts: dict[str, Any] = field(default_factory=dict)
    pixel_size_um: float | None = None
    keep_16_bit: bool = True
    #: the image as it was before the pipeline ran (for overlays, side-by-side)
    original: pyvips.Image | None = None
    #: an 8-bit (rows, cols, 3) RGB array -> (N, 5) face boxes ``x0, y0, x1, y1, score``
    #: (``gravity=face``, ``blur_faces``, ``pixelate_faces``); ``None``: no detector here
    detect_faces: Callable[[Any], Any] | None = None
    #: decoded originals shared between renders, keyed by the original's content hash
    #: ``source_id`` (:mod:`pixelmill.imaging.intermediates`); ``None``: decode afresh
    intermediates: Intermediates | None = None
    source_id: str | None = None


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
    #: True when the result depends on nothing but the input pixels, the params and the
    #: context's ``keep_16_bit`` / ``pixel_size_um`` (no other image, model, artifact or
    #: clock): a render may keep such a pipeline's result for the same request in
    #: another output format (:func:`pixelmill.imaging.intermediates.rendered`)
    pure: ClassVar[bool] = False
    #: leaves a label image (``ctx.artifacts["labels"]``) for the steps after it
    makes_labels: ClassVar[bool] = False
    #: cannot run without an earlier step's labels: a pipeline without one is refused
    #: when it is parsed, not when its job runs
    needs_labels: ClassVar[bool] = False
    #: reads an earlier step's labels when there are any (``measure``, ``overlay``)
    reads_labels: ClassVar[bool] = False
    #: moves, cuts or resamples pixels (crop, rotate, flip, pad, resize, trim,
    #: side_by_side): labels made before it no longer fit, so a later step that reads
    #: them is refused when the pipeline is parsed
    reshapes: ClassVar[bool] = False
    #: names of parameters holding the id of another stored image the op reads
    #: (``ctx.load_image``): callers check them with the caller's access, like the input
    image_fields: ClassVar[tuple[str, ...]] = ()

    def images_read(self, params: P) -> list[str]:
        """The ids of other stored images this step reads (:attr:`image_fields`)."""
        found = (getattr(params, name, None) for name in self.image_fields)
        return [value for value in found if isinstance(value, str) and value]

    def apply(self, image: pyvips.Image, params: P, ctx: OpContext) -> pyvips.Image:
        raise NotImplementedError

    def leaves_labels(self, params: P) -> bool:
        """Whether this step, with ``params``, leaves labels for later steps."""
        return self.makes_labels

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
