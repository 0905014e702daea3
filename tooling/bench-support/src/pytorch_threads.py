"""Thread settings for the benches' PyTorch references (pytorch_reference.py, pytorch_generate.py).

torch.set_num_threads sets ATen's intra-op threads only. With Debian's python3-torch the
matrix products run in OpenBLAS (libopenblas0-pthread), whose own pool keeps its default of
one thread per core: on 2 cores a "1 thread" PyTorch ran its products on 2 threads (a 2,048²
product at 127 GFLOP/s with 1 and with 2 ATen threads, 82 with OPENBLAS_NUM_THREADS=1;
2026-11-30). apply() sets both, so a label says what ran.

A setting is "N" (N ATen threads, N OpenBLAS threads) or "N/M" (N ATen threads, M OpenBLAS
threads: the default on 2 cores was 1/2).
"""

import ctypes


def _find_openblas():
    """OpenBLAS as loaded in this process (torch loads it), or None for another BLAS."""
    seen = set()
    with open("/proc/self/maps", encoding="utf8") as maps:
        for line in maps:
            fields = line.split()
            path = fields[-1] if len(fields) >= 6 else ""
            if "blas" not in path.rsplit("/", 1)[-1] or path in seen:
                continue
            seen.add(path)
            try:
                library = ctypes.CDLL(path)
            except OSError:
                continue
            if hasattr(library, "openblas_set_num_threads"):
                return library
    return None


def parse(setting):
    """"2" → (2, 2); "1/2" → (1, 2)."""
    aten, _, blas = setting.partition("/")
    aten_threads, blas_threads = int(aten), int(blas or aten)
    if aten_threads < 1 or blas_threads < 1:
        raise ValueError(f"thread setting {setting!r}: counts must be positive")
    return aten_threads, blas_threads


def apply(torch, setting):
    """Sets ATen's and OpenBLAS's threads from `setting`; returns a label naming both."""
    aten_threads, blas_threads = parse(setting)
    torch.set_num_threads(aten_threads)
    openblas = _find_openblas()
    label = f"{aten_threads} thread{'' if aten_threads == 1 else 's'}"
    if openblas is None:
        # MKL and others follow torch.set_num_threads.
        if blas_threads != aten_threads:
            raise ValueError(f"thread setting {setting!r}: this torch's BLAS is not OpenBLAS")
        return label
    openblas.openblas_set_num_threads(blas_threads)
    return label if blas_threads == aten_threads else f"{label}, OpenBLAS {blas_threads}"
