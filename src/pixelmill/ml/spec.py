"""Typed specifications shared by training, export, the registry and serving.

``TrainSpec`` is what a user submits (validated before a job is queued);
``InputSpec`` travels with every model version and tells a runtime how to turn an
image into the model's input tensor (channels, normalisation, tile size).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Task = Literal["segmentation", "classification", "graph", "timelapse"]
Arch = Literal["unet", "cnn", "gnn", "mlp", "runet"]
#: segmentation output: "mask" (one foreground channel, objects by the classical
#: splitter) or "distance" (foreground + normalised distance, objects by seeded
#: watershed; :mod:`pixelmill.ml.instance_head`)
Head = Literal["mask", "distance"]

#: the architectures each task trains (the first is the default)
ARCHS: dict[str, tuple[str, ...]] = {
    "segmentation": ("unet",),
    "classification": ("cnn",),
    "graph": ("gnn", "mlp"),
    "timelapse": ("runet",),
}


class InputSpec(BaseModel):
    """How a model wants its input. Stored with each version; read by every runtime.

    Images are converted to ``channels`` float32 planes (grey = mean of colour bands),
    each normalised per image to 0..1 between its ``p_low`` and ``p_high`` percentiles
    (robust to 8/16-bit and exposure differences), then laid out NCHW.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: Task = "segmentation"
    channels: int = Field(1, ge=1, le=4)
    p_low: float = Field(1.0, ge=0, le=50)
    p_high: float = Field(99.8, ge=50, le=100)
    #: training patch size (px); larger images are served tiled at this size
    tile: int = Field(256, ge=16, le=4096)
    #: H and W of the network input must be multiples of this (2**depth for a U-Net)
    multiple: int = Field(8, ge=1, le=256)
    #: probability threshold for the binary mask (segmentation)
    threshold: float = Field(0.5, gt=0, lt=1)
    classes: list[str] = Field(default_factory=list)
    #: fixed input size for classifiers (images are resized to it)
    size: int | None = Field(None, ge=8, le=1024)
    #: px each object grows after the mask is split into objects: a model trained on
    #: masks with gaps between touching objects (``synth-nuclei --gaps``) predicts them
    #: eroded at the contact by this much
    grow: int = Field(0, ge=0, le=8)
    #: objects smaller than this fraction of the image's median object area are dropped
    #: (fragments: bits of cytoplasm, debris), after splitting
    min_object_fraction: float = Field(0.0, ge=0, le=1)
    #: holes in objects are filled before splitting (a dark nucleolus the model left out
    #: would make a ring the splitter cuts in two); see ``scores.fill_object_holes``
    fill_holes: bool = False
    #: segmentation output and how it becomes objects (``Head``): "mask" models have
    #: one channel; "distance" models a second one, the per-object distance map
    head: Head = "mask"
    #: distance head: the distance above which pixels seed an object (its core)
    seed_threshold: float = Field(0.5, gt=0, lt=1)
    #: distance head: 0 = each object's distance normalised to its maximum; > 0 = the
    #: distance in px divided by this, clipped at 1
    distance_cap: float = Field(0.0, ge=0, le=64)
    #: graph models: the per-object measurements fed as node features, in order
    #: (:func:`pixelmill.ml.graph.build_graph`)
    features: list[str] = Field(default_factory=list)
    #: graph models: longest edge, in median object diameters
    max_edge: float = Field(3.0, gt=0, le=20)
    #: time-lapse models: the frames of the window the network sees at once (fixed in
    #: the ONNX model: input and output (N, frames, C, H, W))
    frames: int | None = Field(None, ge=1, le=32)

    def objects(self, mask: Any, distance: Any = None) -> Any:
        """A predicted binary mask as labelled objects, with this model's settings:
        seeded watershed on the predicted ``distance`` for a distance head
        (:func:`pixelmill.ml.instance_head.seeded_instances`), else the classical
        splitter (:func:`pixelmill.ml.scores.instances`)."""
        from pixelmill.ml.scores import instances

        if self.head == "distance" and distance is not None:
            from pixelmill.ml.instance_head import seeded_instances

            return seeded_instances(
                mask,
                distance,
                seed_threshold=self.seed_threshold,
                min_fraction=self.min_object_fraction,
                fill=self.fill_holes,
            )

        return instances(
            mask, grow=self.grow, min_fraction=self.min_object_fraction, fill=self.fill_holes
        )


