"""models.layers.BatchNormalization computes what Keras' layer computes, with the fused kernel."""

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

import models
from models import layers
from models.gan import dtype_policy

# 4-D maps (the fused kernel) and 2-D matrices (Keras' path); small batches, so that the biased
# and unbiased variances differ by 1/n = 1/36 and 1/12, far above float rounding.
SHAPES = ((4, 3, 3, 5), (12, 6))


def _pair(shape, **kwargs):
    kwargs = {"momentum": 0.9, "epsilon": 1e-5, **kwargs}
    plain, fused = keras.layers.BatchNormalization(**kwargs), layers.BatchNormalization(**kwargs)
    for layer in (plain, fused):
        layer.build(shape)
    rng = np.random.default_rng(1)
    channels = shape[-1]
    values = {"gamma": rng.normal(1.0, 0.3, channels), "beta": rng.normal(0.0, 0.3, channels),
              "moving_mean": rng.normal(0.0, 0.3, channels), "moving_variance": rng.uniform(0.5, 2.0, channels)}
    for layer in (plain, fused):
        for weight in layer.weights:
            weight.assign(values[weight.name].astype("float32"))
    return plain, fused


def _training_call(layer, x):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        # A loss that weighs each output differently, so that every gradient term matters.
        loss = tf.reduce_sum(tf.cast(y, "float32") * tf.sin(tf.cast(x, "float32") * 3.0))
    trainable = [w.value for w in layer.trainable_weights]
    return y, tape.gradient(loss, [x, *trainable])


def _close(a, b, rtol, atol):
    np.testing.assert_allclose(np.asarray(tf.cast(a, "float32")), np.asarray(tf.cast(b, "float32")),
                               rtol=rtol, atol=atol)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16"])
@pytest.mark.parametrize("center_scale", [(True, True), (False, False)])
def test_the_fused_layer_computes_what_keras_layer_computes(shape, precision, center_scale):
    center, scale = center_scale
    with dtype_policy(precision):
        plain, fused = _pair(shape, center=center, scale=scale)
    # bfloat16 outputs and input gradients agree to a bfloat16 rounding (8 bits); everything
    # the layer keeps in float32 (statistics, gamma and beta gradients) to float32 rounding.
    tol = (1e-5, 1e-5) if precision == "float32" else (2e-2, 2e-2)
    rng = np.random.default_rng(2)
    for _ in range(4):
        x = tf.constant(rng.normal(2.0, 3.0, shape).astype("float32"))
        if precision != "float32":
            x = tf.cast(x, "bfloat16")
        (y_plain, g_plain), (y_fused, g_fused) = _training_call(plain, x), _training_call(fused, x)
        assert y_fused.dtype == y_plain.dtype
        _close(y_fused, y_plain, *tol)
        _close(g_fused[0], g_plain[0], *tol)
        for a, b in zip(g_fused[1:], g_plain[1:]):
            _close(a, b, 1e-4, 1e-4)
    _close(fused.moving_mean, plain.moving_mean, 1e-5, 1e-6)
    _close(fused.moving_variance, plain.moving_variance, 1e-5, 1e-6)
    # Inference: the moving statistics.
    x = tf.constant(rng.normal(0.0, 1.0, shape).astype("float32"))
    _close(fused(x, training=False), plain(x, training=False), *tol)


def _op_types(layer, shape, training):
    function = tf.function(lambda x: layer(x, training=training))
    graph = function.get_concrete_function(tf.TensorSpec(shape, "float32")).graph
    return {op.type for op in graph.get_operations()}


def test_training_mode_runs_the_fused_kernel_on_maps_only():
    _, fused = _pair(SHAPES[0])
    assert "FusedBatchNormV3" in _op_types(fused, SHAPES[0], True)
    assert "FusedBatchNormV3" not in _op_types(fused, SHAPES[0], False)
    _, dense = _pair(SHAPES[1])
    assert "FusedBatchNormV3" not in _op_types(dense, SHAPES[1], True)


