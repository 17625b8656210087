"""ONNX export of fitted skvae models, alone or inside a scikit-learn Pipeline.

Importing this module registers skl2onnx converters for skvae's estimators,
so that :func:`skl2onnx.to_onnx` converts a whole ``Pipeline`` that holds
one::

    import skvae.onnx  # noqa: F401  (registers the converters)
    from skl2onnx import to_onnx
    onx = to_onnx(pipeline, X[:1].astype(np.float32))

:func:`to_onnx` exports one model's encoder (``transform``), decoder
(``inverse_transform``) or, for :class:`~skvae.VAEOutlierDetector`, its
``decision_function`` and ``predict``, as a graph with a dynamic batch
dimension that ONNX Runtime runs with skvae's results (float32).

The torch networks are exported by ``torch.onnx.export(..., dynamo=True)``
(the ``torch.export`` based exporter, the default since torch 2.9; the
TorchScript exporter that ``dynamo=False`` selects is deprecated and slated
for removal). Everything here needs the ``onnx`` extra
(``pip install "skvae[onnx]"``: onnx, onnxscript, skl2onnx and
onnxruntime); importing this module without them raises an ImportError that
says so.

What exports (see ``docs/deployment.md``):

- every built-in architecture (``mlp``, ``conv``, ``ladder``) and any
  architecture whose ``encode``/``decode`` torch can export;
- the mean of every likelihood whose ``mean`` is a tensor expression
  (bernoulli, continuous_bernoulli, gaussian, laplace, student_t, poisson,
  negative_binomial);
- a model fitted on a table (a DataFrame) whose columns are all floats
  modelled as numbers: the standardisation (``(x - mean) / scale``) and
  its inverse are part of the graph;
- missing values (``missing_values=np.nan``): NaN in the input is handled
  in the graph as ``transform`` handles it;
- :class:`~skvae.ConditionalVAETransformer`: without a label (the unknown
  condition, what ``transform(X)`` gives in a Pipeline), or with
  ``conditions=True`` a second input ``C``, the one-hot label (columns in
  the order of ``classes_``; an all-zero row is the unknown condition);
- :class:`~skvae.VAEOutlierDetector`: ``decision_function`` and
  ``predict`` (the score's fixed draws are constants of the graph).

What does not, with a ValueError that says why: tables with integer,
boolean or categorical columns (their output is rounded or is a category:
not numbers a graph returns), :class:`~skvae.AuxiliaryClassifierVAE`
(use skl2onnx on a separate classifier), and
:class:`~skvae.VAEImputer` (its imputation averages importance-weighted
draws: stochastic by design).
"""

import contextlib
import io
import logging
import math
import warnings
from numbers import Integral

import numpy as np

__all__ = ["to_onnx", "DEFAULT_OPSET", "MIN_OPSET", "EXTRA_MESSAGE"]

#: The opset of :func:`to_onnx` when none is asked for; ONNX Runtime 1.14
#: and newer run it.
DEFAULT_OPSET = 18
#: The lowest opset torch's exporter writes.
MIN_OPSET = 18
#: What to install when the optional dependencies are missing.
EXTRA_MESSAGE = (
    'ONNX export needs the "onnx" extra: pip install "skvae[onnx]" '
    "(onnx, onnxscript, skl2onnx and onnxruntime)."
)
METHODS = ("transform", "inverse_transform", "decision_function")
# Rows of the example batch the exporter traces (any batch size then runs).
_EXAMPLE_ROWS = 2


def _require():
    """Import the optional dependencies, or raise an ImportError naming the extra."""
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch's dynamo exporter needs it)
        import skl2onnx
    except ImportError as exc:
        raise ImportError(f"{EXTRA_MESSAGE} ({exc})") from exc
    return onnx, skl2onnx


