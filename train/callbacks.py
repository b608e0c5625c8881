"""Callbacks that make training visible: sample grids from fixed noise, written every epoch to
TensorBoard (as an image summary) and to PNG files."""

import os

import keras
import numpy as np
import tensorflow as tf

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
