#!/usr/bin/env python3
"""Where the time of one training step goes, per kernel and per category, for
llama-train (Nsight Compute CSV) and the PyTorch baseline (torch.profiler),
side by side.  Standard library only.

    python3 jobs/bench/profile_summary.py --ours ncu.csv --torch torch-profile.json \
        [--ours-step-ms MS] [--top 15] [--out-prefix runs/gpu-validate/profile]

Inputs (the format is recognised from the content):
  - ncu --csv output (--log-file): the details page, one row per kernel launch
    and metric ("Kernel Name", "Metric Name", "Metric Unit", "Metric Value"),
    or the raw page (one column per metric, a units row under the header);
    the gpu__time_duration.sum rows (or the "Duration" label) are summed.
    Units nsecond/usecond/msecond/second; values may carry thousands
    separators; ==PROF== and other non-CSV lines are skipped.
  - jobs/bench/torch_eager_gpu.py --profile output: JSON {"kernels": [{"name",
    "count", "total_us"}], "step_ms", ...}.
  - a Chrome trace (torch.profiler's export_chrome_trace): the kernel,
    gpu_memcpy and gpu_memset events.

Prints, for each input, the total kernel time of the step and the top kernels
(shortened name, category, launches, total ms, % of the step's kernel time),
then one table of categories with both columns.  --out-prefix also writes
PREFIX-ours.csv / PREFIX-torch.csv (every kernel: name, category, count,
total_ms) and PREFIX-summary.json.  Exit status 1 when no input had kernels."""
import argparse
import csv
import io
import json
import math
import re
import sys

# ---- categories: the first rule whose pattern matches the lowercased name
# (without its parameter list) wins, so the order matters: attention before
# matmul (fmha_cutlass…, cuDNN's sdpa kernels use wgmma), norms before the
# optimizer (rmsnorm_dw_reduce), copies before elementwise (copy kernels are
# elementwise kernels in PyTorch).
CATEGORIES = [
    ("communication", r"nccl"),
    ("attention", r"(?<![a-z0-9])attn_|flash|fmha|sdpa|cudnn|attention"),
    ("matmul", r"gemm|gemv|cutlass|xmma|nvjet|cublas|kernel2|splitkreduce|"
               r"^(sm\d+|ampere|hopper|volta|turing|blackwell)_"),
    ("norms", r"rmsnorm|rms_norm|layer_?norm|group_?norm"),
    ("rope", r"(?<![a-z0-9])rope|rotary"),
    ("swiglu", r"swiglu|silu|(?<![a-z0-9])glu"),
    ("cross-entropy", r"(?<![a-z0-9])ce_|argmax|cross_?entropy|softmax|nll_?loss"),
    ("optimizer", r"adam|multi_tensor_apply|foreach|lpnorm|normtwoops|clip_grad|sum_squares|"
                  r"(?<![a-z0-9])reduce_partial|(?<![a-z0-9])reduce_final|(?<![a-z0-9])scale_kernel"),
    ("embedding", r"embedding|indexselect|index_select|sum_and_scatter|compute_grad_weight|"
                  r"krn_partial|partial_segment|num_of_segments|radixsort|radix_sort|onesweep|"
                  r"unique_by_key"),
    ("conversions/copies", r"convert_kernel|f32_to_bf16|bf16_to_f32|memcpy|memset|copy|fill|"
                           r"(?<![a-z0-9])cast"),
    ("elementwise (other)", r"elementwise|reduce_kernel|(?<![a-z0-9])add_kernel|triton_|"
                            r"index_put|(?<![a-z0-9])where"),
]
CATEGORY_ORDER = [c for c, _ in CATEGORIES[1:]] + ["communication", "other"]
_RULES = [(c, re.compile(p)) for c, p in CATEGORIES]


