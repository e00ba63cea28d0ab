#!/usr/bin/env bash
# The later methods beside the paper's: --preset=peers (64,000 samples x 200 Adam steps for every
# reconstruction row, DAFL's and DFAD's students shown as many generated samples) on the four pairs of
# issue #32.
# The resnet pair runs at the ResNet table's scale (bench/resnet_tables.sh) in the same run folder, so
# its finished rows are reused. Many hours on 2 cores; resumable: run it again and each reproduce
# continues from its finished stages and checkpoints.
#   nohup bench/peers_tables.sh [SUMMARY_FOLDER] >> peers_tables.log 2>&1 &
set -u
cd "$(dirname "$0")/.."
summaries=${1:-$HOME/dfkd-runs}
python=${PYTHON:-python}
run() {  # run_name teacher student dataset [extra flags]
  echo "== $1 $(date -u +%FT%TZ)"
  "$python" main.py --procedure=reproduce --run_name="$1" --model="$2" --student_model="$3" --dataset="$4" \
      --preset=peers --summary_folder="$summaries" "${@:5}" || exit 1
}
run peers_hinton hinton1200 hinton800 mnist
run peers_lenet lenet lenet_half mnist_conv
run peers_fashion_lenet lenet lenet_half fashion_mnist_conv
run resnet_mnist resnet20 resnet8 mnist_conv --samples_per_class=1000 --optimization_steps=200 --augment=crop
echo "== all done $(date -u +%FT%TZ)"
