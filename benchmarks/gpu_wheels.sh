#!/usr/bin/env bash
# Wheels for a GPU machine whose Python (3.12) has torch, numpy, h5py, click, xarray, scipy and
# scikit-learn but not pyrolf's other needs: writes them and pyrolf's own wheel to .whl/ (ignored
# by git), at the versions of the local .venv. Run here, where pip reaches the package registry;
# then carry .whl and run benchmarks/gpu_check.sh there (see that script).
set -euo pipefail
cd "$(dirname "$0")/.."
names="pyro-ppl pyro-api nlb-tools pynwb hdmf arviz jsonschema jsonschema-specifications
       referencing rpds-py ruamel-yaml h5netcdf xarray-einstats platformdirs pandas pytz tzdata
       python-dateutil"
pins=$(uv pip freeze --python .venv/bin/python)
rm -rf .whl && mkdir .whl
for name in $names; do
    pin=$(grep -i "^${name}==" <<<"$pins") || { echo "no ${name} in .venv: install pyrolf there first" >&2; exit 1; }
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d .whl "$pin"
done
uv build --quiet --wheel --out-dir .whl
rm -rf build
du -sh .whl
