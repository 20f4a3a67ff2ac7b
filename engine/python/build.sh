#!/usr/bin/env bash
# Builds the engine's Python front, bertd_engine and bert-worker-py, against the
# PyTorch of $PYTHON (default python3), as on an Intel Gaudi host, whose PyTorch
# is Intel's Python package with its bridge (docs/gaudi.md). Builds engine/
# alone: no gRPC, protobuf or Abseil; that PyTorch's libtorch, C++ ABI and pybind11.
#
#   PYTHON=python3 engine/python/build.sh [BUILD_DIR]    # default: build-python-front
#
# Needs cmake 3.22+, a C++20 compiler (g++ 11+), nlohmann-json's headers
# (Ubuntu/Debian: nlohmann-json3-dev), and pybind11's headers (a PyTorch wheel
# ships them; else pybind11-dev or `pip install pybind11`). Then run the
# worker as the agent does: BUILD_DIR/bin/bert-worker-py pretrain --config CONFIG.json
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$(realpath -m "${1:-$root/build-python-front}")
python=$(command -v "${PYTHON:-python3}")

torch_prefix=$("$python" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
cxx11_abi=$("$python" -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)

cmake -S "$root/engine" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_PREFIX_PATH="$torch_prefix" -DBERT_PYTHON="$python" \
  -DCMAKE_CXX_FLAGS="-D_GLIBCXX_USE_CXX11_ABI=$cxx11_abi"
cmake --build "$build" --target bertd_engine -j "${JOBS:-$(nproc)}"
test -x "$build/bin/bert-worker-py" || { echo "build.sh: the Python front was not configured (see above)" >&2; exit 1; }
echo "built $build/bin/bert-worker-py and $(ls "$build"/bin/bertd_engine*.so) for $python"
