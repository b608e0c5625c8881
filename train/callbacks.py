"""Callbacks of the trainer: sample grids from fixed noise, written every epoch to TensorBoard
(as an image summary) and to PNG files; the epoch scalars and the means of every N steps; the
time limit; the evaluation every N epochs; and the run's progress bar. (The guard against NaN
and the checkpoints are in train/runstate.py; a family's own figures, such as InfoGAN's code
traversal, are its own callbacks, from `GAN.training_callbacks(logdir)`.)"""

import os
import time

import keras
import numpy as np
import tensorflow as tf

from train import images


class SampleGrid(keras.callbacks.Callback):
    """Draws the generator's samples for a fixed batch of noise at the end of every epoch.

    Images go to TensorBoard under the tag `samples` (run `images`) and to
    `<logdir>/samples/epoch_NNNN.png`; 2-D points are drawn as a scatter plot over `reference`.
    A conditional model (e.g. cgan) draws one row per class, ceil(n / classes) samples each,
    so that every class's progress is visible.
    """

    def __init__(self, logdir, n=64, seed=0, reference=None):
        super().__init__()
        self.logdir = logdir
        self.n = n
        self.seed = seed
        self.reference = reference
        self._latent = None
        self._columns = None  # None: about sqrt(n)
        self._writer = None

    def on_train_begin(self, logs=None):
        # The same noise every epoch (and after a resume), so the grids show progress.
        if self.model.conditional:
            self._latent, self._columns = self.model.class_grid_latent(self.n, seed=self.seed)
        else:
            self._latent = self.model.sample_latent(self.n, seed=keras.random.SeedGenerator(self.seed))
        self._writer = tf.summary.create_file_writer(os.path.join(self.logdir, "images"))

    def picture(self):
        samples = self.model.to_unit_range(self.model.sampler(self._latent, training=False))
        samples = np.asarray(samples)
        if samples.ndim == 2:
            return images.scatter_image(samples, self.reference)
        return images.image_grid(samples, columns=self._columns)

    def on_epoch_end(self, epoch, logs=None):
        picture = self.picture()
        with self._writer.as_default():
            tf.summary.image("samples", picture[None], step=epoch + 1)  # epochs completed
        self._writer.flush()
        images.write_png(
            os.path.join(self.logdir, "samples", f"epoch_{epoch + 1:04d}.png"), picture
        )

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()


class TensorBoard(keras.callbacks.TensorBoard):
    """Keras' TensorBoard callback, with the epoch's scalars at the step of the epochs completed
    and flushed to disk at the epoch's end.

    Step N is "after epoch N" for every summary of the zoo (scalars, the sample grid, the
    evaluation), as for `samples/epoch_000N.png`; Keras alone would write epoch N's scalars at
    step N - 1. Keras leaves them in the writer's queue (flushed every 2 minutes); a run killed in
    the next epoch would lose them although its checkpoint holds that epoch.
    """

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch + 1, logs)
        for writer in self._writers.values():  # Keras' writers ("train", "val") made so far
            writer.flush()


class StepScalars(keras.callbacks.Callback):
    """Every `every` generator steps, the mean of each tracked value over those steps, to
    TensorBoard (run `train`, tags `steps/<name>`, e.g. `steps/d_loss`, `steps/d_real`, and the
    family's own values such as WGAN's `steps/wasserstein` or InfoGAN's mutual-information bound),
    at the step of the generator updates done so far; the epoch scalars stay as they are.

    The values are exact window means, read from the trackers' running totals and counts (Keras
    resets them at each epoch's start), so they count every discriminator update of a step and
    need no extra work in the train step; a window that crosses an epoch's start covers the
    steps since that start.
    """

    def __init__(self, logdir, every):
        super().__init__()
        self.logdir = logdir
        self.every = every
        self._writer = None
        self._step = 0
        self._last = {}

    def on_train_begin(self, logs=None):
        self._writer = tf.summary.create_file_writer(os.path.join(self.logdir, "train"))
        self._step = int(self.model.g_optimizer.iterations.numpy())  # a resumed run goes on

    def on_epoch_begin(self, epoch, logs=None):
        self._last = {}  # the trackers start again from zero

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if self._step % self.every:
            return
        with self._writer.as_default():
            for name, tracker in self.model.trackers.items():
                total, count = float(tracker.total.numpy()), float(tracker.count.numpy())
                last_total, last_count = self._last.get(name, (0.0, 0.0))
                if count > last_count:
                    tf.summary.scalar(f"steps/{name}", (total - last_total) / (count - last_count),
                                      step=self._step)
                self._last[name] = (total, count)

    def on_epoch_end(self, epoch, logs=None):
        if self._writer is not None:
            self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()


