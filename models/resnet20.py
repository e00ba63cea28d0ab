"""ResNet-20 of He et al. 2016 for 32x32 grey inputs (mnist_conv, fashion_mnist_conv): n = 3."""
from models.cifar_resnet import cifar_resnet

SPEC = cifar_resnet("resnet20", blocks_per_stage=3)
