"""Callbacks of the trainer: sample grids from fixed noise, written every epoch to TensorBoard
(as an image summary) and to PNG files; InfoGAN's code traversal; and a guard that stops
training at the first NaN or Inf before it can reach a checkpoint."""

import os

import keras
import numpy as np
import tensorflow as tf

from models.errors import GanZooError
from train import images


class SampleGrid(keras.callbacks.Callback):
    """Draws the generator's samples for a fixed batch of noise at the end of every epoch.

    Images go to TensorBoard under the tag `samples` (run `images`) and to
    `<logdir>/samples/epoch_NNNN.png`; 2-D points are drawn as a scatter plot over `reference`.
    """

    def __init__(self, logdir, n=64, seed=0, reference=None):
        super().__init__()
        self.logdir = logdir
        self.n = n
        self.seed = seed
        self.reference = reference
        self._latent = None
        self._writer = None

    def on_train_begin(self, logs=None):
        # The same noise every epoch (and after a resume), so the grids show progress.
        self._latent = self.model.sample_latent(self.n, seed=keras.random.SeedGenerator(self.seed))
        self._writer = tf.summary.create_file_writer(os.path.join(self.logdir, "images"))

    def picture(self):
        samples = self.model.to_unit_range(self.model.generator(self._latent, training=False))
        samples = np.asarray(samples)
        if samples.ndim == 2:
            return images.scatter_image(samples, self.reference)
        return images.image_grid(samples)

    def on_epoch_end(self, epoch, logs=None):
        picture = self.picture()
        with self._writer.as_default():
            tf.summary.image("samples", picture[None], step=epoch)
        self._writer.flush()
        images.write_png(
            os.path.join(self.logdir, "samples", f"epoch_{epoch + 1:04d}.png"), picture
        )

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()


class CodeTraversal(keras.callbacks.Callback):
    """Draws a model's latent-code traversal figure (InfoGAN's `traversal`) after every epoch.

    One figure per continuous code: rows are the values of the first categorical code, columns
    sweep the continuous code from -2 to 2, with the noise fixed by `seed` for the whole figure.
    The figures go to TensorBoard under the tag `traversal` (run `traversal`, its own writer in
    `<logdir>/traversal/`) and to `<logdir>/traversal/epoch_NNNN_code_K.png`.
    """

    def __init__(self, logdir, seed=0, steps=10, codes=None):
        super().__init__()
        self.logdir = logdir
        self.seed = seed
        self.steps = steps
        self.codes = codes  # indices of the continuous codes to draw; None: all of them
        self._writer = None

    def on_train_begin(self, logs=None):
        self._writer = tf.summary.create_file_writer(os.path.join(self.logdir, "traversal"))

    def pictures(self):
        """{continuous code index: its traversal figure as a uint8 image}."""
        codes = range(self.model.continuous_dims) if self.codes is None else self.codes
        return {k: self.model.traversal(seed=self.seed, code=k, steps=self.steps) for k in codes}

    def on_epoch_end(self, epoch, logs=None):
        pictures = self.pictures()
        with self._writer.as_default():
            tf.summary.image(
                "traversal", np.stack(list(pictures.values())), step=epoch, max_outputs=len(pictures)
            )
        self._writer.flush()
        for k, picture in pictures.items():
            images.write_png(
                os.path.join(self.logdir, "traversal", f"epoch_{epoch + 1:04d}_code_{k}.png"), picture
            )

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()


class StopOnDivergence(keras.callbacks.Callback):
    """Stops training at the first non-finite tracked value, before anything is saved.

    It raises instead of setting `stop_training`: Keras would still end the epoch, and the
    checkpoint callback would then overwrite the last good checkpoint with broken weights.
    """

    def __init__(self, checkpoint_dir):
        super().__init__()
        self.checkpoint_dir = checkpoint_dir
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        for name, value in (logs or {}).items():
            value = float(np.mean(value))
            if not np.isfinite(value):
                step = int(self.model.g_optimizer.iterations.numpy())
                raise GanZooError(
                    f"training diverged: {name} became {value} at generator step {step} "
                    f"(epoch {self._epoch + 1}); the last good checkpoint in "
                    f"{self.checkpoint_dir} is untouched: lower --d_learning_rate / "
                    "--g_learning_rate and run the same command to resume from it"
                )
