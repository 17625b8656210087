"""scikit-learn's callback API (``sklearn.callback``, scikit-learn >= 1.9) for skvae.

Two things for the estimators:

- :class:`CallbackSupport`, a mixin giving ``set_callbacks(*callbacks)``:
  scikit-learn's ``CallbackSupportMixin`` when ``sklearn.callback`` exists,
  else a small stand-in that accepts skvae's own callbacks
  (:class:`skvae.callbacks.Callback`) only;
- :func:`fit_callbacks`, the context manager a ``fit`` runs its training in.
  It yields the *engine callbacks* of the fit: the skvae callbacks set on the
  estimator, plus, when scikit-learn's callbacks are involved, one
  :class:`_SklearnBridge` that turns the engine's hooks into scikit-learn's
  task tree (the fit is the root task, each epoch a sub-task named
  ``"epoch"``) and guarantees scikit-learn's ``teardown``.

Nothing of this runs per training step, and a fit without callbacks makes no
callback context at all.
"""

import contextlib
import sys

from .callbacks import Callback, CallbackError, overrides_sklearn_hooks, training_outcome

try:
    from sklearn.callback import CallbackSupportMixin
    from sklearn.callback._callback_support import callback_management_context
except ImportError:  # scikit-learn < 1.9
    CallbackSupportMixin = callback_management_context = None

#: Whether scikit-learn's callback API is available (scikit-learn >= 1.9).
SKLEARN_CALLBACKS = CallbackSupportMixin is not None
#: The first scikit-learn with ``sklearn.callback``.
MIN_SKLEARN_FOR_CALLBACKS = "1.9"


class FallbackCallbackSupport:
    """``set_callbacks`` for a scikit-learn without ``sklearn.callback`` (< 1.9).

    Accepts skvae's callbacks only, stored where scikit-learn 1.9 stores
    them (``_skl_callbacks``); ``clone`` keeps them, as scikit-learn 1.9's does.

    Examples
    --------
    >>> from sklearn.base import BaseEstimator
    >>> from skvae.callbacks import Callback
    >>> class Model(FallbackCallbackSupport, BaseEstimator):
    ...     pass
    >>> model = Model().set_callbacks(Callback())
    >>> len(model._skl_callbacks)
    1
    >>> Model().set_callbacks(print)
    Traceback (most recent call last):
    ...
    TypeError: Model.set_callbacks takes skvae callbacks (subclasses of skvae.callbacks.Callback) ...
    """

    def set_callbacks(self, *callbacks):
        """Set the callbacks of the estimator's fits (none: remove them).

        Parameters
        ----------
        *callbacks : skvae.callbacks.Callback instances

        Returns
        -------
        self : estimator instance

        Examples
        --------
        See :class:`FallbackCallbackSupport`.
        """
        wrong = [cb for cb in callbacks if not isinstance(cb, Callback)]
        if wrong:
            raise TypeError(
                f"{type(self).__name__}.set_callbacks takes skvae callbacks (subclasses of "
                f"skvae.callbacks.Callback) with this scikit-learn, got {wrong[0]!r}. "
                "scikit-learn's own callbacks (sklearn.callback.ProgressBar, ...) need "
                f"scikit-learn >= {MIN_SKLEARN_FOR_CALLBACKS}."
            )
        if callbacks:
            self._skl_callbacks = list(callbacks)
        else:
            self.__dict__.pop("_skl_callbacks", None)
        return self

    def __sklearn_clone__(self):
        from sklearn.base import _clone_parametrized

        new = _clone_parametrized(self)
        if hasattr(self, "_skl_callbacks"):
            # As scikit-learn 1.9: the clones share the callback objects.
            new._skl_callbacks = self._skl_callbacks
        return new


#: The mixin skvae's estimators take ``set_callbacks`` from.
CallbackSupport = CallbackSupportMixin if SKLEARN_CALLBACKS else FallbackCallbackSupport


def _culprit(exc, callbacks):
    """The callback among ``callbacks`` in whose method ``exc`` was raised, and that method.

    The innermost such frame of the traceback; ``(None, None)`` when none is.
    """
    found = None, None
    tb = exc.__traceback__
    while tb is not None:
        owner = tb.tb_frame.f_locals.get("self")
        if any(owner is cb for cb in callbacks):
            found = owner, tb.tb_frame.f_code.co_name
        tb = tb.tb_next
    return found


def _named_error(exc, estimator, hook):
    """A CallbackError naming the scikit-learn callback (and its method) that raised ``exc``."""
    culprit, method = _culprit(exc, getattr(estimator, "_skl_callbacks", ()))
    if culprit is None:
        return CallbackError.from_exception("(scikit-learn's callback machinery)", hook, exc)
    return CallbackError.from_exception(culprit, method, exc)


