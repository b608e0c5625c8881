#!/bin/bash
# The moving average of the generator's weights against the trained weights themselves, for
# DCGAN and WGAN-GP on Fashion-MNIST: one run each with --ema_decay 0.999 (seed 0, 5 epochs).
#   bash scripts/ema_study.sh [runs/ema] [epochs]
# The average only watches training (the trained weights of a run with --ema_decay are bit for
# bit those of the same run without it), so each run is measured twice by train.evaluate at
# N = 10,000: with the average, and with --raw_weights. Prints a Markdown table.
set -euo pipefail
out=${1:-runs/ema}
epochs=${2:-5}
mkdir -p "$out"
for model in dcgan wgan_gp; do
  run=$out/$model
  python3 -m train.main --model $model --epochs "$epochs" --seed 0 --ema_decay 0.999 --logdir "$run" \
    > "$run.log" 2>&1 || { tail -1 "$run.log"; exit 1; }
  for weights in ema raw; do
    flag=$([ $weights = raw ] && echo --raw_weights || echo --noraw_weights)
    python3 -m train.evaluate --logdir "$run" $flag --noparzen --nofigures \
      --output_dir "$run/evaluation_$weights" > "$run/evaluation_$weights.log" 2>&1 \
      || { tail -1 "$run/evaluation_$weights.log"; exit 1; }
  done
done
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
print("| model | weights | FCD | KID | precision | recall | density | coverage |")
print("|---|---|---|---|---|---|---|---|")
for model in ("dcgan", "wgan_gp"):
    for weights in ("raw", "ema"):
        m = json.load(open(f"{out}/{model}/evaluation_{weights}/metrics.json"))["metrics"]
        cells = [f"{m['fcd']['value']:.2f}", f"{m['kid']['value']:.3f} ± {m['kid']['std']:.3f}"]
        cells += [f"{m[k]['value']:.3f}" for k in ("precision", "recall", "density", "coverage")]
        print(f"| {model} | {'trained' if weights == 'raw' else 'average (0.999)'} | " + " | ".join(cells) + " |")
PY
