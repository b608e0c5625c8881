#!/usr/bin/env bash
# Sets up a Debian machine for GAN Zoo: the Fashion-MNIST IDX files from Debian's
# dataset-fashion-mnist package (the zoo's offline default dataset) and this package with its
# test extra. Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  echo "setup 1/2: installing Fashion-MNIST (Debian package dataset-fashion-mnist, about 30 MB)"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq dataset-fashion-mnist; } >/dev/null; then
    echo "setup: could not install dataset-fashion-mnist with apt-get; install it as root, or set GAN_ZOO_DATA_DIR to a folder with the four Fashion-MNIST IDX files" >&2
    exit 1
  fi
else
  echo "setup 1/2: Fashion-MNIST is installed"
fi

echo "setup 2/2: installing this package and its dependencies with pip (TensorFlow is about 600 MB: a few minutes on a fresh machine, seconds when they are there)"
# pip's own progress, less its lines about what is already there.
python3 -m pip install --disable-pip-version-check --progress-bar on -e ".[test]" 2>&1 \
  | { grep -v -E "^Requirement already satisfied|^Obtaining|^  (Installing|Checking|Preparing|Getting|Building)|as the 'root' user" || true; }
echo "setup: done"
