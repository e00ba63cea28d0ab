"""ResNet-20 of He et al. 2016 for 32x32 inputs, grey by default (mnist_conv, fashion_mnist_conv): n = 3."""
from models.cifar_resnet import cifar_resnet


def for_data(channels=1, classes=10):
    """The same net for inputs of `channels` channels (3 for RGB data) and `classes` outputs, taken from the
    data or the checkpoint."""
    return cifar_resnet("resnet20", blocks_per_stage=3, input_shape=(32, 32, channels), classes=classes)


SPEC = for_data()
