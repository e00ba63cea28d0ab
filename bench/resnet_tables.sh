#!/usr/bin/env bash
# The resnet20 -> resnet8 tables on mnist_conv and fashion_mnist_conv, at 10,000 reconstructed samples x
# 200 Adam steps (a ResNet's reconstruction step costs 16-22x lenet's on 2 CPU cores). Hours on 2 cores;
# resumable: run it again and each reproduce continues from its finished stages and checkpoints.
#   nohup bench/resnet_tables.sh [SUMMARY_FOLDER] >> resnet_tables.log 2>&1 &
set -u
cd "$(dirname "$0")/.."
summaries=${1:-$HOME/dfkd-runs}
python=${PYTHON:-python}
table() {  # dataset [--rows=...]
  local run=resnet_${1%_conv}
  echo "== $run ${2:-every row} $(date -u +%FT%TZ)"
  "$python" main.py --procedure=reproduce --run_name="$run" --model=resnet20 --student_model=resnet8 \
      --dataset="$1" --preset=paper --samples_per_class=1000 --optimization_steps=200 --augment=crop \
      --summary_folder="$summaries" "${@:2}" || exit 1
}
# The rows that decide the goal (teacher, references, dfkd best) on both datasets first, so a session
# that stops early has them; the faithful rows then reuse every finished stage.
for dataset in mnist_conv fashion_mnist_conv; do table "$dataset" --rows="dfkd best"; done
for dataset in mnist_conv fashion_mnist_conv; do table "$dataset"; done
echo "== all done $(date -u +%FT%TZ)"
