"""An example student: a small CNN on 28x28 grey images, 10 classes, using the strided
and padded convolutions and the average pooling a user's net may have.

28x28x1 -> conv 3x3 (8, SAME) 28x28x8 -> avg-pool 2 14x14x8 -> conv 3x3 stride 2 (16, SAME)
7x7x16 -> flatten (row-major: height, width, channel) -> 64 -> 10.
"""
from models.spec import AvgPool, Conv, Dense, ModelSpec

SPEC = ModelSpec(
    name="small_cnn",
    input_shape=(28, 28, 1),
    layers=(
        Conv("conv1", 8, 3, padding="SAME"),
        AvgPool(2),
        Conv("conv2", 16, 3, stride=2, padding="SAME"),
        Dense("fc1", 64),
        Dense("logits", 10),
    ),
)
