"""One loader for every form a model reaches the toolchain in (the CLI's ``--model`` and the API's ``model``).

``load_model(spec, input_shape, num_classes)`` takes:

- a zoo name (``mlp``, ``cnn``, …): built for the dataset's shape, untrained;
- a TorchScript file (``torch.jit.save``, scripted or traced; ``.pt``/``.pth``/``.ts``/``.jit``): trained;
- a ``torch.export`` program (``torch.export.save``, ``.pt2``): trained. Its graph is read op by op, so any
  ``forward`` that computes one chain of supported layers is accepted, not only an ``nn.Sequential``;
- a ``torch.save`` of a whole module, or of the dict ``import-tflite --out`` writes: trained;
- a ``.tflite`` file (float or int8, through :mod:`batteryless.tflite.import_`): trained;
- ``path/to/module.py:factory`` or ``package.module:factory``: the factory is called with no arguments, or
  with ``(input_shape, num_classes)`` if it takes two; untrained unless a state dict is given;
- an ``nn.Module`` object (the API): taken as trained.

"Trained" is known from where the weights come from: a file that holds weights, or a state dict given with
the model, is trained; a zoo name or a factory without a state dict is not. The caller may override it both
ways (train a file's model further, or declare a factory's weights trained). A model rebuilt from a file is
checked against the file's own forward on random inputs, so a conversion mistake cannot pass unnoticed.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import inspect
import operator
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from batteryless.errors import ModelError

Shape = tuple[int, ...]
TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".jit", ".torchscript")


@dataclass
class LoadedModel:
    module: nn.Module
    name: str  # what the artifact and reports call it: the zoo name, the file stem or the factory name
    source: str  # zoo | torchscript | torch.export | torch.save | tflite | factory | module
    trained: bool  # holds trained weights (from a file or a state dict)
    notes: list[str] = field(default_factory=list)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


# ------------------------------------------------------------------------------ rebuild leaf modules
def _pair(v: Any) -> Any:
    if isinstance(v, str):
        return v  # padding="same": kept, so that the supported-layer check names it
    return tuple(int(d) for d in v) if isinstance(v, list | tuple) else int(v)


def _leaf(kind: str, params: dict[str, torch.Tensor], attrs: dict[str, Any], where: str) -> nn.Module:
    """A fresh float32 layer of type ``kind`` with ``params``/buffers and constructor ``attrs``."""
    try:
        return _make_leaf(kind, params, attrs, where)
    except (TypeError, ValueError, KeyError, RuntimeError) as err:  # attributes torch will not take
        raise ModelError(f"{where} ({kind}): cannot rebuild it: {_first_line(err)}") from None


def _make_leaf(kind: str, params: dict[str, torch.Tensor], attrs: dict[str, Any], where: str) -> nn.Module:

    def p(name: str) -> torch.Tensor | None:
        t = params.get(name)
        return None if t is None else t.detach().to(torch.float32).clone()

    w, b = p("weight"), p("bias")
    if kind == "Linear":
        if w is None or w.dim() != 2:
            raise ModelError(f"{where} (Linear) has no 2-D weight")
        m: nn.Module = nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
    elif kind in ("Conv1d", "Conv2d"):
        if w is None or w.dim() != (3 if kind == "Conv1d" else 4):
            raise ModelError(f"{where} ({kind}) has no weight of the right rank")
        groups = int(attrs.get("groups", 1))
        cls = nn.Conv1d if kind == "Conv1d" else nn.Conv2d
        m = cls(
            w.shape[1] * groups,
            w.shape[0],
            tuple(w.shape[2:]),
            stride=_pair(attrs.get("stride", 1)),
            padding=_pair(attrs.get("padding", 0)),
            dilation=_pair(attrs.get("dilation", 1)),
            groups=groups,
            bias=b is not None,
        )
    elif kind in ("BatchNorm1d", "BatchNorm2d"):
        mean, var = p("running_mean"), p("running_var")
        if mean is None or var is None:
            raise ModelError(f"{where} ({kind}) has no running statistics")
        cls = nn.BatchNorm1d if kind == "BatchNorm1d" else nn.BatchNorm2d
        m = cls(mean.numel(), eps=float(attrs.get("eps", 1e-5)), affine=w is not None)
        with torch.no_grad():
            m.running_mean.copy_(mean)
            m.running_var.copy_(var)
    elif kind in ("MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d"):
        cls = getattr(nn, kind)
        kernel = _pair(attrs["kernel_size"])
        stride = attrs.get("stride") or kernel  # [] in a graph means "the kernel size"
        extra: dict[str, Any] = {
            "padding": _pair(attrs.get("padding", 0)),
            "ceil_mode": attrs.get("ceil_mode", False),
        }
        if kind.startswith("Max"):
            extra["dilation"] = _pair(attrs.get("dilation", 1))
        else:
            extra["count_include_pad"] = bool(attrs.get("count_include_pad", True))
        m = cls(kernel, stride=_pair(stride), **extra)
    elif kind == "ReLU":
        m = nn.ReLU()
    elif kind == "Flatten":
        m = nn.Flatten(int(attrs.get("start_dim", 1)), int(attrs.get("end_dim", -1)))
    elif kind in ("Dropout", "Identity"):
        m = nn.Identity()
    else:
        raise ModelError(
            f"{where} ({kind}): unsupported layer type; supported: Linear, Conv1d/2d, ReLU, MaxPool1d/2d, "
            "AvgPool1d/2d, Flatten, BatchNorm1d/2d, Dropout"
        )
    if w is not None and hasattr(m, "weight") and m.weight is not None:
        with torch.no_grad():
            if m.weight.shape != w.shape:
                raise ModelError(f"{where} ({kind}): weight {tuple(w.shape)} does not fit {m}")
            m.weight.copy_(w)
            if b is not None:
                m.bias.copy_(b)
    return m


# --------------------------------------------------------------------------------------- TorchScript
# Traced submodules keep no constructor attributes: read them from the op in their graph (argument index).
_CONV_ARGS = {"stride": 3, "padding": 4, "dilation": 5}
_SCRIPT_OPS: dict[str, dict[str, int]] = {
    "aten::_convolution": {**_CONV_ARGS, "groups": 8},
    "aten::_convolution_mode": {**_CONV_ARGS, "groups": 6},  # padding given as "same"/"valid"
    "aten::conv1d": {**_CONV_ARGS, "groups": 6},
    "aten::conv2d": {**_CONV_ARGS, "groups": 6},
    "aten::max_pool1d": {"kernel_size": 1, "stride": 2, "padding": 3, "dilation": 4, "ceil_mode": 5},
    "aten::max_pool2d": {"kernel_size": 1, "stride": 2, "padding": 3, "dilation": 4, "ceil_mode": 5},
    "aten::avg_pool1d": {"kernel_size": 1, "stride": 2, "padding": 3, "ceil_mode": 4, "count_include_pad": 5},
    "aten::avg_pool2d": {"kernel_size": 1, "stride": 2, "padding": 3, "ceil_mode": 4, "count_include_pad": 5},
    "aten::flatten": {"start_dim": 1, "end_dim": 2},
    "aten::batch_norm": {"eps": 7},
}
_NEEDS_ATTRS = ("Conv1d", "Conv2d", "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d")
_ATTRS = ("stride", "padding", "dilation", "groups", "kernel_size", "ceil_mode", "count_include_pad")
_ATTRS += ("start_dim", "end_dim", "eps")


def _const(value: Any) -> Any:
    node = value.node()
    if node.kind() == "prim::Constant":
        return value.toIValue()
    if node.kind() == "prim::ListConstruct":
        return [_const(v) for v in node.inputs()]
    return None


def _script_attrs(m: Any) -> dict[str, Any]:
    """Constructor attributes of a TorchScript leaf: kept on scripted modules, in the graph of traced ones."""
    attrs = {a: getattr(m, a) for a in _ATTRS if hasattr(m, a)}
    if attrs or not hasattr(m, "graph"):
        return attrs
    for node in m.graph.nodes():
        index = _SCRIPT_OPS.get(node.kind())
        if index is not None:
            args = list(node.inputs())
            return {name: _const(args[i]) for name, i in index.items() if i < len(args)}
    return attrs


def _from_script(m: Any, prefix: str, out: list[nn.Module]) -> None:
    kind = getattr(m, "original_name", type(m).__name__)
    children = list(m.named_children())
    if kind == "Sequential":
        for name, child in children:
            _from_script(child, f"{prefix}.{name}" if prefix else name, out)
        return
    where = f"layer {prefix or '<model>'}"
    if children:
        raise ModelError(
            f"{where} ({kind}) is a container with its own forward(); TorchScript keeps no graph of it "
            "that batteryless can read: save the model as an nn.Sequential, or with torch.export (.pt2)"
        )
    params = dict(m.named_parameters(recurse=False)) | dict(m.named_buffers(recurse=False))
    attrs = _script_attrs(m)
    if not attrs and kind in _NEEDS_ATTRS:  # a traced op this reader does not know: defaults would be wrong
        raise ModelError(
            f"{where} ({kind}): its settings (stride, padding, …) cannot be read from this traced file; "
            "save the model with torch.jit.script or torch.export (.pt2)"
        )
    out.append(_leaf(kind, params, attrs, where))


def _load_torchscript(path: Path) -> nn.Module:
    try:
        scripted = torch.jit.load(str(path), map_location="cpu")
    except Exception as err:  # torch raises RuntimeError/ValueError for non-TorchScript files
        raise ModelError(f"cannot read {path} as TorchScript: {_first_line(err)}") from None
    layers: list[nn.Module] = []
    _from_script(scripted, "", layers)
    return _VerifiedRebuild(nn.Sequential(*layers), scripted, str(path))


# ------------------------------------------------------------------------------------- torch.export
def _aten(name: str) -> Any:
    ns, _, op = name.partition(".")
    packet = getattr(torch.ops.aten, ns)
    return getattr(packet, op or "default")


def _export_table() -> dict[Any, tuple[str, tuple[str | None, ...]]]:
    """aten op → (layer kind, names of its arguments after the data input)."""
    conv = ("weight", "bias", "stride", "padding", "dilation", "groups")
    pool_max = ("kernel_size", "stride", "padding", "dilation", "ceil_mode")
    pool_avg = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")
    table: dict[Any, tuple[str, tuple[str | None, ...]]] = {}
    for name, entry in (
        ("linear", ("Linear", ("weight", "bias"))),
        ("conv1d", ("Conv1d", conv)),
        ("conv2d", ("Conv2d", conv)),
        ("conv1d.padding", ("Conv1d", conv)),  # padding="same"/"valid": the supported-layer check names it
        ("conv2d.padding", ("Conv2d", conv)),
        ("relu", ("ReLU", ())),
        ("relu_", ("ReLU", ())),
        ("max_pool1d", ("MaxPool1d", pool_max)),
        ("max_pool2d", ("MaxPool2d", pool_max)),
        ("avg_pool1d", ("AvgPool1d", pool_avg)),
        ("avg_pool2d", ("AvgPool2d", pool_avg)),
        ("flatten.using_ints", ("Flatten", ("start_dim", "end_dim"))),
        ("dropout", ("Dropout", ())),
        ("clone", ("Identity", ())),
        ("batch_norm", ("BatchNorm", ("weight", "bias", "running_mean", "running_var", None, None, "eps"))),
        (
            "_native_batch_norm_legit_no_training",
            ("BatchNorm", ("weight", "bias", "running_mean", "running_var", None, "eps")),
        ),
    ):
        try:
            table[_aten(name)] = entry
        except AttributeError:  # an op this torch does not have
            continue
    return table


def _load_exported(path: Path, input_shape: Shape) -> nn.Module:
    try:
        program = torch.export.load(str(path))
    except Exception as err:
        raise ModelError(f"cannot read {path} as a torch.export program: {_first_line(err)}") from None
    gm = program.module()
    table = _export_table()
    flat = _aten("view"), _aten("reshape"), _aten("_unsafe_view")
    sizes = {
        _aten("sym_size.int")
    }  # the batch size read at run time by a program exported with a dynamic batch
    layers: list[nn.Module] = []
    cur = None
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            if cur is not None:
                raise ModelError(f"{path}: the program takes more than one input")
            cur = node
            continue
        if node.op in ("get_attr", "call_module"):  # parameters; the input guard
            continue
        if node.op == "output":
            result = node.args[0]
            result = result[0] if isinstance(result, list | tuple) and len(result) == 1 else result
            if result is not cur:
                raise ModelError(f"{path}: the output is not the end of one chain of layers")
            break
        where = f"{path}: op {node.name} ({node.target})"
        if node.target in sizes:
            continue  # shape arithmetic, not a layer
        if node.target is operator.getitem:
            if node.args[0] is cur and node.args[1] == 0:  # first output of a multi-output op (batch norm)
                cur = node
            continue
        users = (
            [u for u in cur.users if u.op != "call_module" and u.target not in sizes]
            if cur is not None
            else []
        )
        if node in users and len(users) > 1:
            raise ModelError(
                f"{where}: not one chain of layers (a branch or skip connection: {cur.name} feeds "
                f"{len(users)} operations)"
            )
        if not node.args or node.args[0] is not cur:
            if any(a is cur for a in node.args):
                raise ModelError(f"{where}: not one chain of layers (a branch or skip connection)")
            continue  # shape arithmetic on constants
        if node.target in flat:
            shape = list(node.args[1])
            if len(shape) != 2:
                raise ModelError(f"{where}: reshape to {shape} is not a flatten to (batch, features)")
            layers.append(nn.Flatten())
            cur = node
            continue
        entry = table.get(node.target)
        if entry is None:
            raise ModelError(
                f"{where}: operation not supported (supported: linear, conv1d/2d, relu, "
                "max/avg pool 1d/2d, flatten, batch norm, dropout)"
            )
        kind, names = entry
        values = dict(zip(names, node.args[1:], strict=False)) | dict(node.kwargs)
        params: dict[str, torch.Tensor] = {}
        attrs: dict[str, Any] = {}
        for key, value in values.items():
            if key is None:
                continue
            if hasattr(value, "op") and value.op == "get_attr":
                params[key] = _fetch(gm, value.target)
            elif hasattr(value, "op"):
                raise ModelError(f"{where}: argument {key} is computed, not a stored tensor")
            elif value is not None:
                attrs[key] = value
        if kind == "BatchNorm":
            kind = (
                "BatchNorm2d"
                if len(input_shape) == 3 and not any(isinstance(m, nn.Flatten) for m in layers)
                else "BatchNorm1d"
            )
        layers.append(_leaf(kind, params, attrs, where))
        cur = node
    return _VerifiedRebuild(nn.Sequential(*layers), gm, str(path))


def _fetch(gm: nn.Module, target: str) -> torch.Tensor:
    obj: Any = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


class _VerifiedRebuild(nn.Sequential):
    """Marker: a Sequential rebuilt from ``original`` (checked against it once the input shape is known)."""

    def __init__(self, seq: nn.Sequential, original: Any, where: str) -> None:
        super().__init__(*seq)
        object.__setattr__(self, "_original", original)
        object.__setattr__(self, "_where", where)


def _verify(rebuilt: _VerifiedRebuild, input_shape: Shape) -> nn.Sequential:
    """Same outputs as the file's own forward on random inputs, or ModelError; returns a plain Sequential."""
    seq, flat = flatten_for_features(nn.Sequential(*rebuilt).eval(), input_shape)
    from batteryless.models.check import check_supported

    check_supported(seq, input_shape)  # a shape error names the layer before any numbers are compared
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, *input_shape, generator=gen)
    with torch.no_grad():
        try:  # one sample at a time: an exported program may be specialised to batch 1 (the device's)
            xs = x.reshape(len(x), -1) if flat else x  # a tabular model was saved taking (batch, F)
            outs = [rebuilt._original(xs[i : i + 1].to(_dtype_of(rebuilt._original))) for i in range(len(x))]
        except Exception as err:
            raise ModelError(
                f"{rebuilt._where}: the model cannot run on inputs of shape {tuple(input_shape)}: "
                f"{_first_line(err)}"
            ) from None
        got = seq(x)
    want = torch.cat([o[0] if isinstance(o, list | tuple) else o for o in outs])
    want = torch.as_tensor(want).to(torch.float32)
    if want.shape != got.shape or not torch.allclose(
        got, want, rtol=1e-4, atol=1e-4 * (1 + want.abs().max())
    ):
        raise ModelError(
            f"{rebuilt._where}: the layers read from the file do not compute what the file's forward "
            "computes (a forward with extra operations); save the model as an nn.Sequential of supported "
            "layers"
        )
    return seq


