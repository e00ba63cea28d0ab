"""The later data-free methods beside the paper's: DeepInversion's BatchNorm-statistics loss and its
fallback and refusal, ZSKD's class similarity and Dirichlet targets."""
import numpy as np
import pytest
import tensorflow as tf

from generators import dafl
from models import builder
from models import graph as model_graph
from models.spec import BatchNorm, Dense, GlobalAvgPool, ModelSpec, ReLU
from reconstruction import objectives
from tests.conftest import make_cfg
from utils.errors import UserError

tf1 = tf.compat.v1
MNIST_PIXELS = dafl.PixelConstants((0.1307,), (0.3081,), "MNIST's")


def bn_loss(spec, values, x, first_bn_weight=1.0):
    with tf.Graph().as_default():
        inputs = tf1.placeholder(tf.float32, [None, spec.input_size])
        model = model_graph.build_frozen(spec, values, inputs)
        targets = objectives.DeepInversionTargets(None, objectives.FrozenTeacher(spec, values, 8.0), bn_weight=1.0,
                                                  first_bn_weight=first_bn_weight)
        loss = targets.batch_loss(model, {}, tf.zeros([len(x)], tf.int32))
        with tf1.Session() as sess:
            return sess.run(loss, {inputs: x})


def test_the_batchnorm_statistics_loss_is_zero_at_the_moving_statistics_and_positive_elsewhere():
    spec = ModelSpec("bn", (4, 4, 3), (BatchNorm("bn"), ReLU(), GlobalAvgPool(), Dense("logits", 2)))
    rng = np.random.default_rng(0)
    x = rng.normal(0.5, 0.2, (6, 48)).astype(np.float32)
    images = x.reshape(6, 4, 4, 3)
    values = {name: rng.normal(size=shape).astype(np.float32) for name, shape in builder.param_shapes(spec).items()}
    values["bn/moving_mean"], values["bn/moving_variance"] = images.mean(axis=(0, 1, 2)), images.var(axis=(0, 1, 2))
    assert bn_loss(spec, values, x) == pytest.approx(0.0, abs=1e-5)
    shifted = dict(values, **{"bn/moving_mean": values["bn/moving_mean"] + 0.1})
    # ||0.1 * ones(3)||_2 per sample, times the batch of 6
    assert bn_loss(spec, shifted, x) == pytest.approx(6 * 0.1 * np.sqrt(3), rel=1e-3)


def test_the_first_batchnorm_layer_weighs_first_bn_weight_times_the_others():
    spec = ModelSpec("bn2", (4, 4, 3), (BatchNorm("bn_a"), ReLU(), BatchNorm("bn_b"), GlobalAvgPool(),
                                        Dense("logits", 2)))
    rng = np.random.default_rng(1)
    x = rng.normal(0.5, 0.2, (5, 48)).astype(np.float32)
    values = {name: rng.normal(size=shape).astype(np.float32) for name, shape in builder.param_shapes(spec).items()}
    values = {k: np.abs(v) if k.endswith("moving_variance") else v for k, v in values.items()}
    first_only = bn_loss(spec, values, x, 1.0) - bn_loss(spec, values, x, 0.0)   # the first layer's term
    assert first_only > 0 and bn_loss(spec, values, x, 0.0) > 0
    assert bn_loss(spec, values, x, 10.0) == pytest.approx(bn_loss(spec, values, x, 1.0) + 9 * first_only, rel=1e-4)


def test_deep_inversion_total_variation_is_the_batch_norm_of_four_directions_of_differences():
    from reconstruction import image_ops
    x = np.random.default_rng(2).random((3, 5, 6)).astype(np.float32)
    directions = (x[:, 1:, :] - x[:, :-1, :], x[:, :, 1:] - x[:, :, :-1], x[:, 1:, :-1] - x[:, :-1, 1:],
                  x[:, :-1, :-1] - x[:, 1:, 1:])
    expected = sum(np.sqrt(np.sum(d.astype(np.float64) ** 2)) for d in directions)
    with tf.Graph().as_default(), tf1.Session() as sess:
        assert sess.run(image_ops.total_variation_norm(tf.constant(x.reshape(3, 30)), (5, 6))) == \
            pytest.approx(expected, rel=1e-5)


