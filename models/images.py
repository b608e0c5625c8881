"""Pictures of samples for the families' own figures: image grids as uint8 arrays, and PNGs.

`train.images` uses the same functions for the trainer's sample grids (it adds 2-D scatter plots).
"""

import math
import os

import numpy as np
import tensorflow as tf

from models import saving


def image_grid(images, columns=None, padding=1):
    """Tiles `images` (n, h, w, c) with values in [0, 1] into one (H, W, c) uint8 image."""
    images = np.asarray(images, dtype=np.float32)
    n, h, w, c = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = np.ones((rows * (h + padding) + padding, columns * (w + padding) + padding, c), np.float32)
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[top : top + h, left : left + w] = image
    grid = np.nan_to_num(grid, nan=0.0)  # a diverged generator's samples draw black, not garbage
    return np.round(np.clip(grid, 0.0, 1.0) * 255).astype(np.uint8)


def write_png(path, image):
    """Writes a uint8 (H, W, C) image as PNG atomically (temporary file, then rename); a failure
    is one GanZooError naming `path` and leaves no temporary file."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as e:
        raise saving.write_error(directory, e) from None
    saving.write_bytes_atomically(path, tf.io.encode_png(image).numpy())
