"""The one dataset pipeline of GAN Zoo.

Every training run, evaluation and metric gets its data from here, and this module is the only
place that decides how pixels are scaled. `load(name, ...)` dispatches on `name`:

* ``"fashion_mnist"`` -- the original Fashion-MNIST IDX files (Xiao et al. 2017), read offline
  from ``data_dir``, else ``$GAN_ZOO_DATA_DIR``, else ``/usr/share/datasets/fashion-mnist``
  (Debian package ``dataset-fashion-mnist``). Splits ``train`` (60,000) and ``test`` (10,000).
* ``"ring8"`` / ``"grid25"`` -- the 2-D Gaussian mixtures used to study mode collapse: 8 modes
  on a circle of radius 2 (std 0.02) and a 5x5 grid at {-4, -2, 0, 2, 4}^2 (std 0.05), equal
  weights. Generated in memory with fixed seeds: ``train`` 50,000 points, ``test`` 10,000.
* a folder path -- every .png/.jpg/.jpeg/.bmp/.gif directly inside it (sorted, not recursive),
  decoded once in parallel with tf.data and kept in memory.
* any other name that tensorflow-datasets knows (``mnist``, ``cifar10``, ``celeb_a`` ...) --
  ``tfds.load``, which downloads on first use (so it cannot work offline).

Built-in names win over a folder or a TFDS dataset of the same name (``fashion_mnist`` is
always the offline copy).

The pipeline is the same for every image source::

    uint8 images (h, w, c), resized / channel-converted to image_shape if given
      -> cache()            (streamed TFDS sources only; the others already live in memory)
      -> shuffle(seed)      (buffer = whole dataset when in memory, else 10,000; reshuffled
                             each epoch; same seed -> same order of batches)
      -> batch(batch_size, drop_remainder)     (static batch dimension when dropping)
      -> map(uint8 [0, 255] -> float32 value_range, linear, vectorized over the batch)
      -> prefetch(AUTOTUNE)

2-D mixture points are float32 already and are never rescaled (``value_range`` does not apply).
With ``with_labels=True`` elements are ``(x, label)`` with int32 labels (the mode index for the
mixtures). `load_arrays` returns the unbatched, unscaled source as numpy arrays, for metrics.

Every user mistake (unknown name, missing or corrupt file, impossible batch size ...) raises
`models.errors.GanZooError` with one line that says what to do.
"""

from __future__ import annotations

import dataclasses
import gzip
import itertools
import math
import numbers
import os
import re
import zlib

import numpy as np
import tensorflow as tf

from models.errors import GanZooError

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"  # Debian package dataset-fashion-mnist
DATA_DIR_ENV = "GAN_ZOO_DATA_DIR"  # env var naming the folder with the 4 IDX files
BUILTIN = ("fashion_mnist", "ring8", "grid25")

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
SPLITS = ("train", "test")  # splits of the built-in sources; folders only have "train"

_SHUFFLE_BUFFER = 10_000  # for sources that are streamed rather than held in memory
_RESIZE_CHUNK = 4096  # images resized per call when resizing a whole in-memory array

# File prefix of each split in the original Fashion-MNIST distribution.
_IDX_PREFIX = {"train": "train", "test": "t10k"}
# IDX type codes (third byte of the magic number) -> big-endian numpy dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
# (number of points, generator seed) of each split of the 2-D mixtures; the seeds differ so
# that test points are not a copy of the train points.
_MIXTURE_SPLITS = {"train": (50_000, 2014), "test": (10_000, 2015)}

_INSTALL_HINT = (
    "apt-get install dataset-fashion-mnist, or pass --data_dir / set GAN_ZOO_DATA_DIR to a "
    "folder with train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
    "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz"
)
_OPTIONS = (
    "use one of fashion_mnist, ring8, grid25, a folder of images, or a tensorflow-datasets "
    "image dataset such as mnist, cifar10, celeb_a"
)


class UnlabelledDataset(GanZooError):
    """`with_labels=True` for a source without labels (a folder, a TFDS dataset without them)."""


def describe() -> str:
    """One line listing the dataset sources (for error messages; the same as --help's)."""
    from train.config import BY_NAME

    return BY_NAME["dataset"].help.removeprefix("Dataset: ").removesuffix(".")


# --------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------


