"""The worker-to-checker channel: framed messages over a Unix socket (fd 4), tensors by value.

No pickle crosses it: the checker must not run code the candidate's process chose.
A message is an 8-byte length, a JSON header, then raw payloads whose sizes the header
lists. A CPU tensor travels as its bytes; a CUDA tensor as a CUDA IPC handle
(torch.multiprocessing.reductions), so GB-sized outputs are not copied, with classes and
dtypes named and looked up in a fixed table.
"""

import base64
import json
import socket
import struct

MAX_HEADER = 16 << 20


class Channel:
    def __init__(self, fd):
        self.sock = socket.socket(fileno=fd)

    def send(self, header, payloads=()):
        header = dict(header)
        header["payload_sizes"] = [len(p) for p in payloads]
        data = json.dumps(header).encode()
        self.sock.sendall(struct.pack("<Q", len(data)) + data)
        for p in payloads:
            self.sock.sendall(p)

    def recv(self):
        (n,) = struct.unpack("<Q", self._exact(8))
        if n > MAX_HEADER:
            raise ValueError("channel header of %d bytes" % n)
        header = json.loads(bytes(self._exact(n)))
        payloads = [self._exact(int(s)) for s in header.get("payload_sizes", [])]
        return header, payloads

    def request(self, header, payloads=()):
        self.send(header, payloads)
        return self.recv()

    def _exact(self, n):
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = self.sock.recv_into(view[got:])
            if k == 0:
                raise EOFError("the other side closed the channel")
            got += k
        return buf


def _encode_args(torch, args):
    out = []
    for v in args:
        if isinstance(v, bytes):
            out.append({"b": base64.b64encode(v).decode()})
        elif isinstance(v, torch.dtype):
            out.append({"dtype": str(v).replace("torch.", "")})
        elif isinstance(v, type):
            out.append({"cls": v.__module__ + "." + v.__qualname__})
        elif isinstance(v, (torch.Size, tuple, list)):
            out.append({"t": [int(x) for x in v]})
        elif v is None or isinstance(v, (bool, int, float, str)):
            out.append({"v": v})
        else:
            raise TypeError("cannot send %s" % type(v).__name__)
    return out


def _dtype(torch, name):
    d = getattr(torch, str(name), None)
    if not isinstance(d, torch.dtype):
        raise ValueError("not a dtype: %r" % name)
    return d


def _decode_args(torch, items):
    classes = {"torch.Tensor": torch.Tensor, "torch.storage.UntypedStorage": torch.UntypedStorage,
               "torch.UntypedStorage": torch.UntypedStorage, "torch.storage.TypedStorage": torch.storage.TypedStorage,
               "torch.nn.parameter.Parameter": torch.Tensor}
    out = []
    for d in items:
        if "b" in d:
            out.append(base64.b64decode(d["b"]))
        elif "dtype" in d:
            out.append(_dtype(torch, d["dtype"]))
        elif "cls" in d:
            if d["cls"] not in classes:
                raise ValueError("unexpected class %r" % d["cls"])
            out.append(classes[d["cls"]])
        elif "t" in d:
            out.append(tuple(int(x) for x in d["t"]))
        else:
            v = d.get("v")
            if not (v is None or isinstance(v, (bool, int, float, str))):
                raise ValueError("unexpected value")
            out.append(v)
    return out


def describe(torch, values, payloads=None, cuda_by_value=False):
    """(descriptions, payloads) for a list of forward arguments or outputs; tensors sent by
    value have their bytes appended to `payloads` (a new list when None). CUDA tensors go
    as IPC handles, or by value (copied to the host) where IPC does not work."""
    from torch.multiprocessing import reductions
    descs = []
    payloads = [] if payloads is None else payloads
    for v in values:
        if isinstance(v, torch.Tensor):
            t = v.detach()
            if t.is_cuda and cuda_by_value:
                t = t.contiguous().cpu()
                payloads.append(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
                descs.append({"kind": "cuda_bytes", "dtype": str(t.dtype).replace("torch.", ""),
                              "shape": list(t.shape), "payload": len(payloads) - 1})
            elif t.is_cuda:
                _, args = reductions.reduce_tensor(t)
                descs.append({"kind": "cuda", "args": _encode_args(torch, args)})
            else:
                t = t.contiguous()
                payloads.append(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
                descs.append({"kind": "cpu", "dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape),
                              "payload": len(payloads) - 1})
        elif v is None or isinstance(v, (bool, int, float)):
            descs.append({"kind": "value", "v": v})
        else:
            descs.append({"kind": "other", "type": type(v).__name__})
    return descs, payloads


def rebuild(torch, descs, payloads, device=None):
    from torch.multiprocessing import reductions
    out = []
    for d in descs:
        kind = d.get("kind")
        if kind == "cuda":
            out.append(reductions.rebuild_cuda_tensor(*_decode_args(torch, d["args"])))
        elif kind in ("cpu", "cuda_bytes"):
            dtype = _dtype(torch, d["dtype"])
            shape = [int(x) for x in d["shape"]]
            buf = payloads[int(d["payload"])]
            if len(buf) == 0:
                t = torch.empty(shape, dtype=dtype)
            else:
                t = torch.frombuffer(buf, dtype=torch.uint8).view(dtype).reshape(shape)
            out.append(t.to(device) if kind == "cuda_bytes" and device is not None else t)
        elif kind == "value":
            v = d.get("v")
            if not (v is None or isinstance(v, (bool, int, float))):
                raise ValueError("unexpected value")
            out.append(v)
        else:
            out.append(None)
    return out
