"""LeNet-5 with half the convolutional filters (3 and 8): the paper's conv student."""
from models.spec import Conv, Dense, MaxPool, ModelSpec

SPEC = ModelSpec(
    name="lenet_half",
    input_shape=(32, 32, 1),
    layers=(
        Conv("conv1", 3, 5), MaxPool(2),
        Conv("conv2", 8, 5), MaxPool(2),
        Dense("fc1", 120),
        Dense("fc2", 84),
        Dense("logits", 10),
    ),
)
