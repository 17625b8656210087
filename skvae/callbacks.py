"""Callbacks: code that runs around each epoch of a fit (loggers, early stops).

skvae's estimators call their callbacks at four points of training:
``on_train_begin(run)``, ``on_epoch_begin(run)``, ``on_epoch_end(run, record)``
(a truthy return value stops training after that epoch) and
``on_train_end(run)`` (also when training ends early, by Ctrl-C or by an
exception). Set them with ``estimator.set_callbacks(...)``, as scikit-learn's
own callbacks (``sklearn.callback.ProgressBar``, ``ScoringMonitor``, from
scikit-learn 1.9), which the same estimators also accept.

``run`` describes the fit under way: ``run.estimator`` (the estimator being
fitted; its fitted attributes are set only once fit succeeds),
``run.module`` (the torch module being trained), ``run.first_epoch`` and
``run.stop_epoch`` (the global, 0-based epochs of this call), ``run.epoch``
(the current one), ``run.history`` (this call's records so far),
``run.is_writer`` (False on the data-parallel ranks other than 0: write
files only when True), ``run.outcome`` (in ``on_train_end``: "completed",
"stopped", "interrupted" or "failed") and ``run.fitted_attributes()``. ``record`` is the
epoch's entry of ``history_``: ``epoch`` (1-based), ``loss``,
``reconstruction``, ``kl``, ``beta``, ``learning_rate``, ``val_loss`` (None
without early stopping), ``seconds``, and any other per-epoch term the model
reports.

A callback that raises stops the fit: the estimator is left as it was before
the fit and :class:`CallbackError`, naming the callback and the hook, is
raised from the original exception.

This module imports neither torch nor scikit-learn: the loggers import their
packages (``torch.utils.tensorboard``, ``mlflow``) when a fit starts.
"""

import importlib
import importlib.util
import math
import numbers
import os
import sys
import time
import uuid
import weakref

__all__ = ["Callback", "CallbackError", "MLflowLogger", "TensorBoardLogger"]

# scikit-learn's FitCallback protocol (sklearn.callback, scikit-learn >= 1.9).
SKLEARN_HOOKS = ("setup", "teardown", "on_fit_task_begin", "on_fit_task_end")
# skvae's training engine.
ENGINE_HOOKS = ("on_train_begin", "on_epoch_begin", "on_epoch_end", "on_train_end")


class CallbackError(RuntimeError):
    """A callback raised an exception: the fit stopped, the estimator is unchanged.

    Raised ``from`` the callback's own exception (its ``__cause__``).

    Parameters
    ----------
    message : str
        What happened.
    callback : str or None, default=None
        The name of the callback's class.
    hook : str or None, default=None
        The hook that raised (``"on_epoch_end"``, ``"setup"``, ...).

    Attributes
    ----------
    callback : str or None
        The callback's class name.
    hook : str or None
        The hook that raised.

    Examples
    --------
    >>> try:
    ...     raise ZeroDivisionError("division by zero")
    ... except ZeroDivisionError as exc:
    ...     error = CallbackError.from_exception(object(), "on_epoch_end", exc)
    >>> print(error)
    Callback object.on_epoch_end raised ZeroDivisionError: division by zero. The fit stopped
    and the estimator is as it was before the fit.
    >>> error.callback, error.hook
    ('object', 'on_epoch_end')
    """

    def __init__(self, message, callback=None, hook=None):
        super().__init__(message)
        self.callback = callback
        self.hook = hook

    @classmethod
    def from_exception(cls, callback, hook, exc):
        """The error for ``exc`` raised by ``callback``'s ``hook``.

        Parameters
        ----------
        callback : object or str
            The callback (or its name).
        hook : str
            The hook that raised.
        exc : BaseException
            What it raised; raise the result ``from exc``.

        Returns
        -------
        error : CallbackError

        Examples
        --------
        >>> str(CallbackError.from_exception("MyLogger", "on_train_begin", OSError("disk full")))
        'Callback MyLogger.on_train_begin raised OSError: disk full. The fit stopped and the
        estimator is as it was before the fit.'
        """
        name = callback if isinstance(callback, str) else type(callback).__name__
        text = str(exc)
        stop = "" if text.endswith(".") else "."
        return cls(
            f"Callback {name}.{hook} raised {type(exc).__name__}: {text}{stop} The fit "
            "stopped and the estimator is as it was before the fit.",
            callback=name,
            hook=hook,
        )


