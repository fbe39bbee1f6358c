#!/usr/bin/env python3
"""Writes the golden safetensors file the C unit test reads (run once; the
output is committed under validation/golden/safetensors/):

  golden.safetensors  F32, BF16 and F16 tensors of several shapes (scalar, 1-D,
                      2-D with odd sizes, 3-D, empty), special values (±0,
                      ±inf, NaN, subnormals, extremes), one I64 tensor (a dtype
                      the reader must refuse by name), and a pair rne.src (F32)
                      / rne.bf16 (BF16, PyTorch's rounding of rne.src) that pins
                      the C fp32 -> bf16 rounding to PyTorch's.
  expected.txt        every float tensor's values as exact fp32 bit patterns.

Written with the reference implementation (Python `safetensors`) and numpy;
PyTorch supplies rne.bf16 (required: the pair is the independent reference for
the C rounding; numpy's round-to-nearest-even is checked against it).  Usage: python3 make_safetensors_golden.py [OUT_DIR]
"""
import os
import sys

import numpy as np
from safetensors import TensorSpec, serialize_file


def bf16_bits(x):
    """float32 array -> bfloat16 bit patterns (uint16), round-to-nearest-even."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    r[nan] = ((u[nan] >> 16) | 0x40).astype(np.uint16)
    return r


def f32(bits):
    return np.array(bits, dtype=np.uint32).view(np.float32)


def tensors():
    rng = np.random.default_rng(20240611)
    inf, nan = np.float32(np.inf), np.float32(np.nan)
    t = {}
    t["f32.vector"] = np.array([0.0, -0.0, 1.0, -1.5, np.pi, 1e-45, 3.4028235e38], np.float32)
    m = (np.arange(15, dtype=np.float32) * 0.37 - 2.0).reshape(5, 3)
    m[1, 1], m[2, 2], m[3, 0] = inf, -inf, nan
    t["f32.matrix"] = m
    t["f32.scalar"] = np.array(42.5, np.float32)
    t["f32.empty"] = np.zeros((0, 4), np.float32)
    t["bf16.matrix"] = ("BF16", rng.standard_normal((4, 9)).astype(np.float32) * 3)
    t["bf16.vector"] = ("BF16", np.array([1.0, -2.5, 1e-3, 65504.0, -0.0], np.float32))
    t["f16.vector"] = np.array([0.0, -0.0, 1.0, 65504.0, 6.103515625e-05, 5.960464477539063e-08,
                                inf, -inf, nan], np.float16)
    t["f16.matrix"] = (rng.standard_normal((3, 7)) * 10).astype(np.float16)
    t["f16.cube"] = (np.arange(12).reshape(2, 3, 2) * 0.125 - 0.5).astype(np.float16)
    t["i64.ids"] = np.array([1, 2, 3], np.int64)
    src = np.concatenate([
        f32([0x3F800000, 0x3F808000, 0x3F818000, 0x3F808001, 0x3F807FFF, 0xBF818000,
             0x7F7FFFFF, 0x7F7F0000, 0x7F7F8000, 0x7F7F7FFF, 0x00000001, 0x00008000,
             0x00018000, 0x000FFFFF, 0x80000000, 0x7F800000, 0xFF800000]),
        (rng.standard_normal(15) * 100).astype(np.float32)])
    t["rne.src"] = src
    t["rne.bf16"] = ("BF16", src, rne_bits_reference(src))
    return t


def rne_bits_reference(src):
    """PyTorch's float32 -> bfloat16 (the independent reference; numpy's
    round-to-nearest-even above must agree with it)."""
    import torch
    ref = torch.from_numpy(src.copy()).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    assert (ref == bf16_bits(src)).all(), "numpy RNE disagrees with torch"
    return ref


def normalise(value):
    """-> (dtype name, raw little-endian array, expected fp32 values)."""
    if isinstance(value, tuple):
        bits = value[2] if len(value) == 3 else bf16_bits(value[1])
        expected = (bits.astype(np.uint32) << 16).view(np.float32)
        return "BF16", bits.reshape(value[1].shape), expected
    a = np.array(value, order="C")
    name = {np.float32: "F32", np.float16: "F16", np.int64: "I64"}[a.dtype.type]
    return name, a, a.astype(np.float32) if name != "I64" else None


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "golden", "safetensors")
    os.makedirs(out, exist_ok=True)
    specs, keep, lines = {}, [], ["# name dtype ndim dims...; then the values as fp32 bits (hex)"]
    for name, value in tensors().items():
        dtype, raw, expected = normalise(value)
        raw = np.array(raw, dtype=raw.dtype.newbyteorder("<"), order="C")
        keep.append(raw)
        spec_dtype = "bfloat16" if dtype == "BF16" else raw.dtype.name
        specs[name] = TensorSpec(dtype=spec_dtype, shape=raw.shape, data_ptr=raw.ctypes.data,
                                 data_len=raw.nbytes)
        if expected is None:
            continue
        lines.append(" ".join([name, dtype, str(raw.ndim)] + [str(d) for d in raw.shape]))
        bits = np.ascontiguousarray(expected, np.float32).reshape(-1).view(np.uint32)
        for i in range(0, bits.size, 8):
            lines.append(" ".join("%08x" % b for b in bits[i:i + 8]))
    serialize_file(specs, os.path.join(out, "golden.safetensors"),
                   metadata={"format": "pt", "source": "make_safetensors_golden.py"})
    with open(os.path.join(out, "expected.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
