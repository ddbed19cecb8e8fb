"""``refindex serve``: sidecars served as Zarr stores over HTTP, for browsers, viewers and the
Zarr libraries of every language (docs/serve.md).

``config`` says what is served, ``keys`` which key a request names, ``transcode`` and
``documents`` how each array is served (codecs, v2 and v3 metadata), ``dataset`` a sidecar's
answers, ``conditional`` the HTTP rules (ETag, Range, gzip, CORS), ``metrics`` the counters
(of every worker), ``app`` the aiohttp application, ``slow_clients`` the header deadline,
``runner`` and ``workers`` how it runs."""

from refindex.serve.app import build_app
from refindex.serve.config import DatasetConfig, ServeConfig, ServeConfigError, load_config
from refindex.serve.runner import BackgroundServer, serve_forever

__all__ = ["BackgroundServer", "DatasetConfig", "ServeConfig", "ServeConfigError", "build_app",
           "load_config", "serve_forever"]
