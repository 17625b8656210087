"""Callbacks: skvae's own (loggers, user-written) and scikit-learn's (sklearn.callback).

The first part drives the callbacks through a small stand-in of the training
engine (``_MiniEngineEstimator``, which calls the hooks as skvae's engine does),
so that the bridge and the loggers are tested without training anything. The
second part fits real VAEs, directly and inside Pipeline and GridSearchCV.
"""

import copy
import pickle
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from skvae import _sklearn_callbacks
from skvae._sklearn_callbacks import (
    SKLEARN_CALLBACKS,
    CallbackSupport,
    FallbackCallbackSupport,
    fit_callbacks,
)
from skvae.callbacks import Callback, CallbackError, MLflowLogger, TensorBoardLogger

needs_sklearn_callbacks = pytest.mark.skipif(
    not SKLEARN_CALLBACKS, reason="sklearn.callback needs scikit-learn >= 1.9"
)
ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------ a stand-in engine
class FakeRun:
    """What skvae's engine hands to callbacks (skvae._engine.TrainingRun's attributes)."""

    def __init__(self, estimator, first_epoch, stop_epoch, is_writer=True):
        self.estimator, self.module = estimator, None
        self.first_epoch, self.stop_epoch, self.epoch = first_epoch, stop_epoch, first_epoch
        self.history, self.is_writer = [], is_writer
        self.fitted_attributes_calls = 0

    def fitted_attributes(self):
        self.fitted_attributes_calls += 1
        return {"w_": float(self.epoch + 1)}


def _call(callback, hook, *args):
    # As the engine does: a callback's exception becomes a CallbackError.
    try:
        return getattr(callback, hook)(*args)
    except CallbackError:
        raise
    except Exception as exc:
        raise CallbackError.from_exception(callback, hook, exc) from exc


def _train(callbacks, run, fail_at_epoch=None, retry_epoch=None):
    try:
        for cb in callbacks:
            _call(cb, "on_train_begin", run)
        epoch = run.first_epoch
        while epoch < run.stop_epoch:
            run.epoch = epoch
            for cb in callbacks:
                _call(cb, "on_epoch_begin", run)
            if epoch == retry_epoch:  # a divergence restored: the epoch runs again
                retry_epoch = None
                continue
            if epoch == fail_at_epoch:
                raise FloatingPointError("diverged")
            record = {"epoch": epoch + 1, "loss": 10.0 / (epoch + 1), "kl": 0.5, "val_loss": None,
                      "seconds": 0.01, "divergences": ["restored"] if epoch == 1 else None}
            record = {k: v for k, v in record.items() if v is not None or k == "val_loss"}
            run.history.append(record)
            stop = False
            for cb in callbacks:
                stop |= bool(_call(cb, "on_epoch_end", run, record))
            epoch += 1
            if stop:
                break
    finally:
        for cb in callbacks:
            _call(cb, "on_train_end", run)


class _MiniEngineEstimator(CallbackSupport, TransformerMixin, BaseEstimator):
    """An estimator whose fit calls the callbacks exactly as skvae's fit does."""

    def __init__(self, max_iter=3, fail_at_epoch=None, retry_epoch=None, is_writer=True):
        self.max_iter = max_iter
        self.fail_at_epoch = fail_at_epoch
        self.retry_epoch = retry_epoch
        self.is_writer = is_writer

    def fit(self, X, y=None):
        return self._fit(X, y, n_epochs=self.max_iter)

    def partial_fit(self, X, y=None):
        return self._fit(X, y, n_epochs=1)

    def _fit(self, X, y, n_epochs):
        first = getattr(self, "n_iter_", 0) if n_epochs == 1 else 0
        with fit_callbacks(self, X, y, max_epochs=n_epochs) as callbacks:
            run = FakeRun(self, first, first + n_epochs, self.is_writer)
            self.last_run_ = run
            _train(callbacks, run, self.fail_at_epoch, self.retry_epoch)
        self.n_iter_, self.w_ = first + len(run.history), float(first + len(run.history))
        return self

    def transform(self, X):
        return np.asarray(X) * self.w_

    def score(self, X, y=None):
        return -self.w_


