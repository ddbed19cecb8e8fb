"""The optional C extension; all other metadata lives in pyproject.toml.

``refindex.scan.hdf5._chunk_iter`` speeds up scanning datasets with many chunks. It needs a C
compiler but no HDF5 headers. When it cannot be built, installation goes on with a warning and
refindex uses h5py's slower ``chunk_iter`` (see refindex/scan/hdf5/chunk_index.py).
"""

import warnings

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, ExecError, PlatformError

# No compiler, or one that fails: CompileError and LinkError are CCompilerErrors.
BUILD_ERRORS = (CCompilerError, ExecError, PlatformError, OSError)


class OptionalBuildExt(build_ext):
    """build_ext that warns instead of failing when an extension does not compile."""

    def run(self):
        try:
            super().run()
        except BUILD_ERRORS as error:  # e.g. no compiler found for this platform at all
            self._skipped(error)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except BUILD_ERRORS as error:
            self._skipped(error, ext.name)

    @staticmethod
    def _skipped(error, name="C extensions"):
        warnings.warn(
            f"refindex: {name} not built ({error}); scanning HDF5 falls back to h5py's "
            "slower chunk_iter",
            stacklevel=1,
        )


setup(
    ext_modules=[
        Extension(
            "refindex.scan.hdf5._chunk_iter",
            sources=["refindex/scan/hdf5/_chunk_iter.c"],
            optional=True,
        )
    ],
    cmdclass={"build_ext": OptionalBuildExt},
)
