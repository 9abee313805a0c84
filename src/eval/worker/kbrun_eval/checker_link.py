"""The worker's end of the channel to the checker process (checker.py)."""
from .problem import flatten_outputs
from .protocol import Failure


class CheckerLink:
    """The worker's end of the channel to the checker process (checker.py).

    The checker, not this process, draws the inputs of every checked call, runs the reference
    and decides whether the outputs are right: the worker receives the inputs (written by the
    checker into buffers this process allocated, so it never holds a handle to the checker's
    memory; or by value), calls the candidate, and sends the outputs back. The checker's verdict
    comes back so that a failing run stops early; its own counts go to the supervisor directly.
    """

    def __init__(self, torch, device):
        from . import channel as kbrun_channel
        self.torch = torch
        self.device = device
        self.channel = kbrun_channel
        self.by_value = device.type != "cuda"  # CUDA: IPC until the checker says otherwise
        try:
            self.chan = kbrun_channel.Channel(4)
        except OSError as exc:
            raise Failure("runtime_error", "checker_failed", "no channel to the checker: %s" % exc)
        # The checker's first message says it can no longer be traced (checker.seal_self):
        # the worker loads candidate code only after it.
        header, _ = self._recv()
        if header.get("type") != "hello":
            raise self._unexpected(header)

    def _send(self, header, payloads=()):
        try:
            self.chan.send(header, payloads)
        except OSError as exc:
            raise Failure("runtime_error", "checker_failed", "the checker stopped answering: %s" % exc)

    def _recv(self):
        try:
            return self.chan.recv()
        except (OSError, EOFError, ValueError) as exc:
            raise Failure("runtime_error", "checker_failed", "the checker stopped answering: %s" % exc)

    def _unexpected(self, header):
        return Failure("runtime_error", "checker_failed", "unexpected answer from the checker: %r" % (
            {k: header.get(k) for k in ("type", "message")},))

    def receive_inputs(self, buffers=None):
        """The checker's next inputs. It asks for buffers (shapes and dtypes) the first time and
        writes into them; or it sends values, which go into `buffers` when given, so that the
        candidate sees the same pointers every timed call."""
        torch = self.torch
        header, payloads = self._recv()
        if header.get("type") == "specs":
            buffers = []
            for spec in header.get("inputs", []):
                if spec.get("kind") != "tensor":
                    buffers.append(spec.get("v"))
                    continue
                dtype = self.channel._dtype(torch, spec["dtype"])
                if spec.get("stride") is not None:
                    buffers.append(torch.empty_strided(spec["shape"], spec["stride"], dtype=dtype, device=self.device))
                else:
                    buffers.append(torch.empty(spec["shape"], dtype=dtype, device=self.device))
            try:
                descs, out_payloads = self.channel.describe(torch, buffers)
                self._send({"type": "buffers", "inputs": descs}, out_payloads)
            except Failure:
                raise
            except Exception as exc:  # no CUDA IPC handle here (seen in a sandbox on an H200): values instead
                self.by_value = True
                self._send({"type": "buffers", "refused": "%s: %s" % (type(exc).__name__, str(exc)[:300])})
            header, payloads = self._recv()
        if header.get("type") == "filled" and buffers is not None:
            return buffers
        if header.get("type") != "inputs":
            raise self._unexpected(header)
        self.by_value = True  # the checker sends values from now on
        try:
            values = self.channel.rebuild(torch, header["inputs"], payloads, self.device)
        except Exception as exc:
            raise Failure("runtime_error", "checker_failed", "cannot read the checker's inputs: %s" % exc)
        if buffers is None:
            return values
        for b, v in zip(buffers, values):
            if isinstance(b, torch.Tensor):
                b.copy_(v)
        return buffers

    def check(self, kind, label):
        """Inputs for one correctness check."""
        self._send({"type": "check", "kind": kind, "label": label})
        return self.receive_inputs()

    def start_timing(self, warmup, methods):
        """The buffers every warm-up and timed call uses, holding the first call's values."""
        self._send({"type": "timing", "warmup": warmup, "methods": methods})
        return self.receive_inputs()

    def outputs(self, inputs, outputs):
        """Sends the outputs (and the inputs, where the checker cannot see the worker's buffers
        itself); returns the checker's verdict, or raises its failure."""
        torch = self.torch
        flat = flatten_outputs(torch, outputs)
        try:
            descs, payloads = self.channel.describe(torch, flat, cuda_by_value=self.by_value)
        except Exception:  # no CUDA IPC handle for this output: by value, this call and the rest
            if self.by_value:
                raise
            self.by_value = True
            descs, payloads = self.channel.describe(torch, flat, cuda_by_value=True)
        header = {"type": "outputs", "outputs": descs}
        if self.by_value:
            header["inputs_after"], payloads = self.channel.describe(torch, inputs, payloads, True)
        self._send(header, payloads)
        v, _ = self._recv()
        if v.get("type") != "verdict":
            raise self._unexpected(v)
        if not v.get("ok"):
            raise Failure(v.get("status", "incorrect"), v.get("category", "checker"), v.get("message", ""))
        return v

    def done(self):
        try:
            self.chan.send({"type": "done"})
        except OSError:
            pass
