#!/usr/bin/env bash
# Installs everything bertd needs to build, test and run, from Debian's packages.
# Idempotent: packages already present are left alone. Needs root (or sudo).
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  clang libclang-rt-14-dev  # clang: thread-safety check; compiler-rt: libFuzzer (scripts/fuzz.sh)
  protobuf-compiler libprotobuf-dev protobuf-compiler-grpc libgrpc++-dev
  libabsl-dev librocksdb-dev prometheus-cpp-dev libyaml-cpp-dev libssl-dev
  libtorch-dev libgloo-dev libopenblas0-openmp
  libgtest-dev libgmock-dev nlohmann-json3-dev libcli11-dev
  zlib1g-dev libzstd-dev libutf8proc-dev
  prometheus openssl
  python3-torch python3-numpy
  python3-dev pybind11-dev  # the engine's Python front (engine/python, docs/gaudi.md)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm (for the Brown corpus and the Hugging Face reference): Debian's package,
# unless a Node.js installation already brings its own npm.
command -v npm >/dev/null 2>&1 || missing+=(npm)

if ((${#missing[@]})); then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO=sudo
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present"
fi
