"""The f-GAN divergence table that losses/fgan.py builds once, when it is imported: for every
divergence, g_f(v), f*(t), f*(g_f(v)) and f(u) at one point, worked out by hand from the
paper's Tables 1 and 2.

tests/test_losses.py checks the same functions on more points. This file is kept apart and
first in scripts/mutation.sh's selection because code that runs at import time (the table's
construction) is credited by the mutation tester to the first test it runs.
"""

import math

import pytest

from losses import fgan

E = math.exp(0.5)  # v = 0.5 throughout; e^-v = 1 / E
LOG2, LOG3 = math.log(2.0), math.log(3.0)

# divergence: (t in the domain of f*, g_f(0.5), f*(t), f*(g_f(0.5)), f(3))
TABLE = {
    "kl": (0.5, 0.5, math.exp(0.5 - 1.0), math.exp(0.5 - 1.0), 3.0 * LOG3),
    "reverse_kl": (-0.5, -1.0 / E, -1.0 + LOG2, 0.5 - 1.0, -LOG3),
    "pearson": (0.5, 0.5, 0.25 / 4 + 0.5, 0.25 / 4 + 0.5, (3.0 - 1.0) ** 2),
    "squared_hellinger": (0.5, 1.0 - 1.0 / E, 0.5 / (1.0 - 0.5), E - 1.0, (math.sqrt(3.0) - 1.0) ** 2),
    "jensen_shannon": (0.5, LOG2 - math.log(1.0 + 1.0 / E), -math.log(2.0 - E), math.log(1.0 + E) - LOG2,
                       3.0 * LOG3 - 4.0 * LOG2),  # 3 log 3 - 4 log((1 + 3) / 2)
    "gan": (-0.5, -math.log(1.0 + 1.0 / E), -math.log(1.0 - 1.0 / E), math.log(1.0 + E), 3.0 * LOG3 - 4.0 * math.log(4.0)),
    "total_variation": (0.25, math.tanh(0.5) / 2, 0.25, math.tanh(0.5) / 2, abs(3.0 - 1.0) / 2),
}


def test_every_divergence_of_the_table_at_one_point():
    assert set(TABLE) == set(fgan.DIVERGENCES)
    for name, (t, activation, conjugate, composed, f_of_three) in TABLE.items():
        got = (float(fgan.output_activation(0.5, name)), float(fgan.conjugate(t, name)),
               float(fgan.conjugate_of_activation(0.5, name)), float(fgan.generator_function(3.0, name)))
        assert got == pytest.approx((activation, conjugate, composed, f_of_three), rel=1e-6, abs=1e-7), name