def test_an_objective_takes_its_authors_settings_where_no_flag_names_them(capsys):
    from procedures.optimize_dataset import settle_defaults
    deep = objectives.get("deep_inversion")
    cfg = settle_defaults(make_cfg(optimization_objective="deep_inversion", jitter=5, explicit_flags=["jitter"]))
    assert cfg.jitter == 5   # named: kept
    assert all(getattr(cfg, name) == value for name, value in deep.defaults.items() if name != "jitter")
    assert "deep_inversion at its authors' settings: --bn_weight=10 --first_bn_weight=10 --lr=0.01" in \
        capsys.readouterr().out
    plain = settle_defaults(make_cfg(optimization_objective="top_layer", explicit_flags=[]))
    assert (plain.jitter, plain.clip_inputs, plain.lr, plain.optimize_beta1) == (0, False, None, 0.9)


def test_each_authors_setting_is_in_its_flags_help():
    from config.flags import BY_NAME
    for objective in objectives.OBJECTIVES.values():
        for name, value in objective.defaults.items():
            shown = str(value).lower() if isinstance(value, bool) else f"{value:g}"
            assert f"{objective.name}: {shown}" in BY_NAME[name].help, (name, shown)


def test_deep_inversion_on_a_teacher_without_batchnorm_uses_the_recorded_statistics_or_refuses(
        tmp_path, teachers, capsys):
    from unittest import mock

    import datasets
    from procedures import compute_stats, optimize_dataset
    from tests.conftest import toy_for
    cfg, trained = teachers["hinton1200"]
    common = dict(summary_folder=str(tmp_path), run_name="di", model="hinton1200",
                  model_checkpoint=trained["model_checkpoint"], optimization_objective="deep_inversion",
                  procedure="optimize_dataset", samples_per_class=2, optimization_steps=5)
    with pytest.raises(UserError, match=r"^--optimization_objective=deep_inversion: --model=hinton1200 has no "
                                        r"BatchNorm layer, and there is no stats file at .*; run "
                                        r"--procedure=compute_stats first .* or give a teacher with BatchNorm$"):
        optimize_dataset.run(make_cfg(**common))
    with mock.patch.object(datasets, "get", lambda name, data_dir, flag="--dataset": toy_for(784)):
        compute_stats.run(make_cfg(**dict(common, procedure="compute_stats")))
    made = optimize_dataset.run(make_cfg(**common))
    assert made["samples"] == 20
    assert "deep_inversion: hinton1200 has no BatchNorm; matching the per-layer statistics of" in capsys.readouterr().out


def test_zskd_class_similarity_is_the_min_max_scaled_cosine_of_the_final_weights():
    w = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])   # [features, classes]: class 2 lies between 0 and 1
    cos = np.array([[1, 0, 1 / np.sqrt(2)], [0, 1, 1 / np.sqrt(2)], [1 / np.sqrt(2), 1 / np.sqrt(2), 1]])
    low, high = cos.min(axis=1, keepdims=True), cos.max(axis=1, keepdims=True)
    np.testing.assert_allclose(objectives.class_similarity(w), (cos - low) / (high - low), atol=1e-12)