def test_other_ranks_masks_and_frozen_layers_take_keras_path():
    plain, fused = _pair((4, 6, 5))
    assert "FusedBatchNormV3" not in _op_types(fused, (4, 6, 5), True)
    x = tf.random.normal((4, 6, 5), seed=3)
    mask = tf.constant(np.random.default_rng(4).uniform(size=(4, 6)) > 0.3)
    _close(fused(x, training=True, mask=mask), plain(x, training=True, mask=mask), 1e-5, 1e-5)
    _close(fused.moving_variance, plain.moving_variance, 1e-6, 1e-6)
    _, frozen = _pair((4, 3, 3, 5))
    frozen.trainable = False
    assert "FusedBatchNormV3" not in _op_types(frozen, (4, 3, 3, 5), True)


def test_synchronized_batch_norm_under_several_replicas_takes_keras_path(monkeypatch):
    _, fused = _pair((4, 3, 3, 5), synchronized=True)
    x = tf.zeros((4, 3, 3, 5))
    assert fused._fusable(x, True, None)

    class TwoReplicas:
        num_replicas_in_sync = 2

    monkeypatch.setattr(tf.distribute, "get_strategy", lambda: TwoReplicas())
    assert not fused._fusable(x, True, None)


def test_config_round_trip_and_serialization():
    _, fused = _pair((4, 3, 3, 5), center=False, synchronized=True)
    config = fused.get_config()
    again = layers.BatchNormalization.from_config(config)
    assert again.get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(fused))
    assert type(restored) is layers.BatchNormalization and restored.get_config() == config


def _dcgan(keras_bn):
    keras.utils.set_random_seed(0)
    if keras_bn:
        with layers.keras_batch_norm():
            return models.get("dcgan", seed=0)
    return models.get("dcgan", seed=0)


def _h5_layout(path):
    names = []
    with h5py.File(path) as f:
        f.visit(lambda name: names.append((name, getattr(f[name], "shape", None))))
    return sorted(names)


def test_dcgan_uses_the_fused_layer_and_saves_the_same_weights_layout(tmp_path):
    fused, plain = _dcgan(False), _dcgan(True)
    norms = [la for net in (fused.generator, fused.discriminator) for la in net.layers
             if isinstance(la, keras.layers.BatchNormalization)]
    assert len(norms) == 3 and all(type(la) is layers.BatchNormalization for la in norms)
    assert all(type(la) is keras.layers.BatchNormalization for la in plain.generator.layers
               if isinstance(la, keras.layers.BatchNormalization))
    plain.save_weights(tmp_path / "plain.weights.h5")
    fused.save_weights(tmp_path / "fused.weights.h5")
    assert _h5_layout(tmp_path / "plain.weights.h5") == _h5_layout(tmp_path / "fused.weights.h5")
    assert "generator/layers/batch_normalization_1/vars/3" in dict(_h5_layout(tmp_path / "fused.weights.h5"))


def test_weights_saved_with_keras_layer_load_into_the_fused_one(tmp_path):
    plain, fused = _dcgan(True), _dcgan(False)
    # Moving statistics away from their initial values, so that loading them is checked too.
    plain.compile()
    plain.fit(tf.data.Dataset.from_tensors(tf.random.uniform((8, 28, 28, 1), -1, 1, seed=5)).repeat(),
              steps_per_epoch=2, epochs=1, verbose=0)
    plain.save_weights(tmp_path / "plain.weights.h5")
    fused.load_weights(tmp_path / "plain.weights.h5")
    for a, b in zip(plain.generator.weights + plain.discriminator.weights,
                    fused.generator.weights + fused.discriminator.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    latent = tf.random.uniform((16, 100), -1, 1, seed=6)
    _close(fused.generator(latent, training=False), plain.generator(latent, training=False), 1e-6, 1e-6)
    _close(fused.generator(latent, training=True), plain.generator(latent, training=True), 1e-4, 1e-4)
