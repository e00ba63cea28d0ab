"""Train a small PyTorch ResNet on MNIST and export it to ONNX: the teacher a PyTorch user brings.

Run with PyTorch installed (dfkd itself needs none):
    python examples/import/torch_resnet.py --data_dir=$DFKD_DATA_DIR --out=torch_resnet.onnx
It prints PyTorch's own test accuracy; then
    python -m models.onnx_import --onnx_model=torch_resnet.onnx --out_dir=imported \\
        --input_mean=0.1307 --input_std=0.3081
    python main.py --procedure=evaluate --model=imported/torch_resnet.py \\
        --model_checkpoint=imported/torch_resnet --dataset=mnist
The net: BatchNorm, an identity and a 1x1-projection shortcut, symmetric padding=1 at stride 2, an
average pool and a Flatten into Linear; inputs normalized outside the model, as torchvision pipelines do.
"""
import argparse
import gzip
import os

import numpy as np
import torch
from torch import nn

MEAN, STD = 0.1307, 0.3081


def idx(path):
    with gzip.open(path) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(cin, cout, 3, stride, padding=1, bias=False), nn.BatchNorm2d(cout)
        self.c2, self.b2 = nn.Conv2d(cout, cout, 3, 1, padding=1, bias=False), nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return torch.relu(self.b2(self.c2(torch.relu(self.b1(self.c1(x))))) + self.shortcut(x))


def net():
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                         Block(8, 8, 1), Block(8, 16, 2), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(16 * 7 * 7, 10))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data_dir", default=os.environ.get("DFKD_DATA_DIR", "."))
    p.add_argument("--out", default="torch_resnet.onnx")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--onnx_options", default="", help="e.g. optimize=False (keeps BatchNormalization nodes)")
    args = p.parse_args()
    torch.manual_seed(0)
    load = lambda split: (torch.tensor((idx(os.path.join(args.data_dir, f"{split}-images-idx3-ubyte.gz"))[:, None]
                                        / 255.0 - MEAN) / STD, dtype=torch.float32),
                          torch.tensor(idx(os.path.join(args.data_dir, f"{split}-labels-idx1-ubyte.gz")), dtype=torch.long))
    (x, y), (tx, ty) = load("train"), load("t10k")
    model = net()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(x))
        for i in range(0, len(x), 128):
            batch = order[i:i + 128]
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            accuracy = float(torch.cat([model(tx[i:i + 1000]).argmax(1) for i in range(0, len(tx), 1000)]).eq(ty)
                             .float().mean())
        print(f"epoch {epoch + 1}: PyTorch test accuracy {100 * accuracy:.2f}%", flush=True)
    options = dict(kv.split("=") for kv in args.onnx_options.split(",") if kv)
    options = {k: v == "True" if v in ("True", "False") else v for k, v in options.items()}
    torch.onnx.export(model, (tx[:1],), args.out, input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {0: "batch"}}, **options)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
