// Checks the tensor-core primitives of cuda/mma.cuh (mma.m16n8k16 bf16,
// ldmatrix .x4 plain and .trans with both address patterns, cp.async with
// zero fill, the C → A fragment reuse) against plain matrix products.  The
// same kernel runs on a GPU (the PTX) and in the emulator (its emulation of
// the fragment layouts), so agreement on both ties the emulator to the
// hardware.  Plain CUDA: the emulator's headers (validation/emu/include)
// define the launch and shared-memory hooks that stand for CUDA's syntax.
// `make` builds the emulated one as $BUILD/tests/test_mma_emu (run by
// `make test`); by hand, from the repository root:
//   emulator: g++ -x c++ -std=c++17 -O1 -Ivalidation/emu/include -Ivalidation/emu
//               -I/usr/local/cuda/include -Icuda validation/emu/test_mma_primitives.cu
//               validation/emu/cuda_emu.cc -o /tmp/test_mma && /tmp/test_mma
//   GPU:      nvcc -std=c++17 -arch=sm_80 -Icuda validation/emu/test_mma_primitives.cu
//               -o /tmp/test_mma && /tmp/test_mma
// Prints one line per check and "N passed, N failed".
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <cuda_runtime.h>

#include "mma.cuh"

#ifndef KERNEL_LAUNCH   // CUDA's syntax (as cuda/common.cuh)
#define KERNEL_LAUNCH(grid, block, smem, stream, ...) \
    __VA_ARGS__<<<(grid), (block), (smem), (stream)>>>
#endif
#ifndef DYNAMIC_SMEM
#define DYNAMIC_SMEM(name) extern __shared__ __align__(128) unsigned char name[]
#endif

typedef __nv_bfloat16 bf16;

enum { LD = 24 };   // bf16 row stride of the shared tiles: 48 bytes, 16-byte aligned rows

// out: [0] D = A·B via A plain / B plain (B stored n-major), [1] the same via
// A .trans (stored k-major) / B .trans (stored k-major), [2] F = bf16(D)·B
// with D's C fragments reused as the A operand; each 16 × 16 fp32 row-major.
// in: A (m × k), Bn (n × k), At (k × m), Bk (k × n), 16 × 16 bf16 row-major
// each; a fifth tile of rows 0-7 valid and rows 8-15 to be zero-filled.
__global__ void kernel(float *out, const bf16 *in) {
    DYNAMIC_SMEM(smem_raw);
    bf16 *sm = (bf16 *)smem_raw;
    int lane = threadIdx.x & 31;
    // five 16 × 16 tiles, rows of 16 bf16 = two 16-byte copies each
    for (int c = lane; c < 5 * 16 * 2; c += 32) {
        int tile = c / 32, row = (c / 2) % 16, half = c % 2;
        bool valid = tile < 4 || row < 8;
        cp_async_16(sm + (tile * 16 + row) * LD + half * 8, in + tile * 256 + row * 16 + half * 8,
                    valid);
    }
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    const bf16 *A = sm, *Bn = sm + 16 * LD, *At = sm + 32 * LD, *Bk = sm + 48 * LD,
               *Z = sm + 64 * LD;
    int g = lane >> 2, t = lane & 3;
    float d[2][2][4] = {};   // [variant][n-tile][4]
    uint32_t a[4], b[4];
    ldmatrix_x4(a, A + ldm_offset_a(lane, LD));
    ldmatrix_x4(b, Bn + ldm_offset_b(lane, LD));
    mma_m16n8k16_bf16(d[0][0], a, b);
    mma_m16n8k16_bf16(d[0][1], a, b + 2);
    ldmatrix_x4_trans(a, At + ldm_offset_b(lane, LD));
    ldmatrix_x4_trans(b, Bk + ldm_offset_a(lane, LD));
    mma_m16n8k16_bf16(d[1][0], a, b);
    mma_m16n8k16_bf16(d[1][1], a, b + 2);
    float f[2][4] = {};
    pack_a_from_c(a, d[0][0], d[0][1]);
    ldmatrix_x4(b, Bn + ldm_offset_b(lane, LD));
    mma_m16n8k16_bf16(f[0], a, b);
    mma_m16n8k16_bf16(f[1], a, b + 2);
    float z = 0.0f;   // the zero-filled rows, summed by every lane
    for (int r = 8; r < 16; r++)
        for (int c = 0; c < 16; c++) z += fabsf(__bfloat162float(Z[r * LD + c]));
    for (int nt = 0; nt < 2; nt++)
        for (int e = 0; e < 4; e++) {
            int row = g + 8 * (e >> 1), col = nt * 8 + 2 * t + (e & 1);
            out[0 * 256 + row * 16 + col] = d[0][nt][e];
            out[1 * 256 + row * 16 + col] = d[1][nt][e];
            out[2 * 256 + row * 16 + col] = f[nt][e];
        }
    if (lane == 0) out[3 * 256] = z;
}

