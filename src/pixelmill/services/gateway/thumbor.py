"""thumbor-compatible URLs: ``/unsafe/<options>/<image id>`` and
``/<signature>/<options>/<image id>``, read into pixelmill render parameters.

The options follow thumbor's grammar (``trim``, ``AxB:CxD`` crop, ``fit-in`` /
``full-fit-in``, ``[-]WxH``, ``halign``, ``valign``, ``smart``, ``filters:...``); the
image is a pixelmill image id. The signature is thumbor's: URL-safe base64 (padded) of
HMAC-SHA1(key, the path after the signature), so libthumbor and thumbor's own URL
builders sign for pixelmill unchanged.

Supported filters: quality, format, grayscale, blur, sharpen, brightness, contrast,
rotate, fill, background_color, strip_exif, strip_icc, upscale, no_upscale, stretch,
max_bytes, focal. Any other filter, ``meta`` and ``debug`` are refused with 422 rather
than ignored. ``orig`` sizes, ``adaptive-`` fit-in and ``focal`` need the source's size:
:meth:`ThumborRequest.resolve` fills them in once the caller has it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass, field

from pixelmill.errors import BadSignature, InvalidParameter

_OPTIONS = re.compile(
    r"^(?:(?P<debug>debug)/)?"
    r"(?:(?P<meta>meta)/)?"
    r"(?:trim(?P<trim>(?::(?:top-left|bottom-right))?(?::\d+)?)/)?"
    r"(?:(?P<left>\d+)x(?P<top>\d+):(?P<right>\d+)x(?P<bottom>\d+)/)?"
    r"(?:(?P<adaptive>adaptive-)?(?P<full>full-)?(?P<fit_in>fit-in)/)?"
    r"(?:(?P<flop>-)?(?P<width>\d+|orig)?x(?P<flip>-)?(?P<height>\d+|orig)?/)?"
    r"(?:(?P<halign>left|right|center)/)?"
    r"(?:(?P<valign>top|bottom|middle)/)?"
    r"(?:(?P<smart>smart)/)?"
    r"(?:filters:(?P<filters>.+?\))/)?"
    # an image id, or a remote source's URL (a proxy may have merged its "//")
    r"(?P<image>(?:https?|s3):/.+|[^/]+)$"
)
_REMOTE = re.compile(r"^(https?|s3):/+(.+)$")
_FILTER = re.compile(r"(\w+)\(([^()]*)\)(?::|$)")
_SIGNATURE = re.compile(r"^[A-Za-z0-9_-]{27}=$")
#: what a mistaken signature looks like: base64 of either alphabet (standard base64's '/'
#: splits it into segments), padded or not, about the length of a digest
_SIGNATURE_LIKE = re.compile(r"^[A-Za-z0-9_+/=-]{20,64}$")
#: the option groups that say a path is thumbor's (an image id alone says nothing)
_OPTION_GROUPS = (
    "trim", "left", "fit_in", "flop", "width", "flip", "height",
    "halign", "valign", "smart", "filters",
)  # fmt: skip
_VERTICAL = {"top": "north", "bottom": "south", "middle": ""}
_HORIZONTAL = {"left": "west", "right": "east", "center": ""}


@dataclass
class ThumborRequest:
    """A thumbor URL read: the image id, render query parameters, and what needs the
    source's size: a focal box (left, top, right, bottom in source pixels), ``orig``
    sides, ``adaptive`` fit-in."""

    image_id: str
    query: dict[str, str] = field(default_factory=dict)
    focal: tuple[int, int, int, int] | None = None
    orig: tuple[bool, bool] = (False, False)
    adaptive: bool = False

    @property
    def source_url(self) -> str | None:
        """The remote source's URL when the image part is one (``http(s)://``, ``s3://``)."""
        found = _REMOTE.match(self.image_id)
        return f"{found[1]}://{found[2]}" if found else None

    @property
    def needs_size(self) -> bool:
        return self.focal is not None or any(self.orig) or self.adaptive

    def resolve(self, width: int, height: int) -> dict[str, str]:
        """The render query for a source of ``width`` x ``height`` (upright) pixels."""
        q = dict(self.query)
        if self.orig[0]:
            q["w"] = str(width)
        if self.orig[1]:
            q["h"] = str(height)
        if self.focal is not None:
            q["fp"] = focal_point(self.focal, width, height)
        # adaptive (thumbor): turn the box when it and the image disagree on portrait
        turn = self.adaptive and "w" in q and "h" in q
        if turn and (int(q["w"]) > int(q["h"])) != (width > height):
            q["w"], q["h"] = q["h"], q["w"]
        return q


def is_signature(segment: str) -> bool:
    """Whether a path segment has the shape of a thumbor signature (28 characters)."""
    return bool(_SIGNATURE.match(segment))


def malformed_signature(path: str) -> bool:
    """Whether ``path`` (no leading /) is evidently a signed thumbor URL whose signature
    does not have thumbor's shape: one or more segments of base64 the length of a digest
    (unpadded, too long, standard alphabet with '+' and '/'), then an options path with at
    least one thumbor option (``300x200``, ``fit-in``, ``filters:...``) and an image.
    Paths of the web app (``/studies/<id>``, ``/viewer/<id>``) have no such options."""
    segments = path.split("/")
    for cut in range(1, len(segments) - 1):
        signature = "/".join(segments[:cut])
        if len(signature) > 64:
            break
        if is_signature(signature) or not _SIGNATURE_LIKE.match(signature):
            continue
        options = _OPTIONS.match("/".join(segments[cut:]))
        if options is not None and any(options[group] for group in _OPTION_GROUPS):
            return True
    return False