def _dtype_of(m: Any) -> torch.dtype:
    for p in m.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


# ---------------------------------------------------------------------------------- other sources
def _load_torch_save(path: Path, obj: Any) -> nn.Module:
    if isinstance(obj, dict) and isinstance(obj.get("model"), nn.Module):
        return obj["model"]  # import-tflite --out, or a checkpoint dict holding the module
    if isinstance(obj, nn.Module):
        return obj
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelError(
            f"{path} holds a state dict (weights only), not a model; give the code that builds the model as "
            "module.py:factory together with this file as the state dict"
        )
    raise ModelError(f"{path} holds a {type(obj).__name__}, not a torch model")


def _load_file(path: Path, input_shape: Shape, notes: list[str]) -> tuple[nn.Module, str]:
    suffix = path.suffix.lower()
    if suffix == ".tflite":
        from batteryless.errors import ExportError
        from batteryless.tflite.import_ import import_tflite

        try:
            imported = import_tflite(path)
        except ExportError as err:
            raise ModelError(str(err)) from None
        notes += [f"{path.name}: {n}" for n in imported.notes]
        return imported.model, "tflite"
    if suffix == ".pt2":
        return _load_exported(path, input_shape), "torch.export"
    head = path.read_bytes()[:4]
    if head[:2] != b"PK":  # torch.save and torch.jit.save write zip files; anything else is not ours
        raise ModelError(f"{path} is not a TorchScript, torch.export (.pt2), torch.save or .tflite file")
    try:
        import zipfile

        with zipfile.ZipFile(path) as z:
            is_script = any(
                n.endswith("/constants.pkl") or n.endswith("/code/__torch__.py") for n in z.namelist()
            )
            is_export = any(
                n.endswith("serialized_exported_program.json") or "/models/" in n for n in z.namelist()
            )
    except zipfile.BadZipFile as err:
        raise ModelError(f"cannot read {path}: {err}") from None
    if is_export and not is_script:
        return _load_exported(path, input_shape), "torch.export"
    if is_script:
        return _load_torchscript(path), "torchscript"
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise ModelError(f"cannot load {path}: {_first_line(err)}") from None
    return _load_torch_save(path, obj), "torch.save"


