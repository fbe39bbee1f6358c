#!/usr/bin/env python3
"""Tests of jobs/bench/profile_summary.py on synthetic inputs (no GPU, standard
library only):  python3 jobs/bench/test_profile_summary.py [-v]"""
import contextlib
import io
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import profile_summary as ps  # noqa: E402

HEADER = ('"ID","Process ID","Process Name","Host Name","Kernel Name","Context","Stream",'
          '"Block Size","Grid Size","Device","CC","Section Name","Metric Name","Metric Unit",'
          '"Metric Value"')


def row(i, name, value, unit="nsecond", metric="gpu__time_duration.sum", pid="4242"):
    return (f'"{i}","{pid}","llama-train","127.0.0.1","{name}","1","7","(256, 1, 1)",'
            f'"(8192, 1, 1)","0","9.0","Command line profiler metrics","{metric}","{unit}","{value}"')


GEMM = ("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x256x64_warpgroupsize2x1x1_"
        "execute_segment_k_off_kernel__5x_cublas")
CUDNN_F = "cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_f16_knob_7_64x128x128_4x1x1_kernel0_0"
CUDNN_B = "cudnn_generated_fort_native_sdpa_sm90_flash_bprop_wgmma_f16_knob_3_64x128x128_4x2x1_kernel0_0"
NCU_CSV = "\n".join([
    "==PROF== Connected to process 4242 (/work/build/llama-train)",
    '==PROF== Profiling "rmsnorm_forward_kernel": 0%....50%....100% - 1 pass',
    "==WARNING== Note: Running with uncontrolled GPU clocks",
    HEADER,
    row(0, "void rmsnorm_forward_kernel<__nv_bfloat16>(T1 *, float *, const T1 *, const float *, int, float)", "12,345"),
    row(1, GEMM, "1,234.5", "usecond"),
    row(2, GEMM, "1.5", "msecond"),
    row(3, "void rope_kernel<__nv_bfloat16>(T1 *, int, int, int, int, float)", "8.25", "usecond"),
    row(4, CUDNN_F, "2,000,000"),
    '==PROF== Profiling "x": 0%....50%....100% - 1 pass',
    row(5, CUDNN_B, "4.0", "msecond"),
    row(6, "void attn_fwd_wmma<64>(__nv_bfloat16 *, float *, const __nv_bfloat16 *, int, int, int, float)", "100", "usecond"),
    row(7, "void convert_kernel<__nv_bfloat16, float>(T1 *, const T2 *, unsigned long)", "50", "usecond"),
    row(8, "void convert_kernel<float, __nv_bfloat16>(T1 *, const T2 *, unsigned long)", "25", "usecond"),
    row(9, "void adamw_kernel<8>(float *, float *, float *, const float *, unsigned long, AdamwStep)", "3", "msecond"),
    row(10, "reduce_partial_kernel(double *, const float *, unsigned long, bool)", "20", "usecond"),
    row(11, "void rmsnorm_dw_reduce_kernel<__nv_bfloat16>(float *, const float *, int, int)", "30", "usecond"),
    row(12, "void ce_stats_kernel<__nv_bfloat16>(float *, const T1 *, int, int)", "400", "usecond"),
    row(13, "void swiglu_backward_kernel<__nv_bfloat16, 8>(T1 *, const T1 *, const T1 *, unsigned long)", "n/a", "usecond"),
    row(14, "void add_kernel<__nv_bfloat16, 8>(T1 *, const T1 *, const T1 *, unsigned long)", "60", "usecond"),
    row(15, "void embedding_backward_kernel<__nv_bfloat16>(float *, const int *, const T1 *, int, int)", "70", "usecond"),
    row(16, "ncclDevKernel_AllReduce_Sum_f32_RING_LL(ncclDevKernelArgsStorage<4096UL>)", "10", "usecond"),
    row(17, "void scale_kernel<8>(float *, float, unsigned long)", "5", "usecond"),
    # another metric of a kernel already counted: ignored
    row(1, GEMM, "99", "msecond", metric="sm__throughput.avg.pct_of_peak_sustained_elapsed"),
    # the same kernel and metric twice (a repeated ID): counted once
    row(3, "void rope_kernel<__nv_bfloat16>(T1 *, int, int, int, int, float)", "8.25", "usecond"),
    "==PROF== Disconnected from process 4242",
    "",
])

