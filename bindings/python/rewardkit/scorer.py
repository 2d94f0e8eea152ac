"""Scorer: a loaded reward-model bundle."""

import ctypes
import os
import threading

from . import _ffi, _loader
from .errors import ErrorCode, RewardkitError, ScorerClosedError, check

try:
    import numpy as _np
except ImportError:  # numpy is optional: results come back as lists without it
    _np = None

_DEVICES = {"cpu": _ffi.RK_DEVICE_CPU, "cuda": _ffi.RK_DEVICE_CUDA}
_float_p = ctypes.POINTER(ctypes.c_float)


def _encode(value, what):
    """str (or bytes, passed through) -> NUL-terminated UTF-8 for C.

    Lone surrogates are encoded as they are ("surrogatepass"), which is not
    UTF-8, so the library rejects them with ErrorCode.INVALID_UTF8, just as
    it rejects invalid bytes.
    """
    if isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
    elif isinstance(value, bytes):
        data = value
    else:
        raise TypeError(f"{what} must be str, not {type(value).__name__}")
    if b"\0" in data:
        raise ValueError(f"{what} contains a NUL character")
    return data


def _as_list(values, what):
    if values is None or isinstance(values, (str, bytes)):
        raise TypeError(f"{what} must be a sequence of str, not {type(values).__name__}")
    return list(values)


def _size_option(value, name):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 0:
        raise RewardkitError(
            ErrorCode.INVALID_ARGUMENT, f"{name} must not be negative, found {value}"
        )
    return value


