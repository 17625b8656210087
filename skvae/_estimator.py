"""VAETransformer: a variational autoencoder as a scikit-learn transformer."""

import functools
import math
import os
import warnings
from numbers import Integral, Real


import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import assert_all_finite, check_random_state
from sklearn.utils._param_validation import InvalidParameterError, Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted
from sklearn.utils.validation import validate_data as _sklearn_validate_data

from . import _checkpoint, _data, _device, _engine, _io, _optimizers, _schedule, _state, _step, distributed
from . import _table
from . import _model
from ._model import CommonNoise, RandomNoise, VAEModule
from ._plugin_check import check_vae_module
from ._registry import resolve_plugin
from ._sklearn_callbacks import CallbackSupport, fit_callbacks
from .hub import PretrainedMixin
from ._warnings import user_stacklevel
from .base import Architecture, Likelihood, Prior

# Rows per forward pass at inference: bounds the memory of transform,
# inverse_transform, score_samples and sample whatever the number of rows.
_INFERENCE_ROWS = 1024
# score_samples averages the ELBO over this many draws of eps (antithetic
# pairs), the same draws for every row, so that it is deterministic and each
# row's score does not depend on the other rows.
_SCORE_DRAWS = 16
_IWAE_DRAWS = 1000
# Draws of z per row for imputation (VAETransformer._complete).
_IMPUTE_DRAWS = 1000
_SCORE_SEED = 0
_PLUGIN_PARAMS = ("architecture", "likelihood", "prior")


def validate_data(estimator, *args, **kwargs):
    """:func:`sklearn.utils.validation.validate_data`, with a clearer message for text.

    Non-numeric values (strings, categories) are a ValueError that says to
    encode them first, and sparse matrices a TypeError that says to densify
    them (scikit-learn's own message).

    Examples
    --------
    >>> import numpy as np
    >>> from skvae import VAETransformer
    >>> validate_data(VAETransformer(), np.array([["a", "b"]]), dtype=np.float32)
    Traceback (most recent call last):
    ...
    ValueError: VAETransformer needs numeric data, but X holds values that are not numbers
    (could not convert string to float: ...). Encode text or categorical columns as numbers
    first, e.g. with sklearn.preprocessing.OneHotEncoder or OrdinalEncoder.
    """
    try:
        return _sklearn_validate_data(estimator, *args, **kwargs)
    except ValueError as exc:
        if not str(exc).startswith(("could not convert", "dtype='numeric' is not compatible")):
            raise
        raise ValueError(
            f"{type(estimator).__name__} needs numeric data, but X holds values that are "
            f"not numbers ({exc}). Encode text or categorical columns as numbers first, "
            "e.g. with sklearn.preprocessing.OneHotEncoder or OrdinalEncoder."
        ) from None


class _TrainingInterrupted(KeyboardInterrupt):
    """A Ctrl-C during ``fit``, raised again once the estimator holds the kept epoch."""