def strip_params(name):
    """The kernel's name without a leading 'void ' and its parameter list:
    'void k<float>(float *, int)' -> 'k<float>'.  Parentheses inside the
    template arguments (PyTorch's lambdas) are kept."""
    n = name.strip()
    if n.startswith("void "):
        n = n[5:]
    if n.endswith(")"):
        depth, angle = 0, 0
        for i in range(len(n) - 1, -1, -1):
            ch = n[i]
            if ch == ")":
                depth += 1
            elif ch == "(":
                depth -= 1
                if depth == 0:
                    # the parameter list starts here unless it sits inside <…>
                    angle = n[:i].count("<") - n[:i].count(">")
                    if angle <= 0 and i > 0:
                        n = n[:i]
                    break
    return n.strip()


def category(name):
    n = strip_params(name).lower()
    for cat, rx in _RULES:
        if rx.search(n):
            return cat
    return "other"


_NAMESPACES = re.compile(r"(at::native::|at::cuda::|at::detail::|\(anonymous namespace\)::|c10::|"
                         r"std::|pytorch_flash::|cutlass::|cub::CUB_[0-9_A-Z]+::|cub::|"
                         r"binary_internal::|detail::)")
_ELEMENTWISE = re.compile(r"^(vectorized_elementwise_kernel|unrolled_elementwise_kernel|"
                          r"elementwise_kernel|reduce_kernel|index_elementwise_kernel|"
                          r"multi_tensor_apply_kernel)\b")
_FUNCTOR = re.compile(r"([A-Za-z_]\w*?(?:Functor\w*|_kernel_cuda|_kernel(?=\()|Ops(?=<)))")
_GENERIC = {"BinaryFunctor", "AUnaryFunctor", "BUnaryFunctor", "UnaryFunctor", "OpaqueFunctor",
            "TensorListMetadata"}
_DTYPE = re.compile(r"\b(float|double|BFloat16|Half|__nv_bfloat16|__half|long|int|bool)\b")


def short_name(name, width=60):
    """A readable name at most `width` characters long: our convert kernels
    by direction, PyTorch's elementwise/reduce kernels by their functor and
    first dtype, namespaces dropped, long names cut."""
    n = strip_params(name)
    m = re.match(r"convert_kernel<\s*([^,>]+?)\s*,\s*([^,>]+?)\s*>", n)
    if m:
        def kind(t):
            return "bf16" if "bfloat16" in t else "f32" if t == "float" else t
        n = f"{kind(m.group(2))}_to_{kind(m.group(1))} (convert_kernel)"
    n = _NAMESPACES.sub("", n)
    e = _ELEMENTWISE.match(n)
    if e:
        functors = [f for f in _FUNCTOR.findall(n[e.end():]) if f not in _GENERIC]
        dt = _DTYPE.search(n[e.end():])
        inner = ", ".join(x for x in (functors[0] if functors else "",
                                      dt.group(1) if dt else "") if x)
        if inner:
            n = f"{e.group(1)}<{inner}>"
    n = n.replace("__nv_bfloat16", "bf16")
    n = re.sub(r"\s+", " ", n)
    if len(n) > width:
        n = n[:width - 3] + "..."
    return n


# ---- number and unit parsing ----

def parse_number(text):
    """'1,234,567' / '1.234,5' / '12.35' / '1 234' -> float; None when not a number."""
    s = str(text).strip().strip('"').replace("\u00a0", "").replace("\u202f", "").replace(" ", "")
    s = s.replace("'", "")
    if not s or s.lower() in ("n/a", "nan", "-", "--"):
        return None
    if "," in s and "." in s:
        if s.rfind(",") > s.rfind("."):          # 1.234,5: decimal comma
            s = s.replace(".", "").replace(",", ".")
        else:                                    # 1,234.5
            s = s.replace(",", "")
    elif "," in s:
        if re.fullmatch(r"[-+]?\d{1,3}(,\d{3})+", s):
            s = s.replace(",", "")               # thousands
        else:
            s = s.replace(",", ".")              # 12,5: decimal comma
    elif s.count(".") > 1 and re.fullmatch(r"[-+]?\d{1,3}(\.\d{3})+", s):
        s = s.replace(".", "")                   # 1.234.567: thousands
    try:
        v = float(s)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


