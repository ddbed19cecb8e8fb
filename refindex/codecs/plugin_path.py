"""Make h5py's HDF5 use hdf5plugin's filters whatever was imported first.

netCDF4's wheels bundle their own libhdf5 and filter plugins linked against it, and importing
netCDF4 sets ``HDF5_PLUGIN_PATH`` to those plugins. h5py's libhdf5 (another build) then
loads them when it first looks for a filter, hdf5plugin's own filters (blosc, bzip2, zstd)
lose to them, and every call they make into "their" libhdf5 fails ("error during user
callback") or crashes. Dropping that folder from h5py's search path and registering
hdf5plugin's filters again repairs it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import sys


def use_hdf5plugin() -> None:
    """Drop foreign plugin folders from h5py's HDF5 search path and register hdf5plugin.

    Cheap enough to call before every use of an HDF5 plugin filter (netCDF4 may be imported
    at any time). Harmless when netCDF4 is not imported or shares h5py's libhdf5 (nothing is
    dropped), and when hdf5plugin is not installed (nothing is registered).
    """
    imported_before = "hdf5plugin" in sys.modules
    dropped = _drop_foreign_plugin_folders()
    try:
        import hdf5plugin  # registers its filters on first import
    except ImportError:
        return
    if dropped and imported_before:
        # hdf5plugin was imported while the foreign folder was searched, and may have left
        # the foreign filters registered (blosc, bzip2, zstd). Re-registering fails for a
        # filter that an open dataset uses; HDF5 then reports that filter's failure by name
        # when it is used, so carry on.
        with contextlib.suppress(Exception):  # h5py: ValueError, RuntimeError or OSError
            hdf5plugin.register(force=True)


def _drop_foreign_plugin_folders() -> list[str]:
    """Remove from h5py's plugin search path the folders of plugins built for another HDF5."""
    from h5py import h5pl
    from h5py._objects import phil

    foreign = _foreign_plugin_folders()
    if not foreign:
        return []  # no HDF5 call at all: this runs before every decode through HDF5
    dropped = []
    # h5py's own lock: the search path must not change while another thread (a pool
    # decoding chunks through HDF5) is inside HDF5; h5pl's calls do not take it themselves.
    with phil:
        for index in reversed(range(h5pl.size())):
            folder = os.path.realpath(h5pl.get(index).decode("utf-8", "replace"))
            if folder in foreign:
                h5pl.remove(index)
                dropped.append(folder)
    return dropped


def _foreign_plugin_folders() -> set[str]:
    # Only a netCDF4 already imported can have set the path; don't import it here.
    netcdf4 = sys.modules.get("netCDF4")
    package = os.path.dirname(getattr(netcdf4, "__file__", "") or "")
    if not package:
        return set()
    if _bundled_hdf5(package) is None:
        return set()  # netCDF4 uses a shared libhdf5 (conda, system): its plugins fit h5py's
    return {os.path.realpath(os.path.join(package, "plugins"))}


def _bundled_hdf5(package: str) -> str | None:
    """The libhdf5 a wheel bundled next to the netCDF4 package (``netcdf4.libs``), if any."""
    parent = os.path.dirname(package)
    for libs in ("netcdf4.libs", "netCDF4.libs"):
        found = glob.glob(os.path.join(parent, libs, "libhdf5-*"))
        if found:
            return found[0]
    return None
