"""Inception-v3 FID / Inception score features, only from ImageNet weights already on disk.

Heusel et al. 2017 (FID) and Salimans et al. 2016 (Inception score) measure samples with
Inception-v3 trained on ImageNet: the 2048-d average-pool features for FID, the 1000-way softmax
for the score. `keras.applications` would download those weights on first use; here they are
only ever read from a local file, and when none is found `load` raises a GanZooError saying
where to put one. Nothing falls back to another network: the zoo's own classifier is a
different feature extractor and is reported under its own name.

Images (n, h, w, 1 or 3) in [0, 1] are converted to RGB, resized (bilinear) to 299x299 and
scaled to [-1, 1], Inception's input range.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from models.errors import GanZooError

NAME = "inception_v3"
WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels.h5"  # keras.applications' name
INPUT_SIDE = 299


def candidate_paths():
    """Where keras.applications caches the weights: $KERAS_HOME/models (default ~/.keras/models),
    or /tmp/.keras/models when the home folder is not writable."""
    homes = [os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras"),
             os.path.join("/tmp", ".keras")]
    return [os.path.join(os.path.expanduser(home), "models", WEIGHTS_FILE) for home in dict.fromkeys(homes)]


def find_weights(path=None):
    """The local Inception-v3 weights file, or a GanZooError saying where to put one."""
    if path:
        if not os.path.isfile(path):
            raise GanZooError(f"Inception-v3 weights file {path} does not exist: pass the path of "
                              f"{WEIGHTS_FILE} (keras.applications' ImageNet weights with the top)")
        return path
    for candidate in candidate_paths():
        if os.path.isfile(candidate):
            return candidate
    raise GanZooError(
        f"Inception-v3 ImageNet weights are not available locally (looked for "
        f"{' and '.join(candidate_paths())}) and the zoo never downloads them: copy {WEIGHTS_FILE} "
        "there or pass --inception_weights PATH, or leave out --inception to use the zoo's classifier"
    )


class InceptionExtractor:
    """(2048-d pool features, 1000-way softmax) of images in [0, 1], like FeatureExtractor."""

    name = NAME

    def __init__(self, path=None):
        self.path = find_weights(path)
        from models.saving import sha256_of  # the same digest the zoo records for its own weights

        self.sha256 = sha256_of(self.path)
        # weights=None: never let keras.applications reach for the network.
        network = keras.applications.InceptionV3(weights=None, include_top=True)
        try:
            network.load_weights(self.path)
        except Exception as e:  # noqa: BLE001 -- h5py/keras raise many types for a bad file
            raise GanZooError(f"cannot load Inception-v3 weights from {self.path} ({e}): use "
                              f"keras.applications' {WEIGHTS_FILE}") from None
        pool = network.get_layer("avg_pool").output
        self._both = keras.Model(network.input, [pool, network.output])

    def __call__(self, images, batch_size=50):
        features, probabilities = [], []
        for start in range(0, len(images), batch_size):
            x = tf.convert_to_tensor(np.asarray(images[start : start + batch_size], np.float32))
            if x.shape[-1] == 1:
                x = tf.image.grayscale_to_rgb(x)
            x = tf.image.resize(x, (INPUT_SIDE, INPUT_SIDE)) * 2.0 - 1.0
            f, p = self._both(x, training=False)
            features.append(np.asarray(f))
            probabilities.append(np.asarray(p))
        return np.concatenate(features).astype(np.float64), np.concatenate(probabilities).astype(np.float64)