def _load_factory(spec: str, input_shape: Shape, num_classes: int) -> tuple[nn.Module, str]:
    target, _, func = spec.rpartition(":")
    if target.endswith(".py"):
        file = Path(target)
        if not file.is_file():
            raise ModelError(f"model factory file {file} does not exist")
        name = f"batteryless_user_{file.stem}"
        mod_spec = importlib.util.spec_from_file_location(name, file)
        if mod_spec is None or mod_spec.loader is None:
            raise ModelError(f"cannot import {file}")
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules[name] = module  # dataclasses and pickling look a module up by name
        try:
            mod_spec.loader.exec_module(module)
        except Exception as err:
            del sys.modules[name]
            raise ModelError(f"importing {file} failed: {type(err).__name__}: {_first_line(err)}") from None
    else:
        try:
            module = importlib.import_module(target)
        except Exception as err:
            raise ModelError(f"cannot import module {target!r}: {_first_line(err)}") from None
    factory = getattr(module, func, None)
    if not callable(factory):
        raise ModelError(f"{target} has no function {func!r}")
    try:
        params = [
            p
            for p in inspect.signature(factory).parameters.values()
            if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        params = []
    try:
        net = factory(tuple(input_shape), int(num_classes)) if len(params) >= 2 else factory()
    except Exception as err:
        raise ModelError(f"{spec}: the factory raised {type(err).__name__}: {_first_line(err)}") from None
    if not isinstance(net, nn.Module):
        raise ModelError(f"{spec}: the factory returned a {type(net).__name__}, not a torch nn.Module")
    return net, func


def load_state_dict(module: nn.Module, state: str | Path | dict, where: str) -> None:
    """Load weights into ``module`` (strict); ModelError naming missing/unexpected keys or shapes."""
    if not isinstance(state, dict):
        path = Path(state)
        if not path.is_file():
            raise ModelError(f"state dict {path} does not exist")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise ModelError(f"cannot load state dict {path}: {_first_line(err)}") from None
    if isinstance(state, dict):
        for key in ("state_dict", "model_state_dict"):
            if isinstance(state.get(key), dict):
                state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{where}: the state dict is not a mapping of names to tensors")
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    wrong = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or extra or wrong:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:5])}")
        if extra:
            parts.append(f"unexpected {', '.join(extra[:5])}")
        if wrong:
            parts.append(f"shape (file vs model) {', '.join(wrong[:3])}")
        raise ModelError(f"{where}: the state dict does not fit the model: {'; '.join(parts)}")
    module.load_state_dict(state, strict=True)


