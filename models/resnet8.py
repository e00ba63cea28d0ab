"""ResNet-8 of He et al. 2016 for 32x32 grey inputs, the student of resnet20: n = 1."""
from models.cifar_resnet import cifar_resnet

SPEC = cifar_resnet("resnet8", blocks_per_stage=1)
