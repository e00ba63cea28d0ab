"""--stats_modes: each class's examples split into k-means modes, statistics per mode."""
import json
import os
from unittest import mock

import numpy as np
import pytest

import datasets
import models
from metadata import stats_file, stats_modes
from procedures import compute_stats, optimize_dataset
from tests.conftest import toy_for
from utils.errors import UserError


def test_split_finds_each_classs_separate_clusters():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 40)
    blob = np.tile(np.repeat([0, 1], 20), 3)          # two far-apart blobs inside every class
    features = rng.normal(size=(120, 5)) * 0.1 + blob[:, None] * 10.0 + labels[:, None]
    groups, group_class = stats_modes.split(features, labels, 3, modes=2, seed=0)
    assert group_class.tolist() == [0, 0, 1, 1, 2, 2]
    for c in range(3):
        rows = labels == c
        assert set(groups[rows].tolist()) == {2 * c, 2 * c + 1}
        # Each mode is exactly one blob (whichever number k-means gave it).
        for mode in (2 * c, 2 * c + 1):
            assert len(set(blob[rows & (groups == mode)].tolist())) == 1
    one, classes = stats_modes.split(features, labels, 3, modes=1, seed=0)
    assert one.tolist() == labels.tolist() and classes.tolist() == [0, 1, 2]


def modes_cfg(teachers, tmp_path, modes, **overrides):
    cfg, result = teachers["hinton1200"]
    cfg = type(cfg)(**vars(cfg))
    cfg.summary_folder = str(tmp_path)
    cfg.procedure, cfg.model_meta, cfg.model_checkpoint = "compute_stats", result["model_meta"], result["model_checkpoint"]
    cfg.stats_modes = modes
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


def run_compute_stats(cfg):
    with mock.patch.object(datasets, "get", lambda *a, **k: toy_for(784)):
        return compute_stats.run(cfg)


@pytest.fixture(scope="module")
def both_files(teachers, tmp_path_factory):
    """The per-class and the two-mode stats files of the tiny hinton1200 teacher on the toy data."""
    root = tmp_path_factory.mktemp("modes")
    per_class = run_compute_stats(modes_cfg(teachers, root, 1))["stats_file"]
    per_mode = run_compute_stats(modes_cfg(teachers, root, 2))["stats_file"]
    return stats_file.load(per_class), stats_file.load(per_mode), modes_cfg(teachers, root, 2)


def test_mode_statistics_add_up_to_the_class_statistics(both_files):
    per_class, per_mode, _ = both_files
    assert per_mode.path.endswith("_modes2.npz") and not per_class.has_modes
    assert per_mode.num_classes == 10 and per_mode.num_groups == 20
    assert per_mode.group_class.tolist() == np.repeat(np.arange(10), 2).tolist()
    for c in range(10):
        mine = per_mode.group_class == c
        assert per_mode.counts[mine].sum() == per_class.counts[c]
        for layer in per_class.layer_names:
            weighted = (per_mode.counts[mine, None] * per_mode.mean(layer)[mine]).sum(0) / per_class.counts[c]
            np.testing.assert_allclose(weighted, per_class.mean(layer)[c], rtol=1e-4, atol=1e-4)
    stats_file.validate(per_mode, models.get("hinton1200"), 8.0, per_mode.fingerprint)


def test_a_mode_of_fewer_examples_than_units_keeps_a_diagonal_covariance(both_files):
    per_class, per_mode, _ = both_files
    smallest_mode = per_mode.counts.min()
    assert smallest_mode <= 10 < per_class.counts.min()         # the toy's modes are smaller than the logits
    assert per_mode.cov_kind == {name: "diag" for name in per_mode.layer_names}
    assert per_class.cov_kind["logits"] == "full"               # per class as the paper: full up to the limit


def test_a_modes_file_records_full_covariances_of_layers_narrower_than_its_smallest_mode():
    groups = np.repeat(np.arange(4), [12, 30, 11, 40])
    cfg = mock.Mock(max_full_cov_dim=2048)
    assert compute_stats.modes_full_cov_limit(groups, cfg) == 10
    cfg.max_full_cov_dim = 5
    assert compute_stats.modes_full_cov_limit(groups, cfg) == 5


def test_each_class_is_spread_over_its_modes_in_proportion():
    stats = mock.Mock(has_modes=True, counts=np.array([30, 10, 5, 5, 10]), group_class=np.array([0, 0, 1, 1, 2]))
    cfg = mock.Mock(samples_per_class=8, class_weights="")
    counts, group_class = optimize_dataset.run_group_counts(cfg, 3, stats)
    assert counts.tolist() == [6, 2, 4, 4, 8] and group_class is stats.group_class
    plain, classes = optimize_dataset.run_group_counts(cfg, 3)
    assert plain.tolist() == [8, 8, 8] and classes.tolist() == [0, 1, 2]