# ------------------------------------------------------------ torch wrappers
def _torch_modules():
    """The wrapper modules, defined on first use (torch is imported then)."""
    import torch
    from torch import nn

    class Standardized(nn.Module):
        """The VAE module, and a table's standardisation (shift, scale) as buffers."""

        def __init__(self, vae_module, shift, scale, conditions):
            super().__init__()
            self.vae = vae_module
            self.standardize = shift is not None
            if self.standardize:
                self.register_buffer("shift", torch.as_tensor(shift, dtype=torch.float32))
                self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))
            self.conditions = conditions

    class Encoder(Standardized):
        """x (and c) -> posterior mean (and log-variance), as ``transform``."""

        def __init__(self, vae_module, shift, scale, log_var, conditions):
            super().__init__(vae_module, shift, scale, conditions)
            self.log_var = log_var

        def forward(self, x, c=None):
            if self.standardize:
                x = (x - self.shift) / self.scale
            mean, log_var = self.vae.encode(x, c) if self.conditions else self.vae.encode(x)
            return (mean, log_var) if self.log_var else mean

    class Decoder(Standardized):
        """z (and c) -> the likelihood's mean, as ``inverse_transform``."""

        def forward(self, z, c=None):
            params = self.vae.decode(z, c) if self.conditions else self.vae.decode(z)
            x = self.vae.likelihood.mean(params)
            if self.standardize:
                x = x * self.scale + self.shift
            return x

    class ReplayNoise:
        """The recorded blocks of draws of a score, tiled over the batch (constants)."""

        def __init__(self, blocks):
            self.blocks = blocks
            self.calls = 0

        def __call__(self, shape):
            block = self.blocks[self.calls]
            self.calls += 1
            return block.repeat(shape[0] // block.shape[0], *([1] * (block.dim() - 1)))

    class Detector(nn.Module):
        """x -> (label, decision): ``predict`` and ``decision_function`` of a detector.

        The score is computed as skvae computes it (the same formula and the
        same fixed draws, recorded as constants of the graph).
        """

        def __init__(self, vae_module, method, chunks, offset):
            super().__init__()
            self.vae = vae_module
            self.method = method
            self.k = sum(len(blocks) and blocks[0].shape[0] for blocks in chunks)
            self.n_chunks = len(chunks)
            for i, blocks in enumerate(chunks):
                for j, block in enumerate(blocks):
                    self.register_buffer(f"noise_{i}_{j}", block)
            self.n_blocks = [len(blocks) for blocks in chunks]
            self.offset = float(offset)

        def _chunk_noise(self, i):
            return ReplayNoise([getattr(self, f"noise_{i}_{j}") for j in range(self.n_blocks[i])])

        def forward(self, x):
            total = None
            for i in range(self.n_chunks):
                noise = self._chunk_noise(i)
                kc = getattr(self, f"noise_{i}_0").shape[0]
                if self.method == "iwae":
                    log_w = self.vae.log_weights(x, noise, copies=kc).view(-1, kc)
                    part = torch.logsumexp(log_w, dim=1)
                    total = part if total is None else torch.logaddexp(total, part)
                    continue
                nll, kl = self.vae.terms(x, noise, copies=kc)
                term = nll if self.method == "reconstruction" else nll + kl
                part = -term.view(-1, kc).sum(dim=1)
                total = part if total is None else total + part
            if self.method == "iwae":
                score = total - math.log(self.k)
            else:
                score = total / self.k
            decision = (score - self.offset).unsqueeze(1)
            label = torch.where(decision >= 0, 1, -1).to(torch.int64)
            return label, decision

    return Encoder, Decoder, Detector


# ---------------------------------------------------------------- checks
def _class_name(estimator):
    return type(estimator).__name__


def _check_estimator(estimator, method):
    """Raise a clear error unless ``estimator``'s ``method`` can be exported."""
    from sklearn.utils.validation import check_is_fitted

    from . import _io

    if _io._ESTIMATORS.get(_class_name(estimator)) is not type(estimator):
        raise TypeError(
            f"skvae.onnx.to_onnx exports skvae's estimators; got {_class_name(estimator)}. "
            "For a Pipeline (or any scikit-learn model), import skvae.onnx and call "
            "skl2onnx.to_onnx(pipeline, X[:1].astype(np.float32))."
        )
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}; got {method!r}.")
    check_is_fitted(estimator)
    name = _class_name(estimator)
    if name == "AuxiliaryClassifierVAE":
        raise ValueError(
            "AuxiliaryClassifierVAE does not export to ONNX: its encoder and decoder "
            "take the classifier's class part (a softmax it computes, or class_prior_), "
            "which the exported graph would have to reproduce. Export a "
            "ConditionalVAETransformer, or convert a separate classifier with skl2onnx."
        )
    if name == "VAEImputer":
        raise ValueError(
            "VAEImputer does not export to ONNX: its transform imputes by importance-"
            "weighted draws of z (stochastic by design, up to 1000 decoder passes per "
            "row). Impute in Python, or export a VAETransformer fitted with "
            "missing_values=np.nan (its encoder takes NaN)."
        )
    if method == "decision_function" and name != "VAEOutlierDetector":
        raise ValueError(
            f"method='decision_function' exports a VAEOutlierDetector; {name} has none. "
            "Use 'transform' or 'inverse_transform'."
        )


