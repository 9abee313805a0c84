#!/usr/bin/env bash
# Installs what kbrun needs on Debian 12 (all from Debian's archive).
# Build: CMake, Ninja, g++, libcurl, nlohmann-json, CLI11, fmt, PCRE2, cpp-httplib (kbrun serve), GoogleTest.
# Run (CPU mode, tests, demo): Debian's python3-torch (CPU), its headers (libtorch-dev, and pybind11-dev which they include;
# only a Recommends of python3-torch, so name it) and numpy; tqdm, whose progress bars torch.compile uses (a test
# candidate's bar checks that its monitor thread is kept off); pytest for the worker's Python tests (tests/worker),
# flake8 for their lint (ctest python_lint; run as `/usr/bin/python3 -m flake8`), clang-format for the C++'s
# (ctest cpp_format) and clang-tidy (scripts/tidy.sh); chromium (headless) for the browser
# test of detailed_report.html (ctest html_report_browser); slurm-wlm (slurmctld, slurmd, the client commands) and
# munge for the Slurm end-to-end test (ctest SlurmE2E.*: a single-node cluster on localhost, tests/slurm/cluster.sh).
# Tests of the HIP backends: Debian's hipcc (ROCm 5.2, clang 15; ~66 MB download, ~350 MB
# installed, ~10 s): compile-only checks of the HIP prompts' kernels. KBRUN_NO_HIPCC=1 skips it.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
packages=(build-essential cmake ninja-build pkg-config ca-certificates
          libcurl4-openssl-dev nlohmann-json3-dev libcli11-dev libfmt-dev libpcre2-dev libcpp-httplib-dev libgtest-dev
          python3 python3-torch libtorch-dev pybind11-dev python3-numpy python3-tqdm
          python3-pytest python3-flake8 clang-format clang-tidy chromium slurm-wlm munge)
if [ "${KBRUN_NO_HIPCC:-0}" != 1 ]; then packages+=(hipcc); fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
