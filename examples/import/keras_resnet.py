"""Train a small Keras Functional ResNet on MNIST (or Fashion-MNIST): a teacher a Keras user brings.

    python examples/import/keras_resnet.py --data_dir=$DFKD_DATA_DIR --out=keras_resnet.keras \
        [--dataset=fashion_mnist] [--epochs=3]
It prints Keras' own test accuracy; then
    python -m models.keras_import --keras_model=keras_resnet.keras --out_dir=imported
    python main.py --procedure=evaluate --model=imported/keras_resnet.py \\
        --model_checkpoint=imported/keras_resnet --dataset=mnist
The net: Rescaling at the input, Conv2D without bias + BatchNormalization + ReLU, an identity and a
1x1-projection shortcut joined by Add, ZeroPadding2D before a stride-2 convolution, global average pooling.
"""
import argparse
import os

from datasets import mnist  # noqa: E402  (dfkd's verified MNIST reader)


# Each dataset's training pixel mean and std, which the net's Rescaling layer normalizes by.
PIXELS = {"mnist": (0.1307, 0.3081), "fashion_mnist": (0.2860, 0.3530)}


def net(keras, dataset="mnist"):
    L = keras.layers

    def conv_bn(x, filters, kernel, stride=1, relu=True):
        if stride > 1:   # PyTorch-style symmetric padding before a strided conv
            x = L.Conv2D(filters, kernel, strides=stride, use_bias=False)(L.ZeroPadding2D(kernel // 2)(x))
        else:
            x = L.Conv2D(filters, kernel, padding="same", use_bias=False)(x)
        x = L.BatchNormalization(momentum=0.9)(x)   # moving statistics that keep up in a few epochs
        return L.ReLU()(x) if relu else x

    inputs = keras.Input((28, 28, 1))
    mean, std = PIXELS[dataset]
    x = conv_bn(L.Rescaling(1 / std, offset=-mean / std)(inputs), 8, 3)
    x = L.ReLU()(L.Add()([x, conv_bn(conv_bn(x, 8, 3), 8, 3, relu=False)]))
    shortcut = L.BatchNormalization(momentum=0.9)(L.Conv2D(16, 1, strides=2, use_bias=False)(x))
    x = L.ReLU()(L.Add()([shortcut, conv_bn(conv_bn(x, 16, 3, stride=2), 16, 3, relu=False)]))
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, L.Dense(10)(x), name="keras_resnet")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data_dir", default=os.environ.get("DFKD_DATA_DIR", "."))
    p.add_argument("--out", default="keras_resnet.keras")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--dataset", choices=sorted(PIXELS), default="mnist")
    args = p.parse_args()
    import keras
    keras.utils.set_random_seed(0)
    a = mnist.load_arrays(args.dataset, args.data_dir)
    (x, y), (tx, ty) = [(a[f"{split}_images"][..., None] / 255.0, a[f"{split}_labels"].astype("int64"))
                        for split in ("train", "test")]
    model = net(keras, args.dataset)
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x, y, batch_size=128, epochs=args.epochs, verbose=2)
    accuracy = model.evaluate(tx, ty, batch_size=1000, verbose=0)[1]
    print(f"Keras test accuracy {100 * accuracy:.2f}%")
    model.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
