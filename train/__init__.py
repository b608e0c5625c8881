"""Training entry points and the dataset pipeline (data.py) of GAN Zoo.

TensorFlow's C++ start-up messages are hidden here, the one place that decides it, before any
module of the package imports TensorFlow: set TF_CPP_MIN_LOG_LEVEL yourself (e.g. 0) to see them.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
