#!/usr/bin/env bash
# Everything flexsim measures on a CUDA GPU, in one call (device time is short): the CUDA validation report (graph
# execution) and the GPU's profile (eager and CUDA-graph modes, the six torchvision architectures and the
# Fashion-MNIST members, batch 1-64, NVML energy), and every kernel's device time inside those models' forward passes
# (flexsim costmodel kernel-times), set against the cost model fitted on the profile (kernel-check).
#
# Usage: [STEPS=validate,profile,kernels] [DTYPES=fp32] experiments/gpu_measure.sh OUT_DIR [PROFILE_NAME]
#   OUT_DIR       where the profile, the validation report (tar.gz of the folder + Markdown) and the logs go
#   PROFILE_NAME  the profile's name (default from the GPU: h100-profiler on an H100, written beside the shipped
#                 h100 as docs/profiles.md says; h200 on an H200; gpu otherwise)
#   STEPS         which measurements (default validate,profile,kernels; ~6 min in all on an H200 with 20 seeds,
#                 about a minute more with 200): profile alone for a re-measurement of the GPU's profile; kernels
#                 (about a minute; up to ten where a model's kernels differ from its table and each model is then
#                 measured alone) writes OUT_DIR/kernel-times*.json and, where the profile step ran, the
#                 comparison OUT_DIR/kernel-check.md
#   DTYPES        the profile's dtypes (default fp32; fp16,fp32 roughly doubles the profile steps' time)
# Needs PyTorch with CUDA, numba, scipy, matplotlib and simpy importable (PYTHONPATH may point at them).
# Each step has its own time limit, so that a failing or slow step leaves the others' results.
set -u
out=${1:?usage: experiments/gpu_measure.sh OUT_DIR [PROFILE_NAME]}
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)
case "$gpu" in
  *H100*) default_name=h100-profiler ;;
  *H200*) default_name=h200 ;;
  *) default_name=gpu ;;
esac
name=${2:-$default_name}
steps=${STEPS:-validate,profile,kernels}
dtypes=${DTYPES:-fp32}
mkdir -p "$out"
echo "== GPU '${gpu:-none found}', profile '$name', steps $steps, dtypes $dtypes"
export PYTHONUNBUFFERED=1
step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to $out/NAME.log, never stop the script
    local what=$1 limit=$2; shift 2
    echo "== $what ($(date -u +%T), limit ${limit}s): $*"
    timeout "$limit" "$@" >"$out/$what.log" 2>&1
    echo "== $what: exit $? ($(date -u +%T))"; tail -n 25 "$out/$what.log"
}

step env 60 bash -c 'nvidia-smi -L; nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv;
  python3 -c "import torch, numba, numpy, simpy; print(torch.__version__, torch.version.cuda, numba.__version__,
  numpy.__version__, torch.cuda.get_device_name(0))"; nproc'
if [[ ",$steps," == *",validate,"* ]]; then
step validate 280 python3 -m simulator.cli validate --out docs/validation-cuda --report docs/validation-cuda.md \
    --scenarios open-50,open-80,open-95,closed-4,deadline-80,cascade-80,replay-80,spin-50,thread-50 \
    --requests 2000 --repeats 3 --seeds 200 --profiling-requests 1000 --seed 1 --device cuda --execution graph
tar czf "$out/validation-cuda.tgz" docs/validation-cuda docs/validation-cuda.md 2>/dev/null
fi
models=alexnet,resnet18,resnet50,vgg16,mobilenet-v3-large,efficientnet-b0,fmnist-cnn-w8,fmnist-cnn-w32,fmnist-cnn-w64
common="--device cuda --dtypes $dtypes --batch-sizes 1,2,4,8,16,32,64 --repeats 30 --rounds 3 --warmup-s 0.2"
limit=$(( ${#dtypes} > 4 ? 340 : 170 ))   # two dtypes: twice the time
# eager first, then the graphs merged into the same file (--update): a failure of one mode keeps the other's
if [[ ",$steps," == *",profile,"* ]]; then
step profile-eager "$limit" python3 -m simulator.cli profile "$models" $common --modes eager \
    --kind datacenter --name "$name" --out "$out/$name.json"
step profile-graph "$limit" python3 -m simulator.cli profile "$models" $common --modes graph --update \
    --kind datacenter --name "$name" --out "$out/$name.json"
fi
if [[ ",$steps," == *",kernels,"* ]]; then
rm -f "$out"/kernel-times*.json "$out/kernel-check.md"     # a rerun into OUT_DIR must not join an earlier run's
kernel_times() {  # kernel_times NAME SECONDS MODELS: time MODELS' kernels into $out/NAME.json
    step "$1" "$2" python3 -m simulator.cli costmodel kernel-times --models "$3" --device cuda --dtypes "$dtypes" \
        --batch-sizes 1,2,4,8,16,32,64 --rounds 3 --passes 4 --out "$out/$1.json"
}
kernel_times kernel-times $(( ${#dtypes} > 4 ? 300 : 150 )) "$models"
if [[ ! -f "$out/kernel-times.json" ]]; then   # a model whose kernels differ from its table stops the run: each alone
  for m in ${models//,/ }; do kernel_times "kernel-times-$m" 60 "$m"; done
fi
files=$(for f in "$out"/kernel-times*.json; do [[ -f "$f" ]] && printf -- "--kernel-times %q " "$f"; done)
if [[ -f "$out/$name.json" && -n "$files" ]]; then   # the report appears only whole
step kernel-check 120 bash -c "python3 -m simulator.cli costmodel kernel-check $files \
    --profile $(printf %q "$out/$name.json") >$(printf %q "$out/kernel-check.md.tmp") \
    && mv $(printf %q "$out/kernel-check.md.tmp") $(printf %q "$out/kernel-check.md")"
fi
fi
nvidia-smi --query-gpu=name,temperature.gpu,power.draw,clocks.sm --format=csv >"$out/after.txt" 2>&1
