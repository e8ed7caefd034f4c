#!/usr/bin/env bash
# The GPU check, in two halves:
#   scripts/gpu-check.sh --publish DIR   here (with the .NET SDK): DIR gets the compute tests, the bench, the test runner
#                                        and one .NET runtime for all three (about 100 MB), and DIR.tgz the same.
#   DIR/gpu-check.sh                     there (an NVIDIA GPU and its driver; no .NET): the compute tests (on the CPU
#                                        accelerator, as TestDevice picks), then `bench losses` and `bench train` on
#                                        CUDA (the bench picks CUDA when present), within 8 minutes; prints each loss
#                                        kernel's throughput as a fraction of the device's copy bandwidth, and the
#                                        reference MLP's epoch time.
# Without CUDA (no nvidia-smi, no GPU it lists, or no libcuda) the run says so in one line and exits 3.
# --cpu runs the same steps on the CPU accelerator, to check a bundle on a machine without a GPU; its figures are not
# GPU figures. GPU_CHECK_LOSSES_ARGS, GPU_CHECK_TRAIN_ARGS (e.g. "--sizes 100000 --repeats 1", "--epochs 2 --rows 5000")
# and GPU_CHECK_TEST_FILTER (a vstest /TestCaseFilter) shrink the steps for such a check.
set -euo pipefail

publish() {
  local dir=$1 root dotnet_root runtime sdk
  root=$(cd "$(dirname "$0")/.." && pwd)
  command -v dotnet >/dev/null || { echo "gpu-check --publish: needs the .NET SDK (dotnet) on this machine" >&2; exit 2; }
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  rm -rf "${dir:?}"/{bench,tests,vstest,dotnet}
  # Framework-dependent for linux-x64, beside one copy of the runtime: the bench, the tests and the runner share it.
  dotnet publish "$root/bench/TrainingService.Bench" -c Release -r linux-x64 --self-contained false -v quiet -nologo -o "$dir/bench"
  dotnet publish "$root/tests/TrainingService.Compute.Tests" -c Release -r linux-x64 --self-contained false -v quiet -nologo -o "$dir/tests"
  # Code coverage (native instrumentation for every OS) and translations: not needed to run the tests.
  (cd "$dir/tests" && rm -rf CodeCoverage alpine macos ubuntu arm64 x64 Microsoft.CodeCoverage.* Microsoft.VisualStudio.CodeCoverage.* \
    Microsoft.VisualStudio.TraceDataCollector.dll cs de es fr it ja ko pl pt-BR ru tr zh-Hans zh-Hant)
  dotnet_root=$(dirname "$(readlink -f "$(command -v dotnet)")")
  runtime=$(dotnet --list-runtimes | awk '$1 == "Microsoft.NETCore.App" && $2 ~ /^10\./ { v = $2 } END { print v }')
  sdk=$(dotnet --list-sdks | awk '$1 ~ /^10\./ { v = $1 } END { print v }')
  [ -n "$runtime" ] && [ -n "$sdk" ] || { echo "gpu-check --publish: no .NET 10 runtime or SDK found" >&2; exit 2; }
  mkdir -p "$dir/dotnet/host" "$dir/dotnet/shared/Microsoft.NETCore.App" "$dir/vstest"
  cp "$dotnet_root/dotnet" "$dir/dotnet/"
  cp -r "$dotnet_root/host/fxr" "$dir/dotnet/host/"
  cp -r "$dotnet_root/shared/Microsoft.NETCore.App/$runtime" "$dir/dotnet/shared/Microsoft.NETCore.App/"
  # The SDK's test runner (vstest.console) and what it loads; not the rest of the SDK.
  (cd "$dotnet_root/sdk/$sdk" && cp -r vstest.console.* Microsoft.TestPlatform.*.dll Microsoft.VisualStudio.TestPlatform.*.dll \
    Microsoft.Extensions.FileSystemGlobbing.dll Microsoft.Extensions.DependencyModel.dll Newtonsoft.Json.dll testhost* Extensions "$dir/vstest/")
  cp "$0" "$dir/gpu-check.sh"
  chmod +x "$dir/gpu-check.sh"
  # One archive to copy (about 45 MB): tar -xzf it anywhere there and run gpu-check.sh from it.
  tar -C "$dir" -czf "$dir.tgz" .
  echo "gpu-check: published to $dir ($(du -sh "$dir" | cut -f1)) and $dir.tgz ($(du -sh "$dir.tgz" | cut -f1));" \
    "on the GPU machine: mkdir g && tar -xzf $(basename "$dir").tgz -C g && g/gpu-check.sh"
}

