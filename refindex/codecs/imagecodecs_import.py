"""imagecodecs, imported where a codec first needs it (it is an optional dependency, the
``plugins`` extra): one import and one error message for every codec that uses it."""

from __future__ import annotations

from refindex.errors import RefindexError

IMAGECODECS_CODECS = {"imagecodecs_lzw": "Lzw", "imagecodecs_packbits": "Packbits",
                      "imagecodecs_lzma": "Lzma", "imagecodecs_lerc": "Lerc",
                      "imagecodecs_webp": "Webp", "imagecodecs_jpeg2k": "Jpeg2k",
                      "imagecodecs_png": "Png", "imagecodecs_jpegxl": "Jpegxl",
                      "imagecodecs_jpegxr": "Jpegxr"}
"""imagecodecs' numcodecs codecs (id -> class in ``imagecodecs.numcodecs``) that sidecars of
TIFF files name: ``refindex.codecs`` makes numcodecs load them from there when first asked,
as ``pyproject.toml``'s entry points do for other readers."""


def require(what: str):
    """The imagecodecs module, or a ``RefindexError`` saying that decoding ``what`` (e.g.
    ``"LZF chunks"``) needs it."""
    try:
        import imagecodecs
    except ImportError as error:
        raise RefindexError(
            f"decoding {what} needs imagecodecs: pip install 'refindex[plugins]'") from error
    return imagecodecs


def has(*features: str) -> bool:
    """Whether imagecodecs is installed here with every one of ``features`` (its codec names:
    ``"LZF"``, ``"ZFP"``, ...) available."""
    try:
        import imagecodecs
    except ImportError:
        return False
    return all(getattr(imagecodecs, feature).available for feature in features)
