"""Device probe: can a CUDA tensor travel between two processes without pickle?

The producer shares a tensor with torch.multiprocessing.reductions.reduce_tensor and
sends the rebuild arguments as JSON (bytes as base64, classes and dtypes by name); the
consumer rebuilds it with rebuild_cuda_tensor and checks the values and the cost.
"""
import base64
import json
import subprocess
import sys
import time

import torch
from torch.multiprocessing import reductions


def encode(args):
    out = []
    for v in args:
        if isinstance(v, bytes):
            out.append({"b": base64.b64encode(v).decode()})
        elif isinstance(v, torch.dtype):
            out.append({"dtype": str(v).replace("torch.", "")})
        elif isinstance(v, type):
            out.append({"cls": v.__module__ + "." + v.__qualname__})
        elif isinstance(v, (torch.Size, tuple, list)):
            out.append({"t": list(v)})
        else:
            out.append({"v": v})
    return out


CLASSES = {"torch.Tensor": torch.Tensor, "torch.storage.UntypedStorage": torch.UntypedStorage,
           "torch.UntypedStorage": torch.UntypedStorage, "torch.storage.TypedStorage": torch.storage.TypedStorage}


def decode(items):
    out = []
    for d in items:
        if "b" in d:
            out.append(base64.b64decode(d["b"]))
        elif "dtype" in d:
            out.append(getattr(torch, d["dtype"]))
        elif "cls" in d:
            out.append(CLASSES[d["cls"]])
        elif "t" in d:
            out.append(tuple(d["t"]))
        else:
            out.append(d["v"])
    return out


if len(sys.argv) > 1 and sys.argv[1] == "producer":
    x = torch.randn(4096, 4096, device="cuda")[:, 1:]  # a view with an offset and strides
    fn, args = reductions.reduce_tensor(x)
    print(json.dumps({"fn": fn.__name__, "args": encode(args), "sum": float(x.sum())}), flush=True)
    sys.stdin.readline()
    print("producer done", flush=True)
else:
    p = subprocess.Popen([sys.executable, __file__, "producer"], stdout=subprocess.PIPE, stdin=subprocess.PIPE,
                         text=True)
    msg = json.loads(p.stdout.readline())
    t = time.perf_counter()
    y = reductions.rebuild_cuda_tensor(*decode(msg["args"]))
    torch.cuda.synchronize()
    dt = time.perf_counter() - t
    print("fn", msg["fn"], "shape", tuple(y.shape), "stride", y.stride(), "sum producer %.4f consumer %.4f" % (
        msg["sum"], float(y.sum())), "rebuild %.4f s" % dt)
    del y
    p.stdin.write("done\n")
    p.stdin.flush()
    print(p.stdout.read().strip(), "exit", p.wait())
