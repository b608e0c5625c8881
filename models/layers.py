"""Layers the zoo's networks share.

`BatchNormalization` is Keras' batch norm whose training-mode call on NHWC feature maps runs
TensorFlow's fused batch-norm kernel (`FusedBatchNormV3`: one kernel forward, one backward)
instead of the dozen element-wise ops Keras' layer builds on the TensorFlow backend: about half
the CPU time of a 64x7x7x128 batch norm, forward and backward. (batch, features) matrices keep
Keras' path: seen as 1x1 maps they took 1.4x the CPU time of Keras' ops (64x1024). It computes
what Keras' layer computes:

- the output normalises with the batch mean and the biased batch variance, then applies gamma
  and beta, with the layer's epsilon;
- the moving statistics are updated with Keras' rule and momentum,
  `moving = moving * momentum + batch * (1 - momentum)`, from the batch mean and the BIASED
  batch variance (the kernel returns the Bessel-corrected variance, which is multiplied back by
  (n - 1) / n, and its own running-average update is not used);
- bfloat16 and float16 inputs stay in their dtype in the kernel, which computes the statistics
  in float32 (Keras' layer casts them to float32 first); the statistics and weights are float32;
- inference mode, masks, other axes and ranks (2-D included), batch renormalization, other backends and
  `synchronized=True` under a multi-replica strategy take Keras' own path.

The class keeps Keras' name, so its weights are saved under the same paths
(`.../layers/batch_normalization_1/vars/0..3`: gamma, beta, moving mean, moving variance):
weights files written with Keras' layer load into it, and the reverse.

`Conv2D` and `Conv2DTranspose` are Keras' convolution layers whose kernel gradient, when they
compute in a 16-bit float, can take a faster route than the `Conv2DBackpropFilter` kernel: the
weight gradient of a convolution is itself a convolution (of the input with the output's
gradient, dilated by the stride, with the batch as the summed channel axis). On maps of 8x8 and
smaller oneDNN ran that convolution 1.2-2.1x faster than its own bfloat16 weight-gradient
kernel, which reached only a quarter to a half of its forward speed there
(`python -m train.benchmark` measures both routes). The route is taken only
where it paid: 16-bit compute, the convolution's input has at least 64 channels, and its
(smaller) output map has at most 64 positions; float32 layers always use TensorFlow's own
gradient, so their arithmetic is unchanged. Outputs and input gradients come from the same
kernels as Keras' layers; the kernel gradient is the same sum in another order (to float
rounding). The classes keep Keras' names, so weights files are unchanged.
"""

import contextlib

import keras
import tensorflow as tf

_use_keras_layer = False
_native_kernel_gradients = False


def batch_norm_class():
    """The batch-norm layer class the families' networks are built with: this module's fused
    one, or Keras' own inside `keras_batch_norm()`."""
    return keras.layers.BatchNormalization if _use_keras_layer else BatchNormalization


@contextlib.contextmanager
def keras_batch_norm():
    """Networks built inside the block use Keras' own batch-norm layer (for comparisons such as
    `python -m train.benchmark`; the two compute the same and save the same weights)."""
    global _use_keras_layer
    previous, _use_keras_layer = _use_keras_layer, True
    try:
        yield
    finally:
        _use_keras_layer = previous


@contextlib.contextmanager
def native_kernel_gradients():
    """Convolution layers built inside the block take TensorFlow's own kernel gradient everywhere
    (for comparisons such as `python -m train.benchmark`; the two compute the same sum)."""
    global _native_kernel_gradients
    previous, _native_kernel_gradients = _native_kernel_gradients, True
    try:
        yield
    finally:
        _native_kernel_gradients = previous


