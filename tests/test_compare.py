"""zoo.compare: families trained at one budget over seeds, the table, the figure and FCD's spread."""

import json
import os

import numpy as np
import pytest
from absl_cli import run_main

from zoo import compare


def entry(family, seed, fcd, seconds=10.0, images=256, resumed=False, stopped=False):
    return {"family": family, "seed": seed, "train_seconds": seconds, "images_seen": images,
            "resumed": resumed, "stopped_by_time": stopped, "curve": [[128, fcd + 1], [256, fcd]],
            "metrics": {"fcd": {"value": fcd, "floor": 0.04}, "kid": {"value": fcd / 1000, "floor": 0.0},
                        "precision": {"value": 0.5, "floor": 0.9}, "recall": {"value": 0.25, "floor": 0.9},
                        "density": {"value": 0.5, "floor": 1.0}, "coverage": {"value": 0.5, "floor": 1.0}}}


def test_the_table_gives_mean_and_std_over_the_finished_seeds():
    results = [entry("dcgan", 0, 1.0), entry("dcgan", 1, 2.0, resumed=True), entry("dcgan", 2, 3.0),
               entry("wgan", 0, 7.0, seconds=30.0, stopped=True)]
    lines = compare.table(results, ["dcgan", "wgan", "ebgan"], [0, 1, 2]).splitlines()
    dcgan = next(line for line in lines if line.startswith("| dcgan "))
    # FCD 1, 2, 3: mean 2, sample std 1; KID x 1000 the same; the time marked as resumed.
    assert dcgan.startswith("| dcgan | 3 of 3 | 2.00 ± 1.00 | 2.0 ± 1.0 | 0.500 ± 0.000 | 0.250 ± 0.000 |")
    assert dcgan.endswith("| 256 ± 0 | 10 ± 0* |")
    wgan = next(line for line in lines if line.startswith("| wgan "))
    assert "| 1 of 3 | 7.00 |" in wgan and wgan.endswith("| 30† |")
    assert any(line.startswith("| ebgan | not run |") for line in lines)
    assert any(line.startswith("Real-data floor") and "FCD 0.04" in line for line in lines)


def test_the_schedule_spends_the_budget_in_real_images():
    assert compare.schedule("dcgan", 60_000, 10_000) == (156, 6, 64)  # 6 x 156 x 64 = 59,904
    assert compare.schedule("wgan", 60_000, 10_000) == (31, 6, 320)  # 5 critic slices of 64: 59,520
    assert compare.schedule("mlp_gan", 60_000, 10_000) == (100, 6, 100)  # batch 100: 60,000
    assert compare.schedule("dcgan", 100, 10_000) == (156, 1, 64)  # at least one point


@pytest.mark.parametrize("args, message", [
    (("--families", "dcgan,nope"), "unknown family 'nope' in --families"),
    (("--seeds", "a"), "--seeds takes integers"),
    (("--images", "0"), "--images must be at least 1"),
    (("--spread_n", "5"), "--spread_n takes sample sizes of at least 10"),
])
def test_bad_flags_are_one_line(args, message, tmp_path):
    assert message in run_main(compare, *args, "--out", str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_runs_table_figure_and_spread_end_to_end(fashion_dir, tmp_path):
    out = str(tmp_path / "compare")
    common = ("--out", out, "--images", "256", "--every", "128", "--n", "100", "--data_dir", str(fashion_dir))
    assert run_main(compare, "--families", "dcgan", "--seeds", "0", *common) is None
    run = tmp_path / "compare" / "dcgan_seed0"
    done = json.loads((run / "compare.json").read_text())
    assert done["images_seen"] == 4 * 64 and not done["stopped_by_time"] and not done["resumed"]
    results = json.loads((tmp_path / "compare" / "results.json").read_text())["runs"]
    assert [r["family"] for r in results] == ["dcgan"]
    assert [x for x, _ in results[0]["curve"]] == [128, 256]  # FCD logged at every point
    assert all(np.isfinite(v) and v > 0 for _, v in results[0]["curve"])
    assert results[0]["metrics"]["fcd"]["value"] > results[0]["metrics"]["fcd"]["floor"]
    # A finished run is not trained again; the report counts the seeds asked for.
    stamp = os.stat(run / "final.weights.h5").st_mtime_ns
    assert run_main(compare, "--families", "dcgan,mlp_gan", "--seeds", "0,1", "--report", *common) is None
    assert os.stat(run / "final.weights.h5").st_mtime_ns == stamp
    table = (tmp_path / "compare" / "table.md").read_text()
    assert "| dcgan | 1 of 2 |" in table and "| mlp_gan | not run |" in table
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        pass
    else:
        assert (tmp_path / "compare" / "fcd_vs_images.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # FCD's own spread over sample seeds: 5 values per N, differing, next to the floor.
    assert run_main(compare, "--spread", "--spread_n", "50,100", "--seeds", "0", *common) is None
    spread = json.loads((tmp_path / "compare" / "spread.json").read_text())
    assert [row["n"] for row in spread["rows"]] == [50, 100]
    for row in spread["rows"]:
        assert len(row["model"]) == len(row["floor"]) == 5 and len(set(row["model"])) == 5
        assert np.mean(row["floor"]) < np.mean(row["model"])


def test_spread_needs_a_finished_run(tmp_path):
    message = run_main(compare, "--spread", "--out", str(tmp_path))
    assert "--spread samples a finished run" in message and "python -m zoo.compare --families dcgan" in message
