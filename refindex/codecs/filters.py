"""A dataset's HDF5 filter pipeline as plain values, and the error for one we cannot decode."""

from __future__ import annotations

from dataclasses import dataclass

from refindex.errors import RefindexError

DEFLATE = 1
SHUFFLE = 2
FLETCHER32 = 3
SZIP = 4
NBIT = 5
SCALEOFFSET = 6
BZIP2 = 307
LZF = 32000
BLOSC = 32001
LZ4 = 32004
BITSHUFFLE = 32008
ZFP = 32013
ZSTD = 32015
SZ = 32017
FCIDECOMP = 32018
SZ3 = 32024
BLOSC2 = 32026
SPERR = 32028


@dataclass(frozen=True)
class FilterSpec:
    """One filter of an HDF5 pipeline, as stored in the dataset's object header.

    ``cd_values`` are the client data values after the filter's ``set_local`` callback ran at
    dataset creation, i.e. exactly what the filter function receives when it decodes a chunk.
    """

    id: int
    flags: int
    cd_values: tuple[int, ...]
    name: str = ""

    def describe(self) -> str:
        """The filter as a short human label, e.g. ``"filter 4 (szip)"``."""
        return f"filter {self.id} ({self.name})" if self.name else f"filter {self.id}"


class UnsupportedCodecError(RefindexError):
    """No codec can decode the chunks of an HDF5 filter pipeline exactly in this environment."""

    def __init__(self, spec: FilterSpec, reason: str) -> None:
        self.spec = spec
        super().__init__(f"HDF5 {spec.describe()}: {reason}")


def filters_of(dcpl) -> list[FilterSpec]:
    """The filter pipeline of an h5py dataset creation property list, in pipeline order.

    ``dcpl`` is a low-level ``h5py.h5p.PropDCID``, e.g. ``dset.id.get_create_plist()``.
    Pipeline order is the order HDF5 applies the filters when it writes a chunk.
    """
    specs = []
    for index in range(dcpl.get_nfilters()):
        filter_id, flags, cd_values, name = dcpl.get_filter(index)
        specs.append(
            FilterSpec(
                id=int(filter_id),
                flags=int(flags),
                cd_values=tuple(int(value) for value in cd_values),
                name=name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name),
            )
        )
    return specs
