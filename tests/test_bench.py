"""The benchmark's pieces run and count FLOPs the way the README says (tiny sizes)."""
import models
from bench import run as bench
from models import builder


def test_forward_macs():
    assert builder.forward_macs(models.get("hinton1200")) == 784 * 1200 + 1200 * 1200 + 1200 * 10
    # conv1 28*28*25*6, conv2 10*10*150*16, then 400*120 + 120*84 + 84*10
    assert builder.forward_macs(models.get("lenet")) == 117600 + 240000 + 48000 + 10080 + 840


def test_every_measurement_runs():
    hinton, lenet = models.get("hinton1200"), models.get("lenet")
    assert bench.matmul_limit(hinton, 8, 2, 0) > 0
    assert bench.conv_limit(lenet, 8, 2, 0, with_input_gradient=True) > 0
    for objective in bench.OBJECTIVE_NAMES:
        assert bench.reconstruction_rate(hinton, objective, 8, 2, 0) > 0
    assert bench.reconstruction_rate(lenet, "spectral_layer_pairs", 8, 2, 0) > 0
    assert bench.unfused_reconstruction_rate(lenet, 8, 2, 0) > 0
    assert bench.train_rate(lenet, 8, 2, 0) > 0
    assert bench.distill_rate(hinton, models.get("hinton800"), 8, 2, 0) > 0
    assert bench.stats_rate(lenet, 50, 0) > 0
