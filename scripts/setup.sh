#!/usr/bin/env bash
# Sets up a Debian machine for GAN Zoo: the Fashion-MNIST IDX files from Debian's
# dataset-fashion-mnist package (the zoo's offline default dataset) and this package with its
# test extra. Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq dataset-fashion-mnist; } >/dev/null; then
    echo "setup: could not install dataset-fashion-mnist with apt-get; install it as root, or set GAN_ZOO_DATA_DIR to a folder with the four Fashion-MNIST IDX files" >&2
    exit 1
  fi
fi

python3 -m pip install --quiet --disable-pip-version-check -e ".[test]"