def _table_standardization(estimator):
    """(shift, scale) of a table model's columns, or (None, None) for an array model.

    Raises a ValueError for a table with columns that are not floats
    modelled as numbers.
    """
    schema = getattr(estimator, "table_schema_", None)
    if schema is None:
        return None, None
    refused = [
        f"{c.name!r} ({c.kind}, {c.dtype})"
        for c in schema.columns
        if c.kind != "numeric" or not c.dtype.lower().startswith("float")
    ]
    if refused:
        raise ValueError(
            "This model was fitted on a table whose columns are not all floats modelled "
            f"as numbers: {', '.join(refused)}. Its output for them is rounded or is a "
            "category (a DataFrame's column), which an ONNX graph of numbers cannot "
            "return; only tables of float columns export. Encode such columns as "
            "numbers yourself and fit on the array."
        )
    shift = np.array([c.mean for c in schema.columns], dtype=np.float32)
    scale = np.array([c.scale for c in schema.columns], dtype=np.float32)
    return shift, scale


def _check_opset(target_opset):
    if target_opset is None:
        return DEFAULT_OPSET
    if isinstance(target_opset, dict):
        target_opset = target_opset.get("", None)
        if target_opset is None:
            return DEFAULT_OPSET
    if (
        not isinstance(target_opset, Integral)
        or isinstance(target_opset, bool)
        or target_opset < MIN_OPSET
    ):
        raise ValueError(
            f"target_opset must be an integer >= {MIN_OPSET} (torch's exporter writes "
            f"opset {MIN_OPSET} and newer); got {target_opset!r}."
        )
    return int(target_opset)