def test_zskd_targets_have_the_dirichlet_mean_of_their_class_at_both_concentrations():
    spec = ModelSpec("mlp", (4,), (Dense("hidden", 5), Dense("logits", 3)))
    rng = np.random.default_rng(0)
    values = {name: rng.normal(size=shape).astype(np.float32) for name, shape in builder.param_shapes(spec).items()}
    targets = objectives.ZskdTargets(objectives.FrozenTeacher(spec, values, 8.0))
    labels = np.full(40000, 2)
    drawn = targets.sample(labels, np.random.default_rng(1))["soft"]
    alpha = targets.concentration(labels)
    half = len(labels) // 2
    for part in (slice(0, half), slice(half, None)):   # beta = 1.0, then 0.1
        expected = alpha[part][0] / alpha[part][0].sum()
        np.testing.assert_allclose(drawn[part].mean(axis=0), expected, atol=0.01)
    np.testing.assert_allclose(alpha[0], objectives.ZSKD_BETAS[0] * np.maximum(
        objectives.class_similarity(values["logits/weights"])[2], 1e-3 / objectives.ZSKD_BETAS[0]))
    assert np.allclose(drawn.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_a_dafl_generator_step_lowers_its_loss_on_a_tiny_teacher(teachers):
    import models
    from generators import dafl
    from models import checkpoint
    cfg, trained = teachers["hinton1200"]
    spec = models.get("hinton1200")
    values = checkpoint.load_teacher_values(spec, "", trained["model_checkpoint"])
    with tf.Graph().as_default():
        step = tf1.placeholder(tf.int64, [])
        x = dafl.generate(spec, dafl.codes(0, step, 64), MNIST_PIXELS, dafl.LAYERS)
        loss, _ = dafl.generator_loss(model_graph.build_frozen(spec, values, x))
        train = tf1.train.AdamOptimizer(1e-3).minimize(loss, var_list=dafl.generator_variables())
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            before = sess.run(loss, {step: 0})
            for _ in range(20):
                sess.run(train, {step: 0})
            after = sess.run(loss, {step: 0})
            pixels = sess.run(x, {step: 0})
    assert after < before and pixels.shape == (64, 784)
    assert pixels.mean() == pytest.approx(0.1307, abs=1e-4) and pixels.std() == pytest.approx(0.3081, abs=1e-3)


def test_the_dafl_generator_cannot_collapse_into_one_image(teachers):
    """With its output conv's weights and bias a thousand times too large (where DAFL's learning rate
    of 0.2 drives them), the samples still differ from each other, keep the data's mean and std, and the
    teacher's loss still reaches the layers below: the batch standardization of the output sees to it."""
    import models
    from generators import dafl
    from models import checkpoint
    _, trained = teachers["hinton1200"]
    spec = models.get("hinton1200")
    values = checkpoint.load_teacher_values(spec, "", trained["model_checkpoint"])
    with tf.Graph().as_default():
        x = dafl.generate(spec, dafl.codes(0, 0, 64), MNIST_PIXELS, dafl.LAYERS)
        loss, _ = dafl.generator_loss(model_graph.build_frozen(spec, values, x))
        out = [v for v in dafl.generator_variables() if v.name.startswith("generator/out/")]
        below = [v for v in dafl.generator_variables() if v not in out]
        gradients = tf.gradients(loss, below)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            for v in out:
                sess.run(v.assign(1000.0 * v + (1000.0 if "biases" in v.name else 0.0)))
            pixels, grads = sess.run([x, gradients])
    assert pixels.std(axis=0).mean() > 0.05   # samples differ pixel by pixel, not one image repeated
    assert pixels.mean() == pytest.approx(0.1307, abs=1e-3) and pixels.std() == pytest.approx(0.3081, abs=1e-3)
    assert sum(float(np.abs(g).sum()) for g in grads) > 1e-3   # the layers below the output still learn


def test_each_methods_generator_has_its_scripts_tanh(teachers):
    """DAFL's and DFAD's generators bound the output conv by a tanh before the last standardization: with
    that conv's weights a thousand times too large, almost every pixel saturates to one of two values
    (without the tanh the standardization keeps a continuum)."""
    import models
    from generators import dafl, dfad
    spec = models.get("hinton1200")
    saturated = {}   # the share of pixels at the batch's lowest or highest value
    for name, layers in (("dafl", dafl.LAYERS), ("dfad", dfad.LAYERS), ("none", dafl.LAYERS._replace(tanh=False))):
        with tf.Graph().as_default():
            x = dafl.generate(spec, dafl.codes(0, 0, 64), MNIST_PIXELS, layers)
            out = [v for v in dafl.generator_variables() if v.name.startswith("generator/out/weights")]
            with tf1.Session() as sess:
                sess.run(tf1.global_variables_initializer())
                sess.run(out[0].assign(1000.0 * out[0]))
                pixels = sess.run(x)
                saturated[name] = np.mean(np.isclose(pixels, pixels.min(), atol=1e-3) |
                                          np.isclose(pixels, pixels.max(), atol=1e-3))
    assert saturated["dafl"] > 0.9 and saturated["dfad"] > 0.9 and saturated["none"] < 0.01
    assert dfad.LAYERS.version != dafl.LAYERS.version   # each method's runs carry their own definition


def test_each_channel_of_a_generated_batch_has_the_given_pixel_mean_and_std():
    """DAFL's teachers read the generator's standardized image; dfkd's read pixels, so each channel is
    mapped back by the data's constants (a colour teacher's three differ)."""
    from generators import dafl
    spec = ModelSpec("rgb", (8, 8, 3), (GlobalAvgPool(), Dense("logits", 2)))
    pixels = dafl.PixelConstants((0.49, 0.48, 0.45), (0.25, 0.24, 0.26), "test")
    with tf.Graph().as_default():
        x = dafl.generate(spec, dafl.codes(0, 0, 32), pixels, dafl.LAYERS)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            images = sess.run(x).reshape(32, 64, 3)
    np.testing.assert_allclose(images.mean(axis=(0, 1)), pixels.mean, atol=1e-4)
    np.testing.assert_allclose(images.std(axis=(0, 1)), pixels.std, atol=1e-3)


def test_the_generators_pixel_constants_come_from_the_flags_or_the_teachers_normalization():
    from generators import dafl
    from models.spec import Normalize
    plain = ModelSpec("plain", (8, 8, 3), (GlobalAvgPool(), Dense("logits", 2)))
    given = dafl.pixel_constants(plain, "0.5", "0.2,0.25,0.3")
    assert (given.mean, given.std) == ((0.5,), (0.2, 0.25, 0.3))   # one value stands for every channel
    normalizing = plain._replace(normalize=Normalize((0.4, 0.5, 0.6), (0.2, 0.2, 0.2)))
    own = dafl.pixel_constants(normalizing)
    assert (own.mean, own.std) == ((0.4, 0.5, 0.6), (0.2, 0.2, 0.2)) and "input normalization" in own.source
    assert dafl.pixel_constants(normalizing, "0.1", "0.3").mean == (0.1,)   # the flags win
    with pytest.raises(UserError, match="--model=plain normalizes no input: give --pixel_mean and --pixel_std"):
        dafl.pixel_constants(plain)
    with pytest.raises(UserError, match="^--pixel_std is needed too"):
        dafl.pixel_constants(plain, "0.5", "")
    with pytest.raises(UserError, match="2 numbers for an input of 3 channels"):
        dafl.pixel_constants(plain, "0.5,0.4", "0.2")
    with pytest.raises(UserError, match="expected numbers > 0"):
        dafl.pixel_constants(plain, "0.5", "0")
    with pytest.raises(UserError, match="expected comma-separated numbers"):
        dafl.pixel_constants(plain, "grey", "0.2")


@pytest.mark.slow
def test_a_dfad_generator_step_raises_the_discrepancy_and_moves_only_the_generator(teachers):
    import models
    from generators import dafl, dfad
    from models import checkpoint
    _, trained = teachers["hinton1200"]
    spec, student_spec = models.get("hinton1200"), models.get("hinton800")
    values = checkpoint.load_teacher_values(spec, "", trained["model_checkpoint"])
    with tf.Graph().as_default():
        x = dafl.generate(spec, dafl.codes(0, 0, 64, stream=1), MNIST_PIXELS, dfad.LAYERS)
        student = model_graph.build_trainable(student_spec, seed=0, inputs=x)
        gap = dfad.discrepancy(student.model.logits, model_graph.build_frozen(spec, values, x).logits)
        train = tf1.train.AdamOptimizer(1e-3).minimize(-gap, var_list=dafl.generator_variables())
        student_vars = dafl.other_trainable_variables()
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            before, student_before = sess.run(gap), sess.run(student_vars)
            for _ in range(20):
                sess.run(train)
            after, student_after = sess.run(gap), sess.run(student_vars)
            other_stream = sess.run(dafl.codes(0, 0, 64, stream=0)) - sess.run(dafl.codes(0, 0, 64, stream=1))
    assert after > before and student_vars and not any("generator" in v.name for v in student_vars)
    assert all(np.array_equal(a, b) for a, b in zip(student_before, student_after))
    assert np.abs(other_stream).min() > 0   # the generator's codes are not the student's


@pytest.mark.slow
@pytest.mark.parametrize("method", ["dafl", "dfad"])
def test_generator_distillation_resumes_exactly_where_it_stopped(tmp_path, teachers, monkeypatch, method):
    """Stopped after one epoch and resumed, the generator and the student end as the uninterrupted run's."""
    from unittest import mock

    import datasets
    import models
    from generators import dafl
    from models import checkpoint
    from procedures import distill
    from tests.conftest import toy_for
    _, trained = teachers["hinton1200"]
    monkeypatch.setattr(dafl, "STEPS_PER_EPOCH", 3)

    def run(name):
        with mock.patch.object(datasets, "get", lambda n, d, flag="--dataset": toy_for(784)):
            return distill.run(make_cfg(procedure="distill", summary_folder=str(tmp_path), run_name=name,
                                        method=method, dataset="", eval_dataset="toy", epochs=2, train_batch_size=16,
                                        checkpoint_interval=3, model_checkpoint=trained["model_checkpoint"],
                                        pixel_mean="0.1307", pixel_std="0.3081"))

    class Interrupted(distill.Progress):   # stops the run at step 4, after the checkpoint of step 3
        def update(self, done, **values):
            if done == 4:
                raise KeyboardInterrupt
            super().update(done, **values)
    whole = run("whole")
    with mock.patch.object(distill, "Progress", Interrupted), pytest.raises(KeyboardInterrupt):
        run("pieces")
    resumed = run("pieces")
    # DAFL: a generator step with each of the 6 student steps; DFAD: one after the 5th, on its own batch
    assert whole["steps"] == resumed["steps"] == 6
    assert resumed["generated_samples"] == {"dafl": 6, "dfad": 7}[method] * 16 == whole["generated_samples"]
    read = lambda r: tf.train.load_checkpoint(r["student_checkpoint"])  # noqa: E731
    for name in ("generator/conv1/weights", "fc1/weights"):
        np.testing.assert_allclose(read(resumed).get_tensor(name), read(whole).get_tensor(name), rtol=1e-5, atol=1e-6)
    assert resumed["test_accuracy"] == pytest.approx(whole["test_accuracy"])
    # the last generator's samples, kept to be looked at: the same generator makes the same ones
    pictured = [np.load(r["generated_file"]) for r in (whole, resumed)]
    assert pictured[0].shape == (distill.PICTURED_SAMPLES, 784)
    np.testing.assert_allclose(pictured[1], pictured[0], atol=1e-5)
    spec = models.get("hinton800")
    checkpoint.load_teacher_values(spec, "", resumed["student_checkpoint"])   # the student reads as any student


@pytest.mark.slow
def test_dfad_student_steps_leave_the_generator_alone(tmp_path, teachers, monkeypatch):
    """Before its first generator step (after the 5th student step), a DFAD run's generator is its
    initial one whatever the student's learning rate: the student's loss reaches the generator too,
    and only the student's variables may take its step."""
    from unittest import mock

    import datasets
    from generators import dafl
    from procedures import distill
    from tests.conftest import toy_for
    _, trained = teachers["hinton1200"]
    monkeypatch.setattr(dafl, "STEPS_PER_EPOCH", 3)

    def run(name, lr):
        with mock.patch.object(datasets, "get", lambda n, d, flag="--dataset": toy_for(784)):
            result = distill.run(make_cfg(procedure="distill", summary_folder=str(tmp_path), run_name=name,
                                          method="dfad", dataset="", eval_dataset="toy", epochs=1, train_batch_size=16, lr=lr,
                                          model_checkpoint=trained["model_checkpoint"], pixel_mean="0.1307",
                                          pixel_std="0.3081"))
        return tf.train.load_checkpoint(result["student_checkpoint"])
    slow, fast = run("slow", 0.001), run("fast", 0.01)
    np.testing.assert_array_equal(slow.get_tensor("generator/conv1/weights"), fast.get_tensor("generator/conv1/weights"))
    assert not np.array_equal(slow.get_tensor("fc1/weights"), fast.get_tensor("fc1/weights"))


@pytest.mark.slow
def test_dfad_students_train_with_dfads_sgd_and_dafl_students_with_dafls_adam_and_batch(tmp_path, teachers,
                                                                                        monkeypatch):
    """Without --lr and --train_batch_size, a DFAD student takes DFAD's own optimizer (SGD at 0.01 with
    momentum: its checkpoint holds momentum slots, no Adam ones) and DFAD's batch of 512, and its run
    records that; DAFL's takes DAFL's Adam at 0.002 and its batch of 512."""
    import json
    import os
    from unittest import mock

    import datasets
    from generators import dafl
    from procedures import distill
    from tests.conftest import toy_for
    _, trained = teachers["hinton1200"]
    monkeypatch.setattr(dafl, "STEPS_PER_EPOCH", 2)
    for method in ("dfad", "dafl"):
        with mock.patch.object(datasets, "get", lambda n, d, flag="--dataset": toy_for(784)):
            result = distill.run(make_cfg(procedure="distill", summary_folder=str(tmp_path), run_name=method,
                                          method=method, dataset="", eval_dataset="toy", epochs=1, train_batch_size=None,
                                          model_checkpoint=trained["model_checkpoint"], pixel_mean="0.1307",
                                          pixel_std="0.3081"))
        names = {name for name, _ in tf.train.list_variables(result["student_checkpoint"])}
        with open(os.path.join(os.path.dirname(result["student_checkpoint"]), "hinton800.settings.json")) as f:
            settings = json.load(f)
        if method == "dfad":
            assert "fc1/weights/Momentum" in names and "fc1/weights/Adam" not in names   # the generator keeps Adam
            assert settings["lr"] == 0.01 and settings["student_optimizer_version"] == 2
            assert settings["train_batch_size"] == 512 and result["generated_samples"] == (2 + 0) * 512
        else:
            assert "fc1/weights/Adam" in names and not any(n.endswith("/Momentum") for n in names)
            assert settings["lr"] == 0.002 and settings["student_optimizer_version"] == 1
            assert settings["train_batch_size"] == 512 and result["generated_samples"] == 2 * 512


def test_a_methods_own_student_optimizer_decays_weights_as_pytorch_does():
    """One SGD step on a loss with no gradient of its own moves each weight by -lr x weight_decay x weight
    (PyTorch's SGD weight decay); without a method's optimizer the loss is left as it is."""
    import generators
    from distillation import student
    own = generators.own_student_optimizer("dfad")._replace(weight_decay=0.1)
    with tf.Graph().as_default():
        w = tf1.get_variable("w", initializer=np.array([1.0, -2.0], np.float32))
        loss = 0.0 * tf.reduce_sum(w)
        optimizer, lowered = student.student_training(loss, [w], 0.5, own)
        step = optimizer.minimize(lowered)
        adam_optimizer, adam_lowered = student.student_training(loss, [w], 0.5, None)
        assert isinstance(adam_optimizer, tf1.train.AdamOptimizer) and adam_lowered is loss
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            sess.run(step)
            np.testing.assert_allclose(sess.run(w), [1.0 * 0.95, -2.0 * 0.95], rtol=1e-6)


def test_every_method_choice_has_its_generator_method():
    """--method's choices and the generator registry name the same set, and the synthesis cost counts the
    batches each method's generator drew."""
    import generators
    from config import choices
    assert tuple(generators.METHODS) == choices.METHODS
    dafl, dfad = generators.METHODS["dafl"], generators.METHODS["dfad"]
    assert (dafl.generator_steps(10), dafl.generated_samples(10, 16)) == (10, 160)   # one shared batch per step
    assert (dfad.generator_steps(10), dfad.generated_samples(10, 16)) == (2, 192)    # plus one per generator step


def test_a_generator_run_of_another_generator_version_is_not_resumed(tmp_path, teachers, monkeypatch):
    """A DAFL run checkpointed by one definition of the generator is refused, by name, by the next."""
    from unittest import mock

    import datasets
    import generators
    from generators import dafl
    from procedures import distill
    from tests.conftest import toy_for
    _, trained = teachers["hinton1200"]
    monkeypatch.setattr(dafl, "STEPS_PER_EPOCH", 3)

    def run(epochs):
        with mock.patch.object(datasets, "get", lambda n, d, flag="--dataset": toy_for(784)):
            return distill.run(make_cfg(procedure="distill", summary_folder=str(tmp_path), run_name="g",
                                        method="dafl", dataset="", eval_dataset="toy", epochs=epochs, train_batch_size=16,
                                        model_checkpoint=trained["model_checkpoint"], pixel_mean="0.1307",
                                        pixel_std="0.3081"))
    run(1)
    version = dafl.LAYERS.version
    methods = generators.METHODS
    monkeypatch.setitem(methods, "dafl", methods["dafl"]._replace(layers=dafl.LAYERS._replace(version=version + 1)))
    with pytest.raises(UserError, match=rf"generator_version={version} there, {version + 1} now"):
        run(2)


@pytest.mark.slow
def test_a_run_started_over_leaves_no_curves_of_the_run_it_replaced(tmp_path, teachers, monkeypatch):
    """reproduce discards a stage's checkpoints when its settings change; the run that starts over
    must not show its predecessor's TensorBoard curves beside its own."""
    import glob
    import os
    from unittest import mock

    import datasets
    from procedures import distill
    from runtime import resumable
    from tests.conftest import toy_for
    _, trained = teachers["hinton1200"]
    monkeypatch.setattr(dafl, "STEPS_PER_EPOCH", 3)

    def run():
        with mock.patch.object(datasets, "get", lambda n, d, flag="--dataset": toy_for(784)):
            return distill.run(make_cfg(procedure="distill", summary_folder=str(tmp_path), run_name="g",
                                        method="dafl", dataset="", eval_dataset="toy", epochs=1, train_batch_size=16,
                                        model_checkpoint=trained["model_checkpoint"], pixel_mean="0.1307",
                                        pixel_std="0.3081"))
    folder = os.path.dirname(os.path.dirname(run()["student_checkpoint"]))
    resumable.discard(os.path.join(folder, "checkpoint"), "hinton800")
    run()
    assert len(glob.glob(os.path.join(folder, "events.out.tfevents.*"))) == 1

