"""Int8 convolutions for a cheaper reused frame (``GateConfig.reuse_precision='int8'``; beyond the paper).

A reused object still runs the host's never-skipped decoder half on the current frame. On a CPU its 3x3
convolutions are most of a reused frame's time, and an int8 convolution runs them 1.5-2.5x faster
(docs/experiments/int8-reuse.md), and a reused object's mask is an approximation already (its deep half is the
last computed frame's): on every set measured, int8 rounding moved J&F by 0.1 at most. Computed frames stay
float32, so ``tau = 1`` is still exactly the host.

The int8 modules are ``torch.ao``'s quantized convolutions (the pinned torch 2.13 has them; PyTorch points new
code at torchao, which this needs not).

Post-training quantization, static and per convolution: each ``Conv2d`` becomes :class:`Int8Conv`, which quantizes
its float input with a fixed scale (7-bit, as PyTorch's x86 default, so that kernels without VNNI cannot
overflow), convolves with int8 weights (symmetric, per output channel, quantized from the float weights when the
copy is made) and returns float. The activation scales come from a calibration on real video
(:class:`ConvCalibration`), stored with the model as plain numbers, so loading needs no data and no observer.
Int8 kernels are CPU kernels: a model on an accelerator keeps ``float32``.
"""
from __future__ import annotations

import contextlib
import copy
import warnings
from typing import Callable, Dict, Iterable, Iterator, List, Mapping, Sequence

import torch
from torch import Tensor, nn

__all__ = ["Int8Conv", "ConvCalibration", "int8_copy", "QPARAMS_VERSION", "PACK_ENGINE"]

QPARAMS_VERSION = 1
"""Format of the stored calibration: ``{"version": 1, "convs": {name: [input scale, input zero point, output scale,
output zero point, scale and zero point of the output after a ReLU]}}``."""


PACK_ENGINE = "onednn"
"""The quantized engine that packs the int8 weights (the packed weights then run with that engine's kernels,
whatever ``torch.backends.quantized.engine`` says later). PyTorch's default ``x86`` engine packs with oneDNN only on
CPUs with AVX512-VNNI and with fbgemm elsewhere; on the decoder's shapes oneDNN was faster for every convolution
with AVX2 only (the fast model's int8 decode 6.5 against 8.3 ms) and level with AVX-512 (2.94 against 2.99 ms), so it
packs everywhere (docs/experiments/int8-reuse.md). An engine this torch lacks falls back to the process's."""


@contextlib.contextmanager
def _packing_engine() -> Iterator[None]:
    """Pack with :data:`PACK_ENGINE` where this torch has it, and leave the process's engine as it was."""
    before = torch.backends.quantized.engine
    if PACK_ENGINE in torch.backends.quantized.supported_engines:
        torch.backends.quantized.engine = PACK_ENGINE
    try:
        yield
    finally:
        torch.backends.quantized.engine = before


class Int8Conv(nn.Module):
    """A convolution computed in int8 (see the module docstring).

    Args:
        conv: the float ``Conv2d`` (its current weights are quantized; it is not kept).
        qparams: the stored calibration of ``conv`` (six numbers, :data:`QPARAMS_VERSION`).
        relu: apply the ReLU that follows the convolution inside the int8 kernel (its output range is then the
            ReLU's, which spends no codes on negative values).
        quantized_in: the input comes quantized from the int8 convolution before (a chain: no dequantize and
            quantize between the two); otherwise a float input is quantized here.
        quantized_out: return the quantized output for the int8 convolution after; otherwise float.
    """

    def __init__(self, conv: nn.Conv2d, qparams: Sequence[float], relu: bool = False, quantized_in: bool = False,
                 quantized_out: bool = False) -> None:
        super().__init__()
        in_scale, in_zero, out_scale, out_zero, relu_scale, relu_zero = qparams
        weight = conv.weight.detach().float().contiguous()
        w_scale = (weight.abs().amax(dim=(1, 2, 3)) / 127.5).clamp(min=1e-8).double()
        with warnings.catch_warnings(), _packing_engine():  # torch.ao's deprecation notes point at torchao
            warnings.simplefilter("ignore")
            from torch.ao.nn.intrinsic.quantized import ConvReLU2d
            from torch.ao.nn.quantized import Conv2d as QuantizedConv2d

            kind = ConvReLU2d if relu else QuantizedConv2d
            self.conv = kind(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                             padding=conv.padding, dilation=conv.dilation, groups=conv.groups,
                             bias=conv.bias is not None, padding_mode=conv.padding_mode)
            qweight = torch.quantize_per_channel(weight, w_scale, torch.zeros_like(w_scale, dtype=torch.long), 0,
                                                 torch.qint8)
            self.conv.set_weight_bias(qweight, None if conv.bias is None else conv.bias.detach().float())
        scale, zero = (relu_scale, relu_zero) if relu else (out_scale, out_zero)
        self.conv.scale, self.conv.zero_point = float(scale), int(zero)
        self.in_scale, self.in_zero = float(in_scale), int(in_zero)
        self.quantized_in, self.quantized_out = quantized_in, quantized_out

    def forward(self, x: Tensor) -> Tensor:
        q = x if self.quantized_in else torch.quantize_per_tensor(x.float(), self.in_scale, self.in_zero, torch.quint8)
        y = self.conv(q)
        return y if self.quantized_out else y.dequantize()


