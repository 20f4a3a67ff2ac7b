#!/usr/bin/env bash
# gpu-check.sh: the engine on an accelerator machine that has only a python3
# with a CUDA PyTorch (no apt, no network, maybe no cmake, GoogleTest or
# nlohmann-json). Builds the engine against that PyTorch's libtorch, runs its
# checks on the GPU, benchmarks bert-base bf16 at sequence 128 and 512 beside
# Hugging Face transformers (eager and SDPA attention) where it is installed,
# and loads the engine's export with transformers, comparing logits.
#
#   scripts/gpu-check.sh [BUILD_DIR]        (default: build-gpu-check)
#
# Environment:
#   PYTHON=python3            the interpreter whose torch is used
#   GPU_CHECK_JOBS=N          compile jobs (default: the core count)
#   GPU_CHECK_ALLOW_CPU=1     no GPU: a short CPU smoke of the same steps
#                             (bert-mini, few tokens), to test this script
#   NLOHMANN_JSON_INCLUDE_DIR a directory holding nlohmann/json.hpp, when the
#                             usual places (see find_nlohmann) have none
#   GPU_CHECK_BUILD=cmake|gxx force the build path (default: cmake when
#                             configuring works, else plain g++)
#
# What is built: bert_engine (engine/CMakeLists.txt, standalone), the device
# checks (engine_device_check, tests/engine/device_checks.h), the device
# benchmark (engine_device_bench) and, where GoogleTest is installed,
# engine_unit_test and engine_device_test. bert-worker itself is not built
# here: besides libtorch it needs the project's tokenizer (Abseil, utf8proc)
# and CLI11, which such a machine lacks; the training loop, checkpoints and
# export it runs are the engine's, which engine_device_check exercises.
#
# Prints what it ran, skipped and failed, and exits 1 when a check failed.
# About 5-8 minutes on an H200 (most of it the build and the benchmarks).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build-gpu-check}
PY=${PYTHON:-python3}
JOBS=${GPU_CHECK_JOBS:-$(nproc 2>/dev/null || echo 4)}
BENCH_DIR=$ROOT/bench/engine
RAN=() SKIPPED=() FAILED=()
ran() { RAN+=("$1"); echo "== ran: $1"; }
skipped() { SKIPPED+=("$1"); echo "== skipped: $1"; }
failed() { FAILED+=("$1"); echo "== FAILED: $1"; }
summary() {
  echo
  echo "==================== gpu-check summary ===================="
  local item
  for item in "${RAN[@]}"; do echo "ran:     $item"; done
  for item in "${SKIPPED[@]}"; do echo "skipped: $item"; done
  for item in "${FAILED[@]}"; do echo "FAILED:  $item"; done
  [ ${#FAILED[@]} -eq 0 ] && echo "result: OK" || echo "result: FAILED (${#FAILED[@]})"
}
trap summary EXIT
mkdir -p "$BUILD"
BUILD=$(cd "$BUILD" && pwd)

# --- 1. The PyTorch this machine has -----------------------------------------
if ! "$PY" -c 'import torch' 2>/dev/null; then
  failed "$PY has no torch: nothing to build against"
  exit 1
fi
eval "$("$PY" - <<'EOF'
import os, glob, shlex, site, sys
import torch, torch.utils.cpp_extension as ext
cuda = torch.cuda.is_available()
out = {
    "TORCH_VERSION": torch.__version__,
    "TORCH_DIR": os.path.dirname(torch.__file__),
    "TORCH_CMAKE": torch.utils.cmake_prefix_path,
    "TORCH_INCLUDES": " ".join(ext.include_paths()),
    "TORCH_LIBDIR": ext.library_paths()[0],
    "TORCH_ABI": str(int(torch._C._GLIBCXX_USE_CXX11_ABI)),
    "HAS_CUDA": "1" if cuda else "0",
    "GPU_NAME": torch.cuda.get_device_name(0) if cuda else "",
    "GPU_COUNT": str(torch.cuda.device_count() if cuda else 0),
    "HAS_NCCL": "1" if torch.distributed.is_available() and torch.distributed.is_nccl_available() else "0",
    "HAS_GLOO": "1" if torch.distributed.is_available() and torch.distributed.is_gloo_available() else "0",
    # CUDA and NCCL headers of pip's nvidia-* packages (c10d's NCCL header needs them).
    "NVIDIA_INCLUDES": " ".join(sorted(d for p in site.getsitepackages() + [site.getusersitepackages()]
                                       for d in glob.glob(os.path.join(p, "nvidia", "*", "include")))),
    "SITE_DIRS": " ".join(site.getsitepackages()),
}
for k, v in out.items():
    print(f"{k}={shlex.quote(v)}")
EOF
)"
echo "python: $("$PY" -c 'import sys; print(sys.executable, sys.version.split()[0])'); torch $TORCH_VERSION at $TORCH_DIR"
if [ "$HAS_CUDA" = 1 ]; then
  DEVICE=cuda
  echo "GPU: $GPU_NAME ($GPU_COUNT visible); NCCL in torch: $HAS_NCCL"
elif [ "${GPU_CHECK_ALLOW_CPU:-0}" = 1 ]; then
  DEVICE=cpu
  echo "no CUDA device: GPU_CHECK_ALLOW_CPU=1, so a short CPU smoke of the same steps"
else
  failed "no CUDA device visible to torch (set GPU_CHECK_ALLOW_CPU=1 for a CPU smoke of this script)"
  exit 1
fi

# --- 2. nlohmann-json: the engine's one header-only dependency besides libtorch -
find_nlohmann() {
  local d
  for d in ${NLOHMANN_JSON_INCLUDE_DIR:-} ${CONDA_PREFIX:+$CONDA_PREFIX/include} /usr/include /usr/local/include \
           $TORCH_INCLUDES $SITE_DIRS; do
    [ -f "$d/nlohmann/json.hpp" ] && [ -f "$d/nlohmann/json_fwd.hpp" ] && { echo "$d"; return 0; }
  done
  return 1
}
if ! NLOHMANN=$(find_nlohmann); then
  failed "nlohmann/json.hpp and json_fwd.hpp not found (looked in \$NLOHMANN_JSON_INCLUDE_DIR, \$CONDA_PREFIX/include, /usr/include, /usr/local/include, torch's includes and site-packages); copy the single-header release's nlohmann/ directory (json.hpp, json_fwd.hpp) onto this machine and set NLOHMANN_JSON_INCLUDE_DIR"
  exit 1
fi
echo "nlohmann-json: $NLOHMANN"

# --- 3. Build: the engine's own CMake when it configures, else plain g++ --------
cmake_bin() {
  command -v cmake 2>/dev/null && return 0
  "$PY" -c 'import cmake, os; print(os.path.join(cmake.CMAKE_BIN_DIR, "cmake"))' 2>/dev/null
}
ninja_bin() {
  command -v ninja 2>/dev/null && return 0
  "$PY" -c 'import ninja, os; print(os.path.join(ninja.BIN_DIR, "ninja"))' 2>/dev/null
}
BIN=""
build_cmake() {
  local cmake ninja gen=()
  cmake=$(cmake_bin) || { echo "no cmake (neither on PATH nor pip's cmake package)"; return 1; }
  if ninja=$(ninja_bin); then gen=(-G Ninja -DCMAKE_MAKE_PROGRAM="$ninja"); fi
  # Debian's python3-torch has no share/cmake: its libtorch's config is the system's.
  local prefix=$TORCH_CMAKE
  [ -f "$prefix/Torch/TorchConfig.cmake" ] || prefix=/usr
  echo "cmake: $cmake; configuring engine/ standalone against $prefix"
  "$cmake" -S "$ROOT/engine" -B "$BUILD/cmake" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$prefix" -DNLOHMANN_JSON_INCLUDE_DIR="$NLOHMANN" >"$BUILD/cmake-configure.log" 2>&1 \
    || { echo "configure failed (a CUDA libtorch's CMake config wants the CUDA toolkit): tail of $BUILD/cmake-configure.log:"; tail -5 "$BUILD/cmake-configure.log"; return 1; }
  local targets=(engine_device_check engine_device_bench)
  if "$cmake" --build "$BUILD/cmake" --target help 2>/dev/null | grep -q engine_device_test; then
    targets+=(engine_device_test engine_unit_test)
  fi
  "$cmake" --build "$BUILD/cmake" -j "$JOBS" --target "${targets[@]}" || return 1
  BIN=$BUILD/cmake
}
# The library sources as engine/ and formats/ CMakeLists.txt list them (one build description).
cmake_sources() {  # FILE LIBRARY -> the .cc files of add_library(LIBRARY ...)
  awk -v lib="add_library($2" 'index($0, lib) == 1 {on = 1; next} on && /\)/ {on = 0} on {print $1}' "$1" | grep '\.cc$'
}
build_gxx() {
  local cxx=${CXX:-g++} out=$BUILD/gxx defs=(-DUSE_DISTRIBUTED -DUSE_RPC) incs=() libs=()
  mkdir -p "$out/obj"
  local d
  for d in $TORCH_INCLUDES; do incs+=(-I"$d"); done
  local gloo=""
  for d in $TORCH_INCLUDES /usr/include; do [ -f "$d/gloo/config.h" ] && gloo=$d; done
  if [ "$HAS_GLOO" = 1 ] && [ -n "$gloo" ]; then
    defs+=(-DUSE_C10D_GLOO)
    [ "$gloo" = /usr/include ] || incs+=(-I"$gloo")
  else
    echo "no Gloo headers: the engine builds without the gloo backend"
  fi
  if [ "$HAS_NCCL" = 1 ]; then
    local nccl_h="" cuda_h="" nv
    for nv in $NVIDIA_INCLUDES /usr/local/cuda/include /usr/include; do
      [ -f "$nv/nccl.h" ] && nccl_h=$nv
      [ -f "$nv/cuda_runtime_api.h" ] && cuda_h=$nv
    done
    if [ -n "$nccl_h" ] && [ -n "$cuda_h" ]; then
      defs+=(-DUSE_C10D_NCCL -DUSE_CUDA)
      for nv in $NVIDIA_INCLUDES /usr/local/cuda/include; do [ -d "$nv" ] && incs+=(-I"$nv"); done
    else
      echo "no nccl.h/cuda_runtime_api.h (pip's nvidia-nccl/nvidia-cuda-runtime or a CUDA toolkit): built without the nccl backend (one GPU per run)"
    fi
  fi
  incs+=(-I"$ROOT" -I"$NLOHMANN")
  # libtorch's headers use what C++20 deprecates: those warnings say nothing about the engine.
  local flags=(-std=c++20 -O2 -fPIC -pthread -Wno-deprecated-declarations -D_GLIBCXX_USE_CXX11_ABI="$TORCH_ABI"
               "${defs[@]}" "${incs[@]}")
  local sources=() s
  for s in $(cmake_sources "$ROOT/engine/CMakeLists.txt" "bert_engine STATIC"); do sources+=("engine/$s"); done
  for s in $(cmake_sources "$ROOT/formats/CMakeLists.txt" "bert_formats STATIC"); do sources+=("formats/$s"); done
  sources+=(tests/engine/test_corpus.cc tests/engine/device_checks.cc tests/engine/engine_device_check.cc
            bench/engine/engine_device_bench.cc)
  echo "g++: compiling ${#sources[@]} files with $JOBS jobs"
  # An object newer than its source and than every header of the tree is kept (a rerun in the same BUILD_DIR).
  local newest_header
  newest_header=$(ls -t "$ROOT"/engine/*.h "$ROOT"/formats/*.h "$ROOT"/protocol/*.h "$ROOT"/tests/engine/*.h | head -1)
  export CXX_CMD="$cxx ${flags[*]}" ROOT out newest_header
  printf '%s\n' "${sources[@]}" | xargs -P "$JOBS" -I{} bash -c '
    obj="$out/obj/$(echo {} | tr / _).o"
    [ "$obj" -nt "$ROOT/{}" ] && [ "$obj" -nt "$newest_header" ] && exit 0
    extra=""; case "{}" in */cpu_kernels.cc) extra="-O3 -fno-math-errno";; esac
    $CXX_CMD $extra -c "$ROOT/{}" -o "$obj" || { echo "compile failed: {}"; exit 255; }' \
    || return 1
  for s in torch torch_cpu c10 torch_cuda c10_cuda; do
    [ -e "$TORCH_LIBDIR/lib$s.so" ] && libs+=(-l"$s")
  done
  local common=() o
  for o in "$out"/obj/*.o; do
    case "$o" in *engine_device_check.cc.o|*engine_device_bench.cc.o) ;; *) common+=("$o");; esac
  done
  local link=(-L"$TORCH_LIBDIR" -Wl,-rpath,"$TORCH_LIBDIR" -Wl,--no-as-needed "${libs[@]}" -Wl,--as-needed -pthread -ldl)
  mkdir -p "$out/tests" "$out/bench-engine"
  $cxx "$out/obj/tests_engine_engine_device_check.cc.o" "${common[@]}" "${link[@]}" -o "$out/tests/engine_device_check" || return 1
  $cxx "$out/obj/bench_engine_engine_device_bench.cc.o" "${common[@]}" "${link[@]}" -o "$out/bench-engine/engine_device_bench" || return 1
  BIN=$out
}
build_start=$(date +%s)
case "${GPU_CHECK_BUILD:-auto}" in
  cmake) build_cmake ;;
  gxx) build_gxx ;;
  *) build_cmake || { echo "falling back to plain g++"; build_gxx; } ;;
esac
if [ -z "$BIN" ]; then
  failed "build of the engine against torch $TORCH_VERSION"
  exit 1
fi
ran "build of the engine, engine_device_check and engine_device_bench against torch $TORCH_VERSION ($(( $(date +%s) - build_start )) s, $BIN)"
skipped "bert-worker (needs the project's tokenizer: Abseil, utf8proc, CLI11; the engine it wraps is what is checked here)"

# --- 4. The engine's checks on the device -------------------------------------
HAS_TRANSFORMERS=$("$PY" -c 'import transformers; print(transformers.__version__)' 2>/dev/null || true)
EXPORT_ARGS=()
if [ -n "$HAS_TRANSFORMERS" ]; then
  rm -rf "$BUILD/hf-tokenizer" "$BUILD/hf-export"
  if "$PY" "$BENCH_DIR/hf_transformers_check.py" make-tokenizer "$BUILD/hf-tokenizer"; then
    EXPORT_ARGS=(--export "$BUILD/hf-tokenizer" "$BUILD/hf-export" "$BUILD/engine-logits.json")
  else
    failed "writing a tokenizer with transformers $HAS_TRANSFORMERS"
  fi
fi
if "$BIN/tests/engine_device_check" --device "$DEVICE" --work-dir "$BUILD/device-check" "${EXPORT_ARGS[@]}"; then
  ran "engine_device_check on $DEVICE (collectives' device, attention vs reference, RNG states in checkpoints, exact resume)"
else
  failed "engine_device_check on $DEVICE"
fi
for t in engine_device_test engine_unit_test; do
  if [ -x "$BIN/tests/$t" ]; then
    if BERT_SOURCE_DIR=$ROOT "$BIN/tests/$t" --gtest_brief=1; then ran "$t (GoogleTest)"; else failed "$t"; fi
  else
    skipped "$t (not built: GoogleTest not found, or the g++ build path; engine_device_check ran the device checks)"
  fi
done

# --- 5. transformers loads the engine's export ---------------------------------
if [ -z "$HAS_TRANSFORMERS" ]; then
  skipped "export loaded by transformers (transformers not installed)"
elif [ -f "$BUILD/engine-logits.json" ]; then
  if "$PY" "$BENCH_DIR/hf_transformers_check.py" compare "$BUILD/hf-export" "$BUILD/engine-logits.json" --device "$DEVICE"; then
    ran "BertForMaskedLM.from_pretrained + AutoTokenizer.from_pretrained on the engine's export; logits match (transformers $HAS_TRANSFORMERS)"
  else
    failed "transformers on the engine's export"
  fi
fi

# --- 6. Benchmark: the engine beside transformers on the same device ------------
if [ "$DEVICE" = cuda ]; then
  MODEL=bert-base-uncased SEQS=(128 512) TOKENS=32768 STEPS=20 WARMUP=3
else  # the CPU smoke: the same steps, small
  MODEL=bert-mini SEQS=(128) TOKENS=256 STEPS=2 WARMUP=1
fi
declare -A ENGINE_SEQS ENGINE_FLOPS ENGINE_PEAK BATCH
for T in "${SEQS[@]}"; do
  line=$("$BIN/bench-engine/engine_device_bench" --device "$DEVICE" --models "$MODEL" --seq "$T" --precision bf16 \
           --tokens "$TOKENS" --steps "$STEPS" --warmup "$WARMUP" | grep '^{' | head -1)
  if [ -z "$line" ]; then
    failed "engine_device_bench $MODEL T=$T"
    continue
  fi
  fields=$("$PY" -c "import json, sys; j = json.loads(sys.argv[1]); print(j['sequences_per_second'], j['flops_per_sequence'], j['peak_flops'], j['batch'])" "$line") \
    || { failed "engine_device_bench $MODEL T=$T: unreadable output $line"; continue; }
  read -r ENGINE_SEQS[$T] ENGINE_FLOPS[$T] ENGINE_PEAK[$T] BATCH[$T] <<<"$fields"
done
declare -A HF_SEQS
if [ -n "$HAS_TRANSFORMERS" ] && [ "$DEVICE" = cuda ]; then
  for T in "${SEQS[@]}"; do
    [ -n "${BATCH[$T]:-}" ] || continue
    for attn in eager sdpa; do
      out=$("$PY" "$BENCH_DIR/hf_transformers_bench.py" --device "$DEVICE" --seq "$T" --batch "${BATCH[$T]}" \
              --precision bf16 --attn "$attn" --steps "$STEPS" --warmup "$WARMUP" 2>"$BUILD/hf-bench-$T-$attn.log" | tail -1)
      v=$("$PY" -c 'import json, sys; print(json.loads(sys.argv[1]).get("sequences_per_second", ""))' "$out" 2>/dev/null)
      if [ -n "$v" ]; then HF_SEQS[$T,$attn]=$v; else skipped "transformers $attn T=$T: ${out:-see $BUILD/hf-bench-$T-$attn.log}"; fi
    done
  done
elif [ -z "$HAS_TRANSFORMERS" ]; then
  skipped "transformers benchmark (transformers not installed)"
else
  skipped "transformers benchmark on the CPU smoke (the CPU comparison is bench/engine/run.sh)"
fi
echo
echo "bf16 training step, $MODEL on $DEVICE${GPU_NAME:+ ($GPU_NAME)}; MFU = model matrix-product FLOP/s / the device's peak"
printf '%5s %5s | %12s %7s | %14s %7s | %14s %7s\n' T B "engine seq/s" MFU "hf eager seq/s" ratio "hf sdpa seq/s" ratio
for T in "${SEQS[@]}"; do
  [ -n "${ENGINE_SEQS[$T]:-}" ] || continue
  "$PY" - "$T" "${BATCH[$T]}" "${ENGINE_SEQS[$T]}" "${ENGINE_FLOPS[$T]}" "${ENGINE_PEAK[$T]}" \
    "${HF_SEQS[$T,eager]:-}" "${HF_SEQS[$T,sdpa]:-}" <<'EOF'
import sys
T, B, s, f, p, eager, sdpa = sys.argv[1:]
s, f, p = float(s), float(f), float(p)
mfu = f"{100 * s * f / p:.1f}%" if p > 0 else "n/a"
def col(v):
    return (f"{float(v):14.1f}", f"{s / float(v):6.2f}x") if v else (f"{'-':>14}", f"{'-':>7}")
e, r = col(eager), col(sdpa)
print(f"{T:>5} {B:>5} | {s:12.1f} {mfu:>7} | {e[0]} {e[1]:>7} | {r[0]} {r[1]:>7}")
EOF
done
if [ ${#ENGINE_SEQS[@]} -gt 0 ]; then
  ran "engine_device_bench bf16 $MODEL at T=${SEQS[*]}${HF_SEQS[*]:+, beside transformers}"
fi
[ ${#FAILED[@]} -eq 0 ]
