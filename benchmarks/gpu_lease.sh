#!/bin/bash
# What the GPU figures in docs/benchmarks.md ran through: a lent GPU machine has PyTorch,
# transformers and pandas but not Kedro, pydantic, implicit, optuna or plotly, no internet
# and no MovieLens data. Two steps:
#
#   benchmarks/gpu_lease.sh prepare   # here: wheels (Python 3.12, x86-64) for what the GPU
#                                     # machine lacks in .whl/, ML-100K in .gpu/, and the
#                                     # resolved parameters of epoch_time.py in .gpu/*.json
#   benchmarks/gpu_lease.sh run COMMIT [SECONDS]   # there, in the tree sent: install them,
#                                     # then the CUDA test, the ML-20M-size fine-tuning
#                                     # epochs and the ML-100K race, within SECONDS
#
# .whl/ and .gpu/ stay out of git (add them to .git/info/exclude) and travel as carried
# paths; results go to $OUT (the machine's output folder), or benchmarks/results/gpu_run.
# COMMIT names the commit the tree was sent at (the JSON provenance; the machine may hold
# no history of it).
set -u
cd "$(dirname "$0")/.."
DATA=${MASKREC_ML100K:-../shared/data/ml-100k}
# what the GPU image lacked on 2026-12-04 (device KINDS.md lists what it has)
WHEELS="kedro==1.7.0 kedro-datasets==9.6.0 optuna==5.1.0 plotly==5.24.1 implicit==0.7.3 pydantic==2.14.3"
case "${1:-}" in
prepare)
  mkdir -p .whl .gpu/ml-100k /tmp/gpu_wheels
  .venv/bin/pip download -q --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d /tmp/gpu_wheels $WHEELS || exit 1
  # keep only what the image lacks (its own numpy, torch, pandas... stay)
  for f in /tmp/gpu_wheels/*.whl; do
    case "$(basename "$f" | cut -d- -f1 | tr 'A-Z_' 'a-z-')" in
      kedro|kedro-datasets|omegaconf|dynaconf|parse|more-itertools|pydantic|pydantic-core|annotated-types|\
      typing-inspection|implicit|optuna|sqlalchemy|alembic|mako|colorlog|plotly|tenacity|cookiecutter|\
      arrow|binaryornot|python-slugify|text-unidecode|tzdata|gitpython|gitdb|smmap|appdirs|tomli-w) cp "$f" .whl/ ;;
    esac
  done
  cp "$DATA"/*.csv .gpu/ml-100k/
  # the shipped fine-tuning; without the mixed-in Cloze pass; and that with the sampled
  # softmax (issue 25's <= 30 s an epoch at <= 6 GB: measured apart on 2026-12-04, not together)
  for v in "ft_today:" "ft_cloze0:fine_tuning.cloze_weight=0" "ft_cloze0_sampled:fine_tuning.cloze_weight=0,fine_tuning.loss.softmax=sampled"; do
    .venv/bin/python benchmarks/epoch_time.py --device cuda --stages fine_tuning --params "${v#*:}" \
      --write-params ".gpu/${v%%:*}.json" || exit 1
  done
  du -sh .whl .gpu ;;
run)
  export PYTHONUNBUFFERED=1 KEDRO_DISABLE_TELEMETRY=1 DO_NOT_TRACK=1 MASKREC_COMMIT=${2:?commit}
  LIMIT=${3:-585}
  OUT=${OUT:-benchmarks/results/gpu_run}; mkdir -p "$OUT"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
  export PYTHONPATH=/tmp/site:$PWD/src
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
  timeout 60 python3 -m pytest -q -p no:cacheprovider -m gpu tests/models/test_sequence.py 2>&1 | tail -2
  # where a fine-tuning step's time goes (a small log, short epochs: the profiler is slow)
  timeout 90 python3 benchmarks/epoch_time.py --params-json .gpu/ft_today.json --device cuda --stages fine_tuning \
    --users 5000 --ratings 725000 --profile 20 --json "$OUT/profile_ft.json" 2>&1 | tail -3
  for v in ft_cloze0_sampled ft_cloze0 ft_today; do
    timeout 150 python3 benchmarks/epoch_time.py --params-json ".gpu/$v.json" --device cuda --stages fine_tuning \
      --json "$OUT/epoch_time_ml20m_${v}.json" 2>&1 | grep -v "^\s*$" | tail -4
  done
  timeout $((LIMIT - SECONDS)) python3 benchmarks/race_ml100k.py --data "$PWD/.gpu/ml-100k" \
    --targets "$PWD/.gpu/ml-100k/recbole_loo_targets.csv" --device cuda --seeds 1 --workdir /tmp/race \
    --json "$OUT/race_ml100k.json" > "$OUT/race.log" 2>&1
  echo "race rc $? ($SECONDS s)"; grep -A1 "best validation" "$OUT/race.log" | tail -8 ;;
*)
  sed -n 2,18p "$0"; exit 2 ;;
esac
