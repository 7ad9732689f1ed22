"""The one place that knows which ArviZ is installed: legacy ArviZ (< 1.0, ``InferenceData``) or
ArviZ >= 1.0 (``xarray.DataTree``, built from arviz-base, arviz-stats and arviz-plots).

The differences it hides:

- building the data: ``az.from_dict(posterior=..., observed_data=..., ...)`` (< 1.0) against
  ``az.from_dict({"posterior": ..., "observed_data": ..., ...})`` (>= 1.0);
- writing it: each group's Dataset to its netCDF group against ``DataTree.to_netcdf``, and
  listing its groups: ``InferenceData.groups()`` against ``DataTree.children`` (both chosen by
  the data's type); ``az.from_netcdf`` reads either file, returning ``InferenceData`` or
  ``DataTree``;
- Pareto smoothed importance sampling: ``az.psislw(log_weights)`` (< 1.0) against the arviz-stats
  accessor ``DataArray.azstats.psislw(dim=...)`` (>= 1.0), which takes the *negated* log-weights
  (the log-likelihood convention of PSIS-LOO) and raises on a tail of equal values.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import warnings

import numpy as np
import xarray as xr


def _import_arviz():
    """``arviz``, also where its cache folder cannot be made. Legacy ArviZ writes, as it is
    imported, the day it last advised its 1.0 under the user's cache folder (platformdirs'
    ``user_cache_dir``: ``$XDG_CACHE_HOME`` or ``~/.cache``), so a read-only or unwritable home
    (a container run as another user, a cluster node's read-only home) failed the import, and
    every pyrolf command with it. There this process's ``XDG_CACHE_HOME`` becomes a temporary
    folder, removed as the process ends, and the import is tried again."""
    try:
        import arviz
    except OSError:
        os.environ["XDG_CACHE_HOME"] = cache = tempfile.mkdtemp(prefix="pyrolf-cache-")
        atexit.register(shutil.rmtree, cache, True)
        import arviz
    return arviz


az = _import_arviz()

ARVIZ_1 = int(az.__version__.split(".")[0]) >= 1
NETCDF_ENGINE = "h5netcdf"
DATATREE = getattr(xr, "DataTree", ())  # xarray < 2024.10 has none: nothing is a DataTree


def inference_data(groups: dict[str, dict[str, np.ndarray]], dims: dict[str, list[str]],
                   coords: dict[str, np.ndarray] | None = None):
    """ArviZ data (``InferenceData`` or ``DataTree``) from ``{group: {variable: array}}``.

    Arrays of sampled groups lead with ``(chain, draw)``; ``observed_data`` has no sample dims;
    ``dims`` names the remaining dims per variable (a ``log_likelihood`` variable keeps only as
    many of them as its array has, as both ArviZ versions do).
    """
    if ARVIZ_1:
        return az.from_dict(groups, dims=dims, coords=coords)
    return az.from_dict(**groups, dims=dims, coords=coords)


def with_coords(data, coords: dict[str, tuple]):
    """ArviZ data with ``coords`` ``{name: (dim, values[, attrs])}`` (xarray's form) given to
    every group that has ``dim``: labels of dimensions, with their attributes, and coordinates
    beside them (a flag per neuron, a split per trial). The draws are not copied (legacy
    ``InferenceData.map`` deep-copies all groups unless told to work in place)."""
    def assign(dataset: xr.Dataset) -> xr.Dataset:
        return dataset.assign_coords({name: coord for name, coord in coords.items()
                                      if coord[0] in dataset.dims})
    if isinstance(data, DATATREE):
        return data.map_over_datasets(assign)
    data.map(assign, inplace=True)
    return data


def with_attrs(data, attrs: dict):
    """ArviZ data with ``attrs`` added to every group's attributes (what ``az.from_netcdf`` gives
    back as, e.g., ``posterior.attrs``)."""
    if isinstance(data, DATATREE):
        for node in data.subtree:
            if node is not data:
                node.attrs.update(attrs)
        return data
    for group in data.groups():
        getattr(data, group).attrs.update(attrs)
    return data


def with_variable_attrs(data, group: str, variable: str, attrs: dict):
    """ArviZ data with ``attrs`` added to the attributes of ``group``'s ``variable`` (what
    xarray shows as, e.g., ``observed_data["spikes"].attrs``)."""
    if isinstance(data, DATATREE):
        node = data[group]
        node.dataset = node.to_dataset().assign(
            {variable: node[variable].assign_attrs(attrs)})
        return data
    getattr(data, group)[variable].attrs.update(attrs)
    return data


def variable_encoding(dataset: xr.Dataset) -> dict[str, dict]:
    """netCDF encoding of a group's variables: counts and other integers byte-shuffled, then
    zlib-compressed (draws of small counts shrink about 15-fold); floats as they are (draws of
    latents shrink by under a tenth with zlib, which costs a minute per 1 GiB written)."""
    return {name: {"zlib": True, "shuffle": True} for name, variable in dataset.data_vars.items()
            if np.issubdtype(variable.dtype, np.integer)}


def write_netcdf(data, path) -> None:
    """Write ArviZ data to a netCDF file (h5netcdf; its attributes at the root, one netCDF
    group per ArviZ group, each variable encoded as :func:`variable_encoding` says), which
    ``az.from_netcdf`` reads."""
    if isinstance(data, DATATREE):
        encoding = {f"/{group}": variable_encoding(node.to_dataset())
                    for group, node in data.children.items()}
        data.to_netcdf(str(path), engine=NETCDF_ENGINE, encoding=encoding)
        return
    xr.Dataset(attrs=data.attrs).to_netcdf(str(path), mode="w", engine=NETCDF_ENGINE)
    for group in data.groups():
        dataset = getattr(data, group)
        dataset.to_netcdf(str(path), mode="a", group=group, engine=NETCDF_ENGINE,
                          encoding=variable_encoding(dataset))


def psis_khat(log_weights: np.ndarray) -> np.ndarray:
    """ArviZ's Pareto k-hat of importance log-weights ``(draws, trials) -> (trials,)``.

    Passed through as ArviZ computes it (r_eff = 1: the draws are independent), except that its
    warning about large k-hat is silenced (the caller reports k-hat itself). Inputs whose tail is
    constant are ArviZ-version specific (legacy returns ``inf``, >= 1.0 raises); callers handle
    uniform weights before they get here.
    """
    log_weights = np.asarray(log_weights, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Pp]areto.*")
        if ARVIZ_1:
            import arviz_stats  # noqa: F401  (registers the ``azstats`` accessor)

            negated = xr.DataArray(-log_weights, dims=("draw", "trial"))
            _, khat = negated.azstats.psislw(dim="draw", r_eff=1.0)
            return np.asarray(khat.transpose("trial"), dtype=np.float64)
        _, khat = az.psislw(log_weights.T)
    return np.asarray(khat, dtype=np.float64)
