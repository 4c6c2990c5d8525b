#!/usr/bin/env bash
# Installs the Debian packages impbench uses when they are missing (root only); otherwise
# prints the command to run and carries on without them.
set -u
# chromium: the report's browser test (tests/test_report_browser.py) renders report.html headless.
declare -A want=([beagle]=beagle [minimac4]=minimac4 [bcftools]=bcftools [tabix]=tabix [bgzip]=tabix [chromium]=chromium)
# Data packages, checked by a file they ship: the real 1000 Genomes chr20 card (1kgp-chr20).
declare -A want_file=([/usr/share/doc/shapeit4/examples/test/reference.vcf.gz]=shapeit4-example)
missing=()
for cmd in "${!want[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${want[$cmd]}")
done
for file in "${!want_file[@]}"; do
  [ -e "$file" ] || missing+=("${want_file[$file]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: installing $pkgs"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq $pkgs >/dev/null || {
    echo "system-deps: apt-get failed; install by hand: apt-get install -y $pkgs" >&2; exit 0; }
else
  echo "system-deps: missing $pkgs; to install: sudo apt-get update && sudo apt-get install -y $pkgs" >&2
  echo "system-deps: continuing without them (their imputers and tests are skipped)" >&2
fi
exit 0
