"""A user's own network, built by their Python factory (``module:PKG.MODULE:FUNCTION``), as a zoo net.

fsmc's recovery needs three things of a classifier (see :mod:`fsmc.models.base`):
the final linear layer, the feature map before global pooling and the head after
it. A torchvision family names them by attribute; an arbitrary network does not,
so they are found here:

- the classifier is the last ``nn.Linear`` defined with one output
  per class;
- the feature map is the input of the last global average pooling, found by
  tracing the forward with ``torch.fx`` (an ``nn.AdaptiveAvgPool2d`` to 1x1,
  ``F.adaptive_avg_pool2d(x, 1)`` or ``x.mean((2, 3))``); the forward splits there
  into two traced halves that share the network's own layers.

``forward`` is always the network's own, so bp, kd, fskd, cd, pruning and export
work on any network; only what needs the pre-pool feature map (mir, the teacher's
features) needs the trace, and refuses with the tracer's reason when it fails.
The state-dict keys under ``model.`` are the user's own, so their
``model.state_dict()`` loads unchanged.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.fx
from torch import nn

from fsmc.errors import FsmcError
from fsmc.models.base import ClassifierNet
from fsmc.models.tracing import traced as trace


def resolve_factory(target: str) -> Callable[..., Any]:
    """The function ``PKG.MODULE:FUNCTION`` names, imported; an FsmcError that says why when it cannot be."""
    module_name, _, function_name = target.partition(":")
    if os.getcwd() not in sys.path:  # as uvicorn and celery do: a module in the folder fsmc runs from is found
        sys.path.append(os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # ImportError, or the module's own code failing at import
        raise FsmcError(
            f"data.teacher=module:{target} cannot be used: importing {module_name!r} failed ({type(error).__name__}: "
            f"{error}). Make the module importable (run from its folder, install its package, or add its folder to "
            "PYTHONPATH) and name "
            "a function in it, as module:PKG.MODULE:FUNCTION."
        ) from None
    factory = getattr(module, function_name, None)
    if not callable(factory):
        public = sorted(name for name, value in vars(module).items() if callable(value) and not name.startswith("_"))
        raise FsmcError(
            f"data.teacher=module:{target} cannot be used: {module_name} has no function {function_name!r}; "
            f"its public callables are: {', '.join(public) or 'none'}."
        )
    return factory


def factory_source_sha256(target: str) -> str:
    """sha256 of the source file of the module ``target`` names: the architecture's code, as part of its identity."""
    factory = resolve_factory(target)  # imports the module, or a clear error naming what is missing
    # The module that defines the function (a package may re-export it); hashed afresh on each call
    # (cheap): a long-lived process must see an edited architecture as another one.
    source = inspect.getsourcefile(inspect.getmodule(factory) or sys.modules[target.partition(":")[0]])
    return hashlib.sha256(Path(source).read_bytes()).hexdigest() if source else ""


