"""Turning samples into pictures: image grids and 2-D scatter plots, as uint8 arrays and PNGs."""

import math
import os

import numpy as np
import tensorflow as tf


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
    return np.round(np.clip(grid, 0.0, 1.0) * 255).astype(np.uint8)


def scatter_image(points, reference=None, size=256, extent=None):
    """Draws 2-D `points` (red) over optional `reference` points (grey) as a (size, size, 3) image."""
    points = np.asarray(points, dtype=np.float32)
    everything = points if reference is None else np.concatenate([points, reference])
    if extent is None:
        extent = float(np.percentile(np.abs(everything), 99.5)) * 1.15 + 1e-6
    canvas = np.full((size, size, 3), 255, np.uint8)

    def pixels(xy):
        ij = np.floor((xy / extent + 1.0) / 2.0 * (size - 1)).astype(np.int64)
        inside = np.all((ij >= 0) & (ij < size), axis=1)
        ij = ij[inside]
        return size - 1 - ij[:, 1], ij[:, 0]  # y grows upwards

    if reference is not None:
        canvas[pixels(np.asarray(reference, np.float32))] = (170, 170, 170)
    canvas[pixels(points)] = (220, 30, 30)
    return canvas


def write_png(path, image):
    """Writes a uint8 (H, W, C) image as PNG atomically (temporary file, then rename)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temporary = os.path.join(directory, f".{os.path.basename(path)}.tmp")
    with open(temporary, "wb") as f:
        f.write(tf.io.encode_png(image).numpy())
    os.replace(temporary, path)
