"""What runs without a cloud account: ``refindex demo`` (``run.py``: a sample NetCDF4 file,
scanned from and read back through S3) and the S3 server it uses, SeaweedFS on loopback
(``embedded_s3.py``), which the tests and benchmarks start too."""
