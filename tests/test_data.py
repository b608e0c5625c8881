"""Tests of train/data.py: offline, seeded and fast (small IDX and PNG fixtures in tmp_path)."""

import gzip
import math
import os
import types

import numpy as np
import pytest
import tensorflow as tf
from idx import idx_bytes, write_idx

from models.errors import GanZooError
from train import data

N_TRAIN, N_TEST = 100, 20


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


def make_images(n):
    """Image i: pixels 0, 255 and 51 in its first row, i at (1, 1), i % 7 elsewhere."""
    images = np.empty((n, 28, 28), np.uint8)
    for i in range(n):
        images[i] = i % 7
        images[i, 0, :3] = (0, 255, 51)
        images[i, 1, 1] = i  # identifies the image in shuffled batches
    return images


@pytest.fixture
def fmnist_dir(tmp_path):
    """A Fashion-MNIST folder: the train files gzip-compressed, the test files raw."""
    folder = tmp_path / "fmnist"
    folder.mkdir()
    write_idx(folder / "train-images-idx3-ubyte.gz", make_images(N_TRAIN))
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.arange(N_TRAIN) % 10)
    write_idx(folder / "t10k-images-idx3-ubyte", make_images(N_TEST), compress=False)
    write_idx(folder / "t10k-labels-idx1-ubyte", (np.arange(N_TEST) * 3) % 10, compress=False)
    return folder


def write_png(path, array):
    tf.io.write_file(str(path), tf.io.encode_png(np.asarray(array, np.uint8)))
    return path


@pytest.fixture
def png_dir(tmp_path):
    """Five 8x6 RGB PNGs; image i is filled with the value 50 * i."""
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i in range(5):
        write_png(folder / f"img{i}.png", np.full((8, 6, 3), 50 * i))
    (folder / "notes.txt").write_text("not an image, ignored")
    return folder


def ids(dataset):
    """The image ids (pixel (1, 1), back on the 0..255 scale) of one epoch, in order."""
    return [int(i) for batch in dataset for i in np.round((batch[:, 1, 1, 0] + 1) * 127.5)]


# --------------------------------------------------------------------------------------------
# Fashion-MNIST from IDX files
# --------------------------------------------------------------------------------------------


def test_shapes_dtypes_and_static_batch_dimension(fmnist_dir):
    ds = data.load("fashion_mnist", batch_size=32, data_dir=fmnist_dir)
    assert ds.element_spec.shape.as_list() == [32, 28, 28, 1]
    assert ds.element_spec.dtype == tf.float32
    batches = list(ds)
    assert len(batches) == N_TRAIN // 32  # the remainder is dropped
    ragged = data.load("fashion_mnist", batch_size=32, data_dir=fmnist_dir, drop_remainder=False)
    assert ragged.element_spec.shape.as_list() == [None, 28, 28, 1]
    assert sum(len(b) for b in ragged) == N_TRAIN


def test_pixel_values_scaled_by_hand(fmnist_dir):
    batch = next(iter(data.load("fashion_mnist", batch_size=10, shuffle=False,
                                data_dir=fmnist_dir))).numpy()
    assert batch[0, 0, 0, 0] == -1.0  # 0 -> -1
    assert batch[0, 0, 1, 0] == 1.0  # 255 -> 1
    np.testing.assert_allclose(batch[:, 0, 2, 0], 51 / 127.5 - 1, atol=1e-6)  # -0.6
    np.testing.assert_allclose(batch[:, 1, 1, 0], np.arange(10) / 127.5 - 1, atol=1e-6)
    assert batch.min() >= -1.0 and batch.max() <= 1.0

    unit = next(iter(data.load("fashion_mnist", batch_size=10, shuffle=False,
                               data_dir=fmnist_dir, value_range=(0, 1)))).numpy()
    np.testing.assert_allclose(unit[:, 0, :3, 0], [[0, 1, 51 / 255]] * 10, atol=1e-7)
    np.testing.assert_allclose(unit, make_images(10)[..., None] / 255, atol=1e-7)


def test_labels_pass_through_as_int32(fmnist_dir):
    ds = data.load("fashion_mnist", batch_size=25, shuffle=False, data_dir=fmnist_dir,
                   with_labels=True)
    assert ds.element_spec[1] == tf.TensorSpec((25,), tf.int32)
    labels = np.concatenate([y.numpy() for _, y in ds])
    np.testing.assert_array_equal(labels, np.arange(N_TRAIN) % 10)

    images, labels = next(iter(data.load("fashion_mnist", batch_size=50, data_dir=fmnist_dir,
                                         with_labels=True, seed=1)))
    image_ids = np.round((images[:, 1, 1, 0].numpy() + 1) * 127.5).astype(int)
    np.testing.assert_array_equal(labels.numpy(), image_ids % 10)  # pairs stay together


