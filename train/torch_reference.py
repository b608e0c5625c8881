"""DCGAN's training step in PyTorch, as a yardstick for `python -m train.benchmark`.

Imported only when `torch` is importable; it is never a dependency of the package. The networks
are those of `models/dcgan.py` layer for layer (same shapes, same parameter counts):

- generator: Linear(latent, side*side*C, no bias) -> view (C, side, side) -> BatchNorm -> ReLU,
  then ConvTranspose2d(k=4, s=2, p=1, no bias) -> BatchNorm -> ReLU halving C, and a last
  ConvTranspose2d(k=4, s=2, p=1) to the image's channels with tanh. Keras' "same" padding of a
  4x4, stride-2 (transposed) convolution of an even-sized map is PyTorch's padding=1;
- discriminator: Conv2d(k=4, s=2, p=1) doubling the width (bias only on the first), batch norm
  on all but the first, LeakyReLU(0.2), flattened into Linear(., 1).

The step is the zoo's: one discriminator update on the real batch and fakes from fresh uniform
[-1, 1] noise (the generator runs in training mode, without a tape, as in `GAN`), the losses
mean(softplus(-D(x))) + mean(softplus(D(G(z)))) and the non-saturating mean(softplus(-D(G(z')))),
then one generator update on fresh noise; Adam(2e-4, beta1=0.5, beta2=0.999, eps=1e-7, Keras'
defaults) for each network; batch norm with eps 1e-5 and PyTorch momentum 0.1 (= 1 - Keras'
0.9). PyTorch's running variance is the unbiased one where Keras keeps the biased one: the same
kernels and cost, a different stored figure.

Variants: "eager" (NCHW), "channels_last" (NHWC memory format) and "compile" (`torch.compile`
of both networks, channels-last), each in float32 or under bfloat16 autocast.
"""

import time

import torch
from torch import nn

from models.dcgan import upsampling_plan

VARIANTS = ("eager", "channels_last", "compile")


def _normal_init(module):
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def _batch_norm(channels):
    return nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)


class Generator(nn.Module):
    def __init__(self, image_shape, latent_dim=100, width=64):
        super().__init__()
        side, doublings = upsampling_plan(image_shape)
        channels = width * 2 ** (doublings - 1)
        self.start = (channels, side, side)
        self.project = nn.Linear(latent_dim, side * side * channels, bias=False)
        layers = [_batch_norm(channels), nn.ReLU()]
        for _ in range(doublings - 1):
            layers += [nn.ConvTranspose2d(channels, channels // 2, 4, 2, 1, bias=False),
                       _batch_norm(channels // 2), nn.ReLU()]
            channels //= 2
        layers += [nn.ConvTranspose2d(channels, image_shape[-1], 4, 2, 1), nn.Tanh()]
        self.body = nn.Sequential(*layers)
        self.apply(_normal_init)

    def forward(self, latent):
        # Keras reshapes the projection to (side, side, C); the element order differs, not the work.
        return self.body(self.project(latent).view(-1, *self.start))


class Discriminator(nn.Module):
    def __init__(self, image_shape, width=64):
        super().__init__()
        side, doublings = upsampling_plan(image_shape)
        layers, channels = [], image_shape[-1]
        for i in range(doublings):
            layers.append(nn.Conv2d(channels, width * 2**i, 4, 2, 1, bias=i == 0))
            channels = width * 2**i
            if i > 0:
                layers.append(_batch_norm(channels))
            layers.append(nn.LeakyReLU(0.2))
        layers.append(nn.Flatten())
        self.body = nn.Sequential(*layers)
        final = image_shape[0] // 2**doublings
        self.logit = nn.Linear(channels * final * final, 1)
        self.apply(_normal_init)

    def forward(self, image):
        return self.logit(self.body(image))


def parameter_count(module):
    return sum(p.numel() for p in module.parameters())


def available_variants():
    """The variants that can run here: torch.compile needs a C++ compiler for its CPU code."""
    import shutil

    return VARIANTS if shutil.which("g++") or shutil.which("c++") else VARIANTS[:2]


class Step:
    """The zoo's DCGAN training step in PyTorch; `window(steps)` times `steps` of them."""

    def __init__(self, image_shape, batch_size, variant="eager", bfloat16=False, seed=0):
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; one of {VARIANTS}")
        torch.manual_seed(seed)
        self.batch_size, self.latent_dim, self.bfloat16 = batch_size, 100, bfloat16
        self.generator, self.discriminator = Generator(image_shape), Discriminator(image_shape)
        channels, side = image_shape[-1], image_shape[0]
        self.real = torch.rand(batch_size, channels, side, side) * 4 - 2
        if variant in ("channels_last", "compile"):
            self.generator = self.generator.to(memory_format=torch.channels_last)
            self.discriminator = self.discriminator.to(memory_format=torch.channels_last)
            self.real = self.real.contiguous(memory_format=torch.channels_last)
        self.d_optimizer = self._adam(self.discriminator)
        self.g_optimizer = self._adam(self.generator)
        self.parameters = {"generator": parameter_count(self.generator),
                           "discriminator": parameter_count(self.discriminator)}
        self.g, self.d = self.generator, self.discriminator
        if variant == "compile":
            self.g, self.d = torch.compile(self.generator), torch.compile(self.discriminator)
        self.generator.train()
        self.discriminator.train()

    @staticmethod
    def _adam(module):
        # The fused CPU kernel where this PyTorch has it (the same update, fewer passes).
        try:
            return torch.optim.Adam(module.parameters(), lr=2e-4, betas=(0.5, 0.999), eps=1e-7, fused=True)
        except (RuntimeError, TypeError):
            return torch.optim.Adam(module.parameters(), lr=2e-4, betas=(0.5, 0.999), eps=1e-7)

    def _noise(self):
        return torch.rand(self.batch_size, self.latent_dim) * 2 - 1

    def step(self):
        softplus = nn.functional.softplus
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bfloat16):
            with torch.no_grad():
                fake = self.g(self._noise())
            d_loss = (softplus(-self.d(self.real).float()).mean() + softplus(self.d(fake).float()).mean())
        self.d_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        self.d_optimizer.step()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bfloat16):
            g_loss = softplus(-self.d(self.g(self._noise())).float()).mean()
        self.g_optimizer.zero_grad(set_to_none=True)
        g_loss.backward()
        self.g_optimizer.step()
        return d_loss.detach(), g_loss.detach()

    def warm_up(self, steps):
        for _ in range(steps):
            self.step()

    def window(self, steps):
        """Images/s over `steps` consecutive steps, timed from the end of one untimed step (as
        the Keras windows are)."""
        self.step()
        start = time.perf_counter()
        for _ in range(steps):
            d_loss, g_loss = self.step()
        float(d_loss + g_loss)  # everything done
        return steps * self.batch_size / (time.perf_counter() - start)
