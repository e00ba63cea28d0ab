#!/usr/bin/env bash
# Issue #59, step 1: how much of dfkd best's shortfall on resnet20 -> resnet8, fashion_mnist_conv is the
# sample count. dfkd best at 5,000 / 20,000 / 64,000 reconstructions (200 steps) beside KD on 5,000 /
# 20,000 / 60,000 real training images, one teacher, dfkd best's distillation settings for every student.
# Resumable: each step leaves SUMMARY_FOLDER/done/<step>; run it again and it continues.
#   nohup bench/resnet_gap.sh [SUMMARY_FOLDER] >> resnet_gap.log 2>&1 &
set -u
cd "$(dirname "$0")/.."
out=${1:-$HOME/dfkd-runs/gap}
python=${PYTHON:-python}
threads=${THREADS:-0}
mkdir -p "$out/done"
step() {  # name command...
  [ -e "$out/done/$1" ] && return 0
  echo "== $1 $(date -u +%FT%TZ)"
  "${@:2}" || { echo "== $1 failed"; exit 1; }
  touch "$out/done/$1"; echo "== $1 done $(date -u +%FT%TZ)"
}
best() {  # run samples_per_class: the teacher, the reference rows and dfkd best
  "$python" main.py --procedure=reproduce --run_name="$1" --model=resnet20 --student_model=resnet8 \
      --dataset=fashion_mnist_conv --preset=paper --samples_per_class="$2" --optimization_steps=200 \
      --augment=crop --rows="dfkd best" --summary_folder="$out" --num_threads="$threads"
}
real() {  # thousands: KD on that many real training images, from rf5k's teacher
  local teacher; teacher=$(ls "$out"/rf5k/train/checkpoint/resnet20-*.index | sort -V | tail -1)
  "$python" -m bench.real_subset --dataset=fashion_mnist --count=$(($1 * 1000)) --out="$out/f$1k.npz" &&
  "$python" main.py --procedure=distill --model=resnet20 --model_checkpoint="${teacher%.index}" \
      --student_model=resnet8 --dataset="$out/f$1k.npz@32x32" --eval_dataset=fashion_mnist_conv --epochs=30 \
      --augment_shift=2 --lr=0.002 --student_average=0.999 --run_name="kd_real_$1k" --summary_folder="$out" \
      --num_threads="$threads"
}
step best5k best rf5k 500
step kd5k real 5
step kd20k real 20
step kd60k real 60   # the ceiling, before the hours of larger reconstructions
# The larger reconstructions start from a copy of rf5k's finished teacher and reference rows.
for k in 20 64; do [ -d "$out/rf${k}k" ] || cp -r "$out/rf5k" "$out/rf${k}k"; done
step best20k best rf20k 2000
step best64k best rf64k 6400
echo "== all done $(date -u +%FT%TZ)"