class TrainSpec(BaseModel):
    """A training request. Every field has a default that trains something useful."""

    model_config = ConfigDict(extra="forbid")

    task: Task = "segmentation"
    arch: Arch | None = Field(
        None,
        description="unet (segmentation), cnn (classification), gnn (graph; mlp: the same "
        "network without neighbours, a per-cell baseline), runet (timelapse: a U-Net with a "
        "ConvGRU bottleneck over the frames)",
    )
    depth: int = Field(3, ge=1, le=6, description="U-Net levels / CNN blocks / graph layers")
    width: int = Field(16, ge=2, le=128, description="channels of the first level")
    epochs: int = Field(20, ge=1, le=10_000)
    steps_per_epoch: int | None = Field(
        None, ge=1, le=100_000, description="default: one pass over the training split"
    )
    batch_size: int = Field(8, ge=1, le=512)
    patch: int = Field(128, ge=16, le=2048, description="training crop side, px")
    lr: float = Field(2e-3, gt=0, le=1)
    weight_decay: float = Field(1e-4, ge=0, le=1)
    seed: int = Field(0, ge=0)
    patience: int = Field(5, ge=1, le=1000, description="early stopping, epochs")
    augment_flips: bool = True
    augment_rot90: bool = True
    augment_intensity: bool = True
    augment_elastic: bool = False
    dice_weight: float = Field(1.0, ge=0, le=10, description="loss = BCE + w * Dice")
    channels_last: bool = True
    threads: int | None = Field(None, ge=1, le=256, description="torch threads (default cores)")
    image_size: int = Field(64, ge=8, le=1024, description="classifier input side, px")
    grow: int = Field(
        0,
        ge=0,
        le=8,
        description="px objects grow after splitting the mask (masks with gaps: 1)",
    )
    min_object_fraction: float = Field(
        0.25,
        ge=0,
        le=1,
        description="serving drops objects smaller than this x the median object area",
    )
    fill_holes: bool = Field(False, description="serving fills holes in objects (nuclei: true)")
    head: Head = Field(
        "mask",
        description="segmentation output: mask (one channel) or distance (foreground + "
        "per-object distance map, objects by seeded watershed; needs instance label masks)",
    )
    seed_threshold: float = Field(
        0.5, gt=0, lt=1, description="distance head: distance above which pixels seed objects"
    )
    distance_cap: float = Field(
        0.0,
        ge=0,
        le=64,
        description="distance head target: 0 = per-object normalised; > 0 = px / this, max 1",
    )
    max_edge: float = Field(
        3.0, gt=0, le=20, description="graph: longest edge, in median object diameters"
    )
    frames: int = Field(
        5, ge=1, le=32, description="timelapse: frames a window holds (fixed in the ONNX model)"
    )

    @model_validator(mode="after")
    def _arch_matches_task(self) -> TrainSpec:
        if self.arch is None:
            self.arch = ARCHS[self.task][0]  # type: ignore[assignment]
        if self.arch not in ARCHS[self.task]:
            raise ValueError(f"arch {self.arch!r} does not fit task {self.task!r}")
        if self.task == "graph" and self.depth > 4:
            raise ValueError(f"a graph network has at most 4 layers (depth), not {self.depth}")
        if self.task == "timelapse" and (self.depth > 5 or self.width > 64):
            raise ValueError(
                f"a time-lapse network has at most 5 levels (depth) and width 64, not "
                f"{self.depth} and {self.width}"
            )
        if self.task in ("segmentation", "timelapse") and self.patch % (2**self.depth):
            raise ValueError(f"patch {self.patch} must be a multiple of 2**depth = {2**self.depth}")
        return self
