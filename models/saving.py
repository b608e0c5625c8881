"""Saving and loading GAN files safely.

Writing: `save_atomically(save, path)` writes every file of the zoo under a temporary name in
the same folder, flushes it and renames it, so a kill at any moment leaves the previous version
or the new one; a failure (a full disk, a read-only folder) closes whatever was open, removes
the temporary file and raises one `GanZooError` naming `path`.

Loading: one clear `GanZooError` naming the file for every bad file.

    models.load("runs/dcgan_fashion_mnist/model.keras")   # keras.saving.load_model, safe mode on
    gan.load_weights("final.weights.h5")                  # GAN.load_weights goes through here too

A file may come with a checksum next to it, `<file>.sha256` in `sha256sum` format (the trainer
writes one for `final.weights.h5` and `model.keras`); when it exists the file must match it, so a
tampered or truncated file is refused before Keras reads a byte of it. `.keras` files always
load with Keras' safe mode on: a file cannot run code (no `Lambda` bytecode) when it is loaded.
"""

import errno
import hashlib
import io
import json
import os
import re
import zipfile

import keras

from models.errors import GanZooError

CHECKSUM_SUFFIX = ".sha256"
TEMPORARY_PREFIX = "tmp-"  # tmp-<pid>-<name>: what a killed or failed write leaves behind


# ------------------------------------------------------------------------- atomic file writes
def fsync(path):
    """Flushes `path` (a file or a folder) to disk, where the platform allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def disk_full(error):
    """Whether `error`, raised while writing, says the disk (or the quota) is full."""
    return getattr(error, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(error)


def write_error(path, error):
    """The GanZooError for an error raised while writing `path`."""
    number = getattr(error, "errno", None)
    if disk_full(error):
        return GanZooError(f"the disk is full: could not write {path}; the previous files are "
                           "intact: free some space and run the same command to resume")
    if number == errno.EFBIG or "File too large" in str(error):
        return GanZooError(f"could not write {path}: the file size limit was reached (ulimit -f); "
                           "the previous files are intact: raise the limit and run the same "
                           "command to resume")
    reason = getattr(error, "strerror", None) or short(error)
    return GanZooError(f"could not write {path} ({reason}); the previous files are intact: fix "
                       "this and run the same command to resume")


def _close_open_hdf5_files():
    """Closes every HDF5 file h5py still holds open (after a failed write). Left open, HDF5's
    exit handler flushes it at interpreter exit and crashes the process on a full disk."""
    try:
        import h5py
    except ImportError:
        return
    for file_id in h5py.h5f.get_obj_ids(types=h5py.h5f.OBJ_FILE):
        try:
            while file_id.valid:
                file_id.close()
        except Exception:  # noqa: BLE001 -- closing a broken file may fail again; it is gone
            pass


def temporary_path(path):
    directory, base = os.path.split(os.fspath(path))
    return os.path.join(directory, f"{TEMPORARY_PREFIX}{os.getpid()}-{base}")


def save_atomically(save, path):
    """Calls `save(temporary_path)`, flushes it to disk, then renames it to `path`.

    Readers see the old file or the whole new one, never a half-written one; the temporary name
    keeps the extension (Keras wants `.weights.h5` / `.keras`). Any failure while writing
    becomes a GanZooError naming `path` (after closing what was open and removing the
    temporary file); the old file stays.
    """
    path = os.fspath(path)
    temporary = temporary_path(path)
    try:
        save(temporary)
        fsync(temporary)
        os.replace(temporary, path)
        fsync(os.path.dirname(path) or ".")
    except GanZooError:
        raise
    except (OSError, RuntimeError, ValueError) as e:  # h5py and Keras wrap OS errors
        _close_open_hdf5_files()
        raise write_error(path, e) from None
    finally:
        if os.path.exists(temporary):
            try:
                os.remove(temporary)
            except OSError:
                pass


def _write_file(path, data):
    with open(path, "wb") as f:
        f.write(data)


def write_bytes_atomically(path, data):
    save_atomically(lambda temporary: _write_file(temporary, data), path)


def weights_bytes(model):
    """What `model.save_weights` would write (a Keras `.weights.h5` file), built in memory.

    Building it in memory first means HDF5 never writes to the disk: a full disk then fails
    in a plain file write, which closes cleanly (HDF5 left holding a half-written file crashes
    the process at exit)."""
    from keras.src.saving import saving_lib

    buffer = io.BytesIO()
    store = saving_lib.H5IOStore(buffer, mode="w")
    saving_lib._save_state(model, weights_store=store, assets_store=None, inner_path="",
                           visited_saveables=set())
    store.close()
    return buffer.getvalue()


def model_bytes(model):
    """What `model.save` would write (a `.keras` archive), built in memory (see above)."""
    from keras.src.saving import saving_lib

    buffer = io.BytesIO()
    saving_lib.save_model(model, buffer)
    return buffer.getvalue()


def save_weights_file(model, path):
    """`model.save_weights(path)`, atomically (see `save_atomically`)."""
    write_bytes_atomically(path, weights_bytes(model))


def save_model_file(model, path):
    """`model.save(path)` (a `.keras` file), atomically."""
    write_bytes_atomically(path, model_bytes(model))


def write_text_atomically(path, text):
    write_bytes_atomically(path, text.encode("utf-8"))


def write_json_atomically(path, obj):
    write_text_atomically(path, json.dumps(obj, indent=2) + "\n")


def remove_leftovers(folder):
    """Removes what killed writes left in `folder` and below (`tmp-<pid>-*` files). Only call it
    while holding the folder's lock: then no other process is writing there."""
    pattern = re.compile(re.escape(TEMPORARY_PREFIX) + r"\d+-")
    for root, _, files in os.walk(folder):
        for name in files:
            if pattern.match(name):
                try:
                    os.remove(os.path.join(root, name))
                except OSError:
                    pass


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
    import models.registry  # noqa: F401 -- registers every family with Keras before reading

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
