"""The zoo's convolution layers (models/layers.py): the convolution form of the kernel gradient
against TensorFlow's own, the rule that chooses it, and layers that save like Keras' own."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import models
from models import layers
from models.gan import dtype_policy


def native_kernel_gradient(x, dy, kernel_shape, strides, padding):
    return tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=kernel_shape, out_backprop=dy,
                                           strides=[1, *strides, 1], padding=padding)


CASES = [  # input NHWC, kernel, strides, padding
    ((2, 14, 14, 3), (4, 4, 3, 5), (2, 2), "SAME"),
    ((3, 9, 7, 2), (3, 3, 2, 4), (2, 2), "SAME"),      # odd sizes: uneven padding
    ((2, 8, 8, 3), (5, 5, 3, 2), (1, 1), "SAME"),
    ((2, 11, 10, 2), (3, 2, 2, 3), (2, 3), "VALID"),   # VALID leaves rows unread
    ((1, 10, 10, 4), (4, 4, 4, 6), (3, 3), "SAME"),
    ((2, 7, 7, 1), (7, 7, 1, 2), (1, 1), "VALID"),     # a 1x1 output
    ((1, 11, 10, 2), (1, 2, 2, 3), (3, 3), "SAME"),    # a stride larger than the kernel: rows unread
]


@pytest.mark.parametrize("x_shape, kernel_shape, strides, padding", CASES)
def test_the_convolution_form_is_the_kernel_gradient_in_float64(x_shape, kernel_shape, strides, padding):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=x_shape))
    y = tf.nn.conv2d(x, tf.zeros(kernel_shape, tf.float64), strides, padding)
    dy = tf.constant(rng.normal(size=y.shape))
    got = layers.kernel_gradient(x, dy, kernel_shape, strides, padding)
    want = native_kernel_gradient(x, dy, kernel_shape, strides, padding)
    assert got.shape == kernel_shape
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12, atol=1e-12)


def test_the_kernel_gradient_by_hand_on_a_tiny_convolution():
    # x = 0..15 as a 4x4 map, a 2x2 kernel, stride 2, VALID: four output positions, dy = 1
    # everywhere, so dK[i, j] is the sum of x at rows i, i+2 and columns j, j+2.
    x = tf.reshape(tf.range(16, dtype=tf.float64), (1, 4, 4, 1))
    dy = tf.ones((1, 2, 2, 1), tf.float64)
    got = layers.kernel_gradient(x, dy, (2, 2, 1, 1), (2, 2), "VALID").numpy()[:, :, 0, 0]
    assert got.tolist() == [[0 + 2 + 8 + 10, 1 + 3 + 9 + 11], [4 + 6 + 12 + 14, 5 + 7 + 13 + 15]]


def _gradients(layer, x, seed=1):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        weights = tf.cast(tf.random.stateless_normal(tf.shape(y), (seed, 0)), y.dtype)
        loss = tf.reduce_sum(tf.cast(y * weights, tf.float32))
    dx, dk = tape.gradient(loss, [x, layer.kernel])
    return y, dx, dk


def _pair(kind, **kwargs):
    """The zoo's layer and Keras' own with the same weights."""
    zoo = getattr(layers, kind)(**kwargs)
    ref = getattr(keras.layers, kind)(**kwargs)
    return zoo, ref


@pytest.mark.parametrize("kind, x_shape, filters", [
    ("Conv2D", (4, 14, 14, 64), 128),            # DCGAN's discriminator at 28x28: 7x7 output
    ("Conv2D", (2, 8, 8, 96), 32),               # a 4x4 output
    ("Conv2DTranspose", (4, 7, 7, 128), 64),     # DCGAN's generator at 28x28: from 7x7 to 14x14, 64 channels
    ("Conv2DTranspose", (2, 4, 4, 32), 80),
])
def test_bfloat16_layers_take_the_convolution_form_and_agree_with_keras(kind, x_shape, filters):
    with dtype_policy("mixed_bfloat16"):
        zoo, ref = _pair(kind, filters=filters, kernel_size=4, strides=2, padding="same", use_bias=True,
                         activation="relu")
        x = tf.cast(tf.random.stateless_normal(x_shape, (0, 0)), tf.bfloat16)
        zoo.build(x.shape)
        ref.build(x.shape)
        ref.set_weights([w + 0.01 * i for i, w in enumerate(zoo.get_weights())])
        zoo.set_weights(ref.get_weights())
        # the route is taken: the gradient tape meets the custom gradient's IdentityN op
        graph = tf.function(lambda x: _gradients(zoo, x)).get_concrete_function(x).graph
        assert any(op.type == "IdentityN" for op in graph.get_operations())
        y, dx, dk = _gradients(zoo, x)
        y_ref, dx_ref, dk_ref = _gradients(ref, x)
    # the same forward and input-gradient kernels: equal to the bit
    np.testing.assert_array_equal(y.numpy().astype(np.float32), y_ref.numpy().astype(np.float32))
    np.testing.assert_array_equal(dx.numpy().astype(np.float32), dx_ref.numpy().astype(np.float32))
    # the kernel gradient: the same sum in another order, in bfloat16 (8 bits of mantissa)
    assert dk.dtype == dk_ref.dtype == tf.float32
    scale = float(tf.reduce_max(tf.abs(dk_ref)))
    np.testing.assert_allclose(dk.numpy(), dk_ref.numpy(), atol=2e-2 * scale)
    assert float(tf.reduce_mean(tf.abs(dk - dk_ref))) < 2e-3 * scale


@pytest.mark.parametrize("policy, x_shape, expected", [
    ("float32", (2, 14, 14, 64), False),             # float32 keeps TensorFlow's gradient
    ("mixed_bfloat16", (2, 14, 14, 64), True),
    ("mixed_float16", (2, 14, 14, 64), True),
    ("mixed_bfloat16", (2, 14, 14, 32), False),       # too few input channels
    ("mixed_bfloat16", (2, 16, 16, 64), True),        # an 8x8 output: 64 positions, the most
    ("mixed_bfloat16", (2, 18, 18, 64), False),       # a 9x9 output: 81 positions
])
def test_the_route_is_chosen_by_precision_and_shape(policy, x_shape, expected):
    def taken(layer, x):
        graph = tf.function(lambda x: _gradients(layer, x)).get_concrete_function(x).graph
        return any(op.type == "IdentityN" for op in graph.get_operations())

    with dtype_policy(policy):
        conv = layers.Conv2D(16, 4, strides=2, padding="same")
        x = tf.cast(tf.zeros(x_shape), conv.compute_dtype)
        assert taken(conv, x) is expected
        with layers.native_kernel_gradients():
            assert taken(layers.Conv2D(16, 4, strides=2, padding="same"), x) is False
        # nor, on an input every other rule admits (8x8 output, 64 channels), a dilated or a
        # grouped convolution
        small = tf.cast(tf.zeros((2, 8, 8, 64)), conv.compute_dtype)
        admitted = conv.compute_dtype != "float32"
        assert taken(layers.Conv2D(16, 3, padding="same"), small) is admitted
        assert taken(layers.Conv2D(16, 3, dilation_rate=2, padding="same"), small) is False
        assert taken(layers.Conv2D(16, 3, groups=2, padding="same"), small) is False


def test_an_unknown_batch_size_traces_and_runs():
    with dtype_policy("mixed_bfloat16"):
        conv = layers.Conv2DTranspose(64, 4, strides=2, padding="same")
        conv.build((None, 4, 4, 32))
        step = tf.function(lambda x: _gradients(conv, x),
                           input_signature=[tf.TensorSpec((None, 4, 4, 32), tf.bfloat16)])
        for batch in (3, 5):
            y, dx, dk = step(tf.ones((batch, 4, 4, 32), tf.bfloat16))
            assert y.shape == (batch, 8, 8, 64) and dx.shape == (batch, 4, 4, 32) and dk.shape == (4, 4, 64, 32)


def test_second_order_gradients_flow_through_the_convolution_form():
    # WGAN-GP differentiates the norm of an input gradient with respect to the weights.
    def penalty_gradient(layer, x):
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                inner.watch(x)
                score = tf.reduce_sum(tf.cast(layer(x), tf.float32) ** 2)
            g = inner.gradient(score, x)
            penalty = tf.reduce_sum(tf.cast(g, tf.float32) ** 2)
        return outer.gradient(penalty, layer.kernel)

    with dtype_policy("mixed_bfloat16"):
        zoo, ref = _pair("Conv2D", filters=16, kernel_size=4, strides=2, padding="same", use_bias=False)
        x = tf.cast(tf.random.stateless_normal((2, 8, 8, 64), (3, 0)), tf.bfloat16)
        zoo.build(x.shape)
        ref.build(x.shape)
        ref.set_weights(zoo.get_weights())
        got, want = penalty_gradient(zoo, x), penalty_gradient(ref, x)
    scale = float(tf.reduce_max(tf.abs(want)))
    assert scale > 0
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=3e-2 * scale)


def test_layers_keep_keras_names_and_weights_files(tmp_path):
    def net(module):
        image = keras.Input((8, 8, 64))
        x = module.Conv2D(32, 4, strides=2, padding="same")(image)
        x = module.Conv2DTranspose(64, 4, strides=2, padding="same")(x)
        return keras.Model(image, x)

    keras.utils.set_random_seed(0)
    ours = net(layers)
    # Keras' class names, so the layers are named (and their weights saved) as Keras' are
    assert [type(layer).__name__ for layer in ours.layers[1:]] == ["Conv2D", "Conv2DTranspose"]
    assert [layer.name.rstrip("_0123456789") for layer in ours.layers[1:]] == ["conv2d", "conv2d_transpose"]
    path = str(tmp_path / "ours.weights.h5")
    ours.save_weights(path)
    keras_net = net(keras.layers)
    keras_net.load_weights(path)
    x = tf.random.stateless_normal((2, 8, 8, 64), (0, 0))
    np.testing.assert_array_equal(keras_net(x).numpy(), ours(x).numpy())
    # and a whole .keras file comes back as the zoo's classes
    ours.save(tmp_path / "ours.keras")
    loaded = keras.saving.load_model(tmp_path / "ours.keras")
    assert [type(layer) for layer in loaded.layers[1:]] == [layers.Conv2D, layers.Conv2DTranspose]
    np.testing.assert_array_equal(loaded(x).numpy(), ours(x).numpy())


@pytest.mark.parametrize("name", ["dcgan", "wgan_gp", "infogan", "ebgan", "baseline_dcgan", "cgan"])
def test_every_convolutional_family_is_built_with_the_zoo_layers(name):
    model = models.get(name, seed=0)
    convolutions = [layer for net in (model.generator, model.discriminator) for layer in net.layers
                    if isinstance(layer, keras.layers.Conv2D | keras.layers.Conv2DTranspose)]
    assert convolutions
    assert all(type(layer) in (layers.Conv2D, layers.Conv2DTranspose) for layer in convolutions)


def _dcgan_losses(native, steps=4):
    keras.utils.set_random_seed(0)
    with dtype_policy("mixed_bfloat16"):
        if native:
            with layers.native_kernel_gradients():
                model = models.get("dcgan", seed=0)
        else:
            model = models.get("dcgan", seed=0)
    model.compile()
    images = tf.random.stateless_uniform((32, 28, 28, 1), (7, 0), -1, 1)
    history = model.fit(tf.data.Dataset.from_tensors(images).repeat(), steps_per_epoch=1, epochs=steps,
                        verbose=0, shuffle=False)
    return model, history.history


def test_a_bfloat16_dcgan_trains_alike_with_either_kernel_gradient():
    fast, fast_losses = _dcgan_losses(native=False)
    native, native_losses = _dcgan_losses(native=True)
    assert any(layer.native_kernel_gradient for layer in native.discriminator.layers
               if isinstance(layer, layers.Conv2D))
    for key in ("d_loss", "g_loss"):
        assert len(fast_losses[key]) == 4
        np.testing.assert_allclose(fast_losses[key], native_losses[key], atol=0.05, rtol=0.05)
    assert fast_losses["d_loss"] != native_losses["d_loss"]  # the arithmetic differs (rounding)


@pytest.mark.parametrize("x_shape, kernel_shape, strides, padding", CASES[:4])
def test_the_kernel_gradient_differentiates_like_tensorflows(x_shape, kernel_shape, strides, padding):
    # The Unrolled GAN differentiates the discriminator's update: the kernel gradient's own
    # gradients with respect to the input and the output's gradient.
    rng = np.random.default_rng(2)
    x = tf.constant(rng.normal(size=x_shape))
    dy = tf.constant(rng.normal(size=tf.nn.conv2d(x, tf.zeros(kernel_shape, tf.float64), strides, padding).shape))
    weights = tf.constant(rng.normal(size=kernel_shape))

    def gradients(function):
        with tf.GradientTape() as tape:
            tape.watch([x, dy])
            value = tf.reduce_sum(function(x, dy, kernel_shape, strides, padding) * weights)
        return tape.gradient(value, [x, dy])

    for got, want in zip(gradients(layers.differentiable_kernel_gradient), gradients(native_kernel_gradient)):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12, atol=1e-12)
