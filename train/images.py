"""Turning samples into pictures: image grids and 2-D scatter plots, as uint8 arrays and PNGs.

The grid and the PNG writer live in `models.images` (the families draw their own figures with
them); they are the same functions here.
"""

import numpy as np

from models.images import image_grid, write_png

__all__ = ["image_grid", "scatter_image", "write_png"]


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