class VAETransformer(
    PretrainedMixin, CallbackSupport, ClassNamePrefixFeaturesOutMixin, TransformerMixin,
    BaseEstimator,
):
    """Variational autoencoder (VAE) as a scikit-learn transformer.

    Learns an encoder q(z | x) = N(mean(x), diag(var(x))) and a decoder
    p(x | z) by maximising the evidence lower bound (ELBO). ``transform``
    returns the posterior mean, ``inverse_transform`` decodes, ``sample``
    generates and ``score_samples`` gives the per-sample ELBO.

    The objective, per sample, is the negative ELBO with a KL weight::

        loss = -log p(x | z) + beta * KL(q(z | x) || p(z))

    with -log p(x | z) summed over features; minibatches average it. The same
    objective gives the validation loss.

    The networks, the likelihood and the prior are plugins, found by name in
    the ``skvae`` entry-point group (see :func:`skvae.list_plugins`).

    Parameters
    ----------
    n_components : int, default=2
        Size of the latent space.
    architecture : str, Architecture subclass or instance, default="mlp"
        Encoder and decoder networks. A configured instance, such as
        ``MLP(hidden_sizes=(512, 256))``, exposes its parameters to
        ``set_params`` and grid search (``architecture__hidden_sizes``); a
        name or class is turned into an instance when such a nested parameter
        is set.
    likelihood : "auto", str, Likelihood subclass or instance, default="auto"
        Observation model p(x | z). On an array, "auto" picks "bernoulli"
        when all training values lie in [0, 1] and "gaussian" (learned scale
        per feature) otherwise; ``likelihood_`` tells which. On a pandas
        DataFrame, "auto" picks per column from its dtype (floats and
        integers: "gaussian" on standardised values; booleans and 0/1
        columns: "bernoulli"; category, object and string columns:
        "categorical") and the model reads the frame as a table (see
        Notes); a ``ColumnLikelihood`` gives each group of columns its own.
    prior : str, Prior subclass or instance, default="normal"
        Prior p(z).
    beta : float, default=1.0
        Weight of the KL term (beta-VAE); 1 gives the ELBO.
    kl_warmup : float, default=0.0
        Fraction of ``max_iter`` over which beta ramps linearly from 0 to
        ``beta`` (3/7 gives ``beta_e = min(e * beta / floor(3 N / 7), beta)``).
    kl_cycles : int, default=1
        Number of KL annealing cycles (cyclical annealing, Fu et al. 2019):
        the epochs split into this many cycles, each starting at beta = 0 and
        ramping over ``kl_warmup`` of the cycle. 1 is a single warm-up.
    free_bits : float, default=0.0
        Free bits (Kingma et al. 2016): the KL term of each latent dimension,
        averaged over the batch, counts as at least this many nats, so that
        the model is not pushed to collapse it. Needs a prior that factorises
        over dimensions (such as "normal").
    n_importance : int, default=1
        Importance samples per data point in training. 1 trains the
        (beta-weighted) ELBO; k > 1 trains the IWAE bound (Burda et al. 2016),
        which has no KL weight (beta must be 1, without warm-up or free bits).
    max_iter : int, default=100
        Number of epochs (passes over the training data).
    batch_size : int, default=128
        Minibatch size; clipped to the number of samples.
    learning_rate : float, default=1e-3
        Step size of the optimizer.
    optimizer : {"adam", "adamw", "rmsprop", "sgd"}, default="adam"
        Torch optimizer ("sgd" uses momentum 0.9).
    lr_schedule : {"constant", "cosine", "linear"}, default="constant"
        Learning rate per epoch: constant, or annealed to 0 over ``max_iter``
        epochs along half a cosine or a line.
    clip_grad_norm : float or None, default=None
        When set, gradients are rescaled so that their global 2-norm is at
        most this value before each step.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data and stop when
        its loss has not improved by ``tol`` for ``n_iter_no_change`` epochs;
        the best weights are restored. When False, training stops on the same
        rule applied to the training loss. During KL warm-up no epoch counts.
    validation_fraction : float, default=0.1
        Share of the training data held out when ``early_stopping`` is True.
    n_iter_no_change : int, default=10
        Epochs without improvement before stopping.
    tol : float, default=1e-4
        Minimum improvement of the monitored loss, in nats per sample.
    device : str or torch.device, default="auto"
        Torch device; "auto" picks CUDA when available, else the CPU.
    precision : {"float32", "bf16-mixed"}, default="float32"
        Arithmetic of training. "bf16-mixed" runs the training and validation
        forward passes under bfloat16 autocast: matrix products in bfloat16,
        losses and reductions in float32; weights, gradients and optimizer
        state stay float32. Fast on GPUs with bfloat16 tensor cores (A100,
        H100); on most CPUs it is slower. Inference (``transform``,
        ``score_samples``, ...) always runs in float32.
    compile : bool or {"default", "reduce-overhead", "max-autotune", \
            "max-autotune-no-cudagraphs"}, default=False
        Compile the training step with :func:`torch.compile` (True: mode
        "default"; "reduce-overhead" replays CUDA graphs on a GPU). Pays off
        for long fits; needs a C++ compiler on the CPU. See
        :doc:`/gpus`.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation and every draw of training, through a
        :class:`torch.Generator` (the global torch RNG is left alone). The
        same seed gives the same model on the CPU.
    verbose : int, default=0
        Show a progress bar over epochs when positive.
    warm_start : bool, default=False
        Continue training the fitted model when ``fit`` is called again.
    on_divergence : {"raise", "restore"}, default="raise"
        When an epoch's loss or weights become NaN or infinite: "raise" a
        FloatingPointError (the estimator unchanged), or "restore" the last
        completed epoch, halve the learning rate and train it again (at most
        5 times). See :doc:`/training`.
    checkpoint_path : str, path-like or None, default=None
        When set, ``fit`` writes a checkpoint (a ``.skvae`` file, atomically)
        after every epoch, and resumes from it when the file exists: the
        same model as an uninterrupted fit, at most the epoch in progress
        lost. The file must come from the same class, parameters and data.
        See :doc:`/checkpoints`.
    data_on_device : "auto" or bool, default="auto"
        True: the training set is copied to ``device`` once (fastest). False:
        it stays in its host array (a :class:`numpy.memmap` larger than
        memory), read one minibatch at a time; the same model either way.
        "auto": False for a memmap, else True. See :doc:`/large_data`.
    missing_values : None or np.nan, default=None
        None: NaN in X is an error. ``np.nan``: NaN entries are missing
        values, in ``fit`` and in every method that takes X (MIWAE, Mattei
        and Frellsen 2019): the reconstruction term sums the likelihood over
        the observed entries only, and the encoder sees the zero-filled row
        with its missingness mask (when the architecture can take it, as
        "mlp" does; else the zero-filled row alone). A feature with no
        observed value in the data of a new fit is an error. Infinite values
        stay an error. See :doc:`/missing_values`.

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained VAE (network, likelihood and prior modules).
    architecture_, likelihood_, prior_ : Plugin
        The resolved plugin configurations.
    optimizer_ : torch.optim.Optimizer
        The optimizer, kept for ``warm_start`` and ``partial_fit``.
    history_ : list of dict
        One dict per epoch with keys ``epoch``, ``loss``, ``reconstruction``
        (-log p(x|z)), ``kl``, ``beta``, ``learning_rate``, ``val_loss``
        (None without validation) and ``seconds``; ``reconstruction`` and
        ``kl`` are None under the IWAE objective. An epoch trained again
        after a divergence (``on_divergence="restore"``) also has
        ``divergences``, a list of str.
    n_iter_ : int
        Number of epochs run (completed epochs, after an interruption).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when X has string column names.
    table_schema_ : TableSchema
        Only for a model fitted on a table: per column its name, dtype,
        kind ("numeric", "binary", "categorical"), categories, likelihood
        (``table_schema_.likelihoods``: the choice of ``likelihood="auto"``)
        and standardisation. See :mod:`skvae._table`.

    Notes
    -----
    The user guide discusses these parameters at length: :doc:`/training`
    (warm-up, free bits, IWAE, stopping, divergences), :doc:`/tables`
    (pandas and polars DataFrames of mixed columns, fitted as they are),
    :doc:`/checkpoints` (Ctrl-C and resuming), :doc:`/large_data` (memory
    maps, ``partial_fit``), :doc:`/gpus` and :doc:`/reproducibility`.

    A failed ``fit`` leaves the estimator exactly as it was. A
    KeyboardInterrupt (Ctrl-C) after the first completed epoch keeps the
    last completed epoch (the best one with early stopping), then is raised
    again; catch it to use the model trained so far. When ``max_iter``
    epochs end while the loss still improves by more than ``tol``, ``fit``
    warns with a :class:`~sklearn.exceptions.ConvergenceWarning`, as
    ``MLPClassifier`` does. On the CPU, the same int ``random_state`` gives
    bit-identical models and outputs for the same data, versions, number of
    threads and CPU kernels; on a GPU, models equal in distribution.

    See Also
    --------
    sklearn.decomposition.PCA : Linear dimensionality reduction.
    skvae.list_plugins : The registered architectures, likelihoods and priors.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skvae import VAETransformer
    >>> X = load_digits().data / 16
    >>> vae = VAETransformer(n_components=2, max_iter=5, random_state=0).fit(X)
    >>> vae.transform(X[:3]).shape
    (3, 2)
    >>> vae.likelihood_
    Bernoulli()
    >>> bool(vae.score(X) < 0)
    True
    """

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "architecture": [str, type, Architecture],
        "likelihood": [str, type, Likelihood],
        "prior": [str, type, Prior],
        "beta": [Interval(Real, 0, None, closed="left")],
        "kl_warmup": [Interval(Real, 0, 1, closed="both")],
        "kl_cycles": [Interval(Integral, 1, None, closed="left")],
        "free_bits": [Interval(Real, 0, None, closed="left")],
        "n_importance": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "optimizer": [StrOptions(set(_optimizers.OPTIMIZERS))],
        "lr_schedule": [StrOptions(set(_schedule.LR_SCHEDULES))],
        "clip_grad_norm": [Interval(Real, 0, None, closed="neither"), None],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "device": [str, torch.device],
        "precision": [StrOptions(set(_step.PRECISIONS))],
        "compile": ["boolean", StrOptions(set(_step.COMPILE_MODES))],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "on_divergence": [StrOptions(set(_engine.DIVERGENCE_OPTIONS))],
        "checkpoint_path": [str, os.PathLike, None],
        "data_on_device": ["boolean", StrOptions({"auto"})],
        "missing_values": [None, Real],
    }

    def __init__(
        self,
        n_components=2,
        *,
        architecture="mlp",
        likelihood="auto",
        prior="normal",
        beta=1.0,
        kl_warmup=0.0,
        kl_cycles=1,
        free_bits=0.0,
        n_importance=1,
        max_iter=100,
        batch_size=128,
        learning_rate=1e-3,
        optimizer="adam",
        lr_schedule="constant",
        clip_grad_norm=None,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        device="auto",
        precision="float32",
        compile=False,
        random_state=None,
        verbose=0,
        warm_start=False,
        on_divergence="raise",
        checkpoint_path=None,
        data_on_device="auto",
        missing_values=None,
    ):
        self.n_components = n_components
        self.architecture = architecture
        self.likelihood = likelihood
        self.prior = prior
        self.beta = beta
        self.kl_warmup = kl_warmup
        self.kl_cycles = kl_cycles
        self.free_bits = free_bits
        self.n_importance = n_importance
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.lr_schedule = lr_schedule
        self.clip_grad_norm = clip_grad_norm
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.device = device
        self.precision = precision
        self.compile = compile
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.on_divergence = on_divergence
        self.checkpoint_path = checkpoint_path
        self.data_on_device = data_on_device
        self.missing_values = missing_values

    # ------------------------------------------------------------------ params
    def _validate_params(self):
        """scikit-learn's parameter validation, and no booleans for numbers.

        ``True`` is an int to Python, so that ``Interval`` constraints would
        take ``n_components=True``; it is refused here with the same message.
        """
        super()._validate_params()
        for name, constraints in self._parameter_constraints.items():
            value = getattr(self, name, None)
            if not isinstance(value, (bool, np.bool_)) or "boolean" in constraints:
                continue
            if any(isinstance(c, Interval) for c in constraints):
                allowed = [str(c) if c is not None else "None" for c in constraints]
                allowed = allowed[0] if len(allowed) == 1 else (
                    f"{', '.join(allowed[:-1])} or {allowed[-1]}"
                )
                raise InvalidParameterError(
                    f"The {name!r} parameter of {type(self).__name__} must be {allowed}. "
                    f"Got {value!r} instead."
                )

    def set_params(self, **params):
        """Set parameters, including nested plugin parameters.

        ``set_params(architecture__hidden_sizes=(64,))`` works even while
        ``architecture`` is a name or a class: it is first replaced by a
        default instance of that plugin.

        Parameters
        ----------
        **params : dict
            Estimator parameters.

        Returns
        -------
        self : VAETransformer
        """
        for key in params:
            top, sep, _ = key.partition("__")
            if sep and top in _PLUGIN_PARAMS and top not in params:
                spec = getattr(self, top)
                if isinstance(spec, (str, type)):
                    if top == "likelihood" and spec == "auto":
                        raise ValueError(
                            f"Cannot set {key!r} while likelihood='auto'; "
                            "choose a likelihood first, e.g. likelihood='gaussian'."
                        )
                    setattr(self, top, resolve_plugin(top, spec))
        return super().set_params(**params)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.allow_nan = _is_nan(getattr(self, "missing_values", None))
        return tags

    # ---------------------------------------------------------- missing values
    def _check_missing_values(self):
        """Return whether NaN marks missing values (``missing_values=np.nan``)."""
        value = self.missing_values
        if value is None:
            return False
        if _is_nan(value):
            return True
        raise ValueError(
            f"missing_values must be None (NaN is an error) or np.nan (NaN entries are "
            f"missing); got {value!r}. Replace the entries that mark a missing value by "
            "np.nan first, e.g. X = np.where(X == value, np.nan, X)."
        )

    def _fitted_missing(self):
        """Whether the fitted model takes missing values (NaN entries)."""
        return bool(getattr(self.module_, "missing_values", False))

    def _missing_config(self):
        """The module's build options for ``missing_values``."""
        return {"missing_values": True} if self._check_missing_values() else {}

    @property
    def _n_features_out(self):
        """Number of output features (for get_feature_names_out)."""
        return self.n_components

    # --------------------------------------------------------------------- fit
    def fit(self, X, y=None):
        """Fit the VAE on X.

        Parameters
        ----------
        X : array-like or pandas DataFrame of shape (n_samples, n_features)
            Training data (float32 stays float32). A DataFrame may be a
            table of numeric, boolean, category and string columns (see
            :doc:`/tables`).
        y : None
            Ignored.

        Returns
        -------
        self : VAETransformer
            The fitted estimator.
        """
        return self._fit(X, n_epochs=None, incremental=False, target=y)

    def partial_fit(self, X, y=None):
        """Train for one more epoch on X (initialising the model on the first call).

        The KL warm-up follows the epoch count ``n_iter_`` against
        ``max_iter``; early stopping does not apply.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : None
            Ignored.

        Returns
        -------
        self : VAETransformer
            The updated estimator.
        """
        return self._fit(X, n_epochs=1, incremental=True, target=y)

    def _fit(self, X, n_epochs, incremental, target=None, **fit_args):
        # target: the y given to an unsupervised fit, for scikit-learn's callbacks only.
        # All or nothing: whatever fails (bad input, divergence, a callback, a
        # Ctrl-C before the first epoch completes), the estimator is left
        # exactly as it was before the call. A Ctrl-C after that ends training
        # at the last completed (or best) epoch, which the estimator keeps,
        # and is raised again (_TrainingInterrupted) once that state is in place.
        saved_attrs = dict(self.__dict__)
        saved_state = None
        if hasattr(self, "module_"):
            saved_state = _state.Snapshot(self.module_, self.optimizer_, self._generator)
        try:
            max_epochs = n_epochs or self.max_iter
            y = fit_args.get("y", target)
            with fit_callbacks(self, X, y, max_epochs=max_epochs) as callbacks:
                return self._fit_unsafe(X, n_epochs, incremental, callbacks, **fit_args)
        except _TrainingInterrupted:
            raise
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved_attrs)
            if saved_state is not None:
                saved_state.restore()
            raise

    def _fit_unsafe(self, X, n_epochs, incremental, callbacks=(), **fit_args):
        """Fit, leaving the estimator half-changed on failure (:meth:`_fit` undoes that)."""
        self._validate_params()
        self._check_objective()
        missing = self._check_missing_values()
        continuing = (incremental or self.warm_start) and hasattr(self, "module_")
        data = self._training_data(X, reset=not continuing, **fit_args)
        data.missing = missing
        # A table's likelihood is configured with its schema (see _table_training_rows).
        table_likelihood = self.__dict__.pop("_table_likelihood", None)
        if missing and not continuing:
            _check_empty_features(data)
        # partial_fit neither reads nor writes checkpoints.
        checkpoint = None
        if self.checkpoint_path is not None and not incremental:
            checkpoint = _checkpoint.CheckpointFile(self, data)
        if continuing:
            fit = self._continued_fit(data, n_epochs, checkpoint)
        else:
            fit = self._resumed_fit(data, checkpoint) or self._new_fit(
                data, n_epochs, table_likelihood
            )
        result, stopper = self._train(fit, data, incremental, checkpoint, callbacks)
        for name, value in fit.attributes(result.history).items():
            setattr(self, name, value)
        if result.interrupted:
            raise _TrainingInterrupted(self._interrupted_message(stopper, checkpoint))
        if stopper is not None and not result.stopped and result.history:
            warnings.warn(
                f"{type(self).__name__} reached max_iter={self.max_iter} epochs while the "
                f"loss still improved by more than tol={self.tol} within the last "
                f"n_iter_no_change={self.n_iter_no_change} epochs: the model has not "
                "converged. Increase max_iter, or set warm_start=True and fit again to "
                "train on.",
                ConvergenceWarning,
                stacklevel=user_stacklevel(),
            )
        return self

    def _check_objective(self):
        if self.n_importance > 1 and (self.beta != 1 or self.kl_warmup or self.free_bits):
            raise ValueError(
                f"n_importance={self.n_importance} trains the IWAE bound, which has "
                "no KL weight: set beta=1, kl_warmup=0 and free_bits=0, or use "
                "n_importance=1 for the beta-weighted ELBO."
            )

    # ------------------------------------------- the three ways a fit starts
    def _new_fit(self, data, n_epochs, likelihood=None):
        """A fit from new weights, seeded by ``random_state``.

        ``likelihood``: the configured likelihood of a table (None: resolved
        from the ``likelihood`` parameter and the data).
        """
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        device = _device.resolve(self.device)
        architecture = resolve_plugin("architecture", self.architecture)
        if likelihood is None:
            likelihood = self._resolve_likelihood(data)
        prior = resolve_plugin("prior", self.prior)
        data.check_likelihood(likelihood)
        data.check_training(likelihood)
        module = self._make_module(
            architecture, likelihood, prior, data.n_features, self.n_components, seed,
            **self._module_config(),
        )
        fitted = _state.rebuild(
            module, device, optimizer_name=self.optimizer, learning_rate=self.learning_rate,
            seed=seed,
        )
        return _Fit(architecture, likelihood, prior, fitted, seed, stop_epoch=n_epochs or self.max_iter)

    def _continued_fit(self, data, n_epochs, checkpoint):
        """A fit that trains on from this estimator's weights (warm start, partial_fit)."""
        if self.module_.n_components != self.n_components:
            raise ValueError(
                f"n_components={self.n_components} differs from the fitted "
                f"model's {self.module_.n_components}; set warm_start=False "
                "to fit a new model."
            )
        if self._fitted_missing() != data.missing:
            raise ValueError(
                f"missing_values={self.missing_values!r} differs from the fitted model's "
                f"({'np.nan' if self._fitted_missing() else 'None'}), whose networks were "
                "built for it; set warm_start=False to fit a new model."
            )
        data.check_likelihood(self.likelihood_)
        if checkpoint is not None:
            checkpoint.check_overwritable()
        fitted = _state.Fitted(self.module_, self.optimizer_, self._generator, self._device)
        return _Fit(
            self.architecture_, self.likelihood_, self.prior_, fitted, self._seed,
            history=list(self.history_), stop_epoch=self.n_iter_ + (n_epochs or self.max_iter),
        )

    def _resumed_fit(self, data, checkpoint):
        """The fit saved in ``checkpoint_path`` by an interrupted fit, or None."""
        resumed = None if checkpoint is None else checkpoint.resume()
        if resumed is None:
            return None
        saved = resumed.estimator
        data.check_likelihood(saved.likelihood_)
        fitted = _state.Fitted(saved.module_, saved.optimizer_, saved._generator, saved._device)
        state = resumed.state
        return _Fit(
            saved.architecture_, saved.likelihood_, saved.prior_, fitted, saved._seed,
            history=list(saved.history_),
            stop_epoch=saved.n_iter_ if state["finished"] else state["stop_epoch"],
            result=_engine.RunResult(lr_scale=state["lr_scale"], halvings=state["halvings"]),
            resumed=resumed,
        )

    # -------------------------------------------------------------- training
    def _train(self, fit, data, incremental, checkpoint, callbacks):
        """Run the training loop of ``fit``; return its RunResult and early stopping (or None)."""
        self._prepare_module(fit.module)
        validation = None
        if self.early_stopping and not incremental:
            data, validation = data.split(self.validation_fraction, fit.seed)
        stopper = None
        if not incremental:
            stopper = _engine.EarlyStopping(
                tol=self.tol, patience=self.n_iter_no_change, restore_best=validation is not None
            )
            if fit.resumed is not None:
                fit.resumed.restore_stopper(stopper, fit.device)
        on_the_loop = [stopper] if stopper is not None else []
        if self.verbose:
            on_the_loop.append(_engine.ProgressBar())
        on_the_loop += list(callbacks)
        if checkpoint is not None:
            on_the_loop.append(_checkpoint.Checkpointing(checkpoint, fit, stopper))
        result = _engine.run(
            self._trainer(fit),
            data.to(fit.device),
            self._schedule(fit),
            distributed.strategy_for(fit.device),
            on_the_loop,
            validation=None if validation is None else validation.to(fit.device),
            result=fit.result,
            estimator=self,
            fitted=fit.attributes,
        )
        return result, stopper

    def _trainer(self, fit):
        return _engine.Trainer(
            fit.module,
            fit.optimizer,
            fit.generator,
            self.batch_size,
            free_bits=self.free_bits,
            n_importance=self.n_importance,
            clip_grad_norm=self.clip_grad_norm,
            precision=self.precision,
            compile=self.compile,
            **self._trainer_options(),
        )

    def _schedule(self, fit):
        beta, kl_warmup, max_iter, kl_cycles = self.beta, self.kl_warmup, self.max_iter, self.kl_cycles
        learning_rate, lr_schedule = self.learning_rate, self.lr_schedule
        return _engine.Schedule(
            first_epoch=fit.first_epoch,
            stop_epoch=fit.stop_epoch,
            beta=lambda e: _schedule.beta_at(e, beta, kl_warmup, max_iter, kl_cycles),
            learning_rate=lambda e: _schedule.lr_at(e, learning_rate, lr_schedule, max_iter),
            warmup_epochs=_schedule.warmup_end(kl_warmup, max_iter, kl_cycles),
            val_seed=fit.seed + 1,
            on_divergence=self.on_divergence,
        )

    def _interrupted_message(self, stopper, checkpoint):
        """What a KeyboardInterrupt after ``n_iter_`` completed epochs left, in words."""
        kept = (
            "the best epoch's weights (early stopping)"
            if stopper is not None and stopper.best_state is not None
            else "the weights of the last completed epoch"
        )
        then = (
            "fit again to resume from the checkpoint"
            if checkpoint is not None
            else "set warm_start=True and fit again to train on"
        )
        return (
            f"Training was interrupted during epoch {self.n_iter_ + 1}; "
            f"{type(self).__name__} keeps {kept} after {self.n_iter_} completed epochs "
            f"(n_iter_={self.n_iter_}); {then}."
        )

    # ------------------------------------------------- hooks for subclasses
    def _training_data(self, X, reset, **fit_args):
        """Validate the training data; return a :class:`~skvae._data.TrainingData`.

        Subclasses that learn from labels take ``y`` (and more) here, as
        keyword arguments of :meth:`_fit`, and give the data its one-hot
        conditions.
        """
        return _data.TrainingData(self._training_rows(X, reset))

    def _training_rows(self, X, reset):
        """Validated rows: in memory, or a HostRows read batch by batch (``data_on_device``).

        A table (:meth:`_reads_table`) is encoded by its schema: fitted on
        X on a new fit (``reset``), the fitted ``table_schema_`` otherwise.
        """
        if self._reads_table(X, reset):
            return self._table_training_rows(X, reset)
        if reset:
            self.__dict__.pop("table_schema_", None)
        setting = self.data_on_device
        streams = isinstance(X, np.memmap) if isinstance(setting, str) else not setting
        if not streams:
            return validate_data(
                self, X, dtype=[np.float32, np.float64], reset=reset, ensure_min_features=1,
                ensure_all_finite=self._finite_rule(),
            )
        return self._validate_streamed_rows(X, reset)

    # ------------------------------------------------------------------ tables
    def _fitted_schema(self):
        """The fitted table schema, or None for a model fitted on arrays."""
        return getattr(self, "table_schema_", None)

    def _reads_table(self, X, reset):
        """Whether X is read as a table (see :mod:`skvae._table`).

        A fitted table model reads every X as a table. A new fit does when X
        is a pandas DataFrame and ``likelihood`` is a ``ColumnLikelihood``, or
        X has a column that is not numbers or booleans, or ``likelihood`` is
        "auto" and X has a column that is not real or integer numbers
        (booleans too). A frame of numbers alone with "auto" is read as an
        array, as scikit-learn expects a DataFrame and its values to give
        the same model. A polars DataFrame is read as its pandas
        counterpart (:func:`skvae._table.as_pandas`).
        """
        if not reset:
            return self._fitted_schema() is not None
        X = _table.as_pandas(X)[0]
        if not _table.is_dataframe(X):
            return False
        spec = self.likelihood
        if isinstance(spec, str) and spec == "auto":
            return _table.has_non_number_columns(X)
        name = spec if isinstance(spec, str) else getattr(spec, "name", None)
        return name == _table.COLUMNS_LIKELIHOOD or _table.has_text_columns(X)

    def _table_frame(self, X, reset):
        """X checked by scikit-learn (feature names, number of features) as a pandas frame."""
        import pandas as pd

        X = _table.as_pandas(X)[0]
        if not _table.is_dataframe(X):
            X = check_array(X, dtype=None, ensure_all_finite=False)
        validate_data(self, X, skip_check_array=True, reset=reset)
        if X.shape[0] < 1 or X.shape[1] < 1:
            raise ValueError(
                f"Found array with {X.shape[0]} sample(s) and {X.shape[1]} feature(s) "
                f"(shape={X.shape}) while a minimum of 1 is required by "
                f"{type(self).__name__}."
            )
        return X if _table.is_dataframe(X) else pd.DataFrame(X)

    def _table_training_rows(self, X, reset):
        """The model's view of a table for training (fitting the schema on a new fit)."""
        frame = self._table_frame(X, reset)
        if reset:
            schema, likelihood, rows = _table.fit_table(frame, self.likelihood)
            if _table.is_polars_frame(X):
                schema.polars_dtypes = tuple(_table.polars_dtype_names(X))
            self.table_schema_ = schema
            self._table_likelihood = likelihood  # taken by _fit_unsafe
        else:
            rows = self._fitted_schema().encode(frame)
        missing = self._check_missing_values()
        assert_all_finite(rows, allow_nan=missing, input_name="X",
                          estimator_name=type(self).__name__)
        setting = self.data_on_device
        if isinstance(setting, str) or setting:
            return rows
        host = _data.HostRows(rows, rows.dtype)
        host.value_range = _data.value_range(rows, missing)
        if missing:
            host.observed_count = (~np.isnan(rows)).sum(axis=0)
        return host

    def _table_rows(self, X):
        """The model's view of a table for inference (the fitted schema)."""
        rows = self._fitted_schema().encode(self._table_frame(X, reset=False))
        missing = self._fitted_missing()
        assert_all_finite(rows, allow_nan=missing, input_name="X",
                          estimator_name=type(self).__name__)
        _data.check_data(self.likelihood_, rows, missing)
        return rows

    def _as_table(self, X):
        """The model's output X as the fitted table (a DataFrame), or X for an array model."""
        schema = self._fitted_schema()
        return X if schema is None else schema.output(schema.decode(X))

    def _finite_rule(self, fitted=False):
        """``ensure_all_finite`` of the data checks: "allow-nan" with missing values.

        ``fitted``: by the fitted model (inference), else by the parameter.
        """
        missing = self._fitted_missing() if fitted else self._check_missing_values()
        return "allow-nan" if missing else True

    def _validate_streamed_rows(self, X, reset):
        """Validate X chunk by chunk, without a whole copy; return a HostRows.

        scikit-learn's checks (dimensions, numeric dtype, number of features
        and their names) run on the first row, which sets
        ``n_features_in_``; the NaN/infinity check and the value range (for
        ``likelihood="auto"``) then go over every chunk.
        """
        dtypes = [np.float32, np.float64]
        finite = self._finite_rule()
        missing = finite == "allow-nan"
        if not isinstance(X, np.ndarray):
            # Lists, DataFrames: validated in memory, then kept on the host.
            X = validate_data(
                self, X, dtype=dtypes, reset=reset, ensure_min_features=1,
                ensure_all_finite=finite,
            )
            rows = _data.HostRows(X, X.dtype)
            rows.value_range = _data.value_range(X, missing)
            if missing:
                rows.observed_count = (~np.isnan(X)).sum(axis=0)
            return rows
        # The first row (or none) gives scikit-learn's checks and errors.
        head = validate_data(
            self, X[:1] if X.ndim else X, dtype=dtypes, reset=reset, ensure_min_features=1,
            ensure_all_finite=finite,
        )
        rows = _data.HostRows(X, head.dtype)
        rows.releaser.release()
        rows.value_range = _data.scan(rows, type(self).__name__, allow_nan=missing)
        return rows

    def _module_config(self):
        """Keyword arguments of :meth:`_make_module` beyond the plugins and sizes."""
        return self._missing_config()

    def _make_module(
        self, architecture, likelihood, prior, n_features, n_components, seed, **config
    ):
        """Build the module (on the CPU, weights seeded by ``seed``); also used by unpickling."""
        return _build_module(
            architecture, likelihood, prior, n_features, n_components, seed, **config
        )

    def _prepare_module(self, module):
        """Set the fit-time options of a new or continued module (none here)."""

    def _trainer_options(self):
        """Extra keyword arguments of :class:`skvae._engine.Trainer`."""
        return {}

    def _resolve_likelihood(self, data):
        """The likelihood of a fit on an array, configured on its columns.

        "auto": "bernoulli" for values in [0, 1], else "gaussian". A
        likelihood that overrides ``configure`` gets one
        :class:`skvae.base.Column` per feature (named by
        ``feature_names_in_`` or ``x0``, ``x1``..., kind "numeric", the
        observed range).
        """
        spec = self.likelihood
        if isinstance(spec, str) and spec == "auto":
            low, high = data.value_range()
            spec = "bernoulli" if low >= 0.0 and high <= 1.0 else "gaussian"
        likelihood = resolve_plugin("likelihood", spec)
        if type(likelihood).configure is Likelihood.configure:
            return likelihood
        names = getattr(self, "feature_names_in_", None)
        return _table.configure(likelihood, _table.array_columns(data.rows, names))

    # --------------------------------------------------------------- inference
    def transform(self, X):
        """Encode X: the posterior mean of q(z | x), deterministic.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to encode.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components)
            Posterior means, in the dtype of X (float32 or float64).
        """
        check_is_fitted(self)
        X, memmap = self._validate_inference_data(X)
        return self._encode_batches(X, memmap=memmap)

    def _encode_batches(self, X, C=None, memmap=None):
        return self._map_batches(
            lambda xb, *cb: self.module_.encode(xb, *cb)[0],
            X,
            self.n_components,
            C=C,
            memmap=memmap,
        )

    def inverse_transform(self, X):
        """Decode latent codes to the mean of p(x | z) in input space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Latent codes, such as the output of :meth:`transform`.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features_in_) or DataFrame
            Decoded means, in the dtype of the input; for a model fitted on
            a table, a DataFrame with its columns and dtypes (the most
            probable value of a binary or categorical column).
        """
        check_is_fitted(self)
        Z = self._check_latent(X)
        return self._as_table(self._decode_batches(Z))

    def _check_latent(self, X):
        Z = check_array(X, dtype=[np.float32, np.float64])
        if Z.shape[1] != self.n_components:
            raise ValueError(
                f"inverse_transform expects latent codes with {self.n_components} "
                f"columns (n_components), got {Z.shape[1]}."
            )
        return Z

    def _decode_batches(self, Z, C=None):
        module = self.module_
        return self._map_batches(
            lambda zb, *cb: module.likelihood.mean(module.decode(zb, *cb)),
            Z,
            self.n_features_in_,
            C=C,
        )

    def score_samples(self, X, *, method="elbo", n_importance=None):
        """Per-sample log-likelihood bound, in nats.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.
        method : {"elbo", "iwae"}, default="elbo"
            "elbo": the evidence lower bound E_q[log p(x | z)] - KL(q || p),
            the expectation estimated with ``n_importance`` draws (default
            16). "iwae": the importance-weighted bound (Burda et al. 2016)
            log (1/k) sum_k p(x, z_k) / q(z_k | x) with k = ``n_importance``
            (default 1000), tighter than the ELBO and approaching log p(x) as
            k grows. beta plays no part in either. With missing values
            (``missing_values=np.nan``) both bound log p(x_obs), the
            density of the observed entries.
        n_importance : int, default=None
            Draws per sample.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Higher is better. The draws of the noise are the same for every
            sample (in antithetic pairs), so the result is deterministic and a
            sample's score depends neither on the other rows nor on the batch
            size (bit for bit where the CPU's GEMM rounds a row the same at
            every batch position, as AVX2 and AVX-512 kernels mostly do;
            within float32 rounding everywhere); memory stays bounded for any
            k (k = 5000 is fine).
        """
        check_is_fitted(self)
        k = self._check_score_args(method, n_importance)
        X, memmap = self._validate_inference_data(X)
        return self._score_bound(X, method, k, memmap=memmap)

    @staticmethod
    def _check_score_args(method, n_importance):
        if method not in ("elbo", "iwae"):
            raise ValueError(f"method must be 'elbo' or 'iwae', got {method!r}.")
        default = _SCORE_DRAWS if method == "elbo" else _IWAE_DRAWS
        k = default if n_importance is None else n_importance
        if not isinstance(k, Integral) or isinstance(k, (bool, np.bool_)) or k < 1:
            raise ValueError(f"n_importance must be a positive integer, got {n_importance!r}.")
        return k

    def _score_bound(self, X, method, k, C=None, memmap=None):
        """The ELBO or IWAE bound of each row of validated X (given conditions C)."""
        module = self.module_
        k_chunk = min(k, _INFERENCE_ROWS)

        def bound(xb, *cb):
            # Running log-sum-exp (IWAE) or sum (ELBO) over chunks of draws.
            total = None
            for i, start in enumerate(range(0, k, k_chunk)):
                kc = min(k_chunk, k - start)
                noise = CommonNoise(kc, self._device, seed=_SCORE_SEED + 1009 * i)
                # kc draws per row; the encoder runs once per row.
                if method == "elbo":
                    nll, kl = module.terms(xb, noise, *cb, copies=kc)
                    part = -(nll + kl).view(xb.shape[0], kc).sum(dim=1)
                    total = part if total is None else total + part
                else:
                    log_w = module.log_weights(xb, noise, *cb, copies=kc).view(xb.shape[0], kc)
                    part = torch.logsumexp(log_w, dim=1)
                    total = part if total is None else torch.logaddexp(total, part)
            scale = (lambda t: t / k) if method == "elbo" else (lambda t: t - math.log(k))
            return scale(total).unsqueeze(1)

        rows = max(1, _INFERENCE_ROWS // k_chunk)
        return self._map_batches(
            bound, X, 1, rows=rows, C=C, memmap=memmap
        ).ravel()

    def _complete(self, X, *, n_importance=_IMPUTE_DRAWS, sample=False, random_state=None,
                  decode="draw", validated=False):
        """Return X with each missing (NaN) entry imputed by the fitted model.

        The model must have been fitted with ``missing_values=np.nan``.
        Draws z_1..z_k ~ q(z | x_obs) per row (the encoder sees the observed
        values and the mask) and weighs them by the self-normalised
        importance weights w_k proportional to p(x_obs | z_k) p(z_k) /
        q(z_k | x_obs) (MIWAE, Mattei and Frellsen 2019, section 3):

        - ``sample=False`` (single imputation): each missing entry becomes
          sum_k w_k E[x_j | z_k], the importance-weighted estimate of the
          conditional mean E[x_miss | x_obs]. The draws of eps are fixed
          and shared by all rows (as in :meth:`score_samples`), so the
          result is deterministic and a row's imputation depends neither on
          the other rows nor on ``random_state``.
        - ``sample=True`` (multiple imputation): one plausible completion
          per call, by sampling importance resampling: one z_k is picked
          with probability w_k, then the missing entries are a draw
          x ~ p(x | z_k) (``decode="draw"``) or its mean
          (``decode="mean"``). The draw is what multiple imputation needs
          (Rubin's rules count the spread between completions, from both
          z and the observation noise; MIWAE draws so); the mean gives
          smoother completions (images) that understate it. The same
          ``random_state`` (an int) gives the same completions.

        Observed entries are returned unchanged. Rows go to the device in
        batches (memory bounded whatever k); a row with no observed entry
        gets the model's marginal mean (or a draw from the model).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data with NaN at the missing entries.
        n_importance : int, default=1000
            Draws of z per row (k).
        sample : bool, default=False
            False: the conditional mean; True: one draw of a completion.
        random_state : int, RandomState instance or None, default=None
            Seeds the draws of ``sample=True``; None gives new draws at
            every call. Unused with ``sample=False``.
        decode : {"draw", "mean"}, default="draw"
            With ``sample=True``: a draw of p(x | z_k), or its mean.
        validated : bool, default=False
            Whether X is already the model's validated view (a table's
            encoding, as :meth:`_validate_inference_data` returns it).

        Returns
        -------
        X_completed : ndarray of shape (n_samples, n_features)
            In the dtype of X; no NaN.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.datasets import load_digits
        >>> X = load_digits().data[:100] / 16
        >>> X_missing = X.copy()
        >>> X_missing[np.random.RandomState(0).rand(*X.shape) < 0.2] = np.nan
        >>> vae = VAETransformer(max_iter=2, missing_values=np.nan, random_state=0)
        >>> X_filled = vae.fit(X_missing)._complete(X_missing, n_importance=10)
        >>> bool(np.isnan(X_filled).any()), X_filled.shape
        (False, (100, 64))
        """
        check_is_fitted(self)
        if not self._fitted_missing():
            raise ValueError(
                f"Imputation needs a model fitted with missing_values=np.nan; this "
                f"{type(self).__name__} was fitted with missing_values=None."
            )
        k = self._check_score_args("iwae", n_importance)
        if decode not in ("mean", "draw"):
            raise ValueError(f"decode must be 'mean' or 'draw', got {decode!r}.")
        X, memmap = (X, None) if validated else self._validate_inference_data(X)
        k_chunk = min(k, _INFERENCE_ROWS)
        if sample:
            seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
            generator = torch.Generator(device=self._device).manual_seed(seed)
            fn = functools.partial(_resampled_completion, self.module_, generator=generator,
                                   k=k, k_chunk=k_chunk, decode=decode)
        else:
            fn = functools.partial(_conditional_mean, self.module_, device=self._device,
                                   k=k, k_chunk=k_chunk)
        completed = self._map_batches(
            fn, X, self.n_features_in_, rows=max(1, _INFERENCE_ROWS // k_chunk), memmap=memmap
        )
        out = np.array(X, copy=True)
        missing = np.isnan(out)
        out[missing] = completed[missing]
        return out

    def log_likelihood(self, X, n_importance=5000):
        """Importance-weighted estimate of log p(x) per sample, in nats.

        The IWAE bound with ``n_importance`` samples: a lower bound of
        log p(x) that tightens as ``n_importance`` grows; k = 5000 is the
        customary setting for reporting log-likelihoods. Same as
        ``score_samples(X, method="iwae", n_importance=n_importance)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.
        n_importance : int, default=5000
            Importance samples per data point.

        Returns
        -------
        log_px : ndarray of shape (n_samples,)
            Estimates of log p(x).
        """
        return self.score_samples(X, method="iwae", n_importance=n_importance)

    def kl_per_dimension(self, X):
        """Mean KL(q(z_j | x) || p(z_j)) of each latent dimension over X, in nats.

        A dimension with a KL near 0 carries no information about x
        (posterior collapse). Needs a prior that factorises over dimensions.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        kl : ndarray of shape (n_components,)
        """
        check_is_fitted(self)
        X, memmap = self._validate_inference_data(X)
        module = self.module_
        noise = CommonNoise(1, self._device, seed=_SCORE_SEED)

        def kl_dims(xb):
            mean, log_var, z = module._posterior_draw(xb, noise)
            return module.prior.kl_per_dim(mean, log_var, z)

        return self._map_batches(
            kl_dims, X, self.n_components, memmap=memmap
        ).mean(axis=0)

    def active_units(self, X, threshold=0.01):
        """Which latent dimensions are active (Burda et al. 2016).

        A dimension is active when the variance over X of its posterior mean
        exceeds ``threshold``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.
        threshold : float, default=0.01
            Variance threshold.

        Returns
        -------
        active : ndarray of bool, shape (n_components,)
            ``active.sum()`` counts the active units.
        """
        return np.var(self.transform(X), axis=0) > threshold

    def score(self, X, y=None):
        """Mean ELBO of X in nats per sample (higher is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.
        y : None
            Ignored.

        Returns
        -------
        score : float
            Mean of :meth:`score_samples`.
        """
        return float(np.mean(self.score_samples(X)))

    def sample(self, n_samples=1, random_state=None, *, decode="mean"):
        """Generate samples: z ~ p(z), decoded.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples.
        random_state : int, RandomState instance or None, default=None
            Seeds the draws; None gives new draws at every call.
        decode : {"mean", "draw"}, default="mean"
            "mean" returns the mean of p(x | z) (smooth images); "draw"
            returns one draw x ~ p(x | z) (e.g. binary values for Bernoulli).

        Returns
        -------
        X : ndarray of shape (n_samples, n_features_in_) or DataFrame
            Generated samples, float32; for a model fitted on a table, a
            DataFrame with its columns, order, dtypes and categories.
        """
        check_is_fitted(self)
        self._check_sample_args(n_samples, decode)
        return self._as_table(self._generate(n_samples, random_state, decode))

    @staticmethod
    def _check_sample_args(n_samples, decode):
        if (
            not isinstance(n_samples, Integral)
            or isinstance(n_samples, (bool, np.bool_))
            or n_samples < 1
        ):
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
        if decode not in ("mean", "draw"):
            raise ValueError(f"decode must be 'mean' or 'draw', got {decode!r}.")

    def _generate(self, n_samples, random_state, decode, C=None):
        """Draw z ~ p(z) and decode it (given the conditions C, an array or None)."""
        seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
        generator = torch.Generator(device=self._device).manual_seed(seed)
        module = self.module_
        out = np.empty((n_samples, self.n_features_in_), dtype=np.float32)
        with _engine.module_lock(module), torch.inference_mode():
            module.eval()
            for start in range(0, n_samples, _INFERENCE_ROWS):
                rows = min(_INFERENCE_ROWS, n_samples - start)
                z = module.prior.sample(rows, generator=generator, device=self._device)
                if C is None:
                    params = module.decode(z)
                else:
                    cb = _data.to_tensor(C[start : start + rows], self._device)
                    params = module.decode(z, cb)
                if decode == "mean":
                    x = module.likelihood.mean(params)
                else:
                    x = module.likelihood.sample(params, generator=generator)
                out[start : start + rows] = x.cpu().numpy()
        return out

    def _validate_inference_data(self, X):
        """``validate_data`` of the inference methods; return (X, memmap).

        X must lie in the likelihood's domain, as in ``fit`` (same check,
        same message). A :class:`numpy.memmap` is not scanned whole for NaN,
        infinity and the domain here (that would read the file twice):
        ``memmap`` is then the caller's map, and :meth:`_map_batches` checks
        each batch as it reads it, with scikit-learn's message (and its
        ``assume_finite`` switch), and drops the map's read pages from the
        process as it goes. Else ``memmap`` is None.
        """
        if self._fitted_schema() is not None:
            return self._table_rows(X), None
        memmap = X if isinstance(X, np.memmap) else None
        X = validate_data(
            self,
            X,
            dtype=[np.float32, np.float64],
            reset=False,
            ensure_all_finite=self._finite_rule(fitted=True) if memmap is None else False,
        )
        if memmap is None:
            _data.check_data(self.likelihood_, X, self._fitted_missing())
        return X, memmap

    def _map_batches(self, fn, X, n_out, rows=_INFERENCE_ROWS, C=None, memmap=None):
        """Apply ``fn`` to batches of X on the device; bounded memory.

        With per-row conditions ``C`` (an array), ``fn(x_batch, c_batch)``.
        With ``memmap`` (the map X was validated from, see
        :meth:`_validate_inference_data`), each batch of X is checked for
        NaN, infinity and the likelihood's domain before use, and the map's
        pages are released from the process every few MB. Holds the
        module's lock (:func:`skvae._engine.module_lock`): a fit running in
        another thread is never switched to eval mode mid-epoch.
        """
        out = np.empty((X.shape[0], n_out), dtype=X.dtype)
        releaser = _data.PageReleaser(memmap) if memmap is not None else None
        missing = self._fitted_missing()
        with _engine.module_lock(self.module_), torch.inference_mode():
            self.module_.eval()
            for start in range(0, X.shape[0], rows):
                stop = min(start + rows, X.shape[0])
                if releaser is not None:
                    assert_all_finite(
                        X[start:stop], allow_nan=missing, input_name="X",
                        estimator_name=type(self).__name__,
                    )
                    _data.check_data(self.likelihood_, X[start:stop], missing)
                args = [_data.to_tensor(X[start:stop], self._device, rows=rows)]
                if C is not None:
                    args.append(_data.to_tensor(C[start:stop], self._device, rows=rows))
                out[start:stop] = fn(*args)[: stop - start].cpu().numpy()
                if releaser is not None:
                    releaser.touched(X[start:stop].nbytes)
        if releaser is not None:
            releaser.release()
        return out

    # ---------------------------------------------------------------- pickling
    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: never touch self.__dict__
        if "module_" in state:
            # Torch objects are stored as CPU tensors, so that a model fitted
            # on a GPU unpickles on a machine without one.
            state["module_"] = {
                "n_components": self.module_.n_components,
                "config": dict(getattr(self.module_, "config", {})),
                "state_dict": _state.clone(self.module_.state_dict(), "cpu"),
            }
            # The fitted optimizer's own class: the `optimizer` parameter may
            # have been changed since (set_params without a refit).
            state["optimizer_"] = {
                "name": _optimizers.optimizer_name(self.optimizer_),
                "state_dict": _state.clone(self.optimizer_.state_dict(), "cpu"),
            }
            state["_generator"] = self._generator.get_state()
        return state

    def __setstate__(self, state):
        if "module_" in state:
            state = dict(state)
            # The same structure as the pickled module: the subclass's
            # builder, with the condition widths and such (its config).
            module = self._make_module(
                state["architecture_"],
                state["likelihood_"],
                state["prior_"],
                state["n_features_in_"],
                state["module_"]["n_components"],
                state["_seed"],
                **state["module_"].get("config", {}),
            )
            module.load_state_dict(state["module_"]["state_dict"])
            fitted = _state.rebuild(
                module,
                _device.available(state["_device"]),
                optimizer_name=state["optimizer_"]["name"],
                learning_rate=state["learning_rate"],
                seed=state["_seed"],
                optimizer_state=state["optimizer_"]["state_dict"],
                generator_state=state["_generator"],
                generator_device_type=state["_device"].type,
            )
            state.update(
                module_=fitted.module,
                optimizer_=fitted.optimizer,
                _generator=fitted.generator,
                _device=fitted.device,
            )
        super().__setstate__(state)


def _build_module(
    architecture,
    likelihood,
    prior,
    n_features,
    n_components,
    seed,
    encoder_conditions=0,
    decoder_conditions=0,
    missing_values=False,
    encoder_mask=None,
):
    """Build the VAE module on the CPU with weights seeded by ``seed``.

    With condition widths, the architecture must accept them (else a
    ValueError names it; see :meth:`skvae.base.Architecture.build_conditional`).
    With ``missing_values``, the encoder also takes the missingness mask as
    ``n_features`` more condition columns when ``encoder_mask`` (None: when
    the architecture can condition its encoder, see :func:`encoder_takes_mask`).
    The module is then checked by a dry run on two rows
    (:func:`skvae._plugin_check.check_vae_module`): a plugin that builds the
    wrong shapes raises a ValueError naming it.
    """
    mask_width = _mask_width(architecture, n_features, encoder_conditions, missing_values,
                             encoder_mask)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = architecture.build_conditional(
            n_features=likelihood.n_inputs(n_features),
            n_components=n_components,
            n_outputs=likelihood.n_params(n_features),
            encoder_conditions=encoder_conditions + mask_width,
            decoder_conditions=decoder_conditions,
        )
        module = VAEModule(
            net,
            _missing_likelihood(likelihood, n_features, missing_values),
            prior.build(n_components, n_features),
            n_components,
            encoder_conditions=encoder_conditions,
            decoder_conditions=decoder_conditions,
            missing_values=missing_values,
            encoder_mask=bool(mask_width),
        )
    # A plugin that builds the wrong shapes fails here, by name, not in torch.
    check_vae_module(module, architecture, likelihood, prior, n_features)
    return module


def encoder_takes_mask(architecture, n_features, encoder_conditions=0):
    """Whether a model with missing values gives ``architecture``'s encoder the mask.

    True when its ``build`` takes ``encoder_conditions`` (as ``"mlp"``
    does): the mask's ``n_features`` columns follow the label's. Otherwise
    the encoder sees the zero-filled rows alone.

    Examples
    --------
    >>> from skvae_plugins.conv import Conv
    >>> from skvae_plugins.mlp import MLP
    >>> encoder_takes_mask(MLP(), 64), encoder_takes_mask(Conv(), 64)
    (True, False)
    """
    return architecture.supports_conditions(encoder_conditions=encoder_conditions + n_features)


def _mask_width(architecture, n_features, encoder_conditions, missing_values, encoder_mask):
    """Condition columns of the encoder for the missingness mask: n_features or 0."""
    if missing_values and encoder_mask is None:
        encoder_mask = encoder_takes_mask(architecture, n_features, encoder_conditions)
    return n_features if missing_values and encoder_mask else 0


def _missing_likelihood(likelihood, n_features, missing_values):
    """Build the likelihood module; with missing values, check that it has
    ``log_prob_features`` (a ValueError naming the plugin)."""
    module = likelihood.build(n_features)
    if missing_values:
        try:
            _model.check_log_prob_features(module)
        except ValueError as exc:
            raise ValueError(f"Likelihood {likelihood.name!r}: {exc}") from None
    return module


def _conditional_mean(module, xb, *, device, k, k_chunk):
    """sum_k w_k mean(p(x | z_k)) per row of ``xb``: chunks of draws merged exactly.

    The running self-normalised mean of the chunks so far is rescaled by
    the share of the total weight each part holds (log-sum-exp), so that
    the result does not depend on the chunk size. A likelihood module with
    ``predictive_stats`` (categories: their probabilities) has those
    averaged instead of its means, and its ``predictive_point`` of the
    average returned (the mixture's most probable category, where the
    average of the draws' modes would be no category).
    """
    likelihood = module.likelihood
    stats = getattr(likelihood, "predictive_stats", None) or likelihood.mean
    total_lse = total_mean = None
    rows = xb.shape[0]
    for i, start in enumerate(range(0, k, k_chunk)):
        kc = min(k_chunk, k - start)
        noise = CommonNoise(kc, device, seed=_SCORE_SEED + 1009 * i)
        log_w, params = module.weighted_draws(xb, noise, copies=kc)
        log_w = log_w.view(rows, kc)
        means = stats(params).view(rows, kc, -1)
        part = (torch.logsumexp(log_w, dim=1),
                (torch.softmax(log_w, dim=1).unsqueeze(-1) * means).sum(dim=1))
        total_lse, total_mean = part if total_lse is None else _merge_weighted_means(
            (total_lse, total_mean), part
        )
    point = getattr(likelihood, "predictive_point", None)
    return total_mean if point is None else point(total_mean)


def _merge_weighted_means(a, b):
    """Merge two (log total weight, weighted mean) pairs of disjoint sets of draws.

    Examples
    --------
    >>> import torch
    >>> log_w, x = torch.tensor([[0.0, 1.0, -2.0]]), torch.tensor([[[1.0], [2.0], [3.0]]])
    >>> part = lambda s: (torch.logsumexp(log_w[:, s], 1),
    ...                   (torch.softmax(log_w[:, s], 1).unsqueeze(-1) * x[:, s]).sum(1))
    >>> merged = _merge_weighted_means(part(slice(0, 1)), part(slice(1, 3)))
    >>> bool(torch.allclose(merged[1], part(slice(0, 3))[1]))
    True
    """
    (lse_a, mean_a), (lse_b, mean_b) = a, b
    lse = torch.logaddexp(lse_a, lse_b)
    mean = (mean_a * torch.exp(lse_a - lse).unsqueeze(-1)
            + mean_b * torch.exp(lse_b - lse).unsqueeze(-1))
    return lse, mean


def _resampled_completion(module, xb, *, generator, k, k_chunk, decode):
    """One draw per row by sampling importance resampling over k draws of z.

    Within a chunk of draws one z_k is picked by its normalised weight; it
    replaces the pick of the earlier chunks with probability (its chunk's
    weight) / (the total weight so far), so that every z_k of the k is
    picked with probability w_k whatever the chunk size.
    """
    rows = xb.shape[0]
    device = xb.device
    noise = RandomNoise(generator, device)
    total_lse = chosen = None
    for start in range(0, k, k_chunk):
        kc = min(k_chunk, k - start)
        log_w, params = module.weighted_draws(xb, noise, copies=kc)
        log_w, params = log_w.view(rows, kc), params.view(rows, kc, -1)
        pick = torch.multinomial(torch.softmax(log_w, dim=1), 1, generator=generator)
        candidate = params.gather(1, pick.unsqueeze(-1).expand(-1, 1, params.shape[-1])).squeeze(1)
        lse = torch.logsumexp(log_w, dim=1)
        if total_lse is None:
            total_lse, chosen = lse, candidate
            continue
        merged = torch.logaddexp(total_lse, lse)
        replace = torch.rand(rows, generator=generator, device=device) < torch.exp(lse - merged)
        chosen = torch.where(replace.unsqueeze(-1), candidate, chosen)
        total_lse = merged
    likelihood = module.likelihood
    return likelihood.mean(chosen) if decode == "mean" else likelihood.sample(chosen, generator)


def _check_empty_features(data):
    """Refuse training data with a feature that has no observed value."""
    empty = data.empty_features()
    if empty.size == 0:
        return
    shown = ", ".join(map(str, empty[:10].tolist())) + (", ..." if empty.size > 10 else "")
    raise ValueError(
        f"{empty.size} feature(s) of X have no observed value (every entry is NaN): "
        f"column(s) {shown}. The model cannot learn what they hold: drop these columns "
        "first (as scikit-learn's imputers drop empty features)."
    )


def _is_nan(value):
    """Whether ``value`` is a float NaN (np.nan, float("nan"), np.float32("nan"))."""
    return isinstance(value, Real) and not isinstance(value, (bool, np.bool_)) and value != value


class _Fit:
    """What one call of ``fit`` trains: plugins, torch objects, epochs, and where it starts.

    Made one of three ways by the estimator: new weights (``_new_fit``), this
    estimator's weights trained on (``_continued_fit``), or the state an
    interrupted fit saved in its checkpoint (``_resumed_fit``).
    """

    def __init__(self, architecture, likelihood, prior, fitted, seed, *, stop_epoch,
                 history=(), result=None, resumed=None):
        self.architecture, self.likelihood, self.prior = architecture, likelihood, prior
        self.module, self.optimizer = fitted.module, fitted.optimizer
        self.generator, self.device = fitted.generator, fitted.device
        self.seed = seed
        self.history = list(history)  # records of the fits before this one
        self.first_epoch = len(self.history)
        self.stop_epoch = stop_epoch
        self.result = result  # a resumed run's RunResult (learning-rate halvings)
        self.resumed = resumed

    def attributes(self, new_records=()):
        """The estimator's fitted attributes after this fit's ``new_records``."""
        history = self.history + list(new_records)
        return {
            "architecture_": self.architecture,
            "likelihood_": self.likelihood,
            "prior_": self.prior,
            "module_": self.module,
            "optimizer_": self.optimizer,
            "_generator": self.generator,
            "_device": self.device,
            "_seed": self.seed,
            "history_": history,
            "n_iter_": len(history),
        }


_io.register_estimator(VAETransformer)
