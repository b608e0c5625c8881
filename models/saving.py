"""Loading saved GANs safely: one clear `GanZooError` naming the file for every bad file.

    models.load("runs/dcgan_fashion_mnist/model.keras")   # keras.saving.load_model, safe mode on
    gan.load_weights("final.weights.h5")                  # GAN.load_weights goes through here too

A file may come with a checksum next to it, `<file>.sha256` in `sha256sum` format (the trainer
writes one for `final.weights.h5` and `model.keras`); when it exists the file must match it, so a
tampered or truncated file is refused before Keras reads a byte of it. `.keras` files always
load with Keras' safe mode on: a file cannot run code (no `Lambda` bytecode) when it is loaded.
"""

import hashlib
import os
import re
import zipfile

import keras

from models.errors import GanZooError

CHECKSUM_SUFFIX = ".sha256"


def sha256_of(path):
    """The hex sha256 of the file at `path`."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checksum_path(path):
    return os.fspath(path) + CHECKSUM_SUFFIX


def write_checksum_line(path):
    """The `sha256sum` line of `path` (hash, two spaces, file name)."""
    return f"{sha256_of(path)}  {os.path.basename(os.fspath(path))}\n"


def check_file(path, what="file", expected_sha256=None):
    """Refuses a missing file, or one whose sha256 differs from `expected_sha256` or from its
    `<path>.sha256` companion file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise GanZooError(f"{what} '{path}' does not exist: check the path")
    if expected_sha256 is None and os.path.isfile(checksum_path(path)):
        with open(checksum_path(path), encoding="utf-8") as f:
            expected_sha256 = (f.read().split() or [""])[0]
    if expected_sha256 is not None and sha256_of(path) != expected_sha256:
        raise GanZooError(
            f"{what} '{path}' is damaged or was modified: its sha256 does not match the one "
            f"recorded for it; replace it with an intact copy"
        )


def short(error):
    """The first line of an exception's message, shortened, for one-line messages."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def load(path, custom_objects=None):
    """`keras.saving.load_model(path)` with safe mode on, and one clear error naming the file.

    Returns the model (for a zoo model, a `models.GAN` ready to `generate` or to train on).
    """
    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise GanZooError(f"'{path}' is not a .keras file: load .weights.h5 files with "
                          "model.load_weights(path)")
    check_file(path, "model file")
    if not zipfile.is_zipfile(path):  # a .keras file is a zip archive
        raise GanZooError(f"model file '{path}' is truncated or corrupt (not a zip archive): "
                          "replace it with an intact copy")
    try:
        return keras.saving.load_model(path, custom_objects=custom_objects, safe_mode=True)
    except GanZooError as e:
        raise GanZooError(f"cannot load model file '{path}': {e}") from None
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise GanZooError(f"model file '{path}' is truncated or corrupt ({short(e)}): replace it "
                          "with an intact copy") from None
    except (ValueError, TypeError, KeyError) as e:
        if re.search(r"safe_mode|unsafe|arbitrary code", str(e)):
            raise GanZooError(f"model file '{path}' holds code (e.g. a Lambda layer) and safe "
                              "mode refuses to run it: load only files you trust, with "
                              "keras.saving.load_model(..., safe_mode=False)") from None
        raise GanZooError(f"model file '{path}' cannot be loaded ({short(e)}): it is damaged or "
                          "was not saved by GAN Zoo") from None


def load_weights(model, path, load):
    """Runs `load(path)` (Keras' weight loading) with every failure as one GanZooError."""
    path = os.fspath(path)
    check_file(path, "weights file")
    try:
        load(path)
    except GanZooError as e:
        raise GanZooError(f"cannot load weights file '{path}' into {model.name}: {e}") from None
    except OSError as e:  # h5py: truncated, not an HDF5 file, unreadable
        raise GanZooError(f"weights file '{path}' is truncated or corrupt ({short(e)}): replace "
                          "it with an intact copy") from None
    except (ValueError, KeyError, TypeError) as e:
        raise GanZooError(f"weights file '{path}' does not fit {model.name} ({short(e)}): it was "
                          "saved by another model or is damaged") from None
