#!/usr/bin/env bash
# Installs the Debian packages impbench uses when they are missing (root only); otherwise
# prints the command to run and carries on without them.
set -u
# chromium: the report's browser test (tests/test_report_browser.py) renders report.html headless.
# slurm-wlm, munge: the single-node Slurm of scripts/slurm-local.sh (tests marked slurm, --executor slurm).
declare -A want=([beagle]=beagle [minimac4]=minimac4 [bcftools]=bcftools [tabix]=tabix [bgzip]=tabix [chromium]=chromium
  [sbatch]=slurm-wlm)
# Checked by a file they ship: data packages (the real 1000 Genomes chr20 card, 1kgp-chr20) and
# daemons in /usr/sbin, which may not be on PATH.
declare -A want_file=([/usr/share/doc/shapeit4/examples/test/reference.vcf.gz]=shapeit4-example
  [/usr/sbin/slurmctld]=slurm-wlm [/usr/sbin/slurmd]=slurm-wlm [/usr/sbin/munged]=munge)
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
