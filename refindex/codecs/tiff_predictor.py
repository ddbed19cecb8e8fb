"""Codec ``refindex.tiff_predictor``: undoes a TIFF predictor (horizontal differencing,
predictor 2, or the floating-point predictor, 3) on one strip or tile, as tifffile does.

Each row of a TIFF strip or tile is predicted on its own, so the decoder must know the row's
width and samples per pixel; the number of rows it takes from the chunk (the last strip of an
image is shorter than the others). tifffile unpredicts values in native byte order; so does
this codec, which then gives the values back in the file's byte order (``dtype``), the array's
dtype. (The floating-point predictor's byte planes are read as native values, as tifffile
reads them.) imagecodecs' own ``Delta`` / ``Floatpred`` codecs need the chunk's whole shape, which
a short last strip does not have.
"""

from __future__ import annotations

import numpy as np
from numcodecs.abc import Codec
from numcodecs.compat import ensure_contiguous_ndarray, ndarray_copy

from refindex.codecs.imagecodecs_import import require

# TIFF predictor -> (imagecodecs function, distance between predicted samples).
_PREDICTORS = {2: ("delta_decode", 1), 3: ("floatpred_decode", 1),
               34892: ("delta_decode", 2), 34893: ("delta_decode", 4),
               34894: ("floatpred_decode", 2), 34895: ("floatpred_decode", 4)}
PREDICTORS = frozenset(_PREDICTORS)
"""The TIFF predictors this codec undoes."""


class TiffPredictorCodec(Codec):
    """Undo TIFF predictor ``predictor`` on rows of ``width`` pixels of ``samples`` values of
    ``dtype`` (the file's byte order)."""

    codec_id = "refindex.tiff_predictor"

    def __init__(self, predictor: int, dtype: str, width: int, samples: int = 1) -> None:
        if int(predictor) not in _PREDICTORS:
            raise ValueError(f"TIFF predictor {predictor} is not one of {sorted(_PREDICTORS)}")
        self.predictor, self.dtype = int(predictor), np.dtype(dtype).str
        self.width, self.samples = int(width), int(samples)

    def get_config(self) -> dict:
        return {"id": self.codec_id, "predictor": self.predictor, "dtype": self.dtype,
                "width": self.width, "samples": self.samples}

    def decode(self, buf, out=None):
        dtype = np.dtype(self.dtype)
        raw = ensure_contiguous_ndarray(buf).view("u1")
        row = self.width * self.samples * dtype.itemsize
        if not row or len(raw) % row:
            raise ValueError(f"a TIFF strip or tile of {len(raw)} bytes is not whole rows of "
                             f"{self.width} × {self.samples} values of {dtype.str}")
        name, dist = _PREDICTORS[self.predictor]
        if name == "floatpred_decode":  # its byte planes are in no byte order: read as native
            native = raw.view(dtype.newbyteorder("=")).reshape(-1, self.width, self.samples).copy()
        else:
            values = raw.view(dtype).reshape(-1, self.width, self.samples)
            native = values.astype(dtype.newbyteorder("="))
        native = getattr(require("TIFF predictors"), name)(native, axis=-2, dist=dist, out=native)
        result = np.ascontiguousarray(native.astype(dtype, copy=False)).view("u1").reshape(-1)
        return ndarray_copy(result, out) if out is not None else result

    def encode(self, buf):
        dtype = np.dtype(self.dtype)
        values = ensure_contiguous_ndarray(buf).view(dtype).reshape(-1, self.width, self.samples)
        name, dist = _PREDICTORS[self.predictor]
        encode = getattr(require("TIFF predictors"), name.replace("decode", "encode"))
        encoded = encode(values.astype(dtype.newbyteorder("=")), axis=-2, dist=dist)
        if name == "floatpred_decode":
            return np.ascontiguousarray(encoded).tobytes()
        return np.ascontiguousarray(encoded.astype(dtype)).tobytes()