class Callback:
    """Base class of skvae's callbacks: override the hooks you need.

    Every hook is a no-op here. skvae's training engine calls the four
    ``on_train_*`` / ``on_epoch_*`` hooks; the four others are scikit-learn's
    ``FitCallback`` protocol (``sklearn.callback``, scikit-learn >= 1.9), so
    that ``set_callbacks`` accepts a skvae callback next to
    ``sklearn.callback.ProgressBar`` and the like.

    A callback object is shared, not copied: ``clone`` (so every fit of a
    ``GridSearchCV``) passes the same callbacks to each clone. Keep per-fit
    state keyed by the ``run`` object (or on it), never in a single
    attribute, and hold no open file or writer between fits, so that the
    callback stays cheap to copy and to pickle.

    Examples
    --------
    A callback that stops training once the loss is below a threshold:

    >>> from skvae.callbacks import Callback
    >>> class StopBelow(Callback):
    ...     def __init__(self, loss):
    ...         self.loss = loss
    ...     def on_epoch_end(self, run, record):
    ...         return record["loss"] < self.loss      # True stops after this epoch
    >>> StopBelow(80.0).on_epoch_end(None, {"epoch": 3, "loss": 79.5})
    True

    Set it with ``VAETransformer(...).set_callbacks(StopBelow(80.0))``.
    """

    # ----------------------------------------------------- skvae's training engine
    def on_train_begin(self, run):
        """Called once before the first epoch of a fit (or of a ``partial_fit`` call).

        Parameters
        ----------
        run : skvae._engine.TrainingRun
            The training under way (see the module's docstring).

        Examples
        --------
        >>> Callback().on_train_begin(None)
        """

    def on_epoch_begin(self, run):
        """Called before each epoch; ``run.epoch`` is its 0-based global index.

        Parameters
        ----------
        run : skvae._engine.TrainingRun

        Examples
        --------
        >>> Callback().on_epoch_begin(None)
        """

    def on_epoch_end(self, run, record):
        """Called after each completed epoch with its record; truthy stops training.

        Parameters
        ----------
        run : skvae._engine.TrainingRun
        record : dict
            The epoch's record (``epoch``, 1-based, ``loss``, ``kl``, ...), as
            stored in ``history_``.

        Returns
        -------
        stop : bool or None
            True to stop training after this epoch (the fit then succeeds with
            the epochs trained so far).

        Examples
        --------
        >>> Callback().on_epoch_end(None, {"epoch": 1, "loss": 90.0}) is None
        True
        """
        return None

    def on_train_end(self, run):
        """Called once after training, however it ended (also on an exception).

        Parameters
        ----------
        run : skvae._engine.TrainingRun

        Examples
        --------
        >>> Callback().on_train_end(None)
        """

    # --------------------------------------- scikit-learn's FitCallback protocol
    # The no-ops take no keyword-only parameter: scikit-learn then passes
    # nothing, and builds no ``fitted_estimator`` for them. An override may
    # declare any of ``*, X=None, y=None, metadata=None, fitted_estimator=None``.
    def setup(self, estimator, context):
        """scikit-learn's hook, at the start of the outermost fit (scikit-learn >= 1.9).

        Parameters
        ----------
        estimator : estimator instance
        context : sklearn.callback.CallbackContext

        Examples
        --------
        >>> Callback().setup(None, None)
        """

    def teardown(self, estimator, context):
        """scikit-learn's hook, at the end of the outermost fit (scikit-learn >= 1.9).

        Parameters
        ----------
        estimator : estimator instance
        context : sklearn.callback.CallbackContext

        Examples
        --------
        >>> Callback().teardown(None, None)
        """

    def on_fit_task_begin(self, estimator, context, **kwargs):
        """scikit-learn's hook, at the start of each task (the fit, each epoch).

        Parameters
        ----------
        estimator : estimator instance
        context : sklearn.callback.CallbackContext
        **kwargs
            Never passed: an override names what it wants as keyword-only
            parameters (``X``, ``y``, ``metadata``, ``fitted_estimator``).

        Examples
        --------
        >>> Callback().on_fit_task_begin(None, None)
        """

    def on_fit_task_end(self, estimator, context, **kwargs):
        """scikit-learn's hook, at the end of each task; truthy stops the iterations.

        Parameters
        ----------
        estimator : estimator instance
        context : sklearn.callback.CallbackContext
        **kwargs
            As for :meth:`on_fit_task_begin`.

        Returns
        -------
        stop : bool or None

        Examples
        --------
        >>> Callback().on_fit_task_end(None, None) is None
        True
        """
        return None