static int passed, failed;

static void check(const char *what, const float *got, const float *want, int n) {
    double err = 0.0;
    for (int i = 0; i < n; i++) err = fmax(err, fabs((double)got[i] - want[i]));
    bool ok = err <= 1e-3;
    printf("%s %s (max |err| %.3g)\n", ok ? "PASS" : "FAIL", what, err);
    ok ? passed++ : failed++;
}

static float round_bf16(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }

int main() {
    bf16 hin[5 * 256];
    float a[16][16], bt[16][16];   // A (m × k) and B (k × n)
    srand(7);
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) {
            a[i][j] = round_bf16((float)(rand() % 17 - 8) / 8.0f);
            bt[i][j] = round_bf16((float)(rand() % 13 - 6) / 4.0f);
        }
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) {
            hin[0 * 256 + i * 16 + j] = __float2bfloat16_rn(a[i][j]);    // A[m][k]
            hin[1 * 256 + i * 16 + j] = __float2bfloat16_rn(bt[j][i]);   // Bn[n][k]
            hin[2 * 256 + i * 16 + j] = __float2bfloat16_rn(a[j][i]);    // At[k][m]
            hin[3 * 256 + i * 16 + j] = __float2bfloat16_rn(bt[i][j]);   // Bk[k][n]
            hin[4 * 256 + i * 16 + j] = __float2bfloat16_rn(1.0f);       // Z: rows 8-15 zeroed
        }
    float d[256], f[256], hout[4 * 256];
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) {
            float s = 0.0f;
            for (int k = 0; k < 16; k++) s += a[i][k] * bt[k][j];
            d[i * 16 + j] = s;
        }
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) {
            float s = 0.0f;
            for (int k = 0; k < 16; k++) s += round_bf16(d[i * 16 + k]) * bt[k][j];
            f[i * 16 + j] = s;
        }
    size_t smem = 5 * 16 * LD * sizeof(bf16);
    bf16 *din;
    float *dout;
    cudaMalloc(&din, sizeof hin);
    cudaMalloc(&dout, sizeof hout);
    cudaMemcpy(din, hin, sizeof hin, cudaMemcpyHostToDevice);
    KERNEL_LAUNCH(1, 32, smem, 0, kernel)(dout, din);
    cudaError_t e = cudaMemcpy(hout, dout, sizeof hout, cudaMemcpyDeviceToHost);
    if (e != cudaSuccess) {
        printf("FAIL CUDA: %s\n", cudaGetErrorString(e));
        return 1;
    }
    check("mma + ldmatrix plain (A row-major, B n-major)", hout, d, 256);
    check("mma + ldmatrix .trans (A k-major, B k-major)", hout + 256, d, 256);
    check("C fragments reused as the A operand", hout + 512, f, 256);
    float zero = 0.0f;
    check("cp.async zero fill", hout + 768, &zero, 1);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