# ------------------------------------------------------------------ export
def to_onnx(estimator, method="transform", *, log_var=False, conditions=False,
            target_opset=None):
    """Export a fitted skvae model's encoder, decoder or detector to ONNX.

    The graph has a dynamic batch dimension (named ``"batch"``) and runs in
    float32; ONNX Runtime gives skvae's results up to float32 rounding.

    Parameters
    ----------
    estimator : VAETransformer, ConditionalVAETransformer or VAEOutlierDetector
        A fitted model.
    method : {"transform", "inverse_transform", "decision_function"}, \
default="transform"
        What the graph computes:

        - "transform": input ``X`` (batch, ``n_features_in_``), output ``Z``
          (batch, n_components), the posterior means; with ``log_var=True``
          a second output ``log_var``;
        - "inverse_transform": input ``Z`` (batch, n_components), output
          ``X`` (batch, ``n_features_in_``), the likelihood's mean;
        - "decision_function" (:class:`~skvae.VAEOutlierDetector` only):
          input ``X``, outputs ``label`` (batch, 1) int64, +1 inliers and
          -1 outliers (``predict``), and ``scores`` (batch, 1), the
          ``decision_function`` (as skl2onnx's ``IsolationForest``).
    log_var : bool, default=False
        With "transform": also output the posterior log-variance (clamped
        as the model clamps it).
    conditions : bool, default=False
        For a :class:`~skvae.ConditionalVAETransformer`: add an input ``C``
        (batch, ``len(classes_)``), the one-hot label in the order of
        ``classes_`` (an all-zero row is the unknown condition). Without
        it the graph uses the unknown condition, as ``transform(X)`` does.
    target_opset : int or None, default=None
        The ONNX opset, at least 18; None uses :data:`DEFAULT_OPSET`.

    Returns
    -------
    model : onnx.ModelProto
        Save it with ``onnx.save(model, "model.onnx")``; run it with
        ``onnxruntime.InferenceSession(model.SerializeToString())``.

    Raises
    ------
    ImportError
        When the ``onnx`` extra is not installed.
    TypeError
        When ``estimator`` is not one of skvae's estimators (a Pipeline:
        use ``skl2onnx.to_onnx`` after ``import skvae.onnx``).
    ValueError
        When the model or method does not export (see the module's
        docstring), or when torch cannot export the network.

    Examples
    --------
    >>> import numpy as np, onnxruntime
    >>> from sklearn.datasets import load_digits
    >>> from skvae import VAETransformer
    >>> from skvae.onnx import to_onnx
    >>> X = (load_digits().data[:100] / 16).astype(np.float32)
    >>> vae = VAETransformer(n_components=2, max_iter=2, random_state=0).fit(X)
    >>> session = onnxruntime.InferenceSession(to_onnx(vae).SerializeToString())
    >>> Z = session.run(None, {"X": X[:5]})[0]
    >>> bool(np.allclose(Z, vae.transform(X[:5]), rtol=1e-4, atol=1e-5))
    True
    """
    _require()
    _check_estimator(estimator, method)
    opset = _check_opset(target_opset)
    wrapper, example, inputs, outputs = _wrapper(estimator, method, log_var, conditions)
    return _export(wrapper, example, inputs, outputs, opset, _class_name(estimator), method)


def _wrapper(estimator, method, log_var, conditions):
    """The torch module to export, its example inputs and the graph's names."""
    import torch

    Encoder, Decoder, Detector = _torch_modules()
    module = _cpu_copy(estimator.module_)
    width = _condition_width(estimator, conditions)
    shift, scale = _table_standardization(estimator)
    n_features, n_components = estimator.n_features_in_, estimator.n_components
    extra = [torch.zeros(_EXAMPLE_ROWS, width)] if width else []
    extra_names = ["C"] if width else []
    if method == "transform":
        wrapper = Encoder(module, shift, scale, bool(log_var), bool(width))
        example = (torch.zeros(_EXAMPLE_ROWS, n_features), *extra)
        names = ["Z", "log_var"] if log_var else ["Z"]
        return wrapper, example, ["X", *extra_names], names
    if method == "inverse_transform":
        wrapper = Decoder(module, shift, scale, bool(width))
        example = (torch.zeros(_EXAMPLE_ROWS, n_components), *extra)
        return wrapper, example, ["Z", *extra_names], ["X"]
    method_name, k = estimator._score_settings(None, None)
    wrapper = Detector(module, method_name, _score_draws(module, method_name, k,
                                                         n_features), estimator.offset_)
    return wrapper, (torch.full((_EXAMPLE_ROWS, n_features), 0.5),), ["X"], ["label", "scores"]


def _cpu_copy(module):
    """A float32 CPU copy of the fitted module in eval mode (the estimator is untouched)."""
    import copy

    from . import _engine

    with _engine.module_lock(module):
        module = copy.deepcopy(module)
    return module.to("cpu").float().eval()


def _condition_width(estimator, conditions):
    if not conditions:
        return 0
    if _class_name(estimator) != "ConditionalVAETransformer":
        raise ValueError(
            f"conditions=True adds a label input to a ConditionalVAETransformer; "
            f"{_class_name(estimator)} takes no label."
        )
    return len(estimator.classes_)