def load(
    name,
    split="train",
    batch_size=64,
    *,
    value_range=(-1.0, 1.0),
    image_shape=None,
    shuffle=True,
    seed=0,
    data_dir=None,
    drop_remainder=True,
    with_labels=False,
) -> tf.data.Dataset:
    """Returns a batched, scaled, shuffled and prefetched `tf.data.Dataset` of `name`.

    Args:
      name: "fashion_mnist", "ring8", "grid25", a folder of images, or a TFDS dataset name.
      split: "train" or "test" for the built-in sources, "train" for a folder, any TFDS split.
      batch_size: positive int.
      value_range: (lo, hi); uint8 pixels map linearly from [0, 255] to [lo, hi]. Ignored for
        the 2-D mixtures.
      image_shape: optional (h, w, c) with c in {1, 3} or None (keep the source's channels):
        images are resized (antialiased) and
        converted between grayscale and RGB to this shape. Required for folders or TFDS
        datasets whose images differ in size.
      shuffle: shuffle the examples, with a new order every epoch.
      seed: shuffle seed (int, or None for a different order every run).
      data_dir: Fashion-MNIST folder, or TFDS data_dir for a TFDS dataset.
      drop_remainder: drop the last partial batch (gives a static batch dimension).
      with_labels: yield (x, int32 label) pairs instead of x.
    """
    batch_size = _check_batch_size(batch_size)
    low, high = _check_value_range(value_range)
    seed = _check_seed(seed)
    kind, name = _resolve(name)
    if with_labels and kind == "folder":
        raise UnlabelledDataset(f"the images in folder '{name}' have no labels: drop "
                                "with_labels, or use a labelled dataset such as fashion_mnist")

    if kind == "tfds":
        examples, _ = _tfds_examples(name, split, data_dir,
                                     _check_image_shape(image_shape, kind), with_labels)
        ds = examples.cache()
        cardinality = int(ds.cardinality())
        size = cardinality if cardinality >= 0 else None  # None: unknown until read
        buffer = _SHUFFLE_BUFFER
    else:
        x, labels = load_arrays(name, split, data_dir=data_dir, image_shape=image_shape)
        ds = tf.data.Dataset.from_tensor_slices((x, labels) if with_labels else x)
        size = buffer = len(x)

    if drop_remainder and size is not None and batch_size > size:
        raise GanZooError(f"batch_size {batch_size} is larger than the {size} examples of "
                          f"'{name}' split '{split}': use batch_size <= {size} or "
                          "drop_remainder=False")
    if shuffle:
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if kind != "mixture":
        ds = ds.map(_scaler(low, high, with_labels), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def load_arrays(name, split="train", *, data_dir=None, image_shape=None):
    """Returns the unbatched, unscaled source of `name` as numpy arrays `(x, labels)`.

    `x` is uint8 (n, h, w, c) for images (resized/converted to `image_shape` if given) or float32
    (n, 2) for the 2-D mixtures; `labels` is int32 (n,), or None for a folder of images. TFDS
    datasets are read completely into memory.
    """
    kind, name = _resolve(name)
    image_shape = _check_image_shape(image_shape, kind)

    if kind == "fashion_mnist":
        x, labels = _read_fashion_mnist(split, data_dir)
        if image_shape is not None:
            x = _resize_array(x, image_shape)
        return x, labels
    if kind == "mixture":
        size, seed = _MIXTURE_SPLITS[_check_split(split, name, SPLITS)]
        return _sample_with_modes(mixture(name), size, seed)
    if kind == "folder":
        _check_split(split, f"folder '{name}'", ("train",))
        return _read_folder(name, image_shape), None

    # A TFDS dataset: run its example pipeline once, with labels if it has them, and stack.
    ds, has_labels = _tfds_examples(name, split, data_dir, image_shape, with_labels=None)
    parts = list(ds.batch(1024).as_numpy_iterator())
    if not parts:
        raise GanZooError(f"tensorflow-datasets '{name}' split '{split}' is empty: use another "
                          "split")
    if has_labels:
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    return np.concatenate(parts), None


# --------------------------------------------------------------------------------------------
# Fashion-MNIST: the original IDX files
# --------------------------------------------------------------------------------------------


def read_idx(path) -> np.ndarray:
    """Reads an IDX file (gzip-compressed or raw) into a numpy array of its own dtype and shape.

    The IDX format (LeCun's MNIST format) is a 4-byte magic number -- two zero bytes, a type code
    and the number of dimensions -- then one big-endian uint32 per dimension, then the data.
    Compression is detected from the gzip magic bytes, not the file name. The magic number, the
    dimensions and the exact byte count are checked; any problem raises GanZooError naming the
    file.
    """
    path = os.fspath(path)
    fix = "replace it with an intact copy (apt-get install --reinstall dataset-fashion-mnist)"
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise GanZooError(f"cannot read IDX file '{path}' ({exc.strerror or exc}): "
                          "check that it exists and is readable") from exc

    if raw[:2] == b"\x1f\x8b":  # gzip magic
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise GanZooError(f"IDX file '{path}' is not a valid gzip file ({exc}): {fix}") from exc

    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        raise GanZooError(f"'{path}' is not an IDX file (bad magic number 0x{raw[:4].hex()}): "
                          f"{fix}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise GanZooError(f"IDX file '{path}' is truncated ({len(raw)} bytes, shorter than its "
                          f"{header}-byte header): {fix}")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header + math.prod(dims) * dtype.itemsize
    if len(raw) != expected:
        problem = "truncated" if len(raw) < expected else "longer than its header says"
        raise GanZooError(f"IDX file '{path}' is {problem} ({len(raw)} bytes, expected "
                          f"{expected} for shape {dims}): {fix}")
    # Copy into native byte order: a writable array that owns its memory.
    return np.frombuffer(raw, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def _fashion_mnist_dir(data_dir):
    """The folder to read Fashion-MNIST from, and where that choice came from."""
    if data_dir:
        return os.path.expanduser(os.fspath(data_dir)), "data_dir"
    if os.environ.get(DATA_DIR_ENV):
        return os.path.expanduser(os.environ[DATA_DIR_ENV]), DATA_DIR_ENV
    return FASHION_MNIST_DIR, "default"


def _read_fashion_mnist(split, data_dir):
    """(images uint8 (n, 28, 28, 1), labels int32 (n,)) of one Fashion-MNIST split."""
    split = _check_split(split, "fashion_mnist", SPLITS)
    folder, origin = _fashion_mnist_dir(data_dir)
    where = "" if origin == "default" else f" (from {origin})"
    if not os.path.isdir(folder):
        raise GanZooError(f"Fashion-MNIST folder '{folder}'{where} does not exist: {_INSTALL_HINT}")

    def find(stem):  # the original files are .gz; accept uncompressed copies as well
        for file_name in (stem + ".gz", stem):
            path = os.path.join(folder, file_name)
            if os.path.isfile(path):
                return path
        raise GanZooError(f"Fashion-MNIST folder '{folder}'{where} has no {stem}.gz (or {stem}): "
                          f"{_INSTALL_HINT}")

    prefix = _IDX_PREFIX[split]
    images_path = find(f"{prefix}-images-idx3-ubyte")
    labels_path = find(f"{prefix}-labels-idx1-ubyte")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8 or len(images) == 0:
        raise GanZooError(f"IDX file '{images_path}' holds {images.dtype} data of shape "
                          f"{images.shape}, not uint8 images (n, rows, cols): replace it with "
                          "the original Fashion-MNIST file")
    if labels.ndim != 1:
        raise GanZooError(f"IDX file '{labels_path}' holds data of shape {labels.shape}, not "
                          "labels (n,): replace it with the original Fashion-MNIST file")
    if len(images) != len(labels):
        raise GanZooError(f"'{images_path}' has {len(images)} images but '{labels_path}' has "
                          f"{len(labels)} labels: use matching files from one Fashion-MNIST copy")
    return images[..., np.newaxis], labels.astype(np.int32)


# --------------------------------------------------------------------------------------------
# 2-D Gaussian mixtures
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class Mixture:
    """An equal-weight mixture of isotropic 2-D Gaussians: `means` (k, 2) float32, one `std`."""

    name: str
    means: np.ndarray
    std: float

    @property
    def num_modes(self) -> int:
        return len(self.means)


def mixture(name) -> Mixture:
    """The 2-D mixture called `name` ("ring8" or "grid25")."""
    if name == "ring8":
        # arange(8) * 2pi/8, not linspace(0, 2pi, 8): the latter puts the last mode on the first.
        angles = np.arange(8) * (2 * np.pi / 8)
        means, std = 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1), 0.02
    elif name == "grid25":
        means, std = np.array(list(itertools.product(range(-4, 5, 2), repeat=2))), 0.05
    else:
        raise GanZooError(f"unknown mixture '{name}': use ring8 or grid25")
    means = means.astype(np.float32)
    means.setflags(write=False)  # the dataclass is frozen; so are its means
    return Mixture(name=name, means=means, std=std)


def sample_mixture(name, n, seed) -> np.ndarray:
    """`n` points (n, 2) float32 of mixture `name`, a deterministic function of `seed`."""
    return _sample_with_modes(mixture(name), n, seed)[0]


def _sample_with_modes(mix, n, seed):
    """(points (n, 2) float32, mode index (n,) int32); modes get exactly equal shares (+-1)."""
    rng = np.random.default_rng(seed)
    modes = rng.permutation(np.arange(n) % mix.num_modes).astype(np.int32)
    points = mix.means[modes] + mix.std * rng.standard_normal((n, 2))
    return points.astype(np.float32), modes


# --------------------------------------------------------------------------------------------
# A folder of images
# --------------------------------------------------------------------------------------------


def _read_folder(folder, image_shape):
    """Decodes every image file directly inside `folder` into one uint8 array (n, h, w, c)."""
    files = sorted(f for f in os.listdir(folder)
                   if f.lower().endswith(IMAGE_EXTENSIONS)
                   and os.path.isfile(os.path.join(folder, f)))
    if not files:
        raise GanZooError(f"folder '{folder}' has no {'/'.join(IMAGE_EXTENSIONS)} images "
                          "(subfolders are not searched): put the images directly in it")
    paths = [os.path.join(folder, f) for f in files]
    # With a target shape, decode everything as RGB (every format supports 3 channels; GIF and
    # BMP do not support 1) and convert afterwards; without one, keep each file's own channels.
    channels = 3 if image_shape is not None else 0

    def decode(path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=channels,
                                   expand_animations=False)  # first frame of a GIF
        return image if image_shape is None else _fit_images(image, image_shape)

    ds = tf.data.Dataset.from_tensor_slices(paths).map(decode,
                                                       num_parallel_calls=tf.data.AUTOTUNE)
    try:
        images = list(ds.as_numpy_iterator())
    except tf.errors.OpError as error:
        # The parallel pass does not say which file failed: find it one file at a time.
        for path in paths:
            try:
                decode(tf.constant(path))
            except tf.errors.OpError as exc:
                raise GanZooError(f"cannot decode image '{path}' ({_short(exc)}): fix or remove "
                                  "it") from exc
        # Every file decodes on its own: the failure lies elsewhere (e.g. memory).
        raise GanZooError(f"could not decode the images in folder '{folder}': check that they "
                          "fit in memory, or pass a smaller --image_size") from error

    if image_shape is None:
        first = images[0].shape
        for path, image in zip(paths, images):
            if image.shape != first:
                raise GanZooError(f"images differ in size: '{paths[0]}' is {first} but '{path}' "
                                  f"is {image.shape} (h, w, c): pass --image_size (image_shape) "
                                  "to resize them all")
    return np.stack(images)


# --------------------------------------------------------------------------------------------
# tensorflow-datasets
# --------------------------------------------------------------------------------------------


def _tfds():
    """tensorflow_datasets, imported on first use (it is slow to import; tests replace this)."""
    try:
        import tensorflow_datasets
    except ImportError as exc:
        raise _incomplete_install(exc) from None
    return tensorflow_datasets


def _incomplete_install(exc):
    """The GanZooError for tensorflow-datasets failing to import a module (not a network error)."""
    missing = getattr(exc, "name", None) or _short(exc)
    return GanZooError(f"tensorflow-datasets cannot be used: it needs the module {missing!r}, "
                       f"which is not installed: run bash scripts/setup.sh (or pip install "
                       f"{missing.split('.')[0].replace('_', '-')}), or use fashion_mnist, ring8, "
                       "grid25 or a folder of images")


def _is_tfds_name(name):
    """Whether TFDS registers `name` ("mnist", "cifar10", "celeb_a/config:1.0.0" ...).

    Only the builders shipped with the package are listed: the community index would need the
    network.
    """
    base = name.split(":")[0].split("/")[0]
    return bool(base) and base in _tfds().list_builders(with_community_datasets=False)


def _tfds_load(name, split, data_dir):
    """tfds.load, with every failure (no network, bad split, preparation) as one GanZooError."""
    tfds = _tfds()
    try:
        return tfds.load(name, split=split, data_dir=data_dir)
    except ImportError as exc:  # a dependency TFDS imports lazily, not the network
        raise _incomplete_install(exc) from None
    except Exception as exc:  # noqa: BLE001 -- TFDS raises many unrelated types here
        raise GanZooError(f"could not load tensorflow-datasets '{name}' ({_short(exc)}): it "
                          "downloads on first use; with no network use fashion_mnist, ring8, "
                          "grid25 or a folder of images") from exc


def _tfds_examples(name, split, data_dir, image_shape, with_labels):
    """(unbatched examples, with_labels): uint8 images fitted to image_shape [, int32 labels].

    with_labels=None means "labels if the dataset has them".
    """
    ds = _tfds_load(name, split, data_dir)
    spec = ds.element_spec
    if not isinstance(spec, dict) or "image" not in spec:
        features = ", ".join(sorted(spec)) if isinstance(spec, dict) else str(spec)
        raise GanZooError(f"tensorflow-datasets '{name}' has no 'image' feature (it has "
                          f"{features}): {_OPTIONS}")
    if with_labels is None:
        with_labels = "label" in spec
    elif with_labels and "label" not in spec:
        raise UnlabelledDataset(f"tensorflow-datasets '{name}' has no 'label' feature: drop "
                                "with_labels or use a labelled dataset such as fashion_mnist")
    image_spec = spec["image"]
    if image_spec.dtype != tf.uint8 or image_spec.shape.rank != 3:
        raise GanZooError(f"tensorflow-datasets '{name}' images are {image_spec.dtype.name} "
                          f"{image_spec.shape}, not uint8 (h, w, c): {_OPTIONS}")
    if image_shape is None and not image_spec.shape.is_fully_defined():
        raise GanZooError(f"tensorflow-datasets '{name}' images vary in size "
                          f"{tuple(image_spec.shape)}: pass --image_size (image_shape) to "
                          "resize them")

    def pick(example):
        image = example["image"]
        if image_shape is not None:
            image = _fit_images(image, image_shape)
        return (image, tf.cast(example["label"], tf.int32)) if with_labels else image

    return ds.map(pick, num_parallel_calls=tf.data.AUTOTUNE), with_labels


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


def _resolve(name):
    """(kind, name): kind is "fashion_mnist", "mixture", "folder" or "tfds"."""
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    if not isinstance(name, str) or not name:
        raise GanZooError(f"dataset name must be a non-empty string, got {name!r}: {_OPTIONS}")
    if name == "fashion_mnist":
        return "fashion_mnist", name
    if name in ("ring8", "grid25"):
        return "mixture", name
    folder = os.path.expanduser(name)
    if os.path.isdir(folder):
        return "folder", folder
    if _is_tfds_name(name):
        return "tfds", name
    if os.sep in name or "/" in name or name.startswith(("~", ".")):
        raise GanZooError(f"folder '{name}' does not exist: {_OPTIONS}")
    raise GanZooError(f"unknown dataset '{name}': {_OPTIONS}")


def _check_split(split, source, valid):
    if split not in valid:
        raise GanZooError(f"unknown split {split!r} for {source}: use one of {', '.join(valid)}")
    return split


def _check_batch_size(batch_size):
    if (isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral)
            or batch_size < 1):
        raise GanZooError(f"batch_size must be a positive integer, got {batch_size!r}: "
                          "pass e.g. --batch_size 64")
    return int(batch_size)


def _check_seed(seed):
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise GanZooError(f"seed must be an integer or None, got {seed!r}: pass e.g. --seed 0")
    return None if seed is None else int(seed)


def _check_value_range(value_range):
    try:
        low, high = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise GanZooError(f"value_range must be a pair (low, high), got {value_range!r}: use "
                          "(-1, 1) for a tanh generator or (0, 1) for a sigmoid one") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise GanZooError(f"value_range must have finite low < high, got {value_range!r}: use "
                          "(-1, 1) for a tanh generator or (0, 1) for a sigmoid one")
    return low, high


def _check_image_shape(image_shape, kind):
    """None or a tuple (h, w, c) with c in {1, 3}; the mixtures only accept None or (2,)."""
    if image_shape is None:
        return None
    try:
        # (h, w, None) keeps the source's channels: resize only.
        shape = tuple(None if d is None and i == 2 else int(d) for i, d in enumerate(image_shape))
    except (TypeError, ValueError):
        shape = ()
    if kind == "mixture":
        if shape == (2,):
            return None
        raise GanZooError(f"ring8 and grid25 are 2-D points, not images, so image_shape "
                          f"{image_shape!r} does not apply: drop it (or use an image dataset)")
    if len(shape) != 3 or min(shape[:2]) < 1 or shape[2] not in (1, 3, None):
        raise GanZooError(f"image_shape must be (height, width, channels) with channels 1 or 3, "
                          f"got {image_shape!r}: e.g. (28, 28, 1) or (32, 32, 3)")
    return shape


def _fit_images(images, image_shape):
    """Resizes (antialiased) uint8 images [..., h, w, c] and converts their channels.

    Grayscale becomes RGB by repeating the channel, RGB becomes grayscale with the ITU-R 601
    weights of tf.image.rgb_to_grayscale, and an alpha channel is dropped. Returns uint8.
    """
    height, width, channels = image_shape
    images = tf.convert_to_tensor(images)
    if tuple(images.shape[-3:]) == (height, width, channels or images.shape[-1]):
        return images  # already the right shape: no rounding round-trip
    x = tf.cast(images, tf.float32)
    source_channels = x.shape[-1]
    if source_channels in (2, 4):  # gray + alpha, RGB + alpha
        x = x[..., :source_channels - 1]
        source_channels -= 1
    if channels is None:
        channels = source_channels
    if source_channels == 1 and channels == 3:
        x = tf.image.grayscale_to_rgb(x)
    elif source_channels == 3 and channels == 1:
        x = tf.image.rgb_to_grayscale(x)
    elif source_channels != channels:
        raise GanZooError(f"cannot convert images with {source_channels} channels to "
                          f"{channels}: use images with 1 or 3 channels")
    if tuple(x.shape[-3:-1]) != (height, width):
        x = tf.image.resize(x, (height, width), antialias=True)
    return tf.saturate_cast(tf.round(x), tf.uint8)


def _available_memory():
    """Bytes of memory available to this process (MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _check_memory(needed, what):
    """Refuses to build an in-memory array of `needed` bytes that would not fit in memory."""
    available = _available_memory()
    if available is not None and needed > 0.8 * available:
        raise GanZooError(f"{what} need {needed / 2**30:.1f} GiB in memory, more than the "
                          f"{available / 2**30:.1f} GiB available: pass a smaller --image_size "
                          "or a smaller dataset")


def _resize_array(images, image_shape):
    """_fit_images over an in-memory uint8 array, a chunk at a time to bound float memory."""
    if images.shape[1:] == (*image_shape[:2], image_shape[2] or images.shape[-1]):
        return images
    _check_memory(len(images) * image_shape[0] * image_shape[1] * (image_shape[2] or images.shape[-1]),
                  f"{len(images)} images of {image_shape[0]}x{image_shape[1]}")
    return np.concatenate([_fit_images(images[i:i + _RESIZE_CHUNK], image_shape).numpy()
                           for i in range(0, len(images), _RESIZE_CHUNK)])


def _scaler(low, high, with_labels):
    """The batch map: uint8 [0, 255] -> float32 [low, high], linearly; labels pass through."""

    def scale(images):
        return low + (tf.cast(images, tf.float32) / 255.0) * (high - low)

    if with_labels:
        return lambda images, labels: (scale(images), labels)
    return scale


def _short(exc):
    """The first line of an exception's message, shortened, for one-line error messages."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    # TF op errors wrap the message in "{{function_node ...}} ... [Op:Name] name: " noise.
    text = re.sub(r"\s*\[Op:[^\]]*\].*$", "", text.split("}}")[-1]).strip() or text
    return text if len(text) <= 160 else text[:157] + "..."