class TimeLimit(keras.callbacks.Callback):
    """Ends training at the end of the first epoch that ends `seconds` or more after training
    started in this process (`--time_limit`); `announce(line)` says so. The epoch's checkpoint
    and files are written as at any epoch's end."""

    def __init__(self, seconds, announce=None):
        super().__init__()
        self.seconds = seconds
        self.announce = announce or (lambda line: None)
        self.started = None
        self.stopped_after = None  # the epochs completed when the limit stopped training

    def on_train_begin(self, logs=None):
        if self.started is None:  # the first fit of the run (a resumed epoch takes two)
            self.started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.monotonic() - self.started
        if elapsed >= self.seconds and self.stopped_after is None:
            self.stopped_after = epoch + 1
            self.model.stop_training = True
            self.announce(f"time limit: stopped after epoch {epoch + 1} ({elapsed:.0f} s of training, "
                          f"--time_limit {self.seconds})")


class EvaluateEvery(keras.callbacks.Callback):
    """Measures the generator every `every` epochs and logs it to TensorBoard (run `eval`).

    Images: FCD between `n` samples and the test split on the zoo classifier's features
    (`train.classifier`), tag `fcd`, next to the real-data floor at the same N (training images
    against the same test images), tag `fcd_floor`. 2-D mixtures: mode coverage of 2,500
    samples, tags `modes_covered`, `high_quality` and `reverse_kl` (see `train.metrics`).
    Everything real (test features, the floor) is computed once, at the start of training; a
    missing classifier stops training before the first epoch with the command that trains one.
    """

    def __init__(self, logdir, every, dataset, data_dir=None, n=2000, seed=0, classifier=None):
        super().__init__()
        self.logdir = logdir
        self.every = every
        self.dataset = dataset
        self.data_dir = data_dir
        self.n = n
        self.seed = seed
        self.classifier = classifier
        self.history = []  # (epoch, {tag: value}) of every evaluation, for tests and notebooks
        self._writer = None
        self._extractor = None
        self._mixture = None
        self._test_stats = None
        self._floor = None

    @classmethod
    def for_run(cls, every, logdir, dataset, data_dir=None, seed=0):
        """[the callback] when `every` is set, else []: what the trainer splices into its list."""
        return [] if every is None else [cls(logdir, every, dataset, data_dir=data_dir, seed=seed)]

    def on_train_begin(self, logs=None):
        # Imported here: the trainer imports this module, and evaluation needs none of it
        # unless asked for.
        from train import classifier, data, evaluate, metrics

        self._writer = tf.summary.create_file_writer(os.path.join(self.logdir, "eval"))
        if self._extractor is not None or self._mixture is not None:
            return  # a resumed fit() of the same run: the real statistics are already here
        shape = tuple(self.model.generator.output_shape[1:])
        if len(shape) == 1:
            self._mixture = data.mixture(self.dataset)
            return
        self._extractor = classifier.load(self.dataset, self.classifier)
        train, _ = evaluate.real_images(self.dataset, "train", shape, self.data_dir)
        test, _ = evaluate.real_images(self.dataset, "test", shape, self.data_dir)
        rng = np.random.default_rng(self.seed)
        train = train[rng.permutation(len(train))[: self.n]]
        test_features = self._extractor(test)[0]
        self._test_stats = metrics.gaussian_statistics(test_features)
        self._floor = metrics.frechet_distance(
            *metrics.gaussian_statistics(self._extractor(train)[0]), *self._test_stats)

    def evaluate_now(self):
        """{tag: value} for the generator as it is now."""
        from train import metrics

        if self._extractor is None:
            points = self.model.generate(2500, seed=self.seed)
            coverage = metrics.mode_coverage(points, self._mixture.means, self._mixture.std)
            return {key: float(coverage[key]) for key in ("modes_covered", "high_quality", "reverse_kl")}
        features = self._extractor(self.model.generate(self.n, seed=self.seed))[0]
        fcd = metrics.frechet_distance(*metrics.gaussian_statistics(features), *self._test_stats)
        return {"fcd": fcd, "fcd_floor": self._floor}

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        values = self.evaluate_now()
        self.history.append((epoch + 1, values))
        with self._writer.as_default():
            for tag, value in values.items():
                tf.summary.scalar(tag, value, step=epoch + 1)
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()


class RunProgress(keras.callbacks.ProgbarLogger):
    """Keras' progress bar, numbered by the run rather than by the `fit` call: the header is
    "Epoch 3/5" of the run's epochs (also for a single epoch), and a resumed epoch counts on from
    the step it resumed at ("41/116"), with a note that it resumed there."""

    def __init__(self, epochs):
        super().__init__()
        self.run_epochs = epochs
        self.offset = 0  # steps of the current epoch taken before this fit (a resumed epoch)

    def set_params(self, params):
        super().set_params(params)
        self._steps = self.target  # of this fit's epochs after the first
        if self.target is not None:
            self.target += self.offset

    def on_epoch_begin(self, epoch, logs=None):
        self._reset_progbar()
        self._maybe_init_progbar()
        if self.verbose:
            resumed = f" (resumed at step {self.offset})" if self.offset else ""
            print(f"Epoch {epoch + 1}/{self.run_epochs}{resumed}", flush=True)

    def on_train_batch_end(self, batch, logs=None):
        self._update_progbar(batch + self.offset, logs)

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self.offset:
            self.offset = 0
            self.target = self._steps