def _score_draws(module, method, k, n_features):
    """The fixed draws of a detector's score, per chunk of draws, recorded as skvae makes them.

    The score draws ``k`` values of eps per row from
    :class:`skvae._model.CommonNoise` (seeded, the same for every row), in
    chunks of at most ``_INFERENCE_ROWS``, one block per stochastic layer;
    running the score once on one row records them.
    """
    import torch

    from ._estimator import _INFERENCE_ROWS, _SCORE_SEED
    from ._model import CommonNoise

    k_chunk = min(k, _INFERENCE_ROWS)
    chunks = []
    for i, start in enumerate(range(0, k, k_chunk)):
        kc = min(k_chunk, k - start)
        common = CommonNoise(kc, torch.device("cpu"), seed=_SCORE_SEED + 1009 * i)
        blocks = []

        def record(shape, common=common, blocks=blocks, kc=kc):
            block = common((kc, *tuple(shape[1:])))
            blocks.append(block.clone())
            return block.repeat(shape[0] // kc, *([1] * (len(shape) - 1)))

        with torch.no_grad():
            x = torch.full((1, n_features), 0.5)
            if method == "iwae":
                module.log_weights(x, record, copies=kc)
            else:
                module.terms(x, record, copies=kc)
        chunks.append(blocks)
    return chunks


@contextlib.contextmanager
def _quiet_exporter():
    """Silence the exporter's deprecation warnings and its log lines (torchvision, ...)."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "onnxscript")]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _export(wrapper, example, inputs, outputs, opset, name, method):
    """``torch.onnx.export`` (dynamo) with a dynamic batch dimension; the ModelProto."""
    import onnx
    import torch

    batch = torch.export.Dim("batch")
    dynamic = tuple({0: batch} for _ in example)
    try:
        with _quiet_exporter():
            program = torch.onnx.export(
                wrapper, example, dynamo=True, input_names=inputs, output_names=outputs,
                dynamic_shapes=dynamic, opset_version=opset, optimize=True, verbose=False,
                external_data=False,
            )
    except Exception as exc:  # torch raises its own error types, with long reports
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ValueError(
            f"torch could not export the {method} of this {name} to ONNX "
            f"({type(exc).__name__}: {first}). Its architecture or likelihood plugin uses "
            "operations torch.export does not support; the built-in plugins export."
        ) from exc
    model = program.model_proto
    if len(model.functions):
        model = onnx.inliner.inline_local_functions(model)
    model.producer_name = "skvae"
    return model


# ----------------------------------------------------------------- skl2onnx
def _shape_transformer(operator):
    """skl2onnx shape calculator: (N, n_features) -> (N, n_components)."""
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    estimator = operator.raw_operator
    n = operator.inputs[0].get_first_dimension()
    double = isinstance(operator.inputs[0].type, DoubleTensorType)
    kind = DoubleTensorType if double else FloatTensorType
    operator.outputs[0].type = kind([n, estimator.n_components])


def _shape_detector(operator):
    """skl2onnx shape calculator of a detector: label (N, 1) int64, scores (N, 1)."""
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, Int64TensorType

    n = operator.inputs[0].get_first_dimension()
    double = isinstance(operator.inputs[0].type, DoubleTensorType)
    operator.outputs[0].type = Int64TensorType([n, 1])
    operator.outputs[1].type = (DoubleTensorType if double else FloatTensorType)([n, 1])


def _convert_transformer(scope, operator, container):
    """skl2onnx converter of ``transform``: the encoder's graph, inlined."""
    _convert(scope, operator, container, "transform")


def _convert_detector(scope, operator, container):
    """skl2onnx converter of a detector: ``predict`` and ``decision_function``."""
    _convert(scope, operator, container, "decision_function")


def _convert(scope, operator, container, method):
    estimator = operator.raw_operator
    _check_estimator(estimator, method)
    opset = container.target_opset
    if opset is None or opset < MIN_OPSET:
        raise ValueError(
            f"skvae's models convert to ONNX opset {MIN_OPSET} or newer; "
            f"skl2onnx.to_onnx was given target_opset={opset}. Pass target_opset="
            f"{{'': {max(MIN_OPSET, DEFAULT_OPSET)}}} or more."
        )
    wrapper, example, inputs, outputs = _wrapper(estimator, method, False, False)
    model = _export(wrapper, example, inputs, outputs, min(opset, _max_opset()),
                    _class_name(estimator), method)
    _inline(scope, container, model, operator)


def _max_opset():
    """The newest opset both onnx and torch's exporter (onnxscript) write."""
    import onnx

    try:
        from onnxscript.version_converter import SUPPORTED_MAX_ONNX_OPSET
    except ImportError:
        SUPPORTED_MAX_ONNX_OPSET = 23
    return min(onnx.defs.onnx_opset_version(), SUPPORTED_MAX_ONNX_OPSET)


def _inline(scope, container, model, operator):
    """Copy ``model``'s graph into skl2onnx's container, between the operator's variables.

    Every initializer and intermediate tensor gets a fresh name from the
    scope; float64 inputs are cast to float32 and the outputs back.
    """
    from onnx import AttributeProto, TensorProto, helper, numpy_helper
    from skl2onnx.common.data_types import DoubleTensorType

    graph = model.graph
    opsets = {entry.domain: entry.version for entry in model.opset_import}
    double = isinstance(operator.inputs[0].type, DoubleTensorType)
    rename = {"": ""}

    def fresh(name):
        if name not in rename:
            rename[name] = scope.get_unique_variable_name(f"skvae_{name}")
        return rename[name]

    source = operator.inputs[0].full_name
    if double:
        cast = scope.get_unique_variable_name("skvae_input_float")
        container.add_node("Cast", [source], [cast], to=TensorProto.FLOAT,
                           name=scope.get_unique_operator_name("SkvaeCast"))
        source = cast
    rename[graph.input[0].name] = source
    for output, variable in zip(graph.output, operator.outputs):
        if double and variable.type.__class__ is DoubleTensorType:
            continue  # a float result, cast below
        rename[output.name] = variable.full_name
    for init in graph.initializer:
        array = numpy_helper.to_array(init)
        container.add_initializer(fresh(init.name), init.data_type, list(array.shape),
                                  numpy_helper.from_array(array, fresh(init.name)))
    for node in graph.node:
        attrs = {}
        for attr in node.attribute:
            if attr.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS):
                raise ValueError(
                    f"The exported graph holds a {node.op_type} node with a subgraph, which "
                    "skvae's skl2onnx converter does not inline."
                )
            attrs[attr.name] = helper.get_attribute_value(attr)
        container.add_node(
            node.op_type, [fresh(i) for i in node.input], [fresh(o) for o in node.output],
            op_domain=node.domain, op_version=opsets.get(node.domain),
            name=scope.get_unique_operator_name(f"Skvae{node.op_type}"), **attrs,
        )
    if double:
        for output, variable in zip(graph.output, operator.outputs):
            if variable.type.__class__ is DoubleTensorType:
                container.add_node("Cast", [fresh(output.name)], [variable.full_name],
                                   to=TensorProto.DOUBLE,
                                   name=scope.get_unique_operator_name("SkvaeCast"))


def _register():
    """Register skvae's converters with skl2onnx (called once, on import)."""
    _, skl2onnx = _require()
    from ._conditional import ConditionalVAETransformer
    from ._estimator import VAETransformer
    from ._outlier import VAEOutlierDetector

    for cls in (VAETransformer, ConditionalVAETransformer):
        skl2onnx.update_registered_converter(
            cls, f"Skvae{cls.__name__}", _shape_transformer, _convert_transformer
        )
    skl2onnx.update_registered_converter(
        VAEOutlierDetector, "SkvaeVAEOutlierDetector", _shape_detector, _convert_detector
    )


_register()