_UNIT_MS = {"nsecond": 1e-6, "ns": 1e-6, "nanosecond": 1e-6, "nanoseconds": 1e-6,
            "usecond": 1e-3, "us": 1e-3, "\u00b5s": 1e-3, "microsecond": 1e-3,
            "microseconds": 1e-3, "msecond": 1.0, "ms": 1.0, "millisecond": 1.0,
            "milliseconds": 1.0, "second": 1e3, "s": 1e3, "seconds": 1e3, "sec": 1e3}


def unit_to_ms(unit):
    """Milliseconds per unit; None for an unknown unit."""
    u = (unit or "").strip().strip('"').lower()
    return _UNIT_MS.get(u)


# ---- readers: each returns {name: [count, total_ms]} ----

class Kernels(dict):
    """name -> [launches, total ms], plus notes (warnings while reading)."""

    def __init__(self):
        super().__init__()
        self.notes = []
        self.meta = {}

    def add(self, name, ms, count=1):
        e = self.setdefault(name, [0, 0.0])
        e[0] += count
        e[1] += ms

    def total_ms(self):
        return sum(v[1] for v in self.values())

    def launches(self):
        return sum(v[0] for v in self.values())


def _find_col(header, *names):
    low = [h.strip().lower() for h in header]
    for n in names:
        if n.lower() in low:
            return low.index(n.lower())
    return None


def _duration_metric(names):
    """The duration metric among the metric names seen, best first."""
    for want in ("gpu__time_duration.sum", "gpu__time_duration.avg", "gpu__time_duration.max"):
        if want in names:
            return want
    for n in sorted(names):
        if "gpu__time_duration" in n.lower():
            return n
    for n in sorted(names):
        if n.strip().lower() == "duration":
            return n
    return None


def read_ncu_csv(text):
    k = Kernels()
    lines = text.splitlines()
    header_at = None
    for i, line in enumerate(lines):
        if '"' not in line and "," not in line:
            continue
        try:
            row = next(csv.reader([line]))
        except (csv.Error, StopIteration):
            continue
        low = [c.strip().lower() for c in row]
        if ("kernel name" in low or "function name" in low) and (
                "metric value" in low or any("gpu__time_duration" in c for c in low)):
            header_at = i
            header = row
            break
    if header_at is None:
        k.notes.append("no ncu CSV header (a row with \"Kernel Name\" and \"Metric Value\")")
        errors = [l.strip() for l in lines if l.startswith("==ERROR==")][:3]
        k.notes.extend(errors)
        return k
    name_c = _find_col(header, "Kernel Name", "Function Name")
    id_c = _find_col(header, "ID")
    pid_c = _find_col(header, "Process ID")
    body = [l for l in lines[header_at + 1:] if l.startswith('"') or (l and l[0].isdigit())]
    rows = [r for r in csv.reader(io.StringIO("\n".join(body)))]
    rows = [r for r in rows if len(r) == len(header) and r != header]
    metric_c = _find_col(header, "Metric Name")
    seen = set()
    if metric_c is not None:          # details page: one row per kernel and metric
        unit_c = _find_col(header, "Metric Unit")
        value_c = _find_col(header, "Metric Value")
        metric = _duration_metric({r[metric_c] for r in rows})
        if metric is None:
            k.notes.append("no gpu__time_duration rows in the ncu CSV")
            return k
        for r in rows:
            if r[metric_c] != metric:
                continue
            key = (r[pid_c] if pid_c is not None else "", r[id_c] if id_c is not None else None)
            if key[1] is not None:
                if key in seen:
                    continue
                seen.add(key)
            v = parse_number(r[value_c])
            scale = unit_to_ms(r[unit_c]) if unit_c is not None else None
            if scale is None:
                if unit_c is not None and r[unit_c].strip():
                    k.notes.append(f"unknown unit {r[unit_c]!r}: taken as nsecond")
                scale = 1e-6
            if v is None:
                k.notes.append(f"not a number: {r[value_c]!r} ({short_name(r[name_c])})")
                continue
            k.add(r[name_c], v * scale)
    else:                             # raw page: one column per metric, a units row first
        metric = _duration_metric(set(header))
        col = header.index(metric)
        scale = 1e-6
        if rows and (id_c is None or parse_number(rows[0][id_c]) is None):
            s = unit_to_ms(rows[0][col])
            if s is not None:
                scale = s
            rows = rows[1:]
        for r in rows:
            v = parse_number(r[col])
            if v is None:
                continue
            k.add(r[name_c], v * scale)
    # notes once each
    k.notes = list(dict.fromkeys(k.notes))
    return k