class Recorder(Callback):
    """A user callback: keeps every record, stops after ``stop_after`` epochs."""

    def __init__(self, stop_after=None):
        self.stop_after = stop_after
        self.records = []
        self.calls = []

    def on_train_begin(self, run):
        self.calls.append("train_begin")

    def on_epoch_end(self, run, record):
        self.records.append(dict(record))
        return self.stop_after is not None and len(self.records) >= self.stop_after

    def on_train_end(self, run):
        self.calls.append("train_end")


class TaskRecorder:
    """A scikit-learn callback keeping each task it sees (in-process fits only)."""

    def __init__(self, stop_at_epoch=None):
        self.events = []
        self.stop_at_epoch = stop_at_epoch

    def setup(self, estimator, context):
        self.events.append(("setup", context.task_name))

    def teardown(self, estimator, context):
        self.events.append(("teardown", context.task_name))

    def on_fit_task_begin(self, estimator, context):
        self.events.append(("begin", context.task_name, context.task_id))

    def on_fit_task_end(self, estimator, context):
        self.events.append(("end", context.task_name, context.task_id))
        return context.task_name == "epoch" and context.task_id == self.stop_at_epoch


class FittedRecorder(TaskRecorder):
    """Asks scikit-learn for ``fitted_estimator`` at each task's end."""

    def __init__(self):
        super().__init__()
        self.fitted = []

    def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
        self.fitted.append(fitted_estimator)


class TaskTreeRecorder(TaskRecorder):
    """The same, propagated by meta-estimators to the estimators they fit."""

    max_propagation_depth = None

    def __init__(self):
        super().__init__()
        self.roots = []

    def on_fit_task_begin(self, estimator, context):
        super().on_fit_task_begin(estimator, context)
        root = context
        while root.parent is not None:
            root = root.parent
        if not any(r is root for r in self.roots):
            self.roots.append(root)


def _tree(context):
    """(estimator, task, [children]) of a task tree, merged sub-trees included."""
    return (
        context.estimator_name,
        context.task_name,
        [_tree(child) for child in context._children_map.values()],
    )


X_SMALL = np.linspace(0, 1, 20, dtype=np.float32).reshape(10, 2)


# ------------------------------------------------------------------ unit tests
def test_callback_error_names_the_callback_and_hook():
    error = CallbackError.from_exception(Recorder(), "on_epoch_end", KeyError("loss"))
    assert isinstance(error, RuntimeError)
    assert (error.callback, error.hook) == ("Recorder", "on_epoch_end")
    assert str(error).startswith("Callback Recorder.on_epoch_end raised KeyError: 'loss'.")


def test_user_callback_sees_every_record_and_stops_training():
    recorder = Recorder(stop_after=2)
    est = _MiniEngineEstimator(max_iter=5).set_callbacks(recorder).fit(X_SMALL)
    assert [r["epoch"] for r in recorder.records] == [1, 2]
    assert est.n_iter_ == 2
    assert recorder.calls == ["train_begin", "train_end"]