def _is_global_average_pool(node: torch.fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        module = modules[node.target]
        return isinstance(module, nn.AdaptiveAvgPool2d) and module.output_size in (1, (1, 1))
    if node.op == "call_function" and node.target is nn.functional.adaptive_avg_pool2d:
        size = node.args[1] if len(node.args) > 1 else node.kwargs.get("output_size")
        return size in (1, (1, 1))
    if (node.op == "call_method" and node.target == "mean") or (node.op == "call_function" and node.target is torch.mean):
        dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        return isinstance(dims, (tuple, list)) and sorted(d % 4 for d in dims) == [2, 3]
    return False


def _ancestors(node: torch.fx.Node, stop: torch.fx.Node | None = None) -> set[torch.fx.Node]:
    """``node`` and every node it depends on, not looking past ``stop``."""
    seen, pending = set(), [node]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        if current is not stop:
            pending.extend(current.all_input_nodes)
    return seen


class _ParametricLeafTracer(torch.fx.Tracer):
    """A tracer that calls every module owning weights or buffers as one node instead of inlining its forward.

    Inlined, a custom BatchNorm (timm's BatchNormAct2d, say) would read its running statistics as
    tensors captured at trace time, and pruning, which gives the layer new, narrower tensors, would
    leave the split graph holding the old ones.
    """

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        owns_tensors = any(True for _ in module.parameters(recurse=False)) or any(True for _ in module.buffers(recurse=False))
        return owns_tensors or super().is_leaf_module(module, qualified_name)


def _subgraph(traced: torch.fx.GraphModule, keep: set[torch.fx.Node], inputs: dict[torch.fx.Node, str], output: torch.fx.Node) -> torch.fx.GraphModule:
    """A graph module of the nodes ``keep`` (in execution order), with ``inputs`` as its placeholders."""
    graph = torch.fx.Graph()
    mapped: dict[torch.fx.Node, torch.fx.Node] = {node: graph.placeholder(name) for node, name in inputs.items()}
    for node in traced.graph.nodes:
        if node in keep and node not in mapped:
            mapped[node] = graph.node_copy(node, lambda n: mapped[n])
    graph.output(mapped[output])
    return torch.fx.GraphModule(traced, graph)


class FactoryClassifier(ClassifierNet):
    """The network ``FUNCTION()`` returns (``FUNCTION(num_classes=...)`` when it takes that argument).

    Args:
        target: ``PKG.MODULE:FUNCTION``, importable where fsmc runs.
        num_classes: the dataset's class count (the network must output one logit per class).
        source_sha256: the module's source hash when the spec was written (lineage; not enforced on load).
    """

    def __init__(self, target: str, num_classes: int, source_sha256: str = ""):
        super().__init__()
        factory = resolve_factory(target)
        accepts_classes = "num_classes" in inspect.signature(factory).parameters
        try:
            model = factory(num_classes=num_classes) if accepts_classes else factory()
        except Exception as error:
            raise FsmcError(
                f"data.teacher=module:{target} cannot be used: calling it "
                f"({'num_classes=' + str(num_classes) if accepts_classes else 'no arguments'}) failed with "
                f"{type(error).__name__}: {error}. The function must build the untrained network with no arguments "
                "other than an optional num_classes."
            ) from None
        if not isinstance(model, nn.Module):
            raise FsmcError(
                f"data.teacher=module:{target} returned a {type(model).__name__}, not a torch.nn.Module; the function must "
                "build and return the (untrained) network whose state dict data.teacher_weights holds."
            )
        self.target, self.source_sha256 = target, source_sha256
        self.adopt(model, num_classes, f"module:{target}", "Build the network for this dataset's classes (the function may take num_classes).")

    def adopt(self, model: nn.Module, num_classes: int, teacher: str, how_to_fix: str) -> None:
        """Take ``model`` (built for ``num_classes``) as this net; ``teacher`` names it in errors."""
        self.model, self.num_classes, self.teacher_label = model, num_classes, teacher
        linears = [m for m in model.modules() if isinstance(m, nn.Linear) and m.out_features == num_classes]
        if not linears:
            raise FsmcError(
                f"data.teacher={teacher} has no nn.Linear layer with {num_classes} outputs (one per class of the "
                f"data); fsmc keeps the final linear layer whole and needs to find it. {how_to_fix}"
            )
        self._classifier_ref = (linears[-1],)  # a tuple, so the layer is not registered twice

    @property
    def classifier(self) -> nn.Linear:
        """The last ``nn.Linear`` with one output per class."""
        return self._classifier_ref[0]

    def _split(self) -> tuple[torch.fx.GraphModule, torch.fx.GraphModule, list[nn.Module]]:
        """(features half, head half, head layers), traced once and cached; the halves share this network's layers."""
        cached = self.__dict__.get("_split_cache")
        if cached is not None:
            return cached
        traced = trace(
            lambda: torch.fx.GraphModule(self.model, _ParametricLeafTracer().trace(self.model)),
            f"The pre-pool feature map of data.teacher={self.teacher_label} (which mir and the teacher's features need)",
            "Use method=kd or bp (they need only the logits).",
        )
        modules = dict(traced.named_modules())
        pools = [node for node in traced.graph.nodes if _is_global_average_pool(node, modules)]
        output = next(node for node in traced.graph.nodes if node.op == "output").args[0]
        if not pools or not isinstance(output, torch.fx.Node):
            raise FsmcError(
                f"data.teacher={self.teacher_label} has no global average pooling before its classifier (an "
                "nn.AdaptiveAvgPool2d(1), F.adaptive_avg_pool2d(x, 1) or x.mean((2, 3))), so there is no pre-pool "
                "feature map to mimic. Use method=kd or bp."
            )
        features = pools[-1].all_input_nodes[0]
        head_nodes = _ancestors(output, stop=features)
        if any(node.op == "placeholder" for node in head_nodes - {features}):
            raise FsmcError(
                f"data.teacher={self.teacher_label}: its head uses more than the pooled feature map (the input "
                "reaches the logits around the last global pooling), so the network cannot be split into "
                "features and head. Use method=kd or bp."
            )
        input_node = next(node for node in traced.graph.nodes if node.op == "placeholder")
        features_half = _subgraph(traced, _ancestors(features), {input_node: "x"}, features)
        head_half = _subgraph(traced, head_nodes, {features: "features"}, output)
        head_layers = [modules[node.target] for node in traced.graph.nodes if node in head_nodes and node.op == "call_module"]
        split = (features_half, head_half, head_layers)
        self.__dict__["_split_cache"] = split  # not a registered child: the halves' layers are this network's own
        return split

    @property
    def pooled_head(self) -> nn.Module:
        """Everything after global pooling that has weights: the classifier, or the head's layers as one module."""
        layers = [m for m in self._split()[2] if any(True for _ in m.parameters(recurse=False))]
        return layers[0] if len(layers) == 1 else nn.ModuleList(layers)

    def pruning_ignored_layers(self) -> list[nn.Module]:
        """The head's linear and conv layers and the last conv before pooling: the classifier and the feature width stay the
        teacher's (mir reuses the teacher's head). Without a trace: the classifier and the last conv defined."""
        convs = [m for m in self.model.modules() if isinstance(m, nn.Conv2d)]
        try:
            features_half, _, head_layers = self._split()
        except FsmcError:
            return [self.classifier] + convs[-1:]
        executed = [features_half.get_submodule(n.target) for n in features_half.graph.nodes if n.op == "call_module"]
        last_conv = [m for m in executed if isinstance(m, nn.Conv2d)][-1:]
        return [m for m in head_layers if isinstance(m, (nn.Linear, nn.Conv2d))] + last_conv  # a 1x1 conv head (MobileNetV3) too

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature map before the last global average pooling."""
        return self._split()[0](x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """The rest of the network's forward, from the feature map to the logits."""
        return self._split()[1](features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
