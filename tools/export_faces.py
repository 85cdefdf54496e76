"""Export MTCNN's three networks (Zhang et al. 2016) to ONNX for pixelmill.ml.faces.

The weights come from the facenet-pytorch 2.6.0 wheel (MIT), which ships them as
``facenet_pytorch/data/{pnet,rnet,onet}.pt`` state dicts. The networks are written
here from the paper with layer names matching those state dicts; facenet-pytorch itself
is never imported (it would pull its own torch). Needs the ``train`` extra (torch, onnx)::

    pip download facenet-pytorch==2.6.0 --no-deps -d /tmp/fp
    unzip -o /tmp/fp/facenet_pytorch-2.6.0-py3-none-any.whl -d /tmp/fp/x
    python tools/export_faces.py /tmp/fp/x/facenet_pytorch/data src/pixelmill/ml/models/faces

Not run in tests. Outputs: ``pnet.onnx`` (input ``image`` (N, 3, H, W), dynamic H/W;
outputs ``regression`` (N, 4, h, w), ``probability`` (N, 2, h, w)), ``rnet.onnx``
((N, 3, 24, 24) → ``regression`` (N, 4), ``probability`` (N, 2)) and ``onet.onnx``
((N, 3, 48, 48) → ``regression``, ``landmarks`` (N, 10), ``probability``). Inputs are
RGB scaled as ``(x - 127.5) / 128``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn


class PNet(nn.Module):
    """Proposal network: fully convolutional, 12x12 receptive field, stride 2."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), dim=1)


class RNet(nn.Module):
    """Refinement network on 24x24 crops."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        # the ported weights flatten in (W, H, C) order, as the original Caffe models did
        x = x.permute(0, 3, 2, 1).contiguous().flatten(1)
        x = self.prelu4(self.dense4(x))
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)


class ONet(nn.Module):
    """Output network on 48x48 crops: box regression, five landmarks, face probability."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = x.permute(0, 3, 2, 1).contiguous().flatten(1)
        x = self.prelu5(self.dense5(x))
        return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), dim=1)


def export(weights: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    nets: list[tuple[str, nn.Module, int, list[str]]] = [
        ("pnet", PNet(), 0, ["regression", "probability"]),
        ("rnet", RNet(), 24, ["regression", "probability"]),
        ("onet", ONet(), 48, ["regression", "landmarks", "probability"]),
    ]
    for name, net, side, outputs in nets:
        state = torch.load(weights / f"{name}.pt", map_location="cpu", weights_only=True)
        net.load_state_dict(state, strict=True)
        net.eval()
        example = torch.zeros(1, 3, side or 48, side or 64)
        axes: dict[str, dict[int, str]] = {"image": {0: "n"}}
        axes |= {o: {0: "n"} for o in outputs}
        if name == "pnet":
            axes["image"] |= {2: "rows", 3: "cols"}
            axes |= {o: {0: "n", 2: "out_rows", 3: "out_cols"} for o in outputs}
        torch.onnx.export(
            net,
            (example,),
            str(out / f"{name}.onnx"),
            input_names=["image"],
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
        print(name, (out / f"{name}.onnx").stat().st_size, "bytes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", type=Path, help="folder with pnet.pt, rnet.pt, onet.pt")
    parser.add_argument("out", type=Path, help="folder for the .onnx files")
    args = parser.parse_args()
    export(args.weights, args.out)


if __name__ == "__main__":
    main()
