#!/usr/bin/env bash
# scripts/check-thread-safety.sh passes correct locking and fails on a
# thread-safety violation (and says so). Skips (77) without clang++.
set -uo pipefail
cd "$(dirname "$0")/../.."
here=tests/thread_safety/testdata
command -v "${CLANGXX:-clang++}" >/dev/null 2>&1 || { echo "no clang++: skipped"; exit 77; }

if ! out=$(bash scripts/check-thread-safety.sh "$here/guarded_ok.cc" 2>&1); then
  echo "FAIL: correct locking was refused:"; echo "$out"; exit 1
fi
out=$(bash scripts/check-thread-safety.sh "$here/guarded_violation.cc" 2>&1)
rc=$?
if ((rc != 1)); then
  echo "FAIL: a violation exited $rc, not 1:"; echo "$out"; exit 1
fi
for want in "writing variable 'total_' requires holding mutex 'mu_' exclusively" \
            "calling function 'ResetLocked' requires holding mutex 'mu_' exclusively" \
            "mutex 'first_' must be acquired before 'second_'"; do
  if ! grep -qF "$want" <<<"$out"; then
    echo "FAIL: no \"$want\" in:"; echo "$out"; exit 1
  fi
done
echo "ok"