@keras.saving.register_keras_serializable(package="gan_zoo")
class BatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` with TensorFlow's fused kernel in training mode.

    Same arguments, weights, configuration and results as Keras' layer (see the module
    docstring); only the kernels differ.
    """

    def _fusable(self, inputs, training, mask):
        if keras.backend.backend() != "tensorflow" or mask is not None or self.renorm:
            return False
        if not (training is True and self.trainable):
            return False  # inference (or a symbolic `training`): Keras' path
        if len(inputs.shape) != 4 or self.axis not in (-1, 3):
            return False
        if inputs.dtype not in (tf.float32, tf.bfloat16, tf.float16):
            return False
        if self.synchronized and tf.distribute.get_strategy().num_replicas_in_sync > 1:
            return False  # the global batch's statistics need Keras' all-reduce
        return True

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        x = inputs
        channels = inputs.shape[-1]
        scale = self.gamma if self.scale else tf.ones((channels,), "float32")
        offset = self.beta if self.center else tf.zeros((channels,), "float32")
        empty = tf.zeros((0,), "float32")
        outputs, mean, corrected_variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=x,
            scale=tf.cast(scale, "float32"),
            offset=tf.cast(offset, "float32"),
            mean=empty,
            variance=empty,
            epsilon=self.epsilon,
            exponential_avg_factor=1.0,
            data_format="NHWC",
            is_training=True,
        )
        # The kernel's variance output is the unbiased one (divided by n - 1); Keras' moving
        # variance averages the biased one (divided by n), which the output is normalised with.
        n = tf.cast(tf.size(x) // channels, "float32")
        variance = corrected_variance * ((n - 1.0) / n)
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return tf.cast(outputs, self.compute_dtype)


# Where the convolution form of the kernel gradient paid (bfloat16, AVX-512 with AVX512_BF16):
# an input of at least this many channels, and an output map of at most this many positions.
DILATED_GRADIENT_MIN_CHANNELS = 64
DILATED_GRADIENT_MAX_POSITIONS = 64


def _pads(size, out, kernel, stride, padding):
    """(before, after) padding of one spatial axis of a convolution, TensorFlow's convention;
    `after` is negative where the last input rows are never read (VALID, or a stride larger than
    the kernel)."""
    span = (out - 1) * stride + kernel
    if padding == "SAME" and span > size:
        total = span - size
        return total // 2, total - total // 2
    return 0, span - size


def kernel_gradient(x, dy, kernel_shape, strides, padding):
    """The gradient of `conv2d(x, kernel, strides, padding)` with respect to `kernel`, given the
    output's gradient `dy` (NHWC, no dilation), computed as one forward convolution:

        dK[i, j, c, o] = sum over n, p, q of xpad[n, s*p + i, t*q + j, c] * dy[n, p, q, o]

    is the VALID convolution of xpad, laid out (c, rows, columns, n), with dy, laid out
    (p, q, n, o) as a filter dilated by the strides (s, t): its output is (c, i, j, o)."""
    (kh, kw), (sh, sw) = kernel_shape[:2], strides
    (top, bottom), (left, right) = (
        _pads(x.shape[axis], dy.shape[axis], k, s, padding) for axis, k, s in ((1, kh, sh), (2, kw, sw)))
    x = tf.pad(x, [[0, 0], [top, max(bottom, 0)], [left, max(right, 0)], [0, 0]])
    x = x[:, : x.shape[1] + min(bottom, 0), : x.shape[2] + min(right, 0), :]
    grad = tf.nn.conv2d(tf.transpose(x, [3, 1, 2, 0]), tf.transpose(dy, [1, 2, 0, 3]), 1, "VALID",
                        dilations=[sh, sw])
    return tf.transpose(grad, [1, 2, 0, 3])


def _input_gradient(x, kernel, dy, strides, padding):
    """The gradient of `conv2d(x, kernel, strides, padding)` with respect to `x`: TensorFlow's kernel."""
    return tf.raw_ops.Conv2DBackpropInput(input_sizes=tf.shape(x), filter=kernel, out_backprop=dy,
                                          strides=[1, *strides, 1], padding=padding)


def differentiable_kernel_gradient(x, dy, kernel_shape, strides, padding):
    """`kernel_gradient`, whose own gradients (the Unrolled GAN differentiates the discriminator's
    weight update) are TensorFlow's kernels: TensorFlow's CPU kernels cannot differentiate a
    dilated convolution with respect to its filter."""
    strides, padding = list(strides), padding.upper()

    @tf.custom_gradient
    def gradient(x, dy):
        def grad(upstream):
            return _input_gradient(x, upstream, dy, strides, padding), tf.nn.conv2d(x, upstream, strides, padding)

        return kernel_gradient(x, dy, kernel_shape, strides, padding), grad

    return gradient(x, dy)


class _KernelGradientChoice:
    """What the zoo's convolution layers share: whether the layer was built inside
    `native_kernel_gradients()`, and where the convolution form of the kernel gradient pays."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.native_kernel_gradient = _native_kernel_gradients

    def _convolution_form_pays(self, dtype, in_channels, out_map):
        """Whether this call takes the convolution form (module docstring): a 2-D NHWC
        convolution without dilation or groups, in 16-bit compute, with at least
        DILATED_GRADIENT_MIN_CHANNELS input channels and at most DILATED_GRADIENT_MAX_POSITIONS
        output positions."""
        return (not self.native_kernel_gradient and keras.backend.backend() == "tensorflow"
                and self.data_format == "channels_last" and tuple(self.dilation_rate) == (1, 1)
                and getattr(self, "groups", 1) == 1
                and tf.as_dtype(dtype) in (tf.bfloat16, tf.float16)
                and in_channels >= DILATED_GRADIENT_MIN_CHANNELS
                and None not in out_map and out_map[0] * out_map[1] <= DILATED_GRADIENT_MAX_POSITIONS)


def conv2d(x, kernel, strides, padding):
    """`tf.nn.conv2d` (NHWC) whose kernel gradient is `kernel_gradient`."""
    strides, padding = list(strides), padding.upper()

    @tf.custom_gradient
    def convolve(x, kernel):
        def grad(dy):
            dx = _input_gradient(x, kernel, dy, strides, padding)
            return dx, differentiable_kernel_gradient(x, dy, kernel.shape, strides, padding)

        return tf.nn.conv2d(x, kernel, strides, padding), grad

    return convolve(x, kernel)


def conv2d_transpose(x, kernel, output_shape, strides, padding):
    """`tf.nn.conv2d_transpose` (NHWC) whose kernel gradient is `kernel_gradient` (of the
    convolution it transposes: from the output back to `x`)."""
    strides, padding = list(strides), padding.upper()

    @tf.custom_gradient
    def convolve(x, kernel):
        def grad(dy):
            dx = tf.nn.conv2d(dy, kernel, strides, padding)
            return dx, differentiable_kernel_gradient(dy, x, kernel.shape, strides, padding)

        return tf.nn.conv2d_transpose(x, kernel, output_shape, strides, padding), grad

    return convolve(x, kernel)


@keras.saving.register_keras_serializable(package="gan_zoo")
class Conv2D(_KernelGradientChoice, keras.layers.Conv2D):
    """`keras.layers.Conv2D` whose kernel gradient takes the convolution form where that pays
    (module docstring). Same arguments, weights, configuration and outputs as Keras' layer."""

    def convolution_op(self, inputs, kernel):
        out_map = self.compute_output_shape(inputs.shape)[1:3]
        if not self._convolution_form_pays(inputs.dtype, inputs.shape[-1], out_map):
            return super().convolution_op(inputs, kernel)
        kernel = tf.cast(keras.ops.convert_to_tensor(kernel), inputs.dtype)
        return conv2d(inputs, kernel, self.strides, self.padding)


@keras.saving.register_keras_serializable(package="gan_zoo")
class Conv2DTranspose(_KernelGradientChoice, keras.layers.Conv2DTranspose):
    """`keras.layers.Conv2DTranspose` whose kernel gradient takes the convolution form where
    that pays (module docstring): the transposed convolution's kernel gradient is that of the
    convolution from its output (`filters` channels) back to its input map. Same arguments,
    weights, configuration and outputs as Keras' layer."""

    def call(self, inputs):
        out_shape = self.compute_output_shape(inputs.shape)
        if self.output_padding is not None or not self._convolution_form_pays(
                inputs.dtype, self.filters, inputs.shape[1:3]):
            return super().call(inputs)
        kernel = tf.cast(keras.ops.convert_to_tensor(self.kernel), inputs.dtype)
        batch = tf.shape(inputs)[0]
        outputs = conv2d_transpose(inputs, kernel, tf.stack([batch, *out_shape[1:]]), self.strides, self.padding)
        outputs = tf.ensure_shape(outputs, [None, *out_shape[1:]])
        if self.use_bias:
            outputs = outputs + tf.cast(keras.ops.convert_to_tensor(self.bias), outputs.dtype)
        return outputs if self.activation is None else self.activation(outputs)
