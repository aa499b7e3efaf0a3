"""onnxruntime sessions with explicitly chosen execution providers.

onnxruntime-gpu lists ``CUDAExecutionProvider`` as available even on a
machine without a GPU or without the CUDA libraries; asking for it there
prints provider errors and falls back. So the provider is chosen here,
once: CUDA only when a driver with a device answers *and* the CUDA provider
library loads with all its dependencies; otherwise the CPU provider alone.
Set ``UNITOCOM_DEVICE=cpu`` to force the CPU. onnxruntime is imported on
first use, so the rest of the package works without it.
"""
import contextlib
import ctypes
import functools
import io
import os

from .args import check_int

DEVICES = ("auto", "cpu", "cuda")


def onnxruntime():
    """The onnxruntime module, or a clear error if it is not installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ImportError("onnxruntime is not installed for this Python; use the project's environment "
                          "(./unitocom python ...) or pip install onnxruntime-gpu") from None
    return ort


@functools.lru_cache(maxsize=None)
def cuda_usable():
    """True when onnxruntime's CUDA provider can really run here."""
    ort = onnxruntime()
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return False
    try:
        if hasattr(ort, "preload_dlls"):     # CUDA/cuDNN from pip nvidia-* wheels, if any
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                ort.preload_dlls()
        driver = ctypes.CDLL("libcuda.so.1")
        count = ctypes.c_int(0)
        if driver.cuInit(0) != 0 or driver.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value < 1:
            return False
        ctypes.CDLL(os.path.join(os.path.dirname(ort.__file__), "capi", "libonnxruntime_providers_cuda.so"))
    except (OSError, AttributeError):
        return False
    return True


def providers(device="auto"):
    """Provider list for ``device`` ('auto', 'cpu' or 'cuda')."""
    device = os.environ.get("UNITOCOM_DEVICE", device)
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}; got {device!r}")
    if device == "cuda" and not cuda_usable():
        raise ValueError("device='cuda' was asked for, but onnxruntime's CUDA provider cannot run here "
                         "(no GPU, driver or CUDA libraries); use device='cpu' or 'auto'")
    if device == "cuda" or (device == "auto" and cuda_usable()):
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def make_session(model, intra_op_threads=1, device="auto"):
    """An ``InferenceSession`` for ``model`` (a path or ONNX bytes).

    Explicit providers, ``intra_op_threads`` threads (>= 1), one inter-op
    thread and no spin-waiting, so a block shares the CPU politely with the
    rest of the flowgraph. Create it once, in a block's ``__init__``.
    """
    intra_op_threads = check_int("threads (onnxruntime intra_op_threads)", intra_op_threads, 1, 256)
    ort = onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(intra_op_threads)
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return ort.InferenceSession(model, sess_options=options, providers=providers(device))