def test_raw_and_gzip_files_read_alike(fmnist_dir, tmp_path):
    x_test, y_test = data.load_arrays("fashion_mnist", "test", data_dir=fmnist_dir)  # raw
    assert x_test.shape == (N_TEST, 28, 28, 1) and x_test.dtype == np.uint8
    np.testing.assert_array_equal(x_test[..., 0], make_images(N_TEST))
    np.testing.assert_array_equal(y_test, (np.arange(N_TEST) * 3) % 10)
    assert y_test.dtype == np.int32

    gz = write_idx(tmp_path / "a.gz", make_images(3))
    raw = write_idx(tmp_path / "a.raw", make_images(3), compress=False)
    np.testing.assert_array_equal(data.read_idx(gz), data.read_idx(raw))
    assert len(list(data.load("fashion_mnist", "test", batch_size=5, data_dir=fmnist_dir))) == 4


def test_env_var_names_the_folder(fmnist_dir, monkeypatch):
    monkeypatch.setenv(data.DATA_DIR_ENV, str(fmnist_dir))
    x, _ = data.load_arrays("fashion_mnist")
    assert len(x) == N_TRAIN


def test_missing_folder_says_how_to_install(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere"
    with pytest.raises(GanZooError, match="apt-get install dataset-fashion-mnist") as info:
        data.load("fashion_mnist", data_dir=missing)
    assert str(missing) in str(info.value) and "\n" not in str(info.value)

    monkeypatch.setenv(data.DATA_DIR_ENV, str(missing))
    with pytest.raises(GanZooError, match="GAN_ZOO_DATA_DIR"):
        data.load_arrays("fashion_mnist")

    (tmp_path / "empty").mkdir()
    with pytest.raises(GanZooError, match="train-images-idx3-ubyte.*apt-get install"):
        data.load_arrays("fashion_mnist", data_dir=tmp_path / "empty")


def test_truncated_or_corrupt_files_are_named(fmnist_dir):
    images = fmnist_dir / "train-images-idx3-ubyte.gz"
    payload = idx_bytes(make_images(N_TRAIN))

    images.write_bytes(gzip.compress(payload[:-100]))  # valid gzip, short IDX payload
    with pytest.raises(GanZooError, match="truncated") as info:
        data.load("fashion_mnist", data_dir=fmnist_dir)
    assert str(images) in str(info.value)

    images.write_bytes(gzip.compress(payload)[:500])  # cut-off gzip stream
    with pytest.raises(GanZooError, match="gzip") as info:
        data.load_arrays("fashion_mnist", data_dir=fmnist_dir)
    assert str(images) in str(info.value)

    images.write_bytes(gzip.compress(b"\x00\x00\x99\x03" + payload[4:]))  # bad type code
    with pytest.raises(GanZooError, match="magic") as info:
        data.load_arrays("fashion_mnist", data_dir=fmnist_dir)
    assert str(images) in str(info.value)

    raw = fmnist_dir / "t10k-labels-idx1-ubyte"
    raw.write_bytes(b"PK\x03\x04 this is a zip file")
    with pytest.raises(GanZooError, match="magic") as info:
        data.read_idx(raw)
    assert str(raw) in str(info.value)


def test_image_label_count_mismatch(fmnist_dir):
    write_idx(fmnist_dir / "train-labels-idx1-ubyte.gz", np.zeros(N_TRAIN - 1))
    with pytest.raises(GanZooError, match=f"{N_TRAIN} images but .* {N_TRAIN - 1} labels"):
        data.load_arrays("fashion_mnist", data_dir=fmnist_dir)


def test_same_seed_same_order_other_seed_other_order(fmnist_dir):
    def order(seed):
        return ids(data.load("fashion_mnist", batch_size=10, seed=seed, data_dir=fmnist_dir))

    first = order(3)
    assert first == order(3)
    assert sorted(first) == list(range(N_TRAIN))  # a permutation: nothing lost or repeated
    assert first != order(4)
    assert first != list(range(N_TRAIN))
    assert ids(data.load("fashion_mnist", batch_size=10, shuffle=False,
                         data_dir=fmnist_dir)) == list(range(N_TRAIN))

    ds = data.load("fashion_mnist", batch_size=10, seed=3, data_dir=fmnist_dir)
    assert ids(ds) == first and ids(ds) != first  # reshuffled every epoch


def test_resize_and_gray_to_rgb_for_a_model(fmnist_dir):
    ds = data.load("fashion_mnist", batch_size=10, image_shape=(32, 32, 3), shuffle=False,
                   data_dir=fmnist_dir)
    assert ds.element_spec.shape.as_list() == [10, 32, 32, 3]
    batch = next(iter(ds)).numpy()
    np.testing.assert_array_equal(batch[..., 0], batch[..., 2])  # gray repeated as RGB
    # Image 0 is constant 0 except its first row and one pixel: most of it stays at -1.
    assert np.mean(batch[0] == -1.0) > 0.9
    x, _ = data.load_arrays("fashion_mnist", data_dir=fmnist_dir, image_shape=(14, 14, 1))
    assert x.shape == (N_TRAIN, 14, 14, 1) and x.dtype == np.uint8


# --------------------------------------------------------------------------------------------
# 2-D Gaussian mixtures
# --------------------------------------------------------------------------------------------


def pairwise_distances(points):
    return np.linalg.norm(points[:, None] - points[None], axis=-1)


def test_ring8_has_eight_distinct_modes_on_radius_two():
    ring = data.mixture("ring8")
    assert ring.means.shape == (8, 2) and ring.means.dtype == np.float32
    assert ring.std == 0.02 and ring.num_modes == 8
    np.testing.assert_allclose(np.linalg.norm(ring.means, axis=1), 2.0, atol=1e-6)
    distances = pairwise_distances(ring.means)[~np.eye(8, dtype=bool)]
    np.testing.assert_allclose(distances.min(), 2 * 2 * math.sin(math.pi / 8), atol=1e-5)
    angles = np.sort(np.mod(np.arctan2(ring.means[:, 1], ring.means[:, 0]), 2 * np.pi))
    np.testing.assert_allclose(angles, np.arange(8) * np.pi / 4, atol=1e-6)


def test_ring8_samples_sit_on_their_modes():
    x, modes = data.load_arrays("ring8")
    assert x.shape == (50_000, 2) and x.dtype == np.float32 and modes.dtype == np.int32
    means = data.mixture("ring8").means
    nearest = np.argmin(np.linalg.norm(x[:, None] - means[None], axis=-1), axis=1)
    np.testing.assert_array_equal(nearest, modes)
    assert np.abs(x - means[modes]).max() < 6 * 0.02
    assert np.bincount(modes).tolist() == [50_000 // 8] * 8  # equal weights
    np.testing.assert_allclose((x - means[modes]).std(), 0.02, rtol=0.05)


def test_grid25_has_25_modes():
    grid = data.mixture("grid25")
    assert grid.means.shape == (25, 2) and grid.std == 0.05
    assert {tuple(m) for m in grid.means.tolist()} == {
        (a, b) for a in (-4, -2, 0, 2, 4) for b in (-4, -2, 0, 2, 4)}
    x, modes = data.load_arrays("grid25", "test")
    assert x.shape == (10_000, 2) and set(modes.tolist()) == set(range(25))
    assert np.abs(x - grid.means[modes]).max() < 6 * 0.05


def test_mixtures_are_deterministic_unscaled_and_split():
    train, _ = data.load_arrays("ring8")
    np.testing.assert_array_equal(train, data.load_arrays("ring8")[0])
    test, _ = data.load_arrays("ring8", "test")
    assert len(test) == 10_000 and not np.isin(test[:100], train).all()
    np.testing.assert_array_equal(data.sample_mixture("grid25", 7, seed=5),
                                  data.sample_mixture("grid25", 7, seed=5))
    assert data.sample_mixture("grid25", 7, seed=5).shape == (7, 2)

    ds = data.load("grid25", batch_size=128, value_range=(0, 1), with_labels=True)
    assert ds.element_spec == (tf.TensorSpec((128, 2), tf.float32),
                               tf.TensorSpec((128,), tf.int32))
    points, labels = next(iter(ds))
    assert points.numpy().min() < 0  # value_range does not apply to 2-D points
    means = data.mixture("grid25").means
    assert np.abs(points.numpy() - means[labels.numpy()]).max() < 6 * 0.05


# --------------------------------------------------------------------------------------------
# A folder of images
# --------------------------------------------------------------------------------------------


def test_folder_of_pngs(png_dir):
    ds = data.load(png_dir, batch_size=2, shuffle=False, value_range=(0, 1),
                   drop_remainder=False)
    assert ds.element_spec.shape.as_list() == [None, 8, 6, 3]
    batches = [b.numpy() for b in ds]
    assert [len(b) for b in batches] == [2, 2, 1]
    np.testing.assert_allclose([b[0, 0, 0, 0] for b in batches], [0, 100 / 255, 200 / 255],
                               atol=1e-7)
    x, labels = data.load_arrays(str(png_dir))
    assert x.shape == (5, 8, 6, 3) and x.dtype == np.uint8 and labels is None


def test_folder_resize_and_channel_conversion(png_dir, tmp_path):
    gray = tmp_path / "gray"
    gray.mkdir()
    write_png(gray / "a.png", np.full((10, 10, 1), 255))
    write_png(gray / "b.png", np.full((7, 5, 1), 51))  # mixed sizes are fine with image_shape
    ds = data.load(gray, batch_size=2, image_shape=(4, 4, 3), shuffle=False)
    assert ds.element_spec.shape.as_list() == [2, 4, 4, 3]
    np.testing.assert_allclose(next(iter(ds)).numpy().reshape(2, -1), [[1.0] * 48,
                                                                     [51 / 127.5 - 1] * 48],
                               atol=1e-6)

    x, _ = data.load_arrays(png_dir, image_shape=(4, 3, 1))  # RGB -> grayscale
    assert x.shape == (5, 4, 3, 1)
    np.testing.assert_array_equal(x[:, 0, 0, 0], [0, 50, 100, 150, 200])


def test_folder_errors(png_dir, tmp_path):
    write_png(png_dir / "z_big.png", np.zeros((9, 6, 3)))
    with pytest.raises(GanZooError, match="--image_size") as info:
        data.load(png_dir, batch_size=2)
    assert "img0.png" in str(info.value) and "z_big.png" in str(info.value)
    os.remove(png_dir / "z_big.png")

    with pytest.raises(GanZooError, match="no labels"):
        data.load(png_dir, batch_size=2, with_labels=True)
    with pytest.raises(GanZooError, match="unknown split 'test'.*train"):
        data.load(png_dir, "test", batch_size=2)

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(GanZooError, match="no .*images"):
        data.load(empty)

    (png_dir / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage, not a JPEG")
    with pytest.raises(GanZooError, match="cannot decode image .*broken.jpg"):
        data.load(png_dir, batch_size=2)


# --------------------------------------------------------------------------------------------
# Names, arguments and tensorflow-datasets
# --------------------------------------------------------------------------------------------


def test_unknown_dataset_lists_the_options():
    with pytest.raises(GanZooError) as info:
        data.load("no_such_dataset_xyz")
    message = str(info.value)
    assert message.startswith("unknown dataset 'no_such_dataset_xyz'")
    for option in ("fashion_mnist", "ring8", "grid25", "folder", "mnist", "cifar10", "celeb_a"):
        assert option in message
    with pytest.raises(GanZooError, match="does not exist"):
        data.load("./no/such/folder")
    assert "fashion_mnist" in data.describe() and "\n" not in data.describe()


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, True, "64"])
def test_bad_batch_size(batch_size):
    with pytest.raises(GanZooError, match="batch_size must be a positive integer"):
        data.load("ring8", batch_size=batch_size)


def test_batch_larger_than_dataset(fmnist_dir):
    with pytest.raises(GanZooError, match=f"larger than the {N_TEST} examples"):
        data.load("fashion_mnist", "test", batch_size=N_TEST + 1, data_dir=fmnist_dir)
    ds = data.load("fashion_mnist", "test", batch_size=N_TEST + 1, data_dir=fmnist_dir,
                   drop_remainder=False)
    assert [len(b) for b in ds] == [N_TEST]


def test_bad_split_value_range_and_image_shape(fmnist_dir):
    with pytest.raises(GanZooError, match="unknown split 'validation'.*train, test"):
        data.load("fashion_mnist", "validation", data_dir=fmnist_dir)
    with pytest.raises(GanZooError, match="unknown split"):
        data.load_arrays("ring8", "valid")
    for bad in [(1, 0), (0, 0), (0,), "ab", (0, float("nan"))]:
        with pytest.raises(GanZooError, match="value_range"):
            data.load("fashion_mnist", value_range=bad, data_dir=fmnist_dir)
    with pytest.raises(GanZooError, match="image_shape"):
        data.load("fashion_mnist", image_shape=(32, 32), data_dir=fmnist_dir)
    with pytest.raises(GanZooError, match="image_shape"):
        data.load("ring8", image_shape=(28, 28, 1))


def fake_tfds(load):
    """A stand-in for the tensorflow_datasets module that knows one builder, 'fakeset'."""
    return types.SimpleNamespace(list_builders=lambda with_community_datasets=True: ["fakeset"],
                                 load=load)


def test_tfds_failure_becomes_gan_zoo_error(monkeypatch):
    def load(name, split, data_dir):
        raise ConnectionError("Failed to establish a new connection\nlong traceback text")

    monkeypatch.setattr(data, "_tfds", lambda: fake_tfds(load))
    with pytest.raises(GanZooError) as info:
        data.load("fakeset")
    message = str(info.value)
    assert message.startswith("could not load tensorflow-datasets 'fakeset'")
    assert "Failed to establish" in message and "\n" not in message
    assert "fashion_mnist, ring8, grid25 or a folder of images" in message


def test_tfds_image_dataset_through_the_pipeline(monkeypatch):
    images = np.stack([np.full((6, 6, 1), 5 * i, np.uint8) for i in range(12)])
    loads = []

    def load(name, split, data_dir):
        loads.append((name, split, data_dir))
        return tf.data.Dataset.from_tensor_slices(
            {"image": images, "label": np.arange(12, dtype=np.int64)})

    monkeypatch.setattr(data, "_tfds", lambda: fake_tfds(load))
    ds = data.load("fakeset", "test", batch_size=4, image_shape=(3, 3, 3), shuffle=False,
                   data_dir="/tmp/tfds", with_labels=True, value_range=(0, 1))
    assert loads == [("fakeset", "test", "/tmp/tfds")]
    assert ds.element_spec == (tf.TensorSpec((4, 3, 3, 3), tf.float32),
                               tf.TensorSpec((4,), tf.int32))
    x, y = next(iter(ds))
    np.testing.assert_allclose(x.numpy()[:, 0, 0, 0], np.arange(4) * 5 / 255, atol=1e-7)
    np.testing.assert_array_equal(y, np.arange(4))
    with pytest.raises(GanZooError, match="larger than the 12 examples"):
        data.load("fakeset", batch_size=13)

    x, labels = data.load_arrays("fakeset")
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(labels, np.arange(12))

    monkeypatch.setattr(data, "_tfds", lambda: fake_tfds(
        lambda name, split, data_dir: tf.data.Dataset.from_tensor_slices({"text": ["a"]})))
    with pytest.raises(GanZooError, match="no 'image' feature"):
        data.load("fakeset")


# --------------------------------------------------------------------------------------------
# The real Debian files
# --------------------------------------------------------------------------------------------


def test_real_fashion_mnist_files():
    folder = data.FASHION_MNIST_DIR
    if not os.path.isfile(os.path.join(folder, "train-images-idx3-ubyte.gz")):
        pytest.skip(f"Fashion-MNIST is not installed in {folder} "
                    "(apt-get install dataset-fashion-mnist)")
    x, labels = data.load_arrays("fashion_mnist", data_dir=folder)
    assert x.shape == (60_000, 28, 28, 1) and x.dtype == np.uint8
    assert labels.min() == 0 and labels.max() == 9
    assert np.bincount(labels).tolist() == [6000] * 10
    assert abs(x.mean() - 72.94) < 0.5
    x_test, _ = data.load_arrays("fashion_mnist", "test", data_dir=folder)
    assert x_test.shape == (10_000, 28, 28, 1)

    batch = next(iter(data.load("fashion_mnist", batch_size=256, data_dir=folder)))
    assert batch.shape == (256, 28, 28, 1)
    assert -1.0 <= batch.numpy().min() and batch.numpy().max() <= 1.0


def test_resize_keeping_the_source_channels(fmnist_dir):
    batch = next(iter(data.load("fashion_mnist", batch_size=4, shuffle=False, data_dir=str(fmnist_dir),
                                image_shape=(32, 32, None))))
    assert batch.shape == (4, 32, 32, 1)


def test_tfds_imports_and_describes_mnist_offline():
    """The installed tensorflow-datasets imports (with every module it needs) and gives a
    builder's metadata without any download."""
    tfds = data._tfds()
    assert data._is_tfds_name("mnist") and data._is_tfds_name("cifar10")
    builder = tfds.builder("mnist")
    assert builder.info.features["image"].shape == (28, 28, 1)
    assert builder.info.features["label"].num_classes == 10


def test_a_missing_tfds_dependency_is_not_called_a_network_problem(monkeypatch):
    def load(name, split, data_dir):
        raise ModuleNotFoundError("No module named 'importlib_resources'", name="importlib_resources")

    monkeypatch.setattr(data, "_tfds", lambda: fake_tfds(load))
    with pytest.raises(GanZooError) as raised:
        data.load("fakeset", "train", 4)
    message = str(raised.value)
    assert message.startswith("tensorflow-datasets cannot be used: it needs the module "
                              "'importlib_resources', which is not installed: run bash scripts/setup.sh "
                              "(or pip install importlib-resources)")
    assert "network" not in message and "\n" not in message