# One line and exit 3 when this machine has no usable CUDA driver.
require_cuda() {
  command -v nvidia-smi >/dev/null || { echo "gpu-check: no CUDA here (nvidia-smi not found); nothing was run"; exit 3; }
  nvidia-smi -L 2>/dev/null | grep -q '^GPU ' || { echo "gpu-check: no CUDA here (nvidia-smi lists no GPU); nothing was run"; exit 3; }
  ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1' && return 0
  # Where drivers put it when ldconfig's cache does not list it (containers, WSL).
  local lib
  for lib in /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/local/nvidia/lib64 /usr/lib/wsl/lib ${LD_LIBRARY_PATH:+${LD_LIBRARY_PATH//:/ }}; do
    [ -e "$lib/libcuda.so.1" ] && return 0
  done
  echo "gpu-check: no CUDA here (libcuda.so.1, the driver's library, not found); nothing was run"
  exit 3
}

# Reads `bench losses`' table: each kernel's throughput and, where the bench measured the device's own copy, the
# fraction of it. A table whose copy column is a host memcpy gives no such fraction.
loss_summary() {
  awk -F'|' '
    /^\| loss \|/ {
      for (i = 2; i < NF; i++) { h = $i; gsub(/^ +| +$/, "", h); col[h] = i }
      device_copy = ("device copy elements/s" in col)
      next
    }
    /^\|---/ || !/^\| / { next }
    {
      label = $2; n = $3; kernel = $(col["kernel elements/s"]); gsub(/^ +| +$/, "", label); gsub(/^ +| +$/, "", n); gsub(/^ +| +$/, "", kernel)
      if (device_copy) {
        copy = $(col["device copy elements/s"]); gsub(/^ +| +$/, "", copy)
        printf "  %-16s N=%-11s %12s elements/s = %.2f of device copy (%s elements/s)\n", label, n, kernel, (kernel + 0) / (copy + 0), copy
      } else {
        printf "  %-16s N=%-11s %12s elements/s (no device-copy baseline in this bench)\n", label, n, kernel
      }
    }
    END { if (!device_copy) print "  the losses bench compared with a host memcpy, not the device'"'"'s copy bandwidth: no fraction printed" }
  ' "$1"
}

train_summary() {
  awk '/^TensorFlow\.js/ { exit } /^  epoch [0-9]+:/ { ms[++n] = $3 + 0 } END {
    if (n == 0) { print "  no epochs read"; exit }
    k = 0
    for (i = (n > 1 ? 2 : 1); i <= n; i++) a[++k] = ms[i]
    for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    med = (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
    printf "  reference MLP epoch time: %.0f ms (median of epochs 2..%d; epoch 1, with kernel compilation: %.0f ms)\n", med, n, ms[1]
  }' "$1"
}

# Runs one step under its share of the 8 minutes; a step that overruns is stopped and named.
step() {
  local name=$1 limit=$2 log=$3; shift 3
  echo "== $name (at most ${limit} s)"
  local start=$SECONDS status=0
  timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1 || status=$?
  echo "   $name: exit $status after $((SECONDS - start)) s (log: $log)"
  [ "$status" -eq 124 ] && echo "   $name: stopped at its time limit"
  return 0
}

run() {
  local dir=$1 cpu=$2 logs
  [ "$cpu" = 1 ] || require_cuda
  for f in dotnet/dotnet bench/TrainingService.Bench.dll tests/TrainingService.Compute.Tests.dll vstest/vstest.console.dll; do
    [ -e "$dir/$f" ] || { echo "gpu-check: $dir/$f missing; make the folder with scripts/gpu-check.sh --publish DIR"; exit 2; }
  done
  logs=$(mktemp -d /tmp/gpu-check.XXXXXX)
  export DOTNET_ROOT=$dir/dotnet DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
  local dotnet=$dir/dotnet/dotnet
  if [ "$cpu" = 1 ]; then
    echo "gpu-check: --cpu: the CPU accelerator, to check this bundle; these are not GPU figures"
  else
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | sed 's/^/gpu: /'
  fi
  # The compute tests run every kernel on the GPU (TRAININGSERVICE_TEST_DEVICE=cuda); with --cpu, on the CPU accelerator,
  # compiling each one for CUDA (PTX) as well.
  if [ "$cpu" = 1 ]; then unset TRAININGSERVICE_TEST_DEVICE; else export TRAININGSERVICE_TEST_DEVICE=cuda; fi
  local filter=()
  [ -n "${GPU_CHECK_TEST_FILTER:-}" ] && filter=("/TestCaseFilter:$GPU_CHECK_TEST_FILTER")
  step "compute tests" 150 "$logs/tests.log" "$dotnet" "$dir/vstest/vstest.console.dll" "$dir/tests/TrainingService.Compute.Tests.dll" "${filter[@]}"
  grep -E '^(Passed!|Failed!)|Total tests|Passed:|Failed:' "$logs/tests.log" | tail -3 | sed 's/^/   /' || true
  step "bench losses" 200 "$logs/losses.log" "$dotnet" "$dir/bench/TrainingService.Bench.dll" losses ${GPU_CHECK_LOSSES_ARGS:-}
  grep -m1 '^device:' "$logs/losses.log" | sed 's/^/   /' || true
  step "bench train" 100 "$logs/train.log" "$dotnet" "$dir/bench/TrainingService.Bench.dll" train ${GPU_CHECK_TRAIN_ARGS:-}
  grep -m1 '^TrainingService:' "$logs/train.log" | sed 's/^/   /' || true
  # The benches take CUDA when ILGPU finds a device and the CPU otherwise: say so rather than report CPU figures as GPU ones.
  local fell_back=0
  if [ "$cpu" != 1 ] && grep -qE '^(device|TrainingService): ILGPU CPU' "$logs/losses.log" "$logs/train.log"; then
    fell_back=1
  fi
  echo
  echo "loss kernels (bench losses):"
  loss_summary "$logs/losses.log"
  echo "training (bench train):"
  train_summary "$logs/train.log"
  echo "logs: $logs"
  if [ "$fell_back" = 1 ]; then
    echo "gpu-check: a bench ran on the CPU accelerator, not CUDA (see the device lines above): these are not GPU figures"
    exit 4
  fi
}

case "${1:-}" in
  --publish)
    [ -n "${2:-}" ] || { echo "usage: scripts/gpu-check.sh --publish DIR" >&2; exit 2; }
    publish "$2" ;;
  --cpu)
    run "${2:-$(cd "$(dirname "$0")" && pwd)}" 1 ;;
  -h|--help)
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" ;;
  *)
    run "${1:-$(cd "$(dirname "$0")" && pwd)}" 0 ;;
esac
