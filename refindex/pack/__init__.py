"""Pack a Zarr directory store (v2 or v3, sharded or not) into a few large tar files of about
a target size (metadata first, then chunks, or shards, in C order of each array's grid) and
write the sidecar that reads them as the store (v3 arrays as their Zarr v2 equivalents, a
sharded array by its inner chunks); optionally upload each tar while it is packed.

    result = pack("brain.zarr", "packed/", PackOptions(target_size=2 * GiB))
    zarr.open_group(refindex.open_store(result.sidecar), mode="r")
"""

from refindex.pack.packed_index import build_index
from refindex.pack.packer import FORMATS, PackedPart, PackOptions, PackProgress, PackResult, pack

__all__ = ["FORMATS", "PackOptions", "PackProgress", "PackResult", "PackedPart", "build_index",
           "pack"]
