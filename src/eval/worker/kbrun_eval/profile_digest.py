"""kbrun's profiler digest: turns a profiler's CSV into a short per-kernel JSON digest.

Standard library only, and it never imports torch or the candidate: the supervisor runs
it in a process of its own after the profiled process is gone, so the candidate cannot
touch how its profile is read (docs/EVALUATION.md, "Profiling").

  ncu:      python3 kbrun_profile_digest.py --ncu-csv raw.csv [--output digest.json]
            (`ncu -i report.ncu-rep --csv --page raw`)
  rocprof:  python3 kbrun_profile_digest.py --rocprof-dir DIR
            (rocprofv3 --kernel-trace --marker-trace --pmc ... --output-format csv -d DIR)

Prints one JSON object (docs/RESULT_SCHEMA.md, "profile"). Kernels are split by the NVTX /
ROCTX range they ran in: "kbrun_reference" or "kbrun_candidate" (profiling.py pushes them).
"""

import argparse
import csv
import glob
import json
import os
import re
import sys

# Neither unit above this share of its peak: the kernel waits (latency-bound). Nsight
# Compute's own speed-of-light rule calls throughput under 60% of peak low.
BUSY_PCT = 60.0
STALL_PREFIX = "smsp__average_warps_issue_stalled_"
STALL_SUFFIX = "_per_issue_active.ratio"
# "selected" is the warp that issued (not a stall); "not_selected" is a warp that was ready
# but lost to another ready warp, i.e. there was enough parallelism: neither is a cause to fix.
IGNORED_STALLS = ("selected", "not_selected")
RANGES = ("reference", "candidate")

NCU = {
    "duration": "gpu__time_duration.sum",
    "memory_pct": "gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed",
    "dram_pct": "gpu__dram_throughput.avg.pct_of_peak_sustained_elapsed",
    "sm_pct": "sm__throughput.avg.pct_of_peak_sustained_elapsed",
    "occupancy_pct": "sm__warps_active.avg.pct_of_peak_sustained_active",
    "theoretical_occupancy_pct": "sm__maximum_warps_per_active_cycle_pct",
    "registers": "launch__registers_per_thread",
    "smem_static": "launch__shared_mem_per_block_static",
    "smem_dynamic": "launch__shared_mem_per_block_dynamic",
}

TIME_SCALE_US = {"ns": 1e-3, "nsecond": 1e-3, "us": 1.0, "usecond": 1.0, "ms": 1e3, "msecond": 1e3,
                 "s": 1e6, "second": 1e6}
# Nsight Compute writes SI prefixes (49.152 Kbyte = 49152 bytes); Kibyte etc. are binary.
BYTE_SCALE = {"byte": 1, "Kbyte": 1e3, "Mbyte": 1e6, "Gbyte": 1e9, "Kibyte": 1024, "Mibyte": 1 << 20,
              "KB": 1e3, "MB": 1e6}


def number(text):
    """'1,056' -> 1056.0; '' or 'n/a' -> None."""
    text = (text or "").strip().replace(",", "")
    try:
        return float(text)
    except ValueError:
        return None


def scaled(text, unit, table):
    value = number(text)
    if value is None:
        return None
    return value * table.get(unit.split("/")[0].strip(), 1.0)


def short_name(name):
    """'void at::vectorized_elementwise_kernel<4, ...>(at::TensorIterator&)' -> 'vectorized_elementwise_kernel';
    generic names keep their first template argument: 'Kernel2<cutlass_80_simt_sgemm_256x128_8x4_nn_align1>'."""
    text = name.strip()
    # Cut the parameter list: the first '(' at template depth 0.
    depth, cut = 0, len(text)
    for i, ch in enumerate(text):
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        elif ch == "(" and depth == 0:
            cut = i
            break
    text = text[:cut].strip()
    first_arg = ""
    if "<" in text:
        head, _, args = text.partition("<")
        depth, arg = 0, ""
        for ch in args:
            if ch == "<":
                depth += 1
            elif ch == ">":
                if depth == 0:
                    break
                depth -= 1
            elif ch == "," and depth == 0:
                break
            arg += ch
        first_arg = arg.strip().split("::")[-1]
        text = head
    base = text.split()[-1] if text.split() else text
    base = base.split("::")[-1]
    if first_arg and (re.fullmatch(r"(?i)kernel\d*|k\d*", base) or len(base) < 8) and \
            re.fullmatch(r"[A-Za-z_]\w*", first_arg):
        base = "%s<%s>" % (base, first_arg)
    return base[:80] or name[:80]


def classify(memory_pct, dram_pct, sm_pct):
    mem = max(x for x in (memory_pct, dram_pct, 0.0) if x is not None)
    sm = sm_pct if sm_pct is not None else 0.0
    if memory_pct is None and dram_pct is None and sm_pct is None:
        return None
    if max(mem, sm) < BUSY_PCT:
        return "latency-bound"
    return "memory-bound" if mem >= sm else "compute-bound"


