"""TIFF, BigTIFF and OME-TIFF (single- or multi-file, pyramids of SubIFDs or OME resolution
levels), parsed with tifffile: every page's strips or tiles referenced as chunks, the page's
compression and predictor as Zarr codecs."""

from refindex.scan.tiff.scanner import looks_like_tiff, scan_tiff

__all__ = ["looks_like_tiff", "scan_tiff"]
