"""The NetCDF3 scanner: classic (CDF-1), 64-bit offset (CDF-2) and 64-bit data (CDF-5) files,
their header parsed here (no format library needed), each variable referenced in place."""

from refindex.scan.netcdf3.scanner import scan_netcdf3

__all__ = ["scan_netcdf3"]