def test_no_callback_makes_no_context(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a callback context was made")

    monkeypatch.setattr(_MiniEngineEstimator, "_init_callback_context", refuse, raising=False)
    est = _MiniEngineEstimator()
    with fit_callbacks(est, X_SMALL, max_epochs=3) as callbacks:
        assert callbacks == []
    # skvae callbacks that leave scikit-learn's hooks alone need no context either.
    recorder = Recorder()
    with fit_callbacks(est.set_callbacks(recorder), X_SMALL, max_epochs=3) as callbacks:
        assert callbacks == [recorder]
    assert not hasattr(est, "_callback_fit_ctx")


@needs_sklearn_callbacks
def test_bridge_reports_the_fit_and_each_epoch_as_tasks():
    tasks = TaskRecorder()
    est = _MiniEngineEstimator(max_iter=3).set_callbacks(tasks).fit(X_SMALL)
    assert tasks.events == [
        ("setup", "fit"),
        ("begin", "fit", 0),
        *[event for i in range(3) for event in (("begin", "epoch", i), ("end", "epoch", i))],
        ("end", "fit", 0),
        ("teardown", "fit"),
    ]
    # scikit-learn's state for the fit is gone; nothing asked for fitted_estimator.
    assert not hasattr(est, "_callback_fit_ctx") and not hasattr(est, "_skl_callbacks_to_teardown")
    assert est.last_run_.fitted_attributes_calls == 0


@needs_sklearn_callbacks
def test_fitted_estimator_is_built_from_the_runs_attributes_when_asked():
    tasks = FittedRecorder()
    est = _MiniEngineEstimator(max_iter=3).set_callbacks(tasks).fit(X_SMALL)
    # One per epoch end, and the fit's end: copies holding that epoch's attributes.
    assert [f.w_ for f in tasks.fitted] == [1.0, 2.0, 3.0, 3.0]
    assert all(f is not est and type(f) is type(est) for f in tasks.fitted)


@needs_sklearn_callbacks
def test_a_scikit_learn_callback_can_stop_training():
    est = _MiniEngineEstimator(max_iter=5).set_callbacks(TaskRecorder(stop_at_epoch=1)).fit(X_SMALL)
    assert est.n_iter_ == 2


@needs_sklearn_callbacks
def test_a_skvae_callback_overriding_a_scikit_learn_hook_gets_the_tasks():
    class EpochTasks(Callback):
        def __init__(self):
            self.ends = []

        def on_fit_task_end(self, estimator, context):
            self.ends.append(context.task_name)

    seen = EpochTasks()
    _MiniEngineEstimator(max_iter=2).set_callbacks(seen).fit(X_SMALL)
    assert seen.ends == ["epoch", "epoch", "fit"]


@needs_sklearn_callbacks
def test_teardown_runs_and_tasks_end_when_training_fails():
    tasks = TaskRecorder()
    est = _MiniEngineEstimator(max_iter=3, fail_at_epoch=1).set_callbacks(tasks)
    with pytest.raises(FloatingPointError):
        est.fit(X_SMALL)
    assert tasks.events[-3:] == [("end", "epoch", 1), ("end", "fit", 0), ("teardown", "fit")]
    assert not hasattr(est, "_callback_fit_ctx")


@needs_sklearn_callbacks
def test_an_epoch_trained_again_is_one_task_and_extra_epochs_are_accepted():
    tasks = TaskRecorder()
    _MiniEngineEstimator(max_iter=3, retry_epoch=1).set_callbacks(tasks).fit(X_SMALL)
    assert [e for e in tasks.events if e[0] == "end" and e[1] == "epoch"] == [
        ("end", "epoch", i) for i in range(3)
    ]
    # The engine runs more epochs than announced (a resumed checkpoint): no ValueError.
    est = _MiniEngineEstimator(max_iter=2).set_callbacks(TaskRecorder())
    with fit_callbacks(est, X_SMALL, max_epochs=2) as callbacks:
        _train(callbacks, FakeRun(est, 0, 4))


class _Failing(TaskRecorder):
    def __init__(self, hook):
        super().__init__()
        self.hook = hook

    def setup(self, estimator, context):
        if self.hook == "setup":
            raise ValueError("no setup")

    def on_fit_task_end(self, estimator, context):
        if self.hook == "on_fit_task_end" and context.task_name == "epoch":
            raise ValueError("bad score")

    def teardown(self, estimator, context):
        if self.hook == "teardown":
            raise OSError("cannot close")


@needs_sklearn_callbacks
@pytest.mark.parametrize("hook", ["setup", "on_fit_task_end", "teardown"])
def test_a_failing_scikit_learn_callback_is_named(hook):
    est = _MiniEngineEstimator(max_iter=2).set_callbacks(TaskRecorder(), _Failing(hook))
    with pytest.raises(CallbackError, match=rf"Callback _Failing\.{hook} raised") as info:
        est.fit(X_SMALL)
    assert isinstance(info.value.__cause__, (ValueError, OSError))
    assert not hasattr(est, "_callback_fit_ctx") and not hasattr(est, "n_iter_")


def test_fallback_without_sklearn_callback(monkeypatch):
    # As with scikit-learn < 1.9: no sklearn.callback, skvae's callbacks only.
    monkeypatch.setattr(_sklearn_callbacks, "SKLEARN_CALLBACKS", False)

    class OldSklearnEstimator(FallbackCallbackSupport, _MiniEngineEstimator):
        pass

    recorder = Recorder(stop_after=2)
    est = OldSklearnEstimator(max_iter=4).set_callbacks(recorder)
    assert clone(est)._skl_callbacks[0] is recorder  # clones share the callbacks
    est.fit(X_SMALL)
    assert est.n_iter_ == 2 and not hasattr(est, "_callback_fit_ctx")
    with pytest.raises(TypeError, match=r"skvae callbacks .* scikit-learn >= 1\.9"):
        OldSklearnEstimator().set_callbacks(TaskRecorder())
    assert not hasattr(est.set_callbacks(), "_skl_callbacks")


# ----------------------------------------------------------------- the loggers
def _read_scalars(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_tensorboard_logger_writes_one_scalar_per_epoch_per_key(tmp_path):
    pytest.importorskip("tensorboard")
    logger = TensorBoardLogger(tmp_path, run_name="mini")
    est = _MiniEngineEstimator(max_iter=3).set_callbacks(logger).fit(X_SMALL)
    (folder,) = logger.log_dirs
    assert Path(folder).parent == tmp_path and Path(folder).name.startswith("mini_")
    scalars = _read_scalars(folder)
    # val_loss is None (no early stopping), divergences is text: neither is a scalar.
    assert sorted(scalars) == ["kl", "loss", "seconds"]
    np.testing.assert_allclose(
        [v for _, v in scalars["loss"]], [r["loss"] for r in est.last_run_.history], rtol=1e-6
    )
    assert [s for s, _ in scalars["loss"]] == [1, 2, 3]


def test_tensorboard_logger_separates_fits_and_continues_partial_fit(tmp_path):
    pytest.importorskip("tensorboard")
    logger = TensorBoardLogger(tmp_path)
    est = _MiniEngineEstimator(max_iter=2).set_callbacks(logger)
    est.fit(X_SMALL)
    clone(est).fit(X_SMALL)  # a second estimator: its own folder
    assert len(set(logger.log_dirs)) == 2
    for _ in range(2):  # training continues: the same folder as that estimator's fit
        est.partial_fit(X_SMALL)
    assert len(logger.log_dirs) == 2
    steps = [s for s, _ in _read_scalars(logger.log_dirs[0])["loss"]]
    assert steps == [1, 2, 3, 4]


def test_tensorboard_logger_writes_on_the_writing_process_only(tmp_path):
    pytest.importorskip("tensorboard")
    logger = TensorBoardLogger(tmp_path)
    _MiniEngineEstimator(is_writer=False).set_callbacks(logger).fit(X_SMALL)
    assert logger.log_dirs == [] and list(tmp_path.iterdir()) == []


def test_loggers_copy_and_pickle_without_their_writers(tmp_path):
    pytest.importorskip("tensorboard")
    logger = TensorBoardLogger(tmp_path)
    est = _MiniEngineEstimator(max_iter=3, fail_at_epoch=99).set_callbacks(logger)
    with fit_callbacks(est, X_SMALL, max_epochs=1) as callbacks:
        run = FakeRun(est, 0, 1)
        callbacks[0].on_train_begin(run)  # a writer is open now
        for copied in (copy.deepcopy(logger), pickle.loads(pickle.dumps(logger))):
            assert copied._writers == {} and copied.log_dir == tmp_path
        callbacks[0].on_train_end(run)
    pickle.loads(pickle.dumps(est)).fit(X_SMALL)  # an unpickled copy still logs


def test_loggers_say_which_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    with pytest.raises(ImportError, match=re.escape("pip install 'skvae[tensorboard]'")):
        TensorBoardLogger()
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(ImportError, match=re.escape("pip install 'skvae[mlflow]'")):
        MLflowLogger()


def test_a_logger_that_cannot_import_stops_the_fit_with_a_callback_error(monkeypatch, tmp_path):
    pytest.importorskip("tensorboard")
    est = _MiniEngineEstimator().set_callbacks(TensorBoardLogger(tmp_path))
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(CallbackError, match=r"TensorBoardLogger\.on_train_begin raised ImportError"):
        est.fit(X_SMALL)


class _FakeMlflow:
    """Enough of mlflow's client API for MLflowLogger, recording what it is asked."""

    def __init__(self):
        self.__spec__ = types.SimpleNamespace(name="mlflow")  # "installed", for find_spec
        self.runs = {}
        self.active = None
        entities = types.SimpleNamespace(
            Metric=lambda key, value, timestamp, step: (key, value, step),
            Param=lambda key, value: (key, value),
        )
        self.modules = {"mlflow": self, "mlflow.entities": entities}

    def active_run(self):
        return self.active

    def get_tracking_uri(self):
        return "memory:"

    def MlflowClient(self, tracking_uri=None):  # noqa: N802 (mlflow's name)
        fake = self

        class Client:
            def get_experiment_by_name(self, name):
                return None

            def create_experiment(self, name):
                return "7"

            def create_run(self, experiment_id, run_name=None, tags=None):
                run_id = f"run{len(fake.runs)}"
                fake.runs[run_id] = dict(experiment=experiment_id, name=run_name, tags=tags,
                                         metrics=[], params=[], status=[])
                return types.SimpleNamespace(info=types.SimpleNamespace(run_id=run_id))

            def log_batch(self, run_id, metrics=(), params=()):
                fake.runs[run_id]["metrics"] += list(metrics)
                fake.runs[run_id]["params"] += list(params)

            def update_run(self, run_id, status=None):
                fake.runs[run_id]["status"].append(status)

            def set_terminated(self, run_id, status=None):
                fake.runs[run_id]["status"].append(status)

        return Client()


def test_mlflow_logger_logs_each_epoch_as_a_step(monkeypatch):
    fake = _FakeMlflow()
    for name, module in fake.modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    fake.active = types.SimpleNamespace(info=types.SimpleNamespace(run_id="parent", experiment_id="3"))
    logger = MLflowLogger(experiment_name="digits")
    est = _MiniEngineEstimator(max_iter=2).set_callbacks(logger)
    est.fit(X_SMALL)
    est.partial_fit(X_SMALL)  # continues the same MLflow run
    with pytest.raises(FloatingPointError):
        _MiniEngineEstimator(fail_at_epoch=0).set_callbacks(logger).fit(X_SMALL)
    assert logger.run_ids == ["run0", "run1"]
    run = fake.runs["run0"]
    assert run["experiment"] == "7" and run["tags"]["mlflow.parentRunId"] == "parent"
    assert [(k, s) for k, _, s in run["metrics"] if k == "loss"] == [("loss", 1), ("loss", 2), ("loss", 3)]
    assert {k for k, _, _ in run["metrics"]} == {"loss", "kl", "seconds"}
    assert ("max_iter", "2") in run["params"]
    assert run["status"] == ["FINISHED", "RUNNING", "FINISHED"]
    assert fake.runs["run1"]["status"] == ["FAILED"]


def test_mlflow_logger_with_mlflow_itself(monkeypatch, tmp_path):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # mlflow 3's file store opt-in
    uri = tmp_path.as_uri()
    logger = MLflowLogger(experiment_name="skvae-test", tracking_uri=uri)
    est = _MiniEngineEstimator(max_iter=3).set_callbacks(logger).fit(X_SMALL)
    client = mlflow.MlflowClient(tracking_uri=uri)
    (run_id,) = logger.run_ids
    history = client.get_metric_history(run_id, "loss")
    assert [m.step for m in history] == [1, 2, 3]
    np.testing.assert_allclose([m.value for m in history], [r["loss"] for r in est.last_run_.history])
    assert client.get_run(run_id).info.status == "FINISHED"


# ------------------------------------------------------- real fits (the engine)
def _vae_supports_callbacks():
    from skvae import VAETransformer

    return hasattr(VAETransformer, "set_callbacks")


needs_engine = pytest.mark.skipif(
    not _vae_supports_callbacks(), reason="VAETransformer has no set_callbacks yet"
)


def _vae(**params):
    from skvae import VAETransformer

    defaults = dict(n_components=2, max_iter=3, batch_size=64, random_state=0)
    return VAETransformer(**{**defaults, **params})


def _elbo(estimator, X, y=None):
    return estimator.score(X)


@needs_engine
def test_user_callback_sees_each_record_of_a_real_fit_and_stops_it(digits_small):
    X, _ = digits_small
    recorder = Recorder()
    vae = _vae().set_callbacks(recorder).fit(X)
    assert [r["epoch"] for r in recorder.records] == [1, 2, 3]
    for seen, kept in zip(recorder.records, vae.history_):
        assert seen.keys() == kept.keys()
        np.testing.assert_allclose(seen["loss"], kept["loss"], rtol=1e-5)
    assert recorder.calls == ["train_begin", "train_end"]

    stopper = Recorder(stop_after=2)
    vae = _vae(max_iter=5).set_callbacks(stopper).fit(X)
    assert vae.n_iter_ == 2 and len(vae.history_) == 2


class _Boom(Callback):
    def on_epoch_end(self, run, record):
        if record["epoch"] == 2:
            raise ZeroDivisionError("boom")


@needs_engine
def test_a_failing_callback_leaves_the_fitted_estimator_unchanged(digits_small):
    X, _ = digits_small
    vae = _vae().fit(X)
    before = (vae.transform(X[:20]), list(vae.history_), vae.n_iter_)
    with pytest.raises(CallbackError) as info:
        vae.set_callbacks(_Boom()).fit(X)
    assert "_Boom" in str(info.value) and "on_epoch_end" in str(info.value)
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    np.testing.assert_allclose(vae.transform(X[:20]), before[0], rtol=1e-5, atol=1e-6)
    assert vae.history_ == before[1] and vae.n_iter_ == before[2]


@needs_engine
@needs_sklearn_callbacks
def test_progress_bar_on_a_vae(digits_small):
    pytest.importorskip("rich")
    from sklearn.callback import ProgressBar
    from sklearn.callback import _progressbar

    X, _ = digits_small
    vae = _vae().set_callbacks(ProgressBar()).fit(X)
    assert vae.n_iter_ == 3 and not hasattr(vae, "_callback_fit_ctx")
    assert _progressbar._run_monitors == {}  # its display thread ended (teardown ran)


@needs_engine
@needs_sklearn_callbacks
@pytest.mark.parametrize("model", ["VAETransformer", "ConditionalVAETransformer"])
def test_scoring_monitor_scores_each_epoch(digits_small, model):
    import skvae
    from sklearn.callback import ScoringMonitor

    X, y = digits_small
    monitor = ScoringMonitor(scoring={"elbo": _elbo})
    vae = getattr(skvae, model)(n_components=2, max_iter=3, batch_size=64, random_state=0)
    vae.set_callbacks(monitor).fit(X, y)  # the y makes ScoringMonitor score
    rows = monitor.get_logs().data
    assert all("elbo" in row for row in rows), (
        "ScoringMonitor scored nothing: it scores only when the y given to fit reaches "
        "fit_callbacks(self, X, y, ...)"
    )
    epochs = [row["elbo"] for row in rows if row["task_name"] == "epoch"]
    assert len(epochs) == 3
    # The last epoch's model is the fitted one (no early stopping).
    np.testing.assert_allclose(epochs[-1], vae.score(X), rtol=1e-5)
    (fit_row,) = [row for row in rows if row["task_name"] == "fit"]
    np.testing.assert_allclose(fit_row["elbo"], vae.score(X), rtol=1e-5)


@needs_engine
@needs_sklearn_callbacks
def test_callbacks_on_a_pipeline_reach_the_vae(digits_small):
    pytest.importorskip("rich")
    from sklearn.callback import ProgressBar

    X, _ = digits_small
    tree = TaskTreeRecorder()
    pipe = Pipeline([("scale", MinMaxScaler(clip=True)), ("vae", _vae())])
    with pytest.warns(UserWarning, match="MinMaxScaler does not support callbacks"):
        pipe.set_callbacks(tree).fit(X)
    (root,) = tree.roots
    scale_step, final = _tree(root)[2]
    assert final[:2] == ("VAETransformer", "fit")
    assert [child[1] for child in final[2]] == ["epoch"] * 3
    assert tree.events.count(("teardown", "fit")) == 1  # once, by the outermost estimator
    with pytest.warns(UserWarning, match="MinMaxScaler"):
        pipe.set_callbacks(ProgressBar()).fit(X)


@needs_engine
@needs_sklearn_callbacks
def test_callbacks_on_a_grid_search_reach_every_vae_fit(digits_small):
    pytest.importorskip("rich")
    from sklearn.callback import ProgressBar

    X, _ = digits_small
    tree = TaskTreeRecorder()
    search = GridSearchCV(_vae(max_iter=2), {"beta": [0.5, 1.0]}, cv=2).set_callbacks(tree)
    search.fit(X)
    (root,) = tree.roots
    (_, _, (search_task, refit)) = _tree(root)
    fits = search_task[2] + [refit]
    assert len(fits) == 2 * 2 + 1  # candidates x folds, and the refit
    for estimator_name, task_name, epochs in fits:
        assert (estimator_name, task_name) == ("VAETransformer", "fit")
        assert [e[1] for e in epochs] == ["epoch", "epoch"]
    search.set_callbacks(ProgressBar()).fit(X)
    pipe = Pipeline([("scale", MinMaxScaler(clip=True)), ("vae", _vae(max_iter=2))])
    with pytest.warns(UserWarning, match="MinMaxScaler"):
        GridSearchCV(pipe, {"vae__beta": [0.5, 1.0]}, cv=2).set_callbacks(
            ProgressBar(max_propagation_depth=None)
        ).fit(X)


@needs_engine
def test_tensorboard_event_files_of_real_fits(digits_small, tmp_path):
    pytest.importorskip("tensorboard")
    X, _ = digits_small
    logger = TensorBoardLogger(tmp_path)
    vae = _vae(early_stopping=True, validation_fraction=0.2, n_iter_no_change=10)
    vae.set_callbacks(logger).fit(X)
    GridSearchCV(_vae(max_iter=2).set_callbacks(logger), {"beta": [0.5, 1.0]}, cv=2).fit(X)
    assert len(set(logger.log_dirs)) == 1 + 2 * 2 + 1  # each fit its own folder
    scalars = _read_scalars(logger.log_dirs[0])
    numeric = [k for k, v in vae.history_[0].items() if k != "epoch" and isinstance(v, float)]
    assert set(numeric) <= set(scalars) and "val_loss" in scalars
    for key in numeric:
        assert [s for s, _ in scalars[key]] == [1, 2, 3]
        np.testing.assert_allclose(
            [v for _, v in scalars[key]], [r[key] for r in vae.history_], rtol=1e-5
        )


@needs_engine
def test_skvae_callbacks_without_sklearn_callback(digits_small, monkeypatch):
    from skvae import VAETransformer

    monkeypatch.setattr(_sklearn_callbacks, "SKLEARN_CALLBACKS", False)

    class OldSklearnVAE(FallbackCallbackSupport, VAETransformer):
        pass

    X, _ = digits_small
    recorder = Recorder(stop_after=2)
    vae = OldSklearnVAE(n_components=2, max_iter=4, random_state=0).set_callbacks(recorder).fit(X)
    assert vae.n_iter_ == 2 and [r["epoch"] for r in recorder.records] == [1, 2]
    with pytest.raises(TypeError, match="skvae callbacks"):
        vae.set_callbacks(TaskRecorder())


def _doc_blocks():
    """The ```python blocks of docs/callbacks.md, less those marked "not run".

    Each is padded with blank lines so that a traceback's line numbers are
    the Markdown file's.
    """
    text = (ROOT / "docs" / "callbacks.md").read_text()
    blocks = re.finditer(r"(<!-- not run[^>]*-->\n)?```python\n(.*?)```", text, flags=re.S)
    return [
        "\n" * text.count("\n", 0, match.start(2)) + match.group(2)
        for match in blocks
        if not match.group(1)
    ]


@needs_engine
@needs_sklearn_callbacks
def test_the_examples_of_docs_callbacks_md_run(tmp_path, monkeypatch, capsys):
    pytest.importorskip("rich")
    pytest.importorskip("tensorboard")
    monkeypatch.chdir(tmp_path)  # TensorBoard writes runs/ here
    blocks = _doc_blocks()
    assert len(blocks) >= 6
    namespace = {}
    with pytest.warns(UserWarning):  # MinMaxScaler does not support callbacks
        for code in blocks:
            exec(compile(code, str(ROOT / "docs" / "callbacks.md"), "exec"), namespace)
    out = capsys.readouterr().out
    assert "epoch 2: loss" in out
    assert (tmp_path / "runs").is_dir()