TORCH_JSON = {
    "source": "torch", "step_ms": 40.0, "profiled_step_ms": 45.0,
    "kernels": [
        {"name": "void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<128, 128, 64, 4, false, "
                 "false, cutlass::bfloat16_t, Flash_kernel_traits<128, 128, 64, 4, cutlass::bfloat16_t> >, "
                 "false, true, false, false, true, true, false, false>(FLASH_NAMESPACE::Flash_fwd_params)",
         "count": 22, "total_us": 5000.0},
        {"name": "fmha_cutlassB_bf16_aligned_64x64_k128_sm80(PyTorchMemEffAttention::AttentionBackwardKernel"
                 "<cutlass::arch::Sm80, cutlass::bfloat16_t, true, false, true, 64, 64, 128, false>::Params)",
         "count": 22, "total_us": 9000.0},
        {"name": "nvjet_hsh_256x128_64x4_2x1_v_bz_coopB_TNT", "count": 150, "total_us": 20000.0},
        {"name": "void cutlass::Kernel2<cutlass_80_wmma_tensorop_bf16_s161616gemm_bf16_16x16_128x2_tn_align8>"
                 "(cutlass_80_wmma_tensorop_bf16_s161616gemm_bf16_16x16_128x2_tn_align8::Params)",
         "count": 3, "total_us": 300.0},
        {"name": "void at::native::vectorized_elementwise_kernel<4, at::native::BinaryFunctor<float, float, "
                 "float, at::native::binary_internal::MulFunctor<float> >, std::array<char*, 3ul> >(int, "
                 "at::native::BinaryFunctor<float, float, float, at::native::binary_internal::MulFunctor<float> >, "
                 "std::array<char*, 3ul>)", "count": 300, "total_us": 3000.0},
        {"name": "void at::native::vectorized_elementwise_kernel<4, at::native::(anonymous namespace)::silu_kernel("
                 "at::TensorIteratorBase&)::{lambda()#1}::operator()() const::{lambda()#2}::operator()() const::"
                 "{lambda(c10::BFloat16)#1}, std::array<char*, 2ul> >(int, at::native::(anonymous namespace)::"
                 "silu_kernel(at::TensorIteratorBase&)::{lambda()#1}::operator()() const::{lambda()#2}::operator()"
                 "() const::{lambda(c10::BFloat16)#1}, std::array<char*, 2ul>)", "count": 22, "total_us": 800.0},
        {"name": "void at::native::unrolled_elementwise_kernel<at::native::direct_copy_kernel_cuda(at::"
                 "TensorIteratorBase&)::{lambda()#3}::operator()() const::{lambda()#7}::operator()() const::"
                 "{lambda(float)#1}, std::array<char*, 2ul>, 4, TrivialOffsetCalculator<1, unsigned int>, "
                 "TrivialOffsetCalculator<1, unsigned int>, at::native::memory::LoadWithCast<1>, "
                 "at::native::memory::StoreWithCast<1> >(int, ...)", "count": 200, "total_us": 2500.0},
        {"name": "void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float, at::native::MeanOps<float, "
                 "float, float, float>, unsigned int, float, 4, 4> >(at::native::ReduceOp<float, at::native::"
                 "MeanOps<float, float, float, float>, unsigned int, float, 4, 4>)", "count": 90, "total_us": 700.0},
        {"name": "void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float, at::native::NormTwoOps<float, "
                 "float, float>, unsigned int, float, 4, 4> >(at::native::ReduceOp<float, at::native::NormTwoOps<"
                 "float, float, float>, unsigned int, float, 4, 4>)", "count": 1, "total_us": 5.0},
        {"name": "void at::native::(anonymous namespace)::multi_tensor_apply_kernel<at::native::(anonymous "
                 "namespace)::TensorListMetadata<4>, at::native::(anonymous namespace)::FusedAdamMathFunctor<float, "
                 "4, (at::native::ADAM_MODE)1, false>, float*, double, double, double, double, double, bool, float*, "
                 "float*>(...)", "count": 12, "total_us": 2000.0},
        {"name": "void at::native::(anonymous namespace)::cunn_SoftMaxForward<4, float, float, float, at::native::"
                 "(anonymous namespace)::LogSoftMaxForwardEpilogue>(float*, float const*, int)",
         "count": 1, "total_us": 900.0},
        {"name": "void at::native::(anonymous namespace)::nll_loss_forward_reduce_cuda_kernel_2d<float, long>("
                 "float*, float*, float const*, long const*, float const*, bool, long, long, long, long)",
         "count": 1, "total_us": 50.0},
        {"name": "void at::native::(anonymous namespace)::indexSelectLargeIndex<float, long, unsigned int, 2, 2, "
                 "-2, true>(...)", "count": 1, "total_us": 30.0},
        {"name": "void at::native::(anonymous namespace)::CatArrayBatchedCopy<at::native::(anonymous namespace)::"
                 "OpaqueType<2u>, unsigned int, 4, 64, 64>(...)", "count": 44, "total_us": 400.0},
        {"name": "Memset (Device)", "count": 5, "total_us": 10.0},
        {"name": "Memcpy DtoD (Device -> Device)", "count": 2, "total_us": 20.0},
        {"name": "void cub::CUB_200700_900_NS::DeviceRadixSortOnesweepKernel<...>(...)", "count": 4,
         "total_us": 40.0},
        {"name": "some_unknown_kernel", "count": 1, "total_us": 1.0},
    ],
}