def which_range(text):
    """The kbrun range a kernel ran in, from the NVTX/ROCTX column; the candidate's own
    range wins when both appear (a candidate cannot hide its kernels as the reference's)."""
    if "kbrun_candidate" in text:
        return "candidate"
    if "kbrun_reference" in text:
        return "reference"
    return None


def summarize(kernels):
    """Per range: count, total time, and the kernels, slowest first."""
    out = {}
    by_range = {r: [k for k in kernels if k["range"] == r] for r in RANGES}
    for r in RANGES:
        ks = sorted(by_range[r], key=lambda k: -(k["duration_us"] or 0.0))
        for k in ks:
            del k["range"]
        out[r] = {"kernel_count": len(ks), "total_us": round(sum(k["duration_us"] or 0.0 for k in ks), 3),
                  "kernels": ks}
    return out


def read_ncu_rows(path):
    with open(path, newline="", errors="replace") as f:
        lines = f.read().splitlines()
    # ncu may print ==PROF==/==WARNING== lines before the table.
    start = next((i for i, line in enumerate(lines) if line.startswith('"ID"')), None)
    if start is None:
        raise ValueError("no ncu raw table (a line starting with \"ID\") in %s" % path)
    rows = list(csv.reader(lines[start:]))
    header, units = rows[0], rows[1] if len(rows) > 1 else []
    return header, units, rows[2:]


def digest_ncu(path):
    header, units, rows = read_ncu_rows(path)
    col = {name: i for i, name in enumerate(header)}
    nvtx_cols = [i for i, name in enumerate(header) if name.startswith("thread Domain:Push/Pop_Range")]

    def cell(row, key):
        i = col.get(key)
        return row[i] if i is not None and i < len(row) else ""

    def unit(key):
        i = col.get(key)
        return units[i] if i is not None and i < len(units) else ""

    stall_cols = [(name[len(STALL_PREFIX):-len(STALL_SUFFIX)], i) for name, i in col.items()
                  if name.startswith(STALL_PREFIX) and name.endswith(STALL_SUFFIX)]
    kernels, outside, device = [], 0, None
    for row in rows:
        if not any(row):
            continue
        nvtx = " ".join(row[i] for i in nvtx_cols if i < len(row))
        where = which_range(nvtx)
        if where is None:
            outside += 1
            continue
        device = device or cell(row, "device__attribute_display_name") or None
        stalls = []
        for reason, i in stall_cols:
            v = number(row[i]) if i < len(row) else None
            if reason not in IGNORED_STALLS and v is not None and v > 0:
                stalls.append({"reason": reason, "ratio": round(v, 3)})
        stalls.sort(key=lambda s: -s["ratio"])
        smem = [scaled(cell(row, NCU[k]), unit(NCU[k]), BYTE_SCALE) for k in ("smem_static", "smem_dynamic")]

        def dims(key):
            return [int(x) for x in re.findall(r"\d+", cell(row, key))] or None
        m, d, s = (number(cell(row, NCU[k])) for k in ("memory_pct", "dram_pct", "sm_pct"))
        name = cell(row, "Kernel Name")
        kernels.append({
            "range": where,
            "name": short_name(name),
            "full_name": name[:300],
            "duration_us": scaled(cell(row, NCU["duration"]), unit(NCU["duration"]), TIME_SCALE_US),
            "memory_throughput_pct": m,
            "dram_throughput_pct": d,
            "compute_throughput_pct": s,
            "achieved_occupancy_pct": number(cell(row, NCU["occupancy_pct"])),
            "theoretical_occupancy_pct": number(cell(row, NCU["theoretical_occupancy_pct"])),
            "registers_per_thread": number(cell(row, NCU["registers"])),
            "shared_mem_per_block_bytes": int(sum(x for x in smem if x is not None)) if any(
                x is not None for x in smem) else None,
            "grid": dims("Grid Size"),
            "block": dims("Block Size"),
            "top_stalls": stalls[:3],
            "bound": classify(m, d, s),
        })
    for k in kernels:
        if k["duration_us"] is not None:
            k["duration_us"] = round(k["duration_us"], 3)
        for key in ("memory_throughput_pct", "dram_throughput_pct", "compute_throughput_pct",
                    "achieved_occupancy_pct", "theoretical_occupancy_pct"):
            if k[key] is not None:
                k[key] = round(k[key], 2)
        if k["registers_per_thread"] is not None:
            k["registers_per_thread"] = int(k["registers_per_thread"])
    digest = {"tool": "ncu", "device": device, "kernels_outside_ranges": outside}
    digest.update(summarize(kernels))
    return digest


