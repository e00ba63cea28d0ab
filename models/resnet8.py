"""ResNet-8 of He et al. 2016 for 32x32 inputs, grey by default, the student of resnet20: n = 1."""
from models.cifar_resnet import cifar_resnet


def for_data(channels=1, classes=10):
    """The same net for inputs of `channels` channels (3 for RGB data) and `classes` outputs, taken from the
    data or the checkpoint."""
    return cifar_resnet("resnet8", blocks_per_stage=1, input_shape=(32, 32, channels), classes=classes)


SPEC = for_data()
