#!/usr/bin/env bash
# GPU check for a CUDA machine without network: installs gdnet from this checkout, runs the cupy
# and torch-cuda rows of the test suite (and the tests marked cupy or cuda), the GPU benchmark
# (gdnet on CuPy and gdnet on torch CUDA vs PyTorch CUDA eager), and the launch counts
# (operations per training step, and CUDA kernel launches per step through torch.profiler).
#
#   scripts/gpu-check.sh [extra arguments for benchmarks/gpu.py]
#
# Results go to $OUT when it is set, else ./gpu-results/: gpu-tests.log (pytest),
# gpu-benchmark.md (the table), gpu-benchmark.log (everything the benchmark printed),
# launches.md (the launch tables) and launches.log.
# Wheels in .whl/ (array-api-compat, array-api-strict, ...) are installed into /tmp/site first.
# Fashion-MNIST is looked up in $GDNET_DATA, ./.data/fashion-mnist, then
# /usr/share/datasets/fashion-mnist.
# Exit status: that of pytest when the tests fail, else that of the benchmark.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
PYTHON=${PYTHON:-python3}
RESULTS=${OUT:-./gpu-results}
mkdir -p "$RESULTS"
export PYTHONUNBUFFERED=1

say() { printf '\n== %s\n' "$*"; }

say "machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 || echo "nvidia-smi not found"
"$PYTHON" --version

shopt -s nullglob
wheels=(.whl/*.whl)
shopt -u nullglob
if ((${#wheels[@]})); then
    say "installing ${#wheels[@]} carried wheel(s) into /tmp/site"
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "${wheels[@]}" || exit 1
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi

say "installing gdnet from $(pwd)"
if ! "$PYTHON" -m pip install -q --no-deps --no-build-isolation -e .; then
    # no setuptools/wheel there: lay the package out by hand (backends/ installs as gdnet.backends)
    echo "pip install -e . failed; using a copy of the sources under /tmp/gdnet-src"
    rm -rf /tmp/gdnet-src && mkdir -p /tmp/gdnet-src
    cp -r gdnet /tmp/gdnet-src/gdnet && cp -r backends /tmp/gdnet-src/gdnet/backends
    export PYTHONPATH=/tmp/gdnet-src${PYTHONPATH:+:$PYTHONPATH}
fi
"$PYTHON" -c 'import gdnet as gd; print("gdnet", gd.__version__, "backends here:", gd.available_backends())' || exit 1

if [[ -z ${GDNET_DATA:-} && -d .data/fashion-mnist ]]; then
    export GDNET_DATA=$PWD/.data
fi

say "tests: cupy and torch-cuda rows (log: $RESULTS/gpu-tests.log)"
"$PYTHON" -m pytest -q -m "cuda or cupy" -rs tests 2>&1 | tee "$RESULTS/gpu-tests.log"
tests_status=${PIPESTATUS[0]}
if ((tests_status == 5)); then
    echo "pytest collected no GPU tests (exit 5)"
fi

say "benchmark (table: $RESULTS/gpu-benchmark.md)"
"$PYTHON" benchmarks/gpu.py --out "$RESULTS/gpu-benchmark.md" "$@" 2>&1 | tee "$RESULTS/gpu-benchmark.log"
bench_status=${PIPESTATUS[0]}

say "launch counts (tables: $RESULTS/launches.md)"
if "$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    "$PYTHON" benchmarks/launches.py --device cuda --kernels --out "$RESULTS/launches.md" 2>&1 | tee "$RESULTS/launches.log"
    launches_status=${PIPESTATUS[0]}
else
    echo "torch with CUDA is not installed here: counting on torch's CPU instead (no kernel counts)"
    "$PYTHON" benchmarks/launches.py --out "$RESULTS/launches.md" 2>&1 | tee "$RESULTS/launches.log"
    launches_status=${PIPESTATUS[0]}
fi

say "summary: pytest exit $tests_status, benchmark exit $bench_status, launches exit $launches_status; results in $RESULTS"
if ((tests_status != 0)); then
    exit "$tests_status"
fi
exit "$bench_status"
