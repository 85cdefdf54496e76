"""The operation registry.

Every image operation is one module in this package (or a plugin) that defines an
:class:`Operation` subclass and registers it. The same operations serve render query
strings, JSON pipelines in async jobs, and Python callers::

    from pixelmill.imaging import ops
    pipeline = ops.parse_pipeline([{"op": "resize", "width": 300}, {"op": "blur", "sigma": 2}])

Adding an operation is one new module plus its name in ``_BUILTIN``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from pixelmill.errors import InvalidParameter
from pixelmill.imaging.ops._base import OpContext, Operation, Params, Queue, Step, bounds_of
from pixelmill.queues import heaviest

#: Modules of this package holding built-in operations, imported on first use.
_BUILTIN = [
    "resize",
    "crop",
    "trim",
    "pad",
    "rotate",
    "flip",
    "blur",
    "sharpen",
    "grayscale",
    "adjust",
    "watermark",
    "segment_model",
    # biomedical analysis (issue 4): preprocessing, stains, segmentation, measurement
    "clahe",
    "denoise",
    "unsharp_mask",
    "subtract_background",
    "normalize",
    "channels",
    "composite",
    "deconvolve",
    "stain_normalize",
    "threshold",
    "segment_classical",
    "measure",
    "overlay",
    "side_by_side",
    "preset",
    # faces (issue 19): privacy for clinical photos
    "blur_faces",
    "pixelate_faces",
]

_registry: dict[str, Operation[Any]] = {}
_loaded = False

#: Most steps one pipeline may hold.
MAX_STEPS = 64


def register(cls: type[Operation[Any]]) -> type[Operation[Any]]:
    """Class decorator adding an operation to the registry under ``cls.name``."""
    if cls.name in _registry and type(_registry[cls.name]) is not cls:
        raise ValueError(f"operation {cls.name!r} is registered twice")
    _registry[cls.name] = cls()
    return cls


def _load_builtin() -> None:
    global _loaded
    if not _loaded:
        for module in _BUILTIN:
            importlib.import_module(f"{__name__}.{module}")
        _loaded = True


def names() -> list[str]:
    _load_builtin()
    return sorted(_registry)


def get(name: str) -> Operation[Any]:
    _load_builtin()
    try:
        return _registry[name]
    except KeyError:
        raise InvalidParameter(f"unknown operation {name!r}", known=sorted(_registry)) from None


def catalogue() -> list[dict[str, Any]]:
    """Every operation with its summary, queue and JSON schema of parameters."""
    _load_builtin()
    return [
        {
            "name": op.name,
            "summary": op.summary,
            "queue": op.queue,
            "params": op.Params.model_json_schema(),
        }
        for op in (_registry[n] for n in sorted(_registry))
    ]


def validation_errors(exc: ValidationError, prefix: str = "") -> list[dict[str, Any]]:
    """pydantic errors as JSON-safe ``{"loc", "msg"}`` entries for problem details."""
    return [
        {"loc": prefix + ".".join(str(p) for p in err["loc"]), "msg": err["msg"]}
        for err in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


def parse_step(spec: Mapping[str, Any], *, index: int = 0) -> Step:
    """Validate one ``{"op": name, **params}`` mapping into a :class:`Step`."""
    if not isinstance(spec, Mapping) or "op" not in spec:
        raise InvalidParameter(f"step {index} must be an object with an 'op' field")
    name = spec["op"]
    if not isinstance(name, str):
        raise InvalidParameter(f"step {index}: 'op' must be a string")
    op = get(name)
    raw = {k: v for k, v in spec.items() if k != "op"}
    try:
        params = op.Params.model_validate(raw)
    except ValidationError as exc:
        raise InvalidParameter(
            f"step {index} ({name}): invalid parameters",
            errors=validation_errors(exc, prefix=f"steps[{index}]."),
        ) from None
    return Step(op, params)


def parse_pipeline(specs: Iterable[Mapping[str, Any]]) -> list[Step]:
    """Validate a JSON pipeline (a list of steps) completely, or raise InvalidParameter."""
    if isinstance(specs, (str, bytes, Mapping)):
        raise InvalidParameter("a pipeline is a list of steps")
    steps = [parse_step(spec, index=i) for i, spec in enumerate(specs)]
    if not steps:
        raise InvalidParameter("the pipeline is empty")
    if len(steps) > MAX_STEPS:
        raise InvalidParameter(f"the pipeline has {len(steps)} steps; at most {MAX_STEPS}")
    labelled = False
    for index, step in enumerate(steps):
        if step.op.needs_labels and not labelled:
            raise InvalidParameter(
                f"step {index} ({step.op.name}) needs a segmentation step before it "
                "(e.g. segment_nuclei, threshold, or a preset that segments)",
                errors=[{"loc": f"steps[{index}].op", "msg": "no segmentation step before it"}],
            )
        labelled = labelled or step.op.leaves_labels(step.params)
    _refuse_moved_labels(steps)
    return steps


def _refuse_moved_labels(steps: list[Step]) -> None:
    """Labels made before a step that moves or resizes pixels (crop, rotate, ...) no
    longer fit the image: a later step that reads them (measure, overlay) is refused now,
    not when the job runs (presets are looked into, step by step)."""
    labelled, moved_by = False, ""
    for index, step in enumerate(steps):
        inner = getattr(step.params, "steps", None)
        for part in inner() if callable(inner) else [step]:
            if labelled and moved_by and (part.op.reads_labels or part.op.needs_labels):
                raise InvalidParameter(
                    f"step {index} ({step.op.name}) reads the segmentation's labels, but a "
                    f"{moved_by} step after the segmentation changed its geometry: "
                    "segment after it, or move it before the segmentation",
                    errors=[{"loc": f"steps[{index}].op", "msg": f"labels moved by {moved_by}"}],
                )
            if part.op.leaves_labels(part.params):
                labelled, moved_by = True, ""
            elif labelled and part.op.reshapes:
                moved_by = part.op.name


def images_read(steps: Iterable[Step]) -> list[str]:
    """The ids of the other stored images a pipeline reads (watermark ``image``,
    stain_normalize ``reference``, also inside presets), each once, in order: a caller
    checks them with the same access rule as the pipeline's own input."""
    found = (i for step in steps for i in step.op.images_read(step.params))
    return list(dict.fromkeys(found))


def queue_of(steps: Iterable[Step]) -> Queue:
    """The worker queue a pipeline belongs on: the heaviest kind among its steps."""
    return heaviest(s.op.queue for s in steps)


__all__ = [
    "MAX_STEPS",
    "OpContext",
    "Operation",
    "Params",
    "Queue",
    "Step",
    "bounds_of",
    "catalogue",
    "get",
    "images_read",
    "names",
    "parse_pipeline",
    "parse_step",
    "queue_of",
    "register",
]