# rocprofv3 --pmc counters kbrun asks for, and what they stand for in the digest.
ROCPROF_COUNTERS = {"MemUnitBusy": "memory_throughput_pct", "VALUBusy": "compute_throughput_pct",
                    "OccupancyPercent": "achieved_occupancy_pct"}


def read_csv_glob(directory, suffix):
    """Rows of every <prefix>_<suffix> file under directory (rocprofv3 names them after host/pid)."""
    rows = []
    for path in sorted(glob.glob(os.path.join(directory, "**", "*" + suffix), recursive=True)):
        with open(path, newline="", errors="replace") as f:
            rows.extend(csv.DictReader(f))
    return rows


def digest_rocprof(directory):
    kernels_rows = read_csv_glob(directory, "kernel_trace.csv")
    counter_rows = read_csv_glob(directory, "counter_collection.csv")
    marker_rows = read_csv_glob(directory, "marker_api_trace.csv")
    if not kernels_rows and not counter_rows:
        raise ValueError("no kernel_trace.csv or counter_collection.csv under %s" % directory)
    # ROCTX ranges (roctxRangePush/Pop: torch.cuda.nvtx on ROCm) as time intervals.
    ranges = []
    for m in marker_rows:
        where = which_range(m.get("Function", "") + " " + m.get("Message", ""))
        start, end = number(m.get("Start_Timestamp")), number(m.get("End_Timestamp"))
        if where and start is not None and end is not None:
            ranges.append((start, end, where))
    counters = {}
    for c in counter_rows:
        key = c.get("Dispatch_Id") or c.get("Correlation_Id")
        entry = counters.setdefault(key, {"row": c, "values": {}})
        entry["values"][c.get("Counter_Name", "")] = number(c.get("Counter_Value"))
    # Without a kernel trace the counter rows describe the dispatches themselves.
    dispatches = kernels_rows or [e["row"] for e in counters.values()]
    kernels, outside = [], 0
    for k in dispatches:
        start, end = number(k.get("Start_Timestamp")), number(k.get("End_Timestamp"))
        where = None
        for r0, r1, name in ranges:
            if start is not None and r0 <= start and (end is None or end <= r1):
                where = "candidate" if name == "candidate" or where == "candidate" else name
        if where is None:
            outside += 1
            continue
        values = counters.get(k.get("Dispatch_Id") or k.get("Correlation_Id"), {}).get("values", {})
        wg = [number(k.get("Workgroup_Size_" + a)) for a in "XYZ"]
        grid = [number(k.get("Grid_Size_" + a)) for a in "XYZ"]
        if None in wg and number(k.get("Workgroup_Size")) is not None:
            wg = [number(k.get("Workgroup_Size")), 1, 1]
            grid = [number(k.get("Grid_Size")), 1, 1]
        # rocprofv3's grid counts work-items; the digest counts blocks (workgroups), like ncu's.
        blocks = [int(g // w) if g and w else None for g, w in zip(grid, wg)] if None not in grid + wg else None
        m, s = values.get("MemUnitBusy"), values.get("VALUBusy")
        lds = number(k.get("LDS_Block_Size"))
        kernels.append({
            "range": where,
            "name": short_name(k.get("Kernel_Name", "")),
            "full_name": k.get("Kernel_Name", "")[:300],
            "duration_us": round((end - start) / 1e3, 3) if start is not None and end is not None else None,
            "memory_throughput_pct": m,
            "dram_throughput_pct": None,
            "compute_throughput_pct": s,
            "achieved_occupancy_pct": values.get("OccupancyPercent"),
            "theoretical_occupancy_pct": None,
            "registers_per_thread": (int(number(k.get("VGPR_Count")))
                                     if number(k.get("VGPR_Count")) is not None else None),
            "shared_mem_per_block_bytes": int(lds) if lds is not None else None,
            "grid": blocks,
            "block": [int(w) for w in wg] if None not in wg else None,
            "top_stalls": [],
            "bound": classify(m, None, s),
        })
    digest = {"tool": "rocprofv3", "device": None, "kernels_outside_ranges": outside}
    digest.update(summarize(kernels))
    return digest


def main():
    parser = argparse.ArgumentParser()
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--ncu-csv")
    group.add_argument("--rocprof-dir")
    parser.add_argument("--output", help="write the JSON here (default: stdout)")
    args = parser.parse_args()
    rc = 0
    try:
        digest = digest_ncu(args.ncu_csv) if args.ncu_csv else digest_rocprof(args.rocprof_dir)
    except (OSError, ValueError, IndexError, KeyError) as exc:
        digest, rc = {"error": "%s: %s" % (type(exc).__name__, exc)}, 1
    text = json.dumps(digest)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    else:
        print(text)
    return rc


if __name__ == "__main__":
    sys.exit(main())
