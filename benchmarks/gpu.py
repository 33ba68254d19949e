"""GPU benchmark: gdnet on the cupy backend against PyTorch CUDA eager, data on the GPU for both.

A thin front for ``mlp.py --device gpu`` (the code lives there). Batch sizes 128 and 1024 by
default; exits with status 2 and a message when CuPy or a CUDA device is missing.

    python benchmarks/gpu.py [--epochs 3] [--repeats 3] [--out gpu.md]
    python benchmarks/gpu.py --backend numpy --epochs 1 --repeats 1   # the code path, on a CPU
"""

import sys

from mlp import main

if __name__ == "__main__":
    sys.exit(main(["--device", "gpu", *sys.argv[1:]]))
