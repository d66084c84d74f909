#!/usr/bin/env bash
# Every GPU check of the CUDA target in one go, for a machine lent for a few minutes:
#   1. installs edgest, the zoo and the cuda target into the machine's own Python (no downloads:
#      its torch must be a CUDA build already there);
#   2. while the zoo's AOTInductor packages compile in parallel (bench/cuda_gpu_zoo.py --phase compile):
#      - bench/cuda_aoti_load.py: whether AOTInductor packages load with this torch, each way of loading one
#        in its own process (on a torch 2.11.0+cu130 image, torch's aoti_load_package segfaulted on every
#        package until edgest made the C++ runtime global first: edgest_cuda.device.share_cxx_runtime);
#        where torch's own loader crashes, cuda-gdb's native backtrace of it goes to gdb.txt;
#      - the GPU tests (tests/targets/test_cuda.py) and the user's example through the CLI,
#        `edgest compile --model squeezetime --target cuda` at fp32 and fp16;
#   3. on the then idle GPU: the zoo measured (bench/cuda_gpu_zoo.py --phase measure); if edgest's loader
#      failed in step 2, eager and torch.compile only, saying so.
# usage: [MODELS=squeezetime,vivit_fa_ti] bench/cuda_gpu_all.sh OUTDIR [COMPILE_S] [MEASURE_S]
# A package compiles in ~40-65 s even for a tiny model on those machines, a full model in minutes: the
# default MODELS is the user's example alone, to fit a 15-minute lease. bench/cuda_gpu_smoke.py is the
# step-by-step smoke test of one zoo package, for a longer lease.
# OUTDIR receives: env.txt, log.txt (everything), load.json, gdb.txt (if the package loader crashed),
# gpu_zoo.json, cli-fp32.json, cli-fp16.json, pytest.txt, compile-logs.tgz: more files than the lending tool
# brings back, so there run it as `timeout 515 bench/cuda_gpu_all.sh /tmp/g 190 140; tar czf $OUT/all.tgz -C /tmp/g .`
set -u
out=${1:?usage: bench/cuda_gpu_all.sh OUTDIR [COMPILE_S] [MEASURE_S]}
compile_s=${2:-250}
measure_s=${3:-180}
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
mkdir -p "$out"
exec > >(tee -a "$out/log.txt") 2>&1

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  $py -c "import sys, torch; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
  echo "cores: $(nproc --all) (OMP_NUM_THREADS=$OMP_NUM_THREADS)"; } | tee "$out/env.txt"
if ! $py -c "import edgest_cuda, edgest_models" 2>/dev/null; then
  $py -m pip install -q --no-deps --no-build-isolation --no-index -e . -e models -e targets/cuda \
    || { echo "cuda_gpu_all: could not install edgest here"; exit 1; }
fi
$py -c "import edgest_cuda, edgest_models, edgest; print('edgest installed')" || exit 1

work=${TMPDIR:-/tmp}/edgest-gpu-all
mkdir -p "$work/probe"
models=${MODELS:-squeezetime}
variants=eager,compile,aoti,aoti-graph
probe() {  # whether packages load here; cuda-gdb's backtrace where torch's own loader crashes
  timeout 200 $py bench/cuda_aoti_load.py --workdir "$work/probe" --json "$out/load.json" > "$work/load.txt" 2>&1
  grep -v -E "Warning|return cls|Extension modules" "$work/load.txt"
  local gdb
  gdb=$(command -v cuda-gdb || ls /usr/local/cuda*/bin/cuda-gdb 2>/dev/null | head -n 1)
  if grep -q -E "^ +torch: crashed" "$work/load.txt" && [ -n "$gdb" ]; then
    timeout 150 "$gdb" -batch -ex "set pagination off" -ex run -ex bt -ex "info sharedlibrary" --args \
      $py bench/cuda_aoti_load.py --child torch --package "$work/probe/probe.pt2" --device cuda > "$out/gdb.txt" 2>&1
    echo "cuda-gdb: exit $? (gdb.txt)"
  fi
}
probe &  # beside the compile phase: it took ~150 s of a 15-minute lease when it ran first
cli() {  # the user's example through the CLI; the report's JSON kept
  timeout "$compile_s" edgest compile --model squeezetime --target cuda --precision "$1" --out "$work/cli-$1" \
    --force --json > "$out/cli-$1.json" 2> "$work/cli-$1.err"
  echo "cli $1: exit $? $(tail -c 300 "$work/cli-$1.err" | tr '\n' ' ')"
}
cli fp32 & cli fp16 &  # side by side: one after the other outlasted the compile phase and delayed the measure phase
(timeout "$compile_s" $py -m pytest -q -p no:cacheprovider tests/targets/test_cuda.py > "$out/pytest.txt" 2>&1;
 echo "pytest: exit $? $(tail -n 1 "$out/pytest.txt")") &
zoo() { $py bench/cuda_gpu_zoo.py --models "$models" --full "$models" --variants "$variants" --workdir "$work/pk" "$@"; }
zoo --phase compile --deadline-s "$((compile_s - 20))" --parallel 4
wait
tar -czf "$out/compile-logs.tgz" -C "$work/pk" --wildcards 'compile-*.log' 2>/dev/null
if ! grep -q "^loads: yes" "$work/load.txt" 2>/dev/null; then  # a crash would end the one measuring process
  echo "cuda_gpu_all: AOTInductor packages do not load here (see load.json); measuring eager and torch.compile only"
  variants=eager,compile
fi
zoo --phase measure --deadline-s "$measure_s" --json "$out/gpu_zoo.json"
echo "cuda_gpu_all: done"