class _SklearnBridge:
    """The engine callback that runs scikit-learn's callbacks on skvae's epochs.

    The fit is scikit-learn's root task (made by ``_init_callback_context``,
    merged into a meta-estimator's task when the estimator is fitted by
    one); each epoch is a sub-task named ``"epoch"``. ``fitted_estimator`` is
    built from ``run.fitted_attributes()`` only when a callback asks for it.
    """

    def __init__(self, estimator, X, y, max_epochs):
        self.estimator, self.X, self.y = estimator, X, y
        self.root = None
        self.epoch_ctx = None  # the epoch sub-task begun and not yet ended
        self.epoch_of_ctx = None
        self.root_ended = False
        try:
            self.root = estimator._init_callback_context(max_subtasks=max_epochs)
            self.root.call_on_fit_task_begin(estimator=estimator, X=X, y=y)
        except Exception as exc:
            raise _named_error(exc, estimator, "on_fit_task_begin") from exc

    def _call(self, hook, function, **kwargs):
        try:
            return function(estimator=self.estimator, X=self.X, y=self.y, **kwargs)
        except CallbackError:
            raise
        except Exception as exc:
            raise _named_error(exc, self.estimator, hook) from exc

    def on_train_begin(self, run):
        pass

    def on_epoch_begin(self, run):
        if self.epoch_ctx is not None:
            if self.epoch_of_ctx == run.epoch:
                return  # the same epoch again (after a divergence was restored)
            self._end_epoch()
        root = self.root
        if root.max_subtasks is not None and len(root._children_map) >= root.max_subtasks:
            root.max_subtasks = None  # more epochs than announced: say "unknown"
        self.epoch_ctx, self.epoch_of_ctx = root.subcontext(task_name="epoch"), run.epoch
        self._call(
            "on_fit_task_begin",
            self.epoch_ctx.call_on_fit_task_begin,
            reconstruction_attributes=run.fitted_attributes,
        )

    def on_epoch_end(self, run, record):
        if self.epoch_ctx is None:
            return False
        return self._end_epoch(reconstruction_attributes=run.fitted_attributes)

    def _end_epoch(self, **kwargs):
        ctx, self.epoch_ctx, self.epoch_of_ctx = self.epoch_ctx, None, None
        return self._call("on_fit_task_end", ctx.call_on_fit_task_end, **kwargs)

    def on_train_end(self, run):
        if self.epoch_ctx is not None:  # an epoch that did not complete
            self._end_epoch()
        failed = training_outcome(run) == "failed"
        self._end_root(None if failed else run.fitted_attributes)

    def _end_root(self, reconstruction_attributes=None):
        if self.root_ended:
            return
        self.root_ended = True
        self._call(
            "on_fit_task_end",
            self.root.call_on_fit_task_end,
            reconstruction_attributes=reconstruction_attributes,
        )

    def close(self, failed=False):
        """End the tasks still open (the fit failed before the engine ended them)."""
        try:
            if self.epoch_ctx is not None:
                self._end_epoch()
            self._end_root()
        except CallbackError as exc:
            if not failed:
                raise
            # Another exception already ends the fit: that one is raised.
            note = getattr(sys.exc_info()[1], "add_note", None)
            if note is not None:
                note(f"While ending scikit-learn's callback tasks: {exc}")


def _needs_bridge(estimator, callbacks):
    """Whether the fit must run scikit-learn's callback machinery."""
    if not SKLEARN_CALLBACKS or not hasattr(estimator, "_init_callback_context"):
        return False
    if hasattr(estimator, "_parent_callback_ctx"):
        return True  # fitted by a meta-estimator: join its task tree
    return any(not isinstance(cb, Callback) or overrides_sklearn_hooks(cb) for cb in callbacks)


@contextlib.contextmanager
def fit_callbacks(estimator, X, y=None, *, max_epochs):
    """The engine callbacks of a fit, with scikit-learn's set up and torn down.

    Use as ``with fit_callbacks(self, X, y, max_epochs=n) as callbacks:``
    around the training; pass ``callbacks`` to the engine. Without any
    callback (and outside a meta-estimator's fit) it yields ``[]`` and
    makes nothing else.

    Parameters
    ----------
    estimator : estimator instance
        The estimator being fitted (its ``set_callbacks`` stored the callbacks).
    X : array-like
        The training data, passed to scikit-learn's hooks.
    y : array-like or None, default=None
        The targets given to ``fit``, passed to scikit-learn's hooks
        (``sklearn.callback.ScoringMonitor`` scores only when it is not None).
    max_epochs : int
        The most epochs this fit will train (the root task's ``max_subtasks``).

    Yields
    ------
    callbacks : list
        skvae's callbacks set on the estimator, in order, then the bridge to
        scikit-learn's callbacks when there are any.

    Examples
    --------
    >>> from sklearn.base import BaseEstimator
    >>> class Model(CallbackSupport, BaseEstimator):
    ...     pass
    >>> logger = Callback()
    >>> with fit_callbacks(Model().set_callbacks(logger), [[0.0]], max_epochs=3) as callbacks:
    ...     callbacks == [logger]
    True
    """
    callbacks = list(getattr(estimator, "_skl_callbacks", ()))
    engine = [cb for cb in callbacks if isinstance(cb, Callback)]
    if not _needs_bridge(estimator, callbacks):
        yield engine
        return
    body_failed = False
    try:
        with callback_management_context(estimator):
            bridge = _SklearnBridge(estimator, X, y, max_epochs)
            try:
                yield engine + [bridge]
            except BaseException:
                body_failed = True
                bridge.close(failed=True)
                raise
            bridge.close()
    except Exception as exc:
        if body_failed or isinstance(exc, CallbackError):
            raise
        raise _named_error(exc, estimator, "teardown") from exc
