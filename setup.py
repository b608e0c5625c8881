"""GAN Zoo: reference generative adversarial networks in TensorFlow 2 / Keras 3."""

from setuptools import setup

EXPORT = ["tf2onnx>=1.17", "onnx>=1.17", "onnxruntime>=1.20"]

setup(
    name="gan-zoo",
    version="0.1.0",
    description="Reference GANs (GAN, DCGAN, InfoGAN, EBGAN, WGAN) that train with model.fit, with pretrained presets",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=["models", "losses", "train", "zoo"],
    package_data={"zoo": ["weights/*.h5", "weights/*.json", "presets/*.json", "images/*.png"]},
    install_requires=[
        "tensorflow>=2.16,<3",
        "keras>=3.0",
        "tensorflow-datasets",
        "importlib_resources",  # tensorflow-datasets 4.9 imports it without declaring it
        "tensorboard",
        "absl-py",
        "numpy",
        "scipy",
    ],
    extras_require={
        # python -m zoo.export --format onnx: Keras converts with tf2onnx; onnxruntime runs the file.
        "export": EXPORT,
        # pytest-xdist: the suite runs on every core (pytest.ini), a file per worker.
        "test": ["pytest>=7", "pytest-xdist>=3", "ruff", *EXPORT],
    },
)
