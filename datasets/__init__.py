"""Dataset lookup: `get(name, data_dir)` for mnist, mnist_conv or a reconstructed .npy."""
from utils.errors import UserError

NAMES = ("mnist", "mnist_conv")


def get(name, data_dir, flag="--dataset"):
    if name == "mnist":
        from datasets import mnist
        return mnist.load(data_dir)
    if name == "mnist_conv":
        from datasets import mnist_conv
        return mnist_conv.load(data_dir)
    if name.endswith(".npy"):
        from datasets import optimized
        return optimized.load(name, flag)
    raise UserError(f"{flag}: unknown dataset {name!r}; choose mnist, mnist_conv or a path to a reconstructed .npy")
