"""Command line: draw samples of a zoo preset into a PNG grid.

    python -m zoo.sample --preset dcgan_fashion_mnist --n 64 --seed 0 --out grid.png
    python -m zoo.sample --preset infogan_fashion_mnist --traversal --code 1 --out code1.png
    python -m zoo.sample --preset cgan_fashion_mnist --label 3 --out dresses.png

The same preset, n and seed give the same picture in every process. `--label` sets the class of
every sample of a conditional (cgan) preset; without it the classes are drawn uniformly.
`--traversal` draws an InfoGAN preset's latent-code figure instead: a row per value of the
categorical code, columns sweeping continuous code `--code` from -2 to 2, the noise fixed by
`--seed`.
"""

import os

from absl import flags

from models.errors import GanZooError
from train import cli


def define_flags(flag_values=None):
    fv = flags.FLAGS if flag_values is None else flag_values
    flags.DEFINE_string("preset", None, "Preset name (python -c 'import zoo; print(zoo.list())').", flag_values=fv)
    flags.DEFINE_integer("n", 64, "Samples in the grid.", flag_values=fv)
    flags.DEFINE_integer("seed", 0, "Seed of the noise.", flag_values=fv)
    flags.DEFINE_integer("columns", None, "Columns of the grid (default: about sqrt(n)).", flag_values=fv)
    flags.DEFINE_string("out", "grid.png", "PNG file to write.", flag_values=fv)
    flags.DEFINE_boolean("traversal", False, "InfoGAN presets: draw the latent-code traversal figure.", flag_values=fv)
    flags.DEFINE_integer("code", 0, "With --traversal: the continuous code to sweep.", flag_values=fv)
    flags.DEFINE_integer("steps", 10, "With --traversal: values of the code per row.", flag_values=fv)
    flags.DEFINE_integer("label", None, "Conditional (cgan) presets: the class of every sample.", flag_values=fv)


def sample_grid(model, n=64, seed=0, columns=None, label=None):
    """`n` samples of `model` drawn with `seed` as one uint8 picture (a scatter for 2-D points);
    `label` sets the class of every sample of a conditional model."""
    from train import images

    if n < 1:
        raise GanZooError(f"--n must be at least 1, got {n}")
    if label is None:
        samples = model.generate(n, seed=seed)
    else:
        samples = model.generate(n, seed=seed, labels=label)
    if samples.ndim == 2:
        return images.scatter_image(samples)
    return images.image_grid(samples, columns=columns)


def traversal(model, preset, code=0, seed=0, steps=10):
    if not hasattr(model, "traversal"):
        raise GanZooError(f"preset {preset!r} ({model.name}) has no latent codes to traverse: "
                          "--traversal is for InfoGAN presets")
    return model.traversal(seed=seed, code=code, steps=steps)


def write(preset, out, n=64, seed=0, columns=None, traverse=False, code=0, steps=10, label=None):
    """Loads `preset` and writes its grid (or traversal figure) to `out`; returns the path."""
    import zoo
    from train import images

    if not out.lower().endswith(".png"):
        raise GanZooError(f"--out must name a .png file, got {out!r}")
    directory = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(directory):
        raise GanZooError(f"the folder of --out ({directory}) does not exist: create it first")
    model = zoo.load(preset, compile=False)
    if label is not None and not model.conditional:
        raise GanZooError(f"preset {preset!r} ({model.name}) is not class-conditional: --label is "
                          "for conditional presets such as cgan ones; drop it")
    if traverse and label is not None:
        raise GanZooError("--traversal and --label do not go together: pass one of them")
    if traverse:
        picture = traversal(model, preset, code, seed, steps)
    else:
        picture = sample_grid(model, n, seed, columns, label)
    try:
        images.write_png(out, picture)
    except OSError as e:
        raise GanZooError(f"could not write {out} ({e.strerror or e})") from None
    return out


def main(argv, flag_values=None):
    fv = flags.FLAGS if flag_values is None else flag_values
    if not fv.preset:
        raise GanZooError("name a preset with --preset NAME (python -c 'import zoo; print(zoo.list())')")
    what = "the code traversal" if fv.traversal else f"{fv.n} samples (seed {fv.seed})"
    print(f"GAN Zoo: drawing {what} of preset {fv.preset} into {fv.out}", flush=True)
    path = write(fv.preset, fv.out, fv.n, fv.seed, fv.columns, fv.traversal, fv.code, fv.steps, fv.label)
    print(f"wrote {path}: open it with any image viewer")


def run():
    cli.run(main, define_flags)


if __name__ == "__main__":
    run()
