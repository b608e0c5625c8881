"""Writing IDX files (the Fashion-MNIST format) for test fixtures."""

import gzip

import numpy as np


def idx_bytes(array):
    """The IDX encoding of a uint8 array: magic (0, 0, 0x08, ndim), big-endian dims, data."""
    array = np.asarray(array, dtype=np.uint8)
    return (bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
            + array.tobytes())


def write_idx(path, array, compress=True):
    payload = idx_bytes(array)
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


def garments(n, seed=0):
    """`n` 28x28 uint8 images of bright blobs of varied size and place on black, and labels."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28]
    images = np.zeros((n, 28, 28), np.uint8)
    labels = rng.integers(0, 10, n)
    for i in range(n):
        cy, cx = rng.uniform(9, 19, 2)
        ry, rx = 4 + labels[i] % 5, 3 + labels[i] // 2
        inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        images[i][inside] = rng.integers(150, 256)
    return images, labels


def write_fashion_mnist(folder, n_train=256, n_test=64):
    """A Fashion-MNIST folder with the four original file names."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        images, labels = garments(n, seed)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return folder
