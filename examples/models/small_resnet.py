"""A small residual network for 28x28 grey images (MNIST, Fashion-MNIST): copy it and change it.
Conv -> BatchNorm -> ReLU, two residual blocks (the second halves the size, with a 1x1 projection
shortcut), global average pooling, then the classifier. A spec that names a ReLU places every
activation itself; a Residual block adds its ReLU after the sum."""
from models.spec import BatchNorm, Conv, Dense, GlobalAvgPool, ModelSpec, Normalize, ReLU, Residual

PAD1 = (1, 1, 1, 1)   # one zero on every side (PyTorch's padding=1); SAME pads 0 before, 1 after at stride 2

SPEC = ModelSpec(
    name="small_resnet",
    input_shape=(28, 28, 1),
    normalize=Normalize(mean=(0.1307,), std=(0.3081,)),   # the teacher sees (x - mean) / std; x stays in [0, 1]
    layers=(
        Conv("stem", 16, 3, pads=PAD1, bias=False), BatchNorm("stem_bn"), ReLU(),
        Residual("block1", body=(Conv("conv1", 16, 3, pads=PAD1, bias=False), BatchNorm("bn1"), ReLU(),
                                 Conv("conv2", 16, 3, pads=PAD1, bias=False), BatchNorm("bn2"))),   # identity
        Residual("block2", body=(Conv("conv1", 32, 3, stride=2, pads=PAD1, bias=False), BatchNorm("bn1"), ReLU(),
                                 Conv("conv2", 32, 3, pads=PAD1, bias=False), BatchNorm("bn2")),
                 shortcut=(Conv("proj", 32, 1, stride=2, bias=False), BatchNorm("proj_bn"))),
        GlobalAvgPool(),
        Dense("logits", 10),
    ),
)