def read_torch_json(obj):
    k = Kernels()
    for r in obj.get("kernels", []):
        if "total_us" in r:
            ms = float(r["total_us"]) / 1e3
        elif "total_ms" in r:
            ms = float(r["total_ms"])
        else:
            continue
        k.add(str(r["name"]), ms, int(r.get("count", 1)))
    k.meta = {x: obj[x] for x in obj if x != "kernels"}
    if not k:
        k.notes.append("no kernels in the JSON" + (f" ({obj['error']})" if obj.get("error") else ""))
    return k


def read_chrome_trace(obj):
    k = Kernels()
    events = obj["traceEvents"] if isinstance(obj, dict) else obj
    for e in events:
        if not isinstance(e, dict) or e.get("ph") != "X":
            continue
        cat = str(e.get("cat", "")).lower()
        if cat not in ("kernel", "gpu_memcpy", "gpu_memset", "memcpy", "memset"):
            continue
        try:
            k.add(str(e.get("name", "?")), float(e.get("dur", 0)) / 1e3)
        except (TypeError, ValueError):
            continue
    if not k:
        k.notes.append("no kernel events in the trace")
    return k


def load(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError as e:
        k = Kernels()
        k.notes.append(f"cannot read {path}: {e.strerror}")
        return k
    s = text.lstrip()
    if s.startswith("{") or s.startswith("["):
        try:
            obj = json.loads(s)
        except json.JSONDecodeError as e:
            k = Kernels()
            k.notes.append(f"{path}: bad JSON ({e.msg} at line {e.lineno})")
            return k
        if isinstance(obj, dict) and "kernels" in obj:
            return read_torch_json(obj)
        return read_chrome_trace(obj)
    return read_ncu_csv(text)


# ---- output ----

def fmt_ms(ms):
    return f"{ms:.2f}" if ms < 1000 else f"{ms:.0f}"


def top_table(label, k, n):
    total = k.total_ms()
    lines = [f"top {min(n, len(k))} kernels of {label} by total time (of {fmt_ms(total)} ms of kernels):",
             f"  {'#':>2}  {'kernel':<60}  {'category':<19} {'count':>6} {'total ms':>9} {'% step':>7}"]
    ranked = sorted(k.items(), key=lambda kv: (-kv[1][1], kv[0]))
    for i, (name, (count, ms)) in enumerate(ranked[:n], 1):
        pct = 100 * ms / total if total > 0 else 0
        lines.append(f"  {i:>2}  {short_name(name):<60}  {category(name):<19} {count:>6} "
                     f"{fmt_ms(ms):>9} {pct:>6.1f}%")
    return lines


def by_category(k):
    out = {}
    for name, (count, ms) in k.items():
        c = category(name)
        e = out.setdefault(c, [0, 0.0])
        e[0] += count
        e[1] += ms
    return out


def category_table(sources):
    """sources: [(label, Kernels)] -> lines: category, then ms and % per source."""
    cats = [by_category(k) for _, k in sources]
    totals = [k.total_ms() for _, k in sources]
    head = f"{'category':<20}"
    for label, _ in sources:
        head += f" {label + ' ms':>14} {label + ' %':>9}"
    lines = [head]
    names = [c for c in CATEGORY_ORDER if any(c in cs for cs in cats)]
    for c in names:
        row = f"{c:<20}"
        for cs, t in zip(cats, totals):
            ms = cs.get(c, [0, 0.0])[1]
            row += f" {fmt_ms(ms) if c in cs else '-':>14} {(100 * ms / t if t > 0 else 0):>8.1f}%"
        lines.append(row)
    row = f"{'total (kernels)':<20}"
    for t in totals:
        row += f" {fmt_ms(t):>14} {100.0 if t > 0 else 0:>8.1f}%"
    lines.append(row)
    return lines


def describe(label, what, k, step_ms):
    total = k.total_ms()
    s = (f"{label} ({what}): {k.launches()} kernel launches, {len(k)} distinct kernels, "
         f"{fmt_ms(total)} ms of kernel time in the step")
    if step_ms and step_ms > 0:
        s += (f"; unprofiled step {fmt_ms(step_ms)} ms, so the GPU runs kernels "
              f"{100 * total / step_ms:.0f}% of it")
    return s


def write_csv(path, k):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["kernel", "category", "count", "total_ms"])
        for name, (count, ms) in sorted(k.items(), key=lambda kv: -kv[1][1]):
            w.writerow([name, category(name), count, f"{ms:.6f}"])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ours", help="ncu --csv log of llama-train's profiled step")
    p.add_argument("--torch", help="torch_eager_gpu.py --profile JSON, or a Chrome trace")
    p.add_argument("--ours-step-ms", type=float, default=0.0,
                   help="llama-train's unprofiled step time (ms), e.g. from the bench run")
    p.add_argument("--torch-step-ms", type=float, default=0.0,
                   help="the baseline's unprofiled step time (default: the JSON's step_ms)")
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--out-prefix", help="write PREFIX-ours.csv, PREFIX-torch.csv, PREFIX-summary.json")
    a = p.parse_args(argv)
    if not a.ours and not a.torch:
        p.error("give --ours and/or --torch")

    sources, summary = [], {}
    for label, what, path in (("ours", "llama-train, Nsight Compute", a.ours),
                              ("torch", "transformers eager, torch.profiler", a.torch)):
        if not path:
            continue
        k = load(path)
        for note in k.notes:
            print(f"{label}: {note}")
        if not k:
            print(f"{label}: no kernels read from {path}")
            continue
        step_ms = a.ours_step_ms if label == "ours" else (a.torch_step_ms or
                                                          float(k.meta.get("step_ms") or 0))
        if k.meta.get("compile"):
            what = what.replace("eager", "torch.compile")
        print(describe(label, what, k, step_ms))
        sources.append((label, k))
        summary[label] = {"file": path, "launches": k.launches(), "distinct": len(k),
                          "kernel_ms": k.total_ms(), "step_ms": step_ms or None,
                          "categories": {c: {"count": v[0], "ms": v[1]}
                                         for c, v in by_category(k).items()}}
        if a.out_prefix:
            write_csv(f"{a.out_prefix}-{label}.csv", k)
    if not sources:
        return 1
    for label, k in sources:
        print()
        for line in top_table(label, k, a.top):
            print(line)
    print()
    print("time per category (% of each side's kernel time in the step):")
    if any(label == "torch" for label, _ in sources):
        print("(torch's RMSNorm, RoPE and SwiGLU product are unfused: elementwise and copy kernels; "
              "ncu times kernels only: no memcpy/memset on our side)")
    for line in category_table(sources):
        print(line)
    if a.out_prefix:
        with open(f"{a.out_prefix}-summary.json", "w") as f:
            json.dump(summary, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
