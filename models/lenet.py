"""LeNet-5 on 32x32x1: conv5x5x6, maxpool2, conv5x5x16, maxpool2, fc120, fc84, fc10."""
from models.spec import Conv, Dense, MaxPool, ModelSpec

SPEC = ModelSpec(
    name="lenet",
    input_shape=(32, 32, 1),
    layers=(
        Conv("conv1", 6, 5), MaxPool(2),
        Conv("conv2", 16, 5), MaxPool(2),
        Dense("fc1", 120),
        Dense("fc2", 84),
        Dense("logits", 10),
    ),
)