def overrides_sklearn_hooks(callback):
    """Whether ``callback`` (a :class:`Callback`) overrides one of scikit-learn's hooks.

    Parameters
    ----------
    callback : Callback

    Returns
    -------
    overrides : bool

    Examples
    --------
    >>> class Epochs(Callback):
    ...     def on_epoch_end(self, run, record):
    ...         pass
    >>> class Tasks(Callback):
    ...     def on_fit_task_end(self, estimator, context):
    ...         pass
    >>> overrides_sklearn_hooks(Epochs()), overrides_sklearn_hooks(Tasks())
    (False, True)
    """
    cls = type(callback)
    return any(getattr(cls, hook, None) is not getattr(Callback, hook) for hook in SKLEARN_HOOKS)


# ---------------------------------------------------------------------- loggers
def _require(module, package, who):
    """Import ``module``, or raise an ImportError naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{who} needs the {package} package ({module} could not be imported: {exc}). "
            f"Install it with pip install 'skvae[{package}]'."
        ) from exc


def _check_installed(package, who):
    """Fail at construction, not mid-fit, when ``package`` is not installed."""
    try:
        found = importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):  # a parent package missing, or sys.modules[...] = None
        found = False
    if not found:
        raise ImportError(
            f"{who} needs the {package} package, which is not installed. Install it with "
            f"pip install 'skvae[{package}]'."
        )


def _metrics(record):
    """The record's numbers (not ``epoch``, the step itself): name -> float."""
    return {
        key: float(value)
        for key, value in record.items()
        if key != "epoch"
        and isinstance(value, numbers.Real)
        and not isinstance(value, bool)
    }


def _params_text(estimator):
    """The estimator's parameters as ``name = value`` lines (Markdown)."""
    try:
        params = estimator.get_params(deep=False)
    except AttributeError:
        return ""
    return "\n\n".join(f"`{name}` = `{value!r}`" for name, value in sorted(params.items()))


