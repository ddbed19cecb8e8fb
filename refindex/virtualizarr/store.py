"""``InlineManifestStore``: VirtualiZarr's ManifestStore that also serves the chunks refindex
holds inline, and loads the arrays that have them instead of leaving them virtual.

A VirtualiZarr manifest holds only (path, offset, length) entries, so an inline chunk cannot
be one. Its entry points under ``refindex-inline://`` (no object store answers that); this
store answers those keys from memory, and its ``to_virtual_dataset`` /
``to_virtual_datatree`` (what ``open_virtual_dataset`` and ``open_virtual_mfdataset`` call)
add the arrays with inline chunks to ``loadable_variables``: they come back as NumPy arrays,
which VirtualiZarr's writers store as data (kerchunk inlines them, Icechunk writes chunks).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping

from obspec_utils.registry import ObjectStoreRegistry
from virtualizarr.manifests import ManifestGroup, ManifestStore
from zarr.abc.store import ByteRequest, OffsetByteRequest, RangeByteRequest, SuffixByteRequest
from zarr.core.buffer import Buffer, BufferPrototype


class InlineManifestStore(ManifestStore):
    """A ManifestStore whose ``inline`` chunks (store key ``grp/var/c.0.1`` -> bytes) are
    answered from memory; ``inline_arrays`` (paths from the root group) are always loaded."""

    def __init__(self, group: ManifestGroup, *, registry: ObjectStoreRegistry | None = None,
                 inline: Mapping[str, bytes] | None = None,
                 inline_arrays: Iterable[str] = ()) -> None:
        super().__init__(group, registry=registry)
        self._inline = dict(inline or {})
        self.inline_arrays = frozenset(inline_arrays)

    async def get(self, key: str, prototype: BufferPrototype,
                  byte_range: ByteRequest | None = None) -> Buffer | None:
        data = self._inline.get(key)
        if data is None:
            return await super().get(key, prototype, byte_range)
        return prototype.buffer.from_bytes(_sliced(data, byte_range))

    def to_virtual_dataset(self, group="", loadable_variables: Iterable[str] | None = None,
                           decode_times: bool | None = None):
        if not group:  # (VirtualiZarr 2.5 refuses any other group here)
            inline = [name for name in self._group.arrays if name in self.inline_arrays]
            loadable_variables = _with(loadable_variables, inline, self._group)
        return super().to_virtual_dataset(group=group, loadable_variables=loadable_variables,
                                          decode_times=decode_times)

    def to_virtual_datatree(self, group="", *, loadable_variables: Iterable[str] | None = None,
                            decode_times: bool | None = None):
        # VirtualiZarr's datatree takes one list of names for every group: an array of the
        # same name in another group is loaded too, which costs a read, never a value.
        names = [path.rpartition("/")[2] for path in self.inline_arrays]
        if names:
            loadable_variables = _with(loadable_variables, names, self._group, recursive=True)
        return super().to_virtual_datatree(group, loadable_variables=loadable_variables,
                                           decode_times=decode_times)


def _with(loadable: Iterable[Hashable] | None, inline: list[str], node: ManifestGroup,
          recursive: bool = False) -> list[Hashable] | None:
    """``loadable`` plus the arrays with inline chunks; None (VirtualiZarr's default: the
    dimension coordinates, of the groups below too when ``recursive``) spelled out when
    there are any."""
    if not inline:
        return None if loadable is None else list(loadable)
    if loadable is None:
        loadable = _dimension_coordinates(node, recursive)
    names = list(loadable)
    return names + [name for name in inline if name not in names]


def _dimension_coordinates(node: ManifestGroup, recursive: bool) -> list[str]:
    names = [name for name, array in node.arrays.items()
             if tuple(array.metadata.dimension_names or ()) == (name,)]
    if recursive:
        for group in node.groups.values():
            names += [n for n in _dimension_coordinates(group, True) if n not in names]
    return names


def _sliced(data: bytes, byte_range: ByteRequest | None) -> bytes:
    if byte_range is None:
        return data
    if isinstance(byte_range, RangeByteRequest):
        return data[byte_range.start:byte_range.end]
    if isinstance(byte_range, OffsetByteRequest):
        return data[byte_range.offset:]
    if isinstance(byte_range, SuffixByteRequest):
        return data[len(data) - byte_range.suffix:]
    raise ValueError(f"unexpected byte range {byte_range!r}")
