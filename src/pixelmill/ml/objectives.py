"""What training optimises and how a model is judged during training: the loss, and
validation metrics on whole images. torch is imported inside the functions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from pixelmill.ml.preprocess import pad_to_multiple
from pixelmill.ml.scores import classification_scores
from pixelmill.ml.spec import InputSpec, TrainSpec


def loss_of(logits: Any, target: Any, spec: TrainSpec) -> Any:
    """The training loss: cross-entropy (classification), or BCE plus ``dice_weight`` x
    soft Dice (segmentation; ``logits`` and ``target`` (N, K, H, W)). With K = 2 (the
    distance head) the BCE covers both channels (the distance target is soft) and the
    Dice the foreground only."""
    import torch.nn.functional as F

    if spec.task == "classification":
        return F.cross_entropy(logits, target)
    bce = F.binary_cross_entropy_with_logits(logits, target)
    if spec.dice_weight == 0:
        return bce
    prob = logits[:, :1].sigmoid()
    fore = target[:, :1]
    inter = (prob * fore).sum(dim=(1, 2, 3))
    dice = (2 * inter + 1) / (prob.sum(dim=(1, 2, 3)) + fore.sum(dim=(1, 2, 3)) + 1)
    return bce + spec.dice_weight * (1 - dice.mean())


def validate(
    net: Any,
    vx: list[NDArray[np.float32]],
    vy: list[Any],
    spec: TrainSpec,
    input_spec: InputSpec,
    memory: Any,
) -> dict[str, float]:
    """Loss and metrics over whole validation images: Dice, IoU and pixel accuracy
    (segmentation, at logit 0), or accuracy and macro F1 (classification). The network
    is back in training mode afterwards."""
    import torch

    net.eval()
    losses, inter, total, union, correct, pixels = [], 0.0, 0.0, 0.0, 0.0, 0.0
    preds: list[int] = []
    with torch.inference_mode():
        for x, y in zip(vx, vy, strict=True):
            if spec.task == "segmentation":
                padded, (rows, cols) = pad_to_multiple(x, input_spec.multiple)
                logits = net(torch.from_numpy(padded[None]).contiguous(memory_format=memory))
                logits = logits[..., :rows, :cols].contiguous()
                target = torch.from_numpy(y[None])
                losses.append(float(loss_of(logits, target, spec)))
                p = (logits > 0).numpy()[0, 0]
                t = y[0] > 0.5
                inter += float(np.logical_and(p, t).sum())
                total += float(p.sum() + t.sum())
                union += float(np.logical_or(p, t).sum())
                correct += float((p == t).sum())
                pixels += p.size
            else:
                logits = net(torch.from_numpy(x[None]).contiguous(memory_format=memory))
                losses.append(float(loss_of(logits, torch.tensor([y]), spec)))
                preds.append(int(logits.argmax(dim=1)[0]))
    net.train()
    out = {"loss": float(np.mean(losses))}
    if spec.task == "segmentation":
        out.update(
            dice=1.0 if total == 0 else 2 * inter / total,
            iou=1.0 if union == 0 else inter / union,
            pixel_accuracy=correct / max(pixels, 1),
        )
    else:
        out.update(classification_scores(np.array(preds), np.array(vy), len(input_spec.classes)))
    return out
