"""Refuse an ONNX model whose tensors would not fit in memory, before ONNX Runtime runs
it (or even loads it: loading folds constant subgraphs, so a ``ConstantOfShape`` of a
constant shape is allocated by the load already).

How. The model's symbolic input dimensions are bound to the largest input the server
feeds it (:func:`probe_shapes`: batch 1, the served tile for images, a probe of
:data:`PROBE_CELLS` cells for graph models), ONNX shape inference runs with data
propagation (so shapes computed from constants, e.g. ``ConstantOfShape`` of
``Shape(input)``, are known), and the size of every value whose shape is then known is
added up. The model is refused (422) when one tensor is larger than ``ml.max_tensor_bytes``
or all of them together larger than ``ml.max_activation_bytes`` (an upper bound of the
peak: ONNX Runtime reuses buffers). A value whose shape is still unknown is refused when
an operator sizes it (:data:`SIZED_BY_DATA`) from the *values* of the model's inputs, not
from their shapes or constants (:func:`_sized_by_values`), and control
flow (:data:`CONTROL_FLOW`) is refused outright: nothing bounds what either allocates.
The rest of ONNX Runtime's memory is capped at run time (``ml.arena_max_bytes``,
:func:`pixelmill.ml.onnx_model.session`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pixelmill.errors import InvalidModel
from pixelmill.ml.export import EDGES, INPUT, NODES
from pixelmill.ml.spec import InputSpec

#: operators whose output size comes from the values (not the shapes) of their inputs
SIZED_BY_DATA = frozenset(
    {
        "AffineGrid",
        "BlackmanWindow",
        "CenterCropPad",
        "Col2Im",
        "ConstantOfShape",
        "DFT",
        "Expand",
        "HammingWindow",
        "HannWindow",
        "ImageDecoder",
        "MaxUnpool",
        "MelWeightMatrix",
        "OneHot",
        "Pad",
        "Range",
        "Resize",
        "STFT",
        "Tile",
        "Upsample",
    }
)
#: operators running subgraphs a data-dependent number of times
CONTROL_FLOW = frozenset({"If", "Loop", "Scan", "SequenceMap"})
#: cells (graph nodes) a graph model is bounded at, with this many edges per cell
PROBE_CELLS = 4096
PROBE_EDGES_PER_CELL = 8
_SHOWN = 5


@dataclass(frozen=True)
class Bounds:
    """``tensor_bytes``: largest single tensor; ``total_bytes``: all values together;
    ``side``: the largest image side served (the tile; 0 = the spec's own); ``arena_bytes``:
    ``ml.arena_max_bytes``, the cap of the shared ONNX Runtime arena (0 = none)."""

    tensor_bytes: int
    total_bytes: int
    side: int = 0
    arena_bytes: int = 0

    @classmethod
    def of(cls, ml: Any) -> Bounds:
        """The bounds ``ml`` (:class:`pixelmill.settings.MLSettings`) sets."""
        return cls(ml.max_tensor_bytes, ml.max_activation_bytes, ml.tile_size, ml.arena_max_bytes)


def served_side(spec: InputSpec, tile: int = 0) -> int:
    """The largest image side the runtime feeds a model of ``spec`` when images larger
    than ``tile`` (0 = ``spec.tile``) are tiled: classification resizes to its size."""
    if spec.task == "classification":
        return spec.size or spec.tile
    side = tile or spec.tile
    return spec.multiple * math.ceil(side / spec.multiple)


def probe_shapes(spec: InputSpec, side: int) -> dict[str, list[int]]:
    """The largest input of each name the runtime feeds (what symbolic dims bind to)."""
    if spec.task == "graph":
        cells = PROBE_CELLS
        return {
            NODES: [cells, len(spec.features)],
            EDGES: [2, cells * PROBE_EDGES_PER_CELL],
        }
    if spec.task == "timelapse":
        return {INPUT: [1, spec.frames or 1, spec.channels, side, side]}
    return {INPUT: [1, spec.channels, side, side]}


def _bind(model: Any, shapes: dict[str, list[int]]) -> None:
    for arg in model.graph.input:
        probe = shapes.get(arg.name)
        dims = arg.type.tensor_type.shape.dim
        if probe is None or len(probe) != len(dims):
            continue
        for dim, value in zip(dims, probe, strict=True):
            if not dim.HasField("dim_value"):
                dim.dim_value = value


def _bytes(value: Any) -> int | None:
    """Bytes of a tensor value whose shape is fully known, else ``None``."""
    from onnx import helper

    kind = value.type.tensor_type
    if not value.type.HasField("tensor_type") or not kind.HasField("shape"):
        return None
    dims = [d.dim_value if d.HasField("dim_value") else None for d in kind.shape.dim]
    if any(d is None for d in dims):
        return None
    try:
        size = helper.tensor_dtype_to_np_dtype(kind.elem_type).itemsize
    except (KeyError, TypeError, ValueError):  # strings and unknown types: a pointer
        size = 8
    return math.prod(d for d in dims if d is not None) * max(size, 1)


def _mb(count: int) -> str:
    return f"{count / 2**20:,.0f} MB"


def _infer(data: bytes, shapes: dict[str, list[int]]) -> Any:
    import onnx
    from onnx import inliner

    model = onnx.load_from_string(data)
    model = inliner.inline_local_functions(model)
    _bind(model, shapes)
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as exc:  # onnx raises its own inference errors
        raise InvalidModel(
            "the model is refused: ONNX shape inference fails on it, so its memory "
            "cannot be bounded"
        ) from exc


def size_problems(data: bytes, spec: InputSpec, bounds: Bounds) -> list[str]:
    """What in the (safe, :mod:`~pixelmill.ml.onnx_check`) model ``data`` could allocate
    more than ``bounds`` on the largest input served for ``spec`` (module docs)."""
    side = served_side(spec, bounds.side)
    model = _infer(data, probe_shapes(spec, side))
    graph = model.graph
    values = {v.name: v for v in [*graph.input, *graph.value_info, *graph.output]}
    producers = {out: n for n in graph.node for out in n.output}
    fed = {i.name for i in graph.input} - {t.name for t in graph.initializer}
    problems: list[str] = []
    total = 0
    for node in graph.node:
        if node.op_type in CONTROL_FLOW:
            problems.append(f"operator {node.op_type} (control flow) is not allowed")
            continue
        for name in node.output:
            size = _bytes(values[name]) if name in values else None
            if size is None:
                if node.op_type in SIZED_BY_DATA and _sized_by_values(node, producers, fed):
                    problems.append(
                        f"the output of {node.op_type} {node.name or name!r} has a size "
                        "set by data, which cannot be bounded"
                    )
                continue
            total += size
            if size > bounds.tensor_bytes:
                problems.append(
                    f"{node.op_type} {node.name or name!r} makes a tensor of {_mb(size)} "
                    f"on a {side}x{side} input (the bound is {_mb(bounds.tensor_bytes)}, "
                    "ml.max_tensor_bytes)"
                )
    if total > bounds.total_bytes:
        problems.append(
            f"its tensors take {_mb(total)} together on a {side}x{side} input (the bound "
            f"is {_mb(bounds.total_bytes)}, ml.max_activation_bytes)"
        )
    return problems


#: data-sized operators whose first input is the data itself (its values never size
#: the output); the others' every input may
_DATA_FIRST = frozenset(
    {"CenterCropPad", "DFT", "Expand", "MaxUnpool", "OneHot", "Pad", "Resize", "Tile", "Upsample"}
)


def _sized_by_values(node: Any, producers: dict[str, Any], fed: set[str]) -> bool:
    """Whether the inputs that size ``node``'s output depend on the *values* of a graph
    input (``fed``; ``producers``: value name -> the node making it). Sizes computed from
    shapes (``Shape``, ``Size``) and constants follow the input's size, which the server
    bounds (a torch export's ``Expand`` to the number of cells); sizes read from an
    input's values (``NonZero``, the pixels) do not."""
    sizing = node.input[1:] if node.op_type in _DATA_FIRST else node.input
    stack, seen = [name for name in sizing if name], set()
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in fed:
            return True
        producer = producers.get(name)
        if producer is not None and producer.op_type not in ("Shape", "Size"):
            stack.extend(i for i in producer.input if i)
    return False


def refuse_oversized(data: bytes, spec: InputSpec, bounds: Bounds) -> None:
    """Raise :class:`InvalidModel` (422) if :func:`size_problems` finds anything."""
    problems = size_problems(data, spec, bounds)
    if problems:
        shown = problems[:_SHOWN]
        more = f" (and {len(problems) - _SHOWN} more)" if len(problems) > _SHOWN else ""
        raise InvalidModel(
            "the model is refused: it could allocate more memory than the server allows: "
            + "; ".join(shown)
            + more,
            problems=shown,
        )
