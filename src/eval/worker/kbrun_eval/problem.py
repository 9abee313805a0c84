"""The problem and the models: loading a problem file, the device, seeding, drawing inputs and
building a model from the same seed the same way in the worker, the checker and the profiler.
"""
import importlib.util
import random
import sys

from .protocol import Failure

PRECISIONS = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}

# The two extra draws: other scales and means than get_inputs() gives.
EXTRA_DRAWS = (("extra inputs x*4+2", 4.0, 2.0), ("extra inputs x*0.1-0.5", 0.1, -0.5))
# --shapes varied: the leading batch size (a problem's module-level batch_size) halved and doubled.
SHAPE_DRAWS = (("batch size x0.5", 0.5), ("batch size x2", 2.0))


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def use_device(torch, name):
    """The device a process works on ("cuda": its only visible GPU), set up alike in the
    worker, the checker and the profiler: honest fp32, no TF32 shortcuts for the reference
    (or the candidate's torch calls)."""
    device = torch.device("cuda:0" if name == "cuda" else "cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    return device


def seed_all(torch, seed):
    random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def precision_dtype(torch, precision):
    """The dtype models and inputs are cast to; None for fp32 (nothing is cast)."""
    return getattr(torch, PRECISIONS[precision]) if precision != "fp32" else None


def init_inputs(torch, problem, seed):
    """get_init_inputs() drawn from `seed`: the same values for the reference and the candidate."""
    seed_all(torch, seed)
    return problem.get_init_inputs()


def build_model(torch, cls, init_inputs, seed, device, dtype):
    """cls(*init_inputs) from `seed` (weights drawn alike for Model and ModelNew), on `device`
    and cast to `dtype` where it is a module; the worker, the checker and the profiler all
    build their models here."""
    seed_all(torch, seed)
    model = cls(*init_inputs)
    if hasattr(model, "to"):
        model = model.to(device)
        if dtype is not None:
            model = model.to(dtype)
    return model


def make_inputs(torch, get_inputs, device, dtype):
    """Draws inputs directly on the device where torch allows it (fast for GB-sized inputs)."""
    if device.type == "cuda" and hasattr(torch.device, "__enter__"):
        with torch.device(device):
            values = get_inputs()
    else:
        values = get_inputs()
    return to_device(torch, values, device, dtype)


def to_device(torch, values, device, dtype):
    out = []
    for v in values:
        if isinstance(v, torch.Tensor):
            v = v.to(device)
            if dtype is not None and v.is_floating_point():
                v = v.to(dtype)
        out.append(v)
    return out


def transformed_inputs(torch, inputs, scale, shift):
    """Inputs of another scale and mean: catches kernels right only for one input range."""
    out = []
    for x in inputs:
        if isinstance(x, torch.Tensor) and x.is_floating_point():
            x = x * scale + shift
        out.append(x)
    return out


def flatten_outputs(torch, out):
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        flat = []
        for o in out:
            flat.extend(flatten_outputs(torch, o))
        return flat
    raise Failure("incorrect", "bad_output_type", "forward returned %s, not a tensor" % type(out).__name__)