def int8_copy(module: nn.Module, qparams: Mapping[str, object]) -> nn.Module:
    """A copy of ``module`` (inference only) whose convolutions named in ``qparams`` (the stored calibration, names
    relative to ``module``) are :class:`Int8Conv`; the others stay float.

    Inside an ``nn.Sequential`` a ReLU after such a convolution (past any ``Identity``, a folded BatchNorm) runs in
    its int8 kernel, and consecutive int8 convolutions pass their output on quantized, so a chain such as FRTM's
    ``transform`` (three 3x3 convolutions with ReLUs) quantizes once and dequantizes once. Raises when the
    calibration names a convolution ``module`` lacks: it was made for another model.
    """
    if qparams.get("version") != QPARAMS_VERSION or not isinstance(qparams.get("convs"), Mapping):
        raise ValueError(f"int8 calibration of format version {qparams.get('version')!r}; this reusegate reads "
                         f"version {QPARAMS_VERSION}: calibrate the model again (tools/calibrate_int8.py)")
    convs: Mapping[str, Sequence[float]] = qparams["convs"]  # type: ignore[assignment]
    out = copy.deepcopy(module).eval()
    names = {id(m): n for n, m in out.named_modules() if isinstance(m, nn.Conv2d)}
    unknown = sorted(set(convs) - set(names.values()))
    if unknown:
        raise ValueError(f"the int8 calibration names convolutions this model lacks ({', '.join(unknown[:3])}"
                         f"{' ...' if len(unknown) > 3 else ''}): it was made for another model; calibrate again "
                         f"(tools/calibrate_int8.py)")
    done = set()
    for seq in [m for m in out.modules() if isinstance(m, nn.Sequential)]:
        layers, previous = list(seq), None  # previous: the int8 convolution a chain would continue from
        for i, layer in enumerate(layers):
            name = names.get(id(layer))
            if name is None or name not in convs:
                previous = previous if isinstance(layer, (nn.Identity, nn.ReLU)) else None
                continue
            j = i + 1
            while j < len(layers) and isinstance(layers[j], nn.Identity):
                j += 1
            relu = j < len(layers) and type(layers[j]) is nn.ReLU
            conv = Int8Conv(layer, convs[name], relu=relu, quantized_in=previous is not None)
            if previous is not None:
                previous.quantized_out = True
            seq[i] = conv
            if relu:
                seq[j] = nn.Identity()
            previous = conv
            done.add(name)
    for name, params in convs.items():  # convolutions outside a Sequential: float in, float out
        if name not in done:
            parent, _, leaf = name.rpartition(".")
            owner = out.get_submodule(parent) if parent else out
            setattr(owner, leaf, Int8Conv(getattr(owner, leaf), params))
    return out


class ConvCalibration:
    """Observe the inputs and outputs of convolutions while ``run`` feeds real data through the float model, and
    turn what was seen into the stored calibration (PyTorch's histogram observer, which picks the range that
    minimises the quantization error rather than the extremes). Convolutions that only ever see a 1x1 map (channel
    attention on pooled features) are left float: int8 would add more than it saves there.

    Args:
        module: the float module whose convolutions are calibrated.
        prefixes: only convolutions whose names (relative to ``module``) start with one of these.
    """

    def __init__(self, module: nn.Module, prefixes: Iterable[str] = ("",)) -> None:
        prefixes = tuple(prefixes)
        self.convs = {n: m for n, m in module.named_modules()
                      if isinstance(m, nn.Conv2d) and n.startswith(prefixes)}
        if not self.convs:
            raise ValueError(f"no convolution under {prefixes} to calibrate")
        with warnings.catch_warnings():  # torch.ao's deprecation notes (see Int8Conv)
            warnings.simplefilter("ignore")
            from torch.ao.quantization.observer import HistogramObserver

            self.observers = {n: [HistogramObserver(reduce_range=True) for _ in range(3)] for n in self.convs}
        self.pixels = dict.fromkeys(self.convs, 0)

    def _hook(self, name: str) -> Callable:
        def observe(_module: nn.Module, inputs: tuple, output: Tensor) -> None:
            x = inputs[0].detach().float()
            self.pixels[name] = max(self.pixels[name], x.shape[-2] * x.shape[-1])
            seen_in, seen_out, seen_relu = self.observers[name]
            y = output.detach().float()
            seen_in(x)
            seen_out(y)
            seen_relu(y.clamp(min=0))
        return observe

    def run(self, feed: Callable[[], None]) -> Dict[str, object]:
        """Call ``feed`` (which runs the float model on calibration data) with the observers attached; return the
        calibration to store (:data:`QPARAMS_VERSION`)."""
        handles = [m.register_forward_hook(self._hook(n)) for n, m in self.convs.items()]
        try:
            with torch.no_grad():
                feed()
        finally:
            for h in handles:
                h.remove()
        unseen = [n for n, px in self.pixels.items() if px == 0]
        if unseen:
            raise ValueError(f"convolution {unseen[0]} saw no data during calibration: feed frames that reach it")
        convs: Dict[str, List[float]] = {}
        for name, observers in self.observers.items():
            if self.pixels[name] > 1:
                convs[name] = [float(v) for o in observers for v in o.calculate_qparams()]
        return {"version": QPARAMS_VERSION, "convs": convs}
