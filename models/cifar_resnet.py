"""The CIFAR ResNets of He et al. 2016 (section 4.2), as specs: a 3x3 stem of 16 channels, three
stages of 16 / 32 / 64 channels with n basic blocks each (stride 2 at the first block of stages 2
and 3, a 1x1 projection + BatchNorm shortcut where the shape changes), global average pooling,
then Dense to the classes: 6n + 2 weighted layers. 3x3 convolutions pad one pixel on every side,
as PyTorch's padding=1 does (TensorFlow's SAME would pad 0 before and 1 after at stride 2)."""
from models.spec import BatchNorm, Conv, Dense, GlobalAvgPool, ModelSpec, ReLU, Residual

PAD1 = (1, 1, 1, 1)


def basic_block(name, filters, stride, project):
    body = (Conv("conv1", filters, 3, stride=stride, pads=PAD1, bias=False), BatchNorm("bn1"), ReLU(),
            Conv("conv2", filters, 3, pads=PAD1, bias=False), BatchNorm("bn2"))
    shortcut = (Conv("proj", filters, 1, stride=stride, bias=False), BatchNorm("proj_bn")) if project else ()
    return Residual(name, body, shortcut)


def cifar_resnet(name, blocks_per_stage, input_shape=(32, 32, 1), classes=10):
    layers = [Conv("stem", 16, 3, pads=PAD1, bias=False), BatchNorm("stem_bn"), ReLU()]
    channels = 16
    for stage, filters in enumerate((16, 32, 64), start=1):
        for block in range(1, blocks_per_stage + 1):
            stride = 2 if stage > 1 and block == 1 else 1
            layers.append(basic_block(f"stage{stage}_block{block}", filters, stride,
                                      project=stride != 1 or filters != channels))
            channels = filters
    layers += [GlobalAvgPool(), Dense("logits", classes)]
    return ModelSpec(name=name, input_shape=input_shape, layers=tuple(layers))
