// bfloat16 <-> fp32 conversion: round-to-nearest-even, NaN kept NaN.
// Header-only so the same code serves the host and (under nvcc) the device.
//
// bfloat16 is the top 16 bits of an IEEE fp32: sign, 8 exponent bits, 7
// mantissa bits.  Widening is exact; narrowing rounds to the nearest bf16,
// ties to the one with an even last mantissa bit (what PyTorch and CUDA's
// __float2bfloat16_rn do).  Finite values beyond the bf16 range become ±inf.
#ifndef LLAMA_BF16_H
#define LLAMA_BF16_H

#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#define BF16_FN static inline __host__ __device__
#else
#define BF16_FN static inline
#endif

// fp32 -> bf16 bits, round-to-nearest-even.  A NaN stays a NaN with its sign and
// top payload bits, made quiet (a signalling NaN whose payload sits only in the
// low 16 bits would otherwise turn into infinity).
BF16_FN uint16_t bf16_from_f32(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);   // ties go to the even neighbour
    return (uint16_t)(u >> 16);
}

// bf16 bits -> fp32, exact.
BF16_FN float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

// f rounded to the nearest bf16 value, as an fp32 (mixed-precision emulation).
BF16_FN float bf16_round(float f) { return bf16_to_f32(bf16_from_f32(f)); }

#endif