class _PerFitState:
    """Pickling support shared by the loggers: per-fit state is never copied."""

    _transient = {}

    def __getstate__(self):
        state = dict(self.__dict__)
        for name in self._transient:
            state.pop(name, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._init_transient()

    def _init_transient(self):
        for name, factory in self._transient.items():
            setattr(self, name, factory())


class TensorBoardLogger(_PerFitState, Callback):
    """Write each epoch's record to TensorBoard, one sub-folder per fit.

    Every number of an epoch's record (``loss``, ``reconstruction``, ``kl``,
    ``beta``, ``learning_rate``, ``val_loss`` when there is one, ``seconds``,
    and the model's own terms) becomes a scalar of that name at step
    ``epoch`` (1-based), and the estimator's parameters a text entry
    ``params``. Each fit writes to its own sub-folder of ``log_dir``, named
    ``{run_name}_{date-time}_{random}``, so that the many fits of a
    ``GridSearchCV`` do not mix; ``partial_fit`` calls and ``warm_start`` fits
    that continue an estimator add to that estimator's folder. Only the
    writing process of a data-parallel fit (``run.is_writer``) writes.

    Needs ``torch.utils.tensorboard``, i.e. the ``tensorboard`` package:
    ``pip install 'skvae[tensorboard]'``. See the runs with
    ``tensorboard --logdir runs``.

    Parameters
    ----------
    log_dir : str or path-like, default="runs"
        The folder under which each fit makes its sub-folder.
    run_name : str or None, default=None
        The start of the sub-folders' names; None uses the estimator's class
        name.
    log_params : bool, default=True
        Write the estimator's parameters (``get_params(deep=False)``) as a
        text entry, to tell the fits of a search apart.
    flush_secs : float, default=30
        How often the writer flushes to disk during a fit (it always does at
        the end).

    Attributes
    ----------
    log_dirs : list of str
        The sub-folders this process has written, in order.

    Examples
    --------
    >>> import tempfile
    >>> from skvae.callbacks import TensorBoardLogger
    >>> logger = TensorBoardLogger(log_dir=tempfile.mkdtemp(), run_name="digits")
    >>> logger.log_dirs   # each fit adds its folder: .../digits_20250101-120000_ab12cd
    []
    """

    _transient = {
        "_writers": dict,  # id(run) -> SummaryWriter, during a fit
        "_folders": weakref.WeakKeyDictionary,  # estimator -> its folder
    }

    def __init__(self, log_dir="runs", *, run_name=None, log_params=True, flush_secs=30):
        _check_installed("tensorboard", "TensorBoardLogger")
        self.log_dir = log_dir
        self.run_name = run_name
        self.log_params = log_params
        self.flush_secs = flush_secs
        self.log_dirs = []
        self._init_transient()

    def _folder(self, run):
        """This fit's folder: the estimator's own when it continues training."""
        estimator = run.estimator
        folder = self._folders.get(estimator) if run.first_epoch > 0 else None
        if folder is None:
            name = self.run_name or type(estimator).__name__
            stamp = time.strftime("%Y%m%d-%H%M%S")
            folder = os.path.join(os.fspath(self.log_dir), f"{name}_{stamp}_{uuid.uuid4().hex[:6]}")
            self._folders[estimator] = folder
            self.log_dirs.append(folder)
        return folder

    def on_train_begin(self, run):
        """Open this fit's writer (on the writing process only).

        Parameters
        ----------
        run : skvae._engine.TrainingRun

        Examples
        --------
        See :class:`TensorBoardLogger`.
        """
        if not run.is_writer:
            return
        tensorboard = _require("torch.utils.tensorboard", "tensorboard", "TensorBoardLogger")
        writer = tensorboard.SummaryWriter(log_dir=self._folder(run), flush_secs=self.flush_secs)
        if self.log_params and run.first_epoch == 0:
            writer.add_text("params", _params_text(run.estimator), 0)
        self._writers[id(run)] = writer

    def on_epoch_end(self, run, record):
        """Write the record's numbers as scalars at step ``record["epoch"]``.

        Parameters
        ----------
        run : skvae._engine.TrainingRun
        record : dict

        Examples
        --------
        See :class:`TensorBoardLogger`.
        """
        writer = self._writers.get(id(run))
        if writer is None:
            return None
        step = record["epoch"]
        for key, value in _metrics(record).items():
            writer.add_scalar(key, value, step)
        if record.get("divergences"):
            writer.add_text("divergences", "\n\n".join(record["divergences"]), step)
        return None

    def on_train_end(self, run):
        """Flush and close this fit's writer.

        Parameters
        ----------
        run : skvae._engine.TrainingRun

        Examples
        --------
        See :class:`TensorBoardLogger`.
        """
        writer = self._writers.pop(id(run), None)
        if writer is not None:
            writer.close()


class MLflowLogger(_PerFitState, Callback):
    """Log each epoch's record to MLflow: one MLflow run per fit, metrics per epoch.

    Each fit creates an MLflow run (nested under the active run, if any, so
    that ``with mlflow.start_run(): search.fit(X)`` groups a search's fits)
    and logs every number of each epoch's record as a metric at step
    ``epoch`` (1-based), with the estimator's parameters as MLflow params.
    ``partial_fit`` calls and ``warm_start`` fits that continue an estimator
    log to that estimator's run. The run ends FINISHED, FAILED (an
    exception) or KILLED (Ctrl-C). Only the writing process of a
    data-parallel fit (``run.is_writer``) logs.

    Needs MLflow's client (``pip install 'skvae[mlflow]'``, i.e.
    ``mlflow-skinny``; the full ``mlflow`` works too).

    Parameters
    ----------
    experiment_name : str or None, default=None
        The experiment (created if missing). None uses the active run's
        experiment, or MLflow's Default experiment.
    run_name : str or None, default=None
        The runs' name; None uses the estimator's class name.
    tracking_uri : str or None, default=None
        Where to log; None uses MLflow's current tracking URI
        (``MLFLOW_TRACKING_URI`` or ``mlflow.set_tracking_uri``).
    log_params : bool, default=True
        Log the estimator's parameters (``get_params(deep=False)``, as text
        of at most 500 characters each).

    Attributes
    ----------
    run_ids : list of str
        The MLflow runs this process has created, in order.

    Examples
    --------
    >>> from skvae import VAETransformer
    >>> from skvae.callbacks import MLflowLogger
    >>> logger = MLflowLogger(experiment_name="digits")   # doctest: +SKIP
    >>> vae = VAETransformer(n_components=2).set_callbacks(logger)  # doctest: +SKIP
    """

    _transient = {
        "_runs": dict,  # id(run) -> (client, MLflow run id), during a fit
        "_estimator_runs": weakref.WeakKeyDictionary,  # estimator -> MLflow run id
    }

    def __init__(self, *, experiment_name=None, run_name=None, tracking_uri=None, log_params=True):
        _check_installed("mlflow", "MLflowLogger")
        self.experiment_name = experiment_name
        self.run_name = run_name
        self.tracking_uri = tracking_uri
        self.log_params = log_params
        self.run_ids = []
        self._init_transient()

    def _new_run(self, mlflow, client, estimator):
        """Create the MLflow run of a fit; return its id."""
        active = mlflow.active_run()
        same_store = self.tracking_uri is None or self.tracking_uri == mlflow.get_tracking_uri()
        parent = active if (active is not None and same_store) else None
        if self.experiment_name is not None:
            experiment = client.get_experiment_by_name(self.experiment_name)
            experiment_id = (
                experiment.experiment_id
                if experiment is not None
                else client.create_experiment(self.experiment_name)
            )
        elif parent is not None:
            experiment_id = parent.info.experiment_id
        else:
            experiment_id = "0"  # MLflow's Default experiment
        tags = {"skvae.estimator": type(estimator).__name__}
        if parent is not None:
            tags["mlflow.parentRunId"] = parent.info.run_id
        created = client.create_run(
            experiment_id, run_name=self.run_name or type(estimator).__name__, tags=tags
        )
        run_id = created.info.run_id
        if self.log_params and hasattr(estimator, "get_params"):
            entities = importlib.import_module("mlflow.entities")
            params = [
                entities.Param(name, repr(value)[:500])
                for name, value in sorted(estimator.get_params(deep=False).items())
            ]
            client.log_batch(run_id, params=params)
        self.run_ids.append(run_id)
        return run_id

    def on_train_begin(self, run):
        """Create (or, when training continues, reopen) this fit's MLflow run.

        Parameters
        ----------
        run : skvae._engine.TrainingRun

        Examples
        --------
        See :class:`MLflowLogger`.
        """
        if not run.is_writer:
            return
        mlflow = _require("mlflow", "mlflow", "MLflowLogger")
        client = mlflow.MlflowClient(tracking_uri=self.tracking_uri)
        run_id = self._estimator_runs.get(run.estimator) if run.first_epoch > 0 else None
        if run_id is None:
            run_id = self._new_run(mlflow, client, run.estimator)
            self._estimator_runs[run.estimator] = run_id
        else:
            client.update_run(run_id, status="RUNNING")
        self._runs[id(run)] = (client, run_id)

    def on_epoch_end(self, run, record):
        """Log the record's numbers as metrics at step ``record["epoch"]``.

        Parameters
        ----------
        run : skvae._engine.TrainingRun
        record : dict

        Examples
        --------
        See :class:`MLflowLogger`.
        """
        if id(run) not in self._runs:
            return None
        client, run_id = self._runs[id(run)]
        entities = importlib.import_module("mlflow.entities")
        now = int(time.time() * 1000)
        metrics = [
            entities.Metric(key, value, now, record["epoch"])
            for key, value in _metrics(record).items()
            if math.isfinite(value)
        ]
        client.log_batch(run_id, metrics=metrics)
        return None

    def on_train_end(self, run):
        """End this fit's MLflow run: FINISHED, FAILED or KILLED.

        Parameters
        ----------
        run : skvae._engine.TrainingRun

        Examples
        --------
        See :class:`MLflowLogger`.
        """
        entry = self._runs.pop(id(run), None)
        if entry is None:
            return
        client, run_id = entry
        client.set_terminated(run_id, status=_MLFLOW_STATUS[training_outcome(run)])


_MLFLOW_STATUS = {
    "completed": "FINISHED",
    "stopped": "FINISHED",
    "interrupted": "KILLED",
    "failed": "FAILED",
}


def training_outcome(run):
    """How the training of ``run`` ended, for ``on_train_end``.

    ``run.outcome`` when the engine says ("completed", "stopped",
    "interrupted" or "failed"), else "failed" while an exception is
    propagating and "completed" otherwise.

    Parameters
    ----------
    run : skvae._engine.TrainingRun

    Returns
    -------
    outcome : str

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> training_outcome(SimpleNamespace(outcome="stopped"))
    'stopped'
    >>> training_outcome(None)
    'completed'
    """
    outcome = getattr(run, "outcome", None)
    if outcome in _MLFLOW_STATUS:
        return outcome
    error = sys.exc_info()[0]  # called from the engine's `finally`
    if error is None:
        return "completed"
    return "interrupted" if issubclass(error, KeyboardInterrupt) else "failed"
