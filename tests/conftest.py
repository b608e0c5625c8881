"""Shared pytest setup: the repository root on sys.path and quiet TensorFlow logs."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import pytest

import models  # noqa: F401 -- hides TensorFlow's start-up messages before anything imports it


@pytest.fixture
def fashion_dir(tmp_path, monkeypatch):
    """A small Fashion-MNIST folder (256 train, 64 test images), named by GAN_ZOO_DATA_DIR."""
    from idx import write_fashion_mnist

    folder = write_fashion_mnist(tmp_path / "fashion-mnist")
    monkeypatch.setenv("GAN_ZOO_DATA_DIR", str(folder))
    return folder


@pytest.fixture(scope="module")
def small_fashion(tmp_path_factory):
    """The same small Fashion-MNIST folder, shared by the tests of one module."""
    from idx import write_fashion_mnist

    folder = write_fashion_mnist(tmp_path_factory.mktemp("data") / "fashion-mnist")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GAN_ZOO_DATA_DIR", str(folder))
        yield folder
