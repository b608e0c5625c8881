"""Training entry points and the dataset pipeline (data.py) of GAN Zoo."""
