"""LSGAN: Mao, Li, Xie, Lau, Wang & Smolley 2017, "Least Squares Generative Adversarial
Networks". Paper: https://arxiv.org/abs/1611.04076.

The discriminator's sigmoid cross-entropy is replaced by a least-squares regression of its raw
output onto targets (a = 0 for fake samples, b = 1 for real ones; G pulls towards c = 1), see
losses/lsgan.py. Samples on the right side of the decision boundary but far from the real data
still get gradients, which the paper credits for steadier training and better images.

The least-squares objective is a choice of any family whose discriminator outputs a logit
(`generator_loss="least_squares"`, `--generator_loss least_squares` on the command line: the
MLP GAN, DCGAN, InfoGAN's adversarial part, ...). This registry entry is the DCGAN architecture
trained with it, with the paper's Adam(2e-4, beta1=0.5) for both networks.
"""

import keras

from models.dcgan import DCGAN
from models.options import replace


@keras.saving.register_keras_serializable(package="gan_zoo")
class LSGAN(DCGAN):
    """DCGAN networks trained with the least-squares objective."""

    paper = "https://arxiv.org/abs/1611.04076"
    options = replace(DCGAN.options, generator_loss=dict(default="least_squares"))

    def __init__(self, image_shape=(28, 28, 1), **kwargs):
        kwargs.setdefault("name", "lsgan")
        kwargs.setdefault("generator_loss", "least_squares")
        super().__init__(image_shape=image_shape, **kwargs)
