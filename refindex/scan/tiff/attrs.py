"""Dimension names and group attributes of a TIFF file's series: OME-Zarr 0.4 ``multiscales``
over each series' pyramid levels (axes from tifffile's axes, which follow the OME-XML
``DimensionOrder``; scales from the OME-XML physical sizes, times each level's downsampling),
the OME-XML itself, and the file's byte order and flavour."""

from __future__ import annotations

from typing import Any

from refindex.scan.json_values import float_to_json

# tifffile's axis letters -> OME-Zarr axis types (others have none).
_TYPES = {"T": "time", "C": "channel", "S": "channel", "Z": "space", "Y": "space", "X": "space"}
_UNITS = {"µm": "micrometer", "um": "micrometer", "nm": "nanometer", "mm": "millimeter",
          "cm": "centimeter", "m": "meter", "Å": "angstrom", "pm": "picometer",
          "s": "second", "ms": "millisecond"}


def level_dims(axes: str, shape: tuple[int, ...], base: tuple[int, ...],
               level: int) -> list[str]:
    """Dimension names of level ``level`` (axes ``axes``, ``shape``) of a series whose level 0
    has shape ``base``: the axis letters in lower case; an axis a level has downsampled gets
    the level's number (``y_1``), so that all levels open as one xarray Dataset."""
    return [letter.lower() if not level or size == full else f"{letter.lower()}_{level}"
            for letter, size, full in zip(axes, shape, base, strict=True)]


def multiscales(name: str, axes: str, physical: dict[str, tuple[float, str | None]],
                levels: list[tuple[str, tuple[int, ...]]]) -> list[dict[str, Any]]:
    """One OME-Zarr 0.4 multiscale of ``levels`` ((array path, shape), level 0 first);
    ``physical``: axis letter -> (size of a pixel, unit) from the OME-XML."""
    base = levels[0][1]
    axis_list = []
    for letter in axes:
        axis: dict[str, Any] = {"name": letter.lower()}
        if letter in _TYPES:
            axis["type"] = _TYPES[letter]
        unit = physical.get(letter, (1.0, None))[1]
        if unit in _UNITS:
            axis["unit"] = _UNITS[unit]
        axis_list.append(axis)
    datasets = []
    for path, shape in levels:
        scale = [float_to_json(physical.get(letter, (1.0, None))[0] * full / size)
                 for letter, size, full in zip(axes, shape, base, strict=True)]
        datasets.append({"path": path,
                         "coordinateTransformations": [{"type": "scale", "scale": scale}]})
    return [{"version": "0.4", "name": name, "axes": axis_list, "datasets": datasets}]


def physical_sizes(ome: dict | None, series: int) -> dict[str, tuple[float, str | None]]:
    """Axis letter -> (PhysicalSize, unit) of OME image ``series`` (tifffile's ``xml2dict`` of
    the OME-XML), for the axes the OME-XML gives a size."""
    if not ome:
        return {}
    images = ome.get("OME", {}).get("Image", [])
    images = images if isinstance(images, list) else [images]
    if series >= len(images):
        return {}
    pixels = images[series].get("Pixels", {})
    found = {}
    for letter in "XYZ":
        size = pixels.get(f"PhysicalSize{letter}")
        if isinstance(size, int | float) and size > 0:
            found[letter] = (float(size), pixels.get(f"PhysicalSize{letter}Unit", "µm"))
    interval = pixels.get("TimeIncrement")
    if isinstance(interval, int | float) and interval > 0:
        found["T"] = (float(interval), pixels.get("TimeIncrementUnit", "s"))
    return found


def file_attrs(tif) -> dict[str, Any]:
    """The root group's attributes of tifffile ``TiffFile`` ``tif``."""
    attrs: dict[str, Any] = {
        "tiff": {"byte_order": "little" if tif.byteorder == "<" else "big",
                 "bigtiff": bool(tif.is_bigtiff), "ome": bool(tif.is_ome),
                 "series": len(tif.series)},
    }
    if tif.is_ome and tif.ome_metadata:
        attrs["ome_xml"] = tif.ome_metadata
    return attrs
