"""One module per ``refindex`` subcommand, each with ``add_parser(commands)`` and ``run(args)``.

``SUMMARIES`` is the one place a command's one-line help is written: ``refindex --help`` lists
them without importing any command module, and a command's module is imported only when that
command runs (see ``refindex.cli.build_parser``).
"""

SUMMARIES = {
    "scan": "index HDF5/NetCDF files and Zarr stores (tar, zip, directory) into sidecars",
    "combine": "combine many sidecars (or a collection) into one dataset",
    "inspect": "list the arrays, chunks, bytes and sources of a sidecar",
    "read": "read arrays through a sidecar and show the requests it took",
    "validate": "check that a sidecar's sources still exist, unchanged",
    "convert": "convert a sidecar between native, kerchunk JSON and kerchunk parquet, or "
               "export it into an Icechunk repository",
    "pack": "pack a Zarr store into a few large tar files",
    "upload": "upload files in parallel multipart parts",
    "serve": "serve sidecars as Zarr stores over HTTP (for browsers, viewers, ...)",
    "demo": "write a NetCDF4 file, serve it from an embedded S3 server, scan it remotely and "
            "read it back through xarray",
}