def sign(key: str, options: str) -> str:
    """thumbor's signature of ``options`` (the path after the signature, no leading /)."""
    digest = hmac.new(key.encode(), options.encode(), hashlib.sha1).digest()
    return base64.urlsafe_b64encode(digest).decode()


def verify(key: str | None, signature: str, options: str) -> None:
    """Raise :class:`BadSignature` (403) unless ``signature`` signs ``options``."""
    if not key:
        raise BadSignature("thumbor URLs are not enabled (no security.thumbor_key)")
    if not hmac.compare_digest(sign(key, options), signature):
        raise BadSignature("the thumbor URL signature does not match")


def parse(options: str) -> ThumborRequest:
    """Read ``options`` (``fit-in/300x200/filters:quality(80)/ID``) or raise 422."""
    match = _OPTIONS.match(options)
    if match is None:
        raise InvalidParameter(f"not a thumbor URL: {options!r}")
    g = match.groupdict()
    _refuse_unsupported(g)
    request = ThumborRequest(g["image"])
    q = request.query
    if g["trim"] is not None:
        parts = [p for p in g["trim"].split(":") if p]
        q["trim"] = next((p for p in parts if p.isdigit()), "0")
        if "bottom-right" in parts:
            q["trim_corner"] = "bottom-right"
    if g["left"] is not None:
        left, top, right, bottom = (int(g[k]) for k in ("left", "top", "right", "bottom"))
        if right > left and bottom > top:
            q["crop"] = f"{left},{top},{right - left},{bottom - top}"
    _size(g, q)
    request.orig = (g["width"] == "orig", g["height"] == "orig")
    request.adaptive = bool(g["adaptive"] and g["fit_in"])
    _filters(g["filters"] or "", request)
    return request


def _refuse_unsupported(g: dict[str, str | None]) -> None:
    unsupported = [
        name
        for name, used in (
            ("debug", g["debug"]),
            ("meta", g["meta"]),
        )
        if used
    ]
    if unsupported:
        raise InvalidParameter(f"not supported in thumbor URLs: {', '.join(unsupported)}")


def _size(g: dict[str, str | None], q: dict[str, str]) -> None:
    width = int(g["width"] or 0) if g["width"] != "orig" else 0
    height = int(g["height"] or 0) if g["height"] != "orig" else 0
    if width:
        q["w"] = str(width)
    if height:
        q["h"] = str(height)
    if g["fit_in"]:
        q["fit"] = "outside" if g["full"] else "inside"
    else:
        q["enlarge"] = "true"  # thumbor scales up unless fit-in (or no_upscale())
    if g["flop"]:
        q["flop"] = "true"
    if g["flip"]:
        q["flip"] = "true"
    gravity = _VERTICAL[g["valign"] or "middle"] + _HORIZONTAL[g["halign"] or "center"]
    if g["smart"]:
        gravity = "attention"
    if gravity:
        q["gravity"] = gravity


def _filters(text: str, request: ThumborRequest) -> None:
    position = 0
    for found in _FILTER.finditer(text):
        if found.start() != position:
            break
        position = found.end()
        _filter(found.group(1), [a.strip() for a in found.group(2).split(",")], request)
    if position != len(text):
        raise InvalidParameter(f"cannot read the thumbor filters {text!r}")


def _filter(name: str, args: list[str], request: ThumborRequest) -> None:
    q, first = request.query, args[0]
    try:
        simple = {
            "quality": ("q", first),
            "format": ("format", first),
            "max_bytes": ("max_bytes", first),
            "background_color": ("bg", first),
            "grayscale": ("grayscale", "true"),
            "upscale": ("enlarge", "true"),
            "no_upscale": ("enlarge", "false"),
            "stretch": ("fit", "fill"),
            "strip_exif": ("strip", "true"),
            "strip_icc": ("strip", "true"),
        }
        if name in simple:
            key, value = simple[name]
            q[key] = value
        elif name in ("brightness", "contrast"):
            q[name] = str(1 + float(first) / 100)  # thumbor: -100..100 percent
        elif name == "blur":
            radius = float(first)
            sigma = float(args[1]) if len(args) > 1 and args[1] else radius
            if radius > 0:
                q["blur"] = str(sigma)
        elif name == "sharpen":
            q["sharpen"] = str(min(10.0, max(0.3, float(args[1] if len(args) > 1 else first))))
        elif name == "rotate":
            q["rotate"] = str((360 - int(first)) % 360)  # thumbor turns counter-clockwise
        elif name == "fill":
            q["bg"] = first
            if q.get("fit") == "inside":
                q["fit"] = "contain"  # fill pads a fit-in result to the box
        elif name == "focal":
            request.focal = _focal_box(first)
        else:
            raise InvalidParameter(f"the thumbor filter {name}() is not supported")
    except (ValueError, IndexError):
        raise InvalidParameter(f"bad arguments to the thumbor filter {name}()") from None


def _focal_box(text: str) -> tuple[int, int, int, int]:
    box = re.fullmatch(r"(\d+)x(\d+):(\d+)x(\d+)", text)
    if box is None:
        raise ValueError(text)
    left, top, right, bottom = (int(v) for v in box.groups())
    return left, top, right, bottom


def focal_point(box: tuple[int, int, int, int], width: int, height: int) -> str:
    """The ``fp`` query value for a focal box in an image of ``width`` x ``height``."""
    left, top, right, bottom = box
    x = min(1.0, max(0.0, (left + right) / 2 / width))
    y = min(1.0, max(0.0, (top + bottom) / 2 / height))
    return f"{x:.6f},{y:.6f}"
