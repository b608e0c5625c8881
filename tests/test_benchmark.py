"""The benchmark's machinery (what it times and counts), never its timings."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import models
from train import benchmark


@pytest.mark.parametrize("name", models.names())
def test_the_plain_reference_exists_only_for_the_textbook_algorithm(name):
    model = benchmark.build(name, (28, 28, 1), jit_compile=False)
    assert benchmark.has_plain_reference(model) == (name in ("mlp_gan", "dcgan", "baseline_dcgan"))
    assert (benchmark.build(name, (28, 28, 1), False, plain=True) is None) != benchmark.has_plain_reference(model)


def test_the_plain_step_does_the_same_arithmetic_as_the_zoo_step():
    ours = benchmark.build("dcgan", (28, 28, 1), jit_compile=False)
    plain = benchmark.build("dcgan", (28, 28, 1), jit_compile=False, plain=True)
    batch = benchmark.random_batch(ours, 16)
    flops_ours, flops_plain = benchmark.step_flops(ours, batch), benchmark.step_flops(plain, batch)
    # The same convolutions and matmuls; only small element-wise work (metrics) may differ.
    assert flops_plain == pytest.approx(flops_ours, rel=0.01)
    assert 150e6 < flops_ours / 16 < 200e6  # DCGAN 28x28: about 177 MFLOP per image and step


def test_the_plain_step_trains_both_networks():
    plain = benchmark.build("dcgan", (28, 28, 1), jit_compile=False, plain=True)
    networks = {"generator": plain.generator, "discriminator": plain.discriminator}
    # Trainable weights only: batch norm's moving statistics change in any forward pass in
    # training mode, whether or not an optimizer steps.
    before = {name: [w.numpy().copy() for w in net.trainable_weights] for name, net in networks.items()}
    history = plain.fit(tf.data.Dataset.from_tensors(benchmark.random_batch(plain, 8)).repeat(),
                        steps_per_epoch=2, epochs=1, verbose=0, shuffle=False).history
    assert np.isfinite(history["d_loss"][0]) and np.isfinite(history["g_loss"][0])
    for name, net in networks.items():
        # Two Adam steps move every kernel, bias and batch-norm scale and offset of each network.
        unchanged = [w.path for w, b in zip(net.trainable_weights, before[name]) if np.array_equal(w.numpy(), b)]
        assert len(before[name]) >= 7 and not unchanged, (name, unchanged)


def test_configurations_take_turns_after_their_warm_up():
    calls = []
    entries = []
    for label in ("a", "b"):
        model = benchmark.build("mlp_gan", (28, 28, 1), jit_compile=False)
        fit = model.fit

        def recorded(*args, _label=label, _fit=fit, **kwargs):
            calls.append((_label, kwargs["steps_per_epoch"]))
            return _fit(*args, **kwargs)

        model.fit = recorded
        entries.append((label, model, benchmark.random_batch(model, 8)))
    rates = benchmark.interleaved_rates(entries, steps=3, repeats=2, warmup=2)
    # Warm-ups first, then one window of 1 + 3 steps (the first one untimed) per configuration
    # and round, in turns.
    assert calls == [("a", 2), ("b", 2), ("a", 4), ("b", 4), ("a", 4), ("b", 4)]
    assert set(rates) == {"a", "b"} and all(len(r) == 2 and min(r) > 0 for r in rates.values())
    assert [int(m.g_optimizer.iterations) for _, m, _ in entries] == [10, 10]


def test_bfloat16_configuration_builds_in_bfloat16_and_restores_the_policy():
    model = benchmark.build("dcgan", (28, 28, 1), jit_compile=False, precision="mixed_bfloat16")
    assert model.generator.layers[1].compute_dtype == "bfloat16"
    assert keras.mixed_precision.global_policy().name == "float32"


def test_an_unknown_model_is_one_error_line_before_any_timing():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-m", "train.benchmark", "--model", "dcgan,stylegan"],
                          cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("error: unknown model 'stylegan'")
    assert "matmul ceiling" not in done.stdout


def test_without_torch_the_comparison_is_skipped_in_one_line(monkeypatch):
    real_find_spec = benchmark.importlib.util.find_spec
    monkeypatch.setattr(benchmark.importlib.util, "find_spec",
                        lambda name, *args: None if name == "torch" else real_find_spec(name, *args))
    assert benchmark.versus_torch(None) is False


@pytest.mark.parametrize("shape", [(28, 28, 1), (64, 64, 3)])
def test_the_pytorch_reference_has_the_zoo_networks_parameter_counts(shape):
    pytest.importorskip("torch", reason="torch is optional: the PyTorch comparison is skipped without it")
    from train import torch_reference

    model = benchmark.build("dcgan", shape, jit_compile=False)
    step = torch_reference.Step(shape, batch_size=4)
    for name in ("generator", "discriminator"):
        assert step.parameters[name] == sum(int(np.prod(w.shape)) for w in getattr(model, name).trainable_weights)
    d_loss, g_loss = step.step()
    assert np.isfinite(float(d_loss)) and np.isfinite(float(g_loss))