def test_a_modes_reconstruction_keeps_its_classes(both_files, tmp_path):
    _, per_mode, cfg = both_files
    cfg = type(cfg)(**vars(cfg))
    cfg.procedure, cfg.summary_folder, cfg.run_name = "optimize_dataset", str(tmp_path), "modes_run"
    cfg.stats_file, cfg.batch_stats_weight, cfg.samples_per_class, cfg.optimize_batch_size = per_mode.path, 1.0, 4, 40
    result = optimize_dataset.run(cfg)
    labels = np.load(result["output"][:-len(".npy")] + ".labels.npy")
    assert np.bincount(labels).tolist() == [4] * 10     # classes, not the 20 modes
    x = np.load(result["output"])
    assert x.shape == (40, 784) and np.isfinite(x).all()


def test_grouped_batches_hold_each_mode_in_a_row_and_name_themselves(both_files, tmp_path):
    _, per_mode, cfg = both_files
    outputs = {}
    for order in ("spread", "grouped"):
        run = type(cfg)(**vars(cfg))
        run.procedure, run.summary_folder, run.run_name = "optimize_dataset", str(tmp_path), order
        run.stats_file, run.batch_stats_weight, run.samples_per_class = per_mode.path, 1.0, 4
        run.optimize_batch_size, run.optimization_steps, run.optimize_batch_order = 40, 2, order
        outputs[order] = optimize_dataset.run(run)["output"][:-len(".npy")]
    spread, grouped = (np.load(outputs[o] + ".labels.npy").tolist() for o in ("spread", "grouped"))
    assert set(spread[:20]) == set(spread[20:]) == set(range(10))   # every class in each half of the batch
    assert grouped == sorted(grouped) and np.bincount(grouped).tolist() == [4] * 10   # class by class
    with open(outputs["spread"] + ".json") as f:           # spread is what runs before the flag did
        assert "optimize_batch_order" not in json.load(f)
    with open(outputs["grouped"] + ".json") as f:
        assert json.load(f)["optimize_batch_order"] == "grouped"


def test_modes_and_the_spectral_statistics_are_refused_together(teachers, tmp_path):
    with pytest.raises(UserError, match="--stats_modes=2 records a class as several modes"):
        run_compute_stats(modes_cfg(teachers, tmp_path, 2, compute_graphwise_stats=True))


def test_stats_of_another_class_count_are_refused(both_files):
    _, per_mode, _ = both_files
    spec = models.get("hinton1200")
    spec = spec._replace(layers=spec.layers[:-1] + (spec.layers[-1]._replace(units=12),))
    with pytest.raises(UserError, match="describes 10 classes; hinton1200 has 12"):
        stats_file.validate(per_mode, spec, 8.0, per_mode.fingerprint)
    assert os.path.exists(per_mode.path)


def test_a_missing_modes_file_says_which_compute_stats_makes_it(both_files, tmp_path):
    _, _, cfg = both_files
    cfg = type(cfg)(**vars(cfg))
    cfg.procedure, cfg.summary_folder, cfg.stats_modes, cfg.batch_stats_weight = "optimize_dataset", str(tmp_path), 3, 1.0
    with pytest.raises(UserError, match="_modes3.npz not found; run --procedure=compute_stats with --stats_modes=3"):
        optimize_dataset.run(cfg)


def test_recorded_targets_are_drawn_per_mode_and_the_later_methods_per_class():
    stats = mock.Mock(has_modes=True, counts=np.array([1, 1, 1, 1]), group_class=np.array([0, 0, 1, 1]))
    cfg = mock.Mock(samples_per_class=2, class_weights="", rng_seed=0, noise_mean=0.0, noise_std=1.0)
    spec = mock.Mock(input_size=3)
    recorded = mock.Mock(spec=["sample"])
    later = mock.Mock(spec=["sample", "sample_loss"])
    for sampler, expected in ((recorded, [0, 1, 2, 3]), (later, [0, 0, 1, 1])):
        labels, groups, _, _, _ = optimize_dataset.draw_batch(cfg, spec, sampler, 0, 0, 4, 2, 0, stats=stats)
        assert sorted(sampler.sample.call_args[0][0].tolist()) == expected
        assert labels.tolist() == stats.group_class[groups].tolist()
