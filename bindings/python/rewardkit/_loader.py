"""Find, load and bind librewardkit, once, on first use.

Search order:
1. the file named by the environment variable REWARDKIT_LIB (if it is set,
   nothing else is tried);
2. a library shipped inside this package, rewardkit/_lib/librewardkit.so;
3. the system's search: ctypes.util.find_library("rewardkit"), then the bare
   file name, which the dynamic loader looks up in LD_LIBRARY_PATH, the
   ld.so cache and the default directories.

ctypes.CDLL releases the GIL for the duration of every foreign call, so
threads scoring through one Scorer run in C at the same time.
"""

import ctypes
import ctypes.util
import os
import sys
import threading
from pathlib import Path

from . import _ffi

_lock = threading.Lock()
_lib = None


class LibraryNotFoundError(OSError):
    """librewardkit could not be loaded; the message lists every place tried."""


def _file_name():
    if sys.platform == "darwin":
        return "librewardkit.dylib"
    if sys.platform == "win32":
        return "rewardkit.dll"
    return "librewardkit.so"


def _candidates():
    """(where, path-or-name) pairs in search order."""
    env = os.environ.get("REWARDKIT_LIB")
    if env:
        return [("REWARDKIT_LIB", env)]
    found = [("bundled", str(Path(__file__).parent / "_lib" / _file_name()))]
    name = ctypes.util.find_library("rewardkit")
    if name:
        found.append(("find_library", name))
    found.append(("system loader", _file_name()))
    return found


def _open():
    tried = []
    for where, path in _candidates():
        if where == "bundled" and not os.path.exists(path):
            tried.append(f"{where}: {path}: no such file")
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            tried.append(f"{where}: {path}: {e}")
            continue
        missing = _ffi.bind(lib)
        if missing:
            tried.append(
                f"{where}: {path}: lacks {', '.join(missing)} "
                f"(library {_version_of(lib)}, bindings {_ffi.VERSION})"
            )
            continue
        return lib
    raise LibraryNotFoundError(
        "cannot load librewardkit; tried:\n  "
        + "\n  ".join(tried)
        + "\nSet REWARDKIT_LIB to the path of librewardkit.so, or install it "
        "(scripts/install.sh) where the dynamic loader looks."
    )


def _version_of(lib):
    try:
        fn = lib.rk_version
        fn.restype = ctypes.c_char_p
        fn.argtypes = []
        return fn().decode("ascii", "replace")
    except (AttributeError, OSError):
        return "of unknown version"


def lib():
    """The bound library (loaded on the first call). Raises LibraryNotFoundError."""
    global _lib
    if _lib is None:
        with _lock:
            if _lib is None:
                _lib = _open()
    return _lib
