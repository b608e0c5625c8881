"""Training entry points and the dataset pipeline (data.py) of GAN Zoo."""

import models  # noqa: F401 -- hides TensorFlow's start-up messages before anything loads it
