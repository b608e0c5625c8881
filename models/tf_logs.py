"""TensorFlow's start-up messages, decided in one place.

TensorFlow prints 5 to 7 lines of its own when it loads (oneDNN, CUDA, CPU features, and on a
machine without a GPU an `E0000 ... failed call to cuInit` that reads as a failure); they say
nothing about a run, so they are hidden: the first import of TensorFlow, and its first look for
GPUs, run with the process's standard error captured. If that import fails, what TensorFlow
printed is shown with the error. Later, TensorFlow logs only errors unless TF_CPP_MIN_LOG_LEVEL
says otherwise. Set GAN_ZOO_TF_LOGS=1 to see everything TensorFlow prints.

`models/__init__.py` installs this before anything of the zoo can import TensorFlow (every
package of the zoo that uses TensorFlow goes through `models`).
"""

import contextlib
import importlib.abc
import importlib.util
import os
import sys
import threading

SHOW_TF_LOGS = os.environ.get("GAN_ZOO_TF_LOGS", "") not in ("", "0")


@contextlib.contextmanager
def _captured_stderr():
    """Redirects file descriptor 2 (C++ and Python alike) into a pipe for the block; yields the
    list the captured bytes are appended to."""
    captured = []
    sys.stderr.flush()
    saved = os.dup(2)
    read_end, write_end = os.pipe()

    def drain():
        while chunk := os.read(read_end, 65536):
            captured.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield captured
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end: the reader sees its end
        os.close(saved)
        reader.join(timeout=5)
        os.close(read_end)


class _QuietTensorFlow(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` once, and loads it (and lets it look for GPUs) with stderr captured."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module):
            failure = None
            with _captured_stderr() as captured:
                try:
                    load(module)
                    module.config.list_physical_devices("GPU")  # where cuInit complains
                except BaseException as error:  # noqa: BLE001 -- shown, then raised again
                    failure = error
            if failure is not None:
                sys.stderr.write(b"".join(captured).decode("utf-8", "replace"))
                raise failure

        spec.loader.exec_module = exec_module
        return spec


if not SHOW_TF_LOGS:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # later: TensorFlow's errors only
    if "tensorflow" not in sys.modules:
        sys.meta_path.insert(0, _QuietTensorFlow())