class Scorer:
    """A reward model loaded from a bundle directory.

    Scorer(bundle_dir, *, threads=None, max_batch=None, max_length=None,
           device="cpu", device_id=0, max_sessions=None)

    Options left as None keep the library's defaults (rk_scorer_options_default:
    all cores, batches of 32, the bundle's max_length, one session).
    `device` is "cpu" or "cuda". `max_sessions` > 1 lets that many calls from
    different threads run at once (each session holds a copy of the weights).

    Strings may be str or UTF-8 bytes. A None (or other non-string) where a
    string is expected raises TypeError; invalid UTF-8, including a str with
    a lone surrogate, raises RewardkitError with ErrorCode.INVALID_UTF8; a NUL
    character raises ValueError. Library errors raise RewardkitError with the
    library's code.

    A Scorer may be shared by many threads; the GIL is released while the
    model runs. close() waits for calls in flight, then frees the model;
    later calls raise ScorerClosedError. A Scorer is also a context manager.
    """

    def __init__(
        self,
        bundle_dir,
        *,
        threads=None,
        max_batch=None,
        max_length=None,
        device="cpu",
        device_id=0,
        max_sessions=None,
    ):
        # Set before anything can fail, for __del__ and close().
        self._handle = None
        self._closed = True
        self._active = 0
        self._cond = threading.Condition(threading.Lock())

        self._lib = lib = _loader.lib()
        path = os.fspath(bundle_dir)
        self.bundle_dir = path if isinstance(path, str) else os.fsdecode(path)
        path = _encode(path, "bundle_dir")

        opts = lib.rk_scorer_options_default()
        for name, value in (
            ("threads", threads),
            ("max_batch", max_batch),
            ("max_length", max_length),
            ("max_sessions", max_sessions),
        ):
            if value is not None:
                setattr(opts, name, _size_option(value, name))
        if isinstance(device, str) and device.lower() in _DEVICES:
            opts.device = _DEVICES[device.lower()]
        else:
            raise ValueError(f'device must be "cpu" or "cuda", not {device!r}')
        if isinstance(device_id, bool) or not isinstance(device_id, int):
            raise TypeError(f"device_id must be an int, not {type(device_id).__name__}")
        if not 0 <= device_id < 2**31:
            raise RewardkitError(ErrorCode.INVALID_ARGUMENT, f"device_id out of range: {device_id}")
        opts.device_id = device_id

        handle = ctypes.POINTER(_ffi.rk_scorer)()
        check(lib, lib.rk_scorer_open(path, ctypes.byref(opts), ctypes.byref(handle)))
        self._handle = handle
        self._closed = False
        k = lib.rk_scorer_num_outputs(handle)
        self._output_names = tuple(
            lib.rk_scorer_output_name(handle, i).decode("utf-8", "replace") for i in range(k)
        )

    # -- lifetime ---------------------------------------------------------

    def _enter(self):
        """Count a call in flight and return the handle; raise if closed."""
        with self._cond:
            if self._closed:
                raise ScorerClosedError()
            self._active += 1
            return self._handle

    def _exit(self):
        with self._cond:
            self._active -= 1
            if self._active == 0:
                self._cond.notify_all()

    def close(self):
        """Free the model. Waits for calls in flight; a second close() does nothing."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            while self._active:
                self._cond.wait()
            handle, self._handle = self._handle, None
        self._lib.rk_scorer_free(handle)

    @property
    def closed(self):
        return self._closed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        # A safety net only: close() explicitly or use `with`.
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self):
        state = "closed" if self._closed else f"outputs={self._output_names!r}"
        return f"Scorer({getattr(self, 'bundle_dir', '?')!r}, {state})"

    # -- outputs ----------------------------------------------------------

    @property
    def output_names(self):
        """The model's output names, in order (a tuple of str)."""
        return self._output_names

    @property
    def num_outputs(self):
        return len(self._output_names)

    # -- scoring ----------------------------------------------------------

    def score(self, prompt, response):
        """The reward of one (prompt, response) pair, as a float."""
        p = _encode(prompt, "prompt")
        r = _encode(response, "response")
        out = ctypes.c_float()
        handle = self._enter()
        try:
            err = self._lib.rk_scorer_score(handle, p, r, ctypes.byref(out))
        finally:
            self._exit()
        check(self._lib, err)
        return out.value

    def compare(self, prompt, response_a, response_b):
        """P(response_a is better than response_b) = sigmoid(r_a - r_b), a float."""
        p = _encode(prompt, "prompt")
        a = _encode(response_a, "response_a")
        b = _encode(response_b, "response_b")
        out = ctypes.c_float()
        handle = self._enter()
        try:
            err = self._lib.rk_scorer_compare(handle, p, a, b, ctypes.byref(out))
        finally:
            self._exit()
        check(self._lib, err)
        return out.value

    def score_batch(self, prompts, responses, *, as_numpy=False):
        """Rewards of prompts[i] with responses[i], in order.

        Returns a list of float, or with as_numpy=True a float32 ndarray of
        shape [n]. Lengths that differ raise RewardkitError(LENGTH_MISMATCH);
        an empty batch raises RewardkitError(EMPTY_BATCH).
        """
        return self._run(self._lib.rk_scorer_score_batch, prompts, responses, None, as_numpy)

    def score_outputs(self, prompts, responses, *, as_numpy=False):
        """Every output of the model for each pair (see output_names).

        Returns n lists of num_outputs floats, or with as_numpy=True a float32
        ndarray of shape [n, num_outputs]. The bundle's normalisation is
        applied; its reward combination is not (that is score_batch).
        """
        return self._run(
            self._lib.rk_scorer_score_outputs, prompts, responses, self.num_outputs, as_numpy
        )

    def _run(self, fn, prompts, responses, k, as_numpy):
        """Call a batch function; k=None: one reward per pair, else k outputs."""
        prompts = _as_list(prompts, "prompts")
        responses = _as_list(responses, "responses")
        n = len(prompts)
        if n != len(responses):
            raise RewardkitError(
                ErrorCode.LENGTH_MISMATCH,
                f"{n} prompts but {len(responses)} responses",
            )
        if as_numpy and _np is None:
            raise ImportError("as_numpy=True needs numpy, which is not installed")
        p = (ctypes.c_char_p * n)(*(_encode(x, f"prompts[{i}]") for i, x in enumerate(prompts)))
        r = (ctypes.c_char_p * n)(*(_encode(x, f"responses[{i}]") for i, x in enumerate(responses)))
        if as_numpy:
            result = _np.empty(n if k is None else (n, k), _np.float32)
            out = result.ctypes.data_as(_float_p)
        else:
            result = out = (ctypes.c_float * (n * (k or 1)))()
        handle = self._enter()
        try:
            err = fn(handle, n, p, r, out)
        finally:
            self._exit()
        check(self._lib, err)
        if as_numpy:
            return result
        if k is None:
            return result[:]
        return [result[i * k : (i + 1) * k] for i in range(n)]


def version():
    """The loaded library's version string, such as "0.1.0"."""
    return _loader.lib().rk_version().decode("ascii")