def flatten_for_features(module: nn.Module, input_shape: Shape) -> tuple[nn.Module, bool]:
    """Feature vectors are loaded as ``(1, F)`` samples (one channel, so 1-D convolutions fit them too). A
    tabular model written for ``(F,)`` starts with ``Linear(F, …)`` and no Flatten; for it, a leading Flatten
    is exactly the identity on the data, so it is added (returns the model and whether it was)."""
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != 2 or shape[0] != 1:
        return module, False
    first = next((m for m in module.modules() if not isinstance(m, nn.Sequential)), None)
    if isinstance(first, nn.Linear) and first.in_features == shape[1]:
        return nn.Sequential(nn.Flatten(), *(module if type(module) is nn.Sequential else [module])), True
    return module, False


def is_model_file(spec: str) -> bool:
    return ":" not in spec and Path(spec).suffix.lower() in (*TORCHSCRIPT_SUFFIXES, ".pt2", ".tflite")


def load_model(
    spec: str | nn.Module,
    input_shape: Shape,
    num_classes: int,
    *,
    state_dict: str | Path | dict | None = None,
    seed: int = 0,
) -> LoadedModel:
    """The model ``spec`` names (see the module docstring), with ``state_dict`` loaded if given."""
    from batteryless.models.zoo import ZOO, build_model

    shape = tuple(int(d) for d in input_shape)
    notes: list[str] = []
    if isinstance(spec, nn.Module):
        net, name, source, trained = spec, type(spec).__name__, "module", True
    elif not isinstance(spec, str | Path):
        raise ModelError(
            f"a model is a zoo name, a file, module.py:factory or an nn.Module, not {type(spec).__name__}"
        )
    elif str(spec) in ZOO:
        net, name, source, trained = (
            build_model(str(spec), shape, num_classes, seed=seed),
            str(spec),
            "zoo",
            False,
        )
    elif isinstance(spec, str) and ":" in spec and not Path(spec).exists():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # the factory's initial weights follow the seed, not the global RNG
            net, name = _load_factory(spec, shape, num_classes)
        source, trained = "factory", False
    else:
        path = Path(spec)
        if not path.exists():
            if path.suffix or "/" in str(spec):
                raise ModelError(f"model file {path} does not exist")
            raise ModelError(
                f"unknown model {str(spec)!r}: not a zoo model ({', '.join(ZOO)}), a model file (TorchScript "
                ".pt, torch.export .pt2, .tflite) or module.py:factory"
            )
        if path.is_dir():
            raise ModelError(f"model {path} is a folder, not a model file")
        net, source = _load_file(path, shape, notes)
        name, trained = path.stem, True
        if isinstance(net, _VerifiedRebuild):
            net = _verify(net, shape)
            notes.append(
                f"read {source} file {path.name} into {len(net)} layers; outputs checked against its forward"
            )
    if state_dict is not None:
        if source == "module":
            net = copy.deepcopy(net)  # the caller's module keeps its own weights
        load_state_dict(net, state_dict, name)
        trained = True
        notes.append("weights from the state dict")
    net, flattened = flatten_for_features(net, shape)
    if flattened:
        notes.append(
            f"added a leading Flatten: samples are {shape}, the first Linear takes {shape[1]} features"
        )
    return LoadedModel(net, name, source, trained, notes)