def run_main(argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = ps.main(argv)
    return rc, out.getvalue()


class Numbers(unittest.TestCase):
    def test_parse_number(self):
        self.assertEqual(ps.parse_number("12,345"), 12345.0)
        self.assertEqual(ps.parse_number("1,234.5"), 1234.5)
        self.assertEqual(ps.parse_number("1.234,5"), 1234.5)
        self.assertEqual(ps.parse_number("12,5"), 12.5)
        self.assertEqual(ps.parse_number("1.234.567"), 1234567.0)
        self.assertEqual(ps.parse_number(" 8.25 "), 8.25)
        self.assertEqual(ps.parse_number('"2,000,000"'), 2e6)
        self.assertEqual(ps.parse_number("1\u00a0234"), 1234.0)
        self.assertEqual(ps.parse_number("1e3"), 1000.0)
        self.assertIsNone(ps.parse_number("n/a"))
        self.assertIsNone(ps.parse_number(""))
        self.assertIsNone(ps.parse_number("abc"))

    def test_units(self):
        self.assertEqual(ps.unit_to_ms("nsecond"), 1e-6)
        self.assertEqual(ps.unit_to_ms("usecond"), 1e-3)
        self.assertEqual(ps.unit_to_ms("msecond"), 1.0)
        self.assertEqual(ps.unit_to_ms("second"), 1e3)
        self.assertIsNone(ps.unit_to_ms("cycle"))


class Names(unittest.TestCase):
    def test_strip_params(self):
        self.assertEqual(ps.strip_params("void k<float>(float *, int)"), "k<float>")
        self.assertEqual(ps.strip_params("kernel0_0"), "kernel0_0")
        self.assertEqual(ps.strip_params("Memcpy DtoD (Device -> Device)"), "Memcpy DtoD")
        name = TORCH_JSON["kernels"][5]["name"]
        s = ps.strip_params(name)
        self.assertTrue(s.startswith("at::native::vectorized_elementwise_kernel<4, "), s)
        self.assertTrue(s.endswith("std::array<char*, 2ul> >"), s)

    def test_categories_ours(self):
        cases = {
            "void rmsnorm_forward_kernel<__nv_bfloat16>(T1 *, float *, const T1 *, const float *, int, float)": "norms",
            "void rmsnorm_backward_kernel<float>(float *)": "norms",
            "void rmsnorm_dw_reduce_kernel<__nv_bfloat16>(float *, const float *, int, int)": "norms",
            "void rope_kernel<__nv_bfloat16>(T1 *, int)": "rope",
            "void swiglu_forward_kernel<__nv_bfloat16, 8>(T1 *)": "swiglu",
            "void swiglu_backward_kernel<float, 1>(T1 *)": "swiglu",
            "void embedding_forward_kernel<__nv_bfloat16>(T1 *)": "embedding",
            "void embedding_backward_kernel<float>(float *)": "embedding",
            "void ce_row_max_kernel<__nv_bfloat16>(float *)": "cross-entropy",
            "void ce_stats_kernel<float>(float *)": "cross-entropy",
            "void ce_loss_grad_kernel<__nv_bfloat16>(float *)": "cross-entropy",
            "void argmax_kernel<__nv_bfloat16>(int *)": "cross-entropy",
            "void adamw_kernel<8>(float *)": "optimizer",
            "void scale_kernel<1>(float *, float, unsigned long)": "optimizer",
            "reduce_partial_kernel(double *, const float *, unsigned long, bool)": "optimizer",
            "reduce_final_kernel(double *, const double *, int)": "optimizer",
            "void convert_kernel<__nv_bfloat16, float>(T1 *, const T2 *, unsigned long)": "conversions/copies",
            "void add_kernel<__nv_bfloat16, 8>(T1 *)": "elementwise (other)",
            "void attn_fwd_simt<float>(T1 *)": "attention",
            "void attn_bwd_dot<__nv_bfloat16>(float *)": "attention",
            "void attn_fwd_wmma<128>(__nv_bfloat16 *)": "attention",
            "void attn_bwd_wmma<64>(__nv_bfloat16 *)": "attention",
            "void attn_dq_store<__nv_bfloat16>(T1 *)": "attention",
            "void attn_bwd_dq_simt<float>(T1 *)": "attention",
            "void attn_bwd_dkv_simt<float>(T1 *)": "attention",
            CUDNN_F: "attention",
            CUDNN_B: "attention",
            GEMM: "matmul",
            "nvjet_hsh_256x128_64x4_2x1_v_bz_coopB_NNT": "matmul",
            "cutlass3x_sm90_tensorop_s64x128x16gemm_bf16_bf16_f32_bf16_bf16_128x256x64_1x2x1_0_tnn_align8": "matmul",
            "void cublasLt::splitKreduce_kernel<32, 16, int, float, __nv_bfloat16>(cublasLt::cublasSplitKParams<float>)": "matmul",
            "ncclDevKernel_AllReduce_Sum_f32_RING_LL(ncclDevKernelArgsStorage<4096UL>)": "communication",
            "probe_kernel(int *)": "other",
        }
        for name, want in cases.items():
            self.assertEqual(ps.category(name), want, name)

    def test_categories_torch(self):
        want = ["attention", "attention", "matmul", "matmul", "elementwise (other)", "swiglu",
                "conversions/copies", "elementwise (other)", "optimizer", "optimizer", "cross-entropy",
                "cross-entropy", "embedding", "conversions/copies", "conversions/copies",
                "conversions/copies", "embedding", "other"]
        got = [ps.category(k["name"]) for k in TORCH_JSON["kernels"]]
        self.assertEqual(got, want)

    def test_short_names(self):
        self.assertEqual(ps.short_name("void convert_kernel<__nv_bfloat16, float>(T1 *, const T2 *, unsigned long)"),
                         "f32_to_bf16 (convert_kernel)")
        self.assertEqual(ps.short_name("void convert_kernel<float, __nv_bfloat16>(T1 *, const T2 *, unsigned long)"),
                         "bf16_to_f32 (convert_kernel)")
        self.assertEqual(ps.short_name("void rope_kernel<__nv_bfloat16>(T1 *, int)"), "rope_kernel<bf16>")
        k = TORCH_JSON["kernels"]
        self.assertEqual(ps.short_name(k[4]["name"]), "vectorized_elementwise_kernel<MulFunctor, float>")
        self.assertEqual(ps.short_name(k[5]["name"]), "vectorized_elementwise_kernel<silu_kernel, BFloat16>")
        self.assertEqual(ps.short_name(k[6]["name"]), "unrolled_elementwise_kernel<direct_copy_kernel_cuda, float>")
        self.assertEqual(ps.short_name(k[7]["name"]), "reduce_kernel<MeanOps, float>")
        self.assertEqual(ps.short_name(k[9]["name"]), "multi_tensor_apply_kernel<FusedAdamMathFunctor, float>")
        for x in k:
            self.assertLessEqual(len(ps.short_name(x["name"])), 60)
        self.assertTrue(ps.short_name(GEMM).endswith("..."))


class Readers(unittest.TestCase):
    def test_ncu_details(self):
        k = ps.read_ncu_csv(NCU_CSV)
        gemm = k[GEMM]
        self.assertEqual(gemm[0], 2)
        self.assertAlmostEqual(gemm[1], 1.2345 + 1.5)
        rope = k["void rope_kernel<__nv_bfloat16>(T1 *, int, int, int, int, float)"]
        self.assertEqual(rope[0], 1)                     # the repeated ID counted once
        self.assertAlmostEqual(rope[1], 0.00825)
        self.assertAlmostEqual(k[CUDNN_F][1], 2.0)
        self.assertAlmostEqual(k[CUDNN_B][1], 4.0)
        self.assertEqual(k.launches(), 17)               # 18 kernels, one n/a
        self.assertTrue(any("not a number" in n for n in k.notes))
        total = (0.012345 + 2.7345 + 0.00825 + 2 + 4 + 0.1 + 0.05 + 0.025 + 3 + 0.02 + 0.03 + 0.4
                 + 0.06 + 0.07 + 0.01 + 0.005)
        self.assertAlmostEqual(k.total_ms(), total)
        cats = ps.by_category(k)
        self.assertAlmostEqual(cats["attention"][1], 6.1)
        self.assertAlmostEqual(cats["matmul"][1], 2.7345)
        self.assertAlmostEqual(cats["norms"][1], 0.042345)
        self.assertAlmostEqual(cats["optimizer"][1], 3.025)
        self.assertAlmostEqual(cats["conversions/copies"][1], 0.075)

    def test_ncu_raw_page(self):
        text = "\n".join([
            "==PROF== Connected to process 1",
            '"ID","Process ID","Kernel Name","gpu__time_duration.sum"',
            '"","","","usecond"',
            '"0","1","void rope_kernel<float>(float *)","1,500.5"',
            '"1","1","void rope_kernel<float>(float *)","500"',
            '"2","1","nvjet_x","2"',
        ])
        k = ps.read_ncu_csv(text)
        self.assertEqual(k["void rope_kernel<float>(float *)"][0], 2)
        self.assertAlmostEqual(k["void rope_kernel<float>(float *)"][1], 2.0005)
        self.assertAlmostEqual(k["nvjet_x"][1], 0.002)

    def test_ncu_duration_label(self):
        text = HEADER + "\n" + row(0, "nvjet_y", "3", "usecond", metric="Duration")
        k = ps.read_ncu_csv(text)
        self.assertAlmostEqual(k["nvjet_y"][1], 0.003)

    def test_ncu_error_log(self):
        text = ("==PROF== Connected to process 9\n==ERROR== ERR_NVGPUCTRPERM - The user does not have "
                "permission to access NVIDIA GPU Performance Counters\n")
        k = ps.read_ncu_csv(text)
        self.assertFalse(k)
        self.assertTrue(any("ERR_NVGPUCTRPERM" in n for n in k.notes))

    def test_torch_json_and_trace(self):
        k = ps.read_torch_json(TORCH_JSON)
        self.assertEqual(len(k), len(TORCH_JSON["kernels"]))
        self.assertAlmostEqual(k.total_ms(), sum(x["total_us"] for x in TORCH_JSON["kernels"]) / 1e3)
        self.assertEqual(k.meta["step_ms"], 40.0)
        trace = {"traceEvents": [
            {"ph": "X", "cat": "kernel", "name": "nvjet_a", "dur": 10.5, "ts": 1},
            {"ph": "X", "cat": "kernel", "name": "nvjet_a", "dur": 9.5, "ts": 20},
            {"ph": "X", "cat": "gpu_memset", "name": "Memset (Device)", "dur": 1.0, "ts": 30},
            {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "dur": 5.0, "ts": 0},
            {"ph": "f", "cat": "ac2g", "name": "ac2g", "ts": 0},
        ]}
        t = ps.read_chrome_trace(trace)
        self.assertEqual(t["nvjet_a"], [2, 0.02])
        self.assertEqual(t["Memset (Device)"][0], 1)
        self.assertNotIn("cudaLaunchKernel", t)


class Main(unittest.TestCase):
    def test_end_to_end(self):
        with tempfile.TemporaryDirectory() as d:
            ours, torch = os.path.join(d, "ncu.csv"), os.path.join(d, "torch.json")
            with open(ours, "w") as f:
                f.write(NCU_CSV)
            with open(torch, "w") as f:
                json.dump(TORCH_JSON, f)
            rc, out = run_main(["--ours", ours, "--torch", torch, "--ours-step-ms", "20",
                                "--out-prefix", os.path.join(d, "p")])
            self.assertEqual(rc, 0, out)
            self.assertIn("ours (llama-train, Nsight Compute): 17 kernel launches", out)
            self.assertIn("top 15 kernels of ours", out)
            self.assertIn("top 15 kernels of torch", out)
            self.assertIn("category", out)
            self.assertIn("total (kernels)", out)
            lines = [l for l in out.splitlines() if l.startswith("attention ")]
            self.assertEqual(len(lines), 1, out)
            self.assertIn("6.10", lines[0])
            self.assertIn("14.00", lines[0])
            self.assertTrue(os.path.exists(os.path.join(d, "p-ours.csv")))
            with open(os.path.join(d, "p-summary.json")) as f:
                s = json.load(f)
            self.assertEqual(s["torch"]["step_ms"], 40.0)
            self.assertAlmostEqual(s["ours"]["categories"]["attention"]["ms"], 6.1)
            if os.environ.get("SHOW"):
                sys.__stdout__.write(out)

    def test_missing_and_empty_inputs(self):
        with tempfile.TemporaryDirectory() as d:
            empty = os.path.join(d, "empty.csv")
            open(empty, "w").close()
            rc, out = run_main(["--ours", empty, "--torch", os.path.join(d, "missing.json")])
            self.assertEqual(rc, 1)
            self.assertIn("ours: no kernels read", out)
            self.assertIn("torch: cannot read", out)
            # one side only still prints its tables
            t = os.path.join(d, "t.json")
            with open(t, "w") as f:
                json.dump(TORCH_JSON, f)
            rc, out = run_main(["--ours", empty, "--torch", t])
            self.assertEqual(rc, 0)
            self.assertIn("top 15 kernels of torch", out)
            self.assertIn("torch ms", out)
            self.assertNotIn("ours ms", out)


if __name__ == "__main__":
    unittest.main()
