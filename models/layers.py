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
"""

import contextlib

import keras
import tensorflow as tf

_use_keras_layer = False


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
