"""A microscopy-like Zarr v2 store on disk, written by zarr itself and made once (kept in
``benchmarks/.data``, not committed): an OME-Zarr-style pyramid of a uint16 fluorescence
volume — cells of varied shape and brightness on a dark, noisy background (camera offset
100, shot noise) — in 32³ chunks, Blosc zstd + bit-shuffle, nested chunk keys (``0/z/y/x``).

Level 0 has at least the number of chunks asked for (2,048 × 2,048 pixels a plane for
100,000); levels 1 and 2 (each 2 × 2 × 2 means of the one above) add about 15 % more.
A 64 KiB chunk compresses to 20-30 KB, so 100,000 chunks take about 3 GB on disk.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numcodecs
import numpy as np
import zarr

from benchmarks.datasets import DATA

CHUNK = 32  # voxels per chunk side
LEVELS = 3
OFFSET = 100.0  # the camera's dark level
BACKGROUND = 10.0  # photons a voxel of background gets (their shot noise is what is stored)
CELLS_PER_MVOXEL = 60
_SPRITE = 40  # voxels per side of the box one cell is drawn in


@dataclass(frozen=True)
class StoreFiles:
    """A directory store: its path, number of files and their bytes."""

    path: Path
    files: int
    bytes: int


def microscopy(chunks: int = 100_000) -> StoreFiles:
    """The pyramid whose level 0 has at least ``chunks`` chunks, made on first use."""
    side = 64 if chunks >= 4 * 64 * 64 else max(1, math.isqrt(max(chunks // 4, 1)))
    planes = math.ceil(chunks / side**2) * CHUNK
    shape = (planes, side * CHUNK, side * CHUNK)
    path = DATA / f"microscopy-{shape[0]}x{shape[1]}x{shape[2]}.zarr"
    if not path.exists():
        partial = path.with_suffix(".partial")
        shutil.rmtree(partial, ignore_errors=True)
        _write(partial, shape)
        partial.rename(path)
    sizes = [f.stat().st_size for f in path.rglob("*") if f.is_file()]
    return StoreFiles(path, len(sizes), sum(sizes))


def _write(path: Path, shape: tuple[int, int, int]) -> None:
    group = zarr.open_group(zarr.storage.LocalStore(path), mode="w", zarr_format=2,
                            attributes=_ome_attributes())
    compressor = numcodecs.Blosc("zstd", 5, numcodecs.Blosc.BITSHUFFLE)
    arrays = []
    for level in range(LEVELS):
        level_shape = tuple(max(1, n >> level) for n in shape)
        arrays.append(group.create_array(
            name=str(level), shape=level_shape, chunks=(CHUNK,) * 3, dtype="uint16",
            compressors=compressor, fill_value=0,
            chunk_key_encoding={"name": "v2", "separator": "/"}))
    pyramid = _Pyramid(arrays)
    rng = np.random.default_rng(2024)
    sprites = _cell_sprites(rng)
    for _ in range(shape[0] // CHUNK):
        pyramid.add(_layer(rng, sprites, (CHUNK, shape[1], shape[2])))
    pyramid.flush()
    zarr.consolidate_metadata(group.store)


class _Pyramid:
    """Writes level 0 a chunk layer at a time, and each coarser level as soon as a chunk
    layer of it is complete."""

    def __init__(self, arrays: list) -> None:
        self.arrays = arrays
        self.written = [0] * len(arrays)
        self.pending: list[list[np.ndarray]] = [[] for _ in arrays]

    def add(self, planes: np.ndarray, level: int = 0) -> None:
        self.pending[level].append(planes)
        if sum(len(p) for p in self.pending[level]) >= CHUNK:
            self._write(level)

    def flush(self) -> None:
        for level in range(len(self.arrays)):
            if self.pending[level]:
                self._write(level)

    def _write(self, level: int) -> None:
        planes = np.concatenate(self.pending[level])
        self.pending[level] = []
        z0 = self.written[level]
        self.arrays[level][z0:z0 + len(planes)] = planes
        self.written[level] += len(planes)
        if level + 1 < len(self.arrays):
            self.add(_half(planes), level + 1)


def _half(planes: np.ndarray) -> np.ndarray:
    """2 × 2 × 2 means (a lone last plane is averaged in 2-D only)."""
    z, y, x = planes.shape
    if z % 2:
        planes = np.concatenate([planes, planes[-1:]])
    blocks = planes.reshape(len(planes) // 2, 2, y // 2, 2, x // 2, 2).astype(np.float32)
    return np.rint(blocks.mean(axis=(1, 3, 5))).astype(np.uint16)


def _cell_sprites(rng: np.random.Generator, count: int = 32) -> list[np.ndarray]:
    """Expected photon counts of ``count`` cells: flat-topped ellipsoids of 10-28 voxels
    across, 200-1,500 photons bright, with a coarse texture (nucleoli, chromatin)."""
    grid = np.mgrid[:_SPRITE, :_SPRITE, :_SPRITE].astype(np.float32) - _SPRITE / 2
    sprites = []
    for _ in range(count):
        radii = rng.uniform(5, 14, 3)
        distance = sum((axis / r) ** 2 for axis, r in zip(grid, radii, strict=True))
        body = np.exp(-distance**3)
        texture = np.clip(1 + 0.3 * rng.standard_normal((_SPRITE // 4,) * 3), 0.2, None)
        texture = texture.repeat(4, 0).repeat(4, 1).repeat(4, 2)
        sprites.append((rng.uniform(200, 1500) * body * texture).astype(np.float32))
    return sprites


def _layer(rng: np.random.Generator, sprites: list[np.ndarray],
           shape: tuple[int, int, int]) -> np.ndarray:
    """One chunk layer of level 0: cells dropped at random, plus shot noise and offset."""
    signal = np.zeros(shape, np.float32)
    for _ in range(int(CELLS_PER_MVOXEL * math.prod(shape) / 1e6)):
        sprite = sprites[rng.integers(len(sprites))]
        corner = [int(rng.integers(-_SPRITE + 1, n)) for n in shape]
        into = tuple(slice(max(0, c), min(n, c + _SPRITE)) for c, n in zip(corner, shape,
                                                                          strict=True))
        take = tuple(slice(s.start - c, s.stop - c) for s, c in zip(into, corner, strict=True))
        signal[into] += sprite[take]
    signal += BACKGROUND
    noisy = rng.standard_normal(shape, dtype=np.float32)
    noisy *= np.sqrt(signal)  # shot noise, Gaussian-approximated (fast)
    noisy += signal + (OFFSET - BACKGROUND)
    return np.clip(np.rint(noisy), 0, 65535).astype(np.uint16)


def _ome_attributes() -> dict:
    datasets = [{"path": str(level), "coordinateTransformations": [
        {"type": "scale", "scale": [0.5 * 2**level] * 3}]} for level in range(LEVELS)]
    return {"multiscales": [{
        "version": "0.4", "name": "cells",
        "axes": [{"name": a, "type": "space", "unit": "micrometer"} for a in "zyx"],
        "datasets": datasets}]}
