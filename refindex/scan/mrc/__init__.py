"""MRC2014 files (cryo-EM images, image stacks, volumes and volume stacks): the 1,024-byte
header parsed by hand, the data referenced as row blocks of its one contiguous block."""

from refindex.scan.mrc.header import looks_like_mrc
from refindex.scan.mrc.scanner import scan_mrc

__all__ = ["looks_like_mrc", "scan_mrc"]
