"""The ``pythae`` way for ``bench_fit.py``: Pythae's VAE trainer, same networks.

Optional: this module imports ``pythae`` (``pip install pythae``, written
against 0.1.2) at the top, so importing it raises ``ImportError`` when pythae
is not installed; ``bench_fit`` imports it under ``try/except ImportError``.

What runs
---------
The encoder and decoder built by ``bench_fit.build_nets`` (same seed, so the
same initial weights as the other ways), wrapped in pythae's ``BaseEncoder``
(returning ``ModelOutput(embedding=mean, log_covariance=log_var)``) and
``BaseDecoder`` (returning ``ModelOutput(reconstruction=sigmoid(logits))``),
in ``pythae.models.VAE(VAEConfig(input_dim=(n_features,), latent_dim=16,
reconstruction_loss="bce"))``, trained by ``pythae.trainers.BaseTrainer`` with
``BaseTrainerConfig(num_epochs=epochs, learning_rate=1e-3,
per_device_train_batch_size=128, optimizer_cls="Adam", scheduler_cls=None,
steps_saving=None, steps_predict=None, seed=seed)`` and no eval dataset.

The objective is the other ways' (pythae 0.1.2, ``VAE.loss_function``)::

    recon_loss = F.binary_cross_entropy(recon_x.reshape(x.shape[0], -1),
                                        x.reshape(x.shape[0], -1),
                                        reduction="none").sum(dim=-1)
    KLD = -0.5 * torch.sum(1 + log_var - mu.pow(2) - log_var.exp(), dim=-1)
    return (recon_loss + KLD).mean(dim=0), ...

that is the Bernoulli NLL summed over features plus the analytic KL, averaged
over the batch; the one difference is that pythae takes the BCE of
probabilities (``sigmoid(logits)``, log clamped at -100) where the other ways
use ``binary_cross_entropy_with_logits``: the same value up to float32
rounding, but a saturated sigmoid (|logit| > ~17) has zero gradient.

What pythae's trainer does, unchanged
-------------------------------------
- ``DataLoader(BaseDataset(X, labels), batch_size=128, shuffle=True,
  num_workers=0, collate_fn=collate_dataset_output)``: one ``DatasetOutput``
  dict per row, collated per batch; no pinned memory; on CUDA each batch is
  moved with a blocking ``.cuda()``.
- ``epoch_loss += loss.item()`` and a NaN check at every step (one host sync
  per step); the epoch's training loss is the mean of the batch means.
- With no eval dataset it sets ``keep_best_on_train=True`` and deep-copies the
  whole model each epoch the training loss improves (inside the timed epoch).
- Seeds ``random``, numpy and torch (``set_seed(seed)``) before training;
  one forward pass as a "sanity check" when the trainer is built.
- Writes, in a ``tempfile.TemporaryDirectory`` removed afterwards: a
  ``VAE_training_<date>/final_model/`` folder with ``model.pt``,
  ``model_config.json``, ``environment.json``, ``training_config.json`` and
  cloudpickled ``encoder.pkl`` / ``decoder.pkl`` (the final save cannot be
  switched off; it is outside the epoch times, inside ``wall_seconds``, and
  reported as ``save_seconds``). With ``steps_saving=None`` there are no
  checkpoints.

What is changed, for a quiet benchmark
--------------------------------------
- The trainer's ``_setup_callbacks`` is overridden to leave out the
  ``ProgressBarCallback`` (a tqdm bar per epoch) and the
  ``MetricConsolePrinterCallback`` that it always adds; our timing callback is
  the only one.
- pythae's loggers (they set themselves to INFO with their own console
  handlers) are set to WARNING for the call and restored afterwards; so are
  the process-wide side effects of pythae that we know of (``MASTER_ADDR`` /
  ``MASTER_PORT`` set by ``BaseTrainerConfig``, the cloudpickle
  pickle-by-value registration of this module by ``model.save``).

The encoder and decoder networks are trained in place (the wrappers hold
them), and the held-out ELBO is ``bench_fit.held_out_elbo`` on them after the
last epoch, as for the other ways (not on pythae's "best on train" copy).
"""

import contextlib
import logging
import math
import os
import sys
import tempfile
import time

import numpy as np
import torch

import cloudpickle  # a pythae dependency
from pythae.data.datasets import BaseDataset
from pythae.models import VAE, VAEConfig
from pythae.models.base.base_utils import ModelOutput
from pythae.models.nn import BaseDecoder, BaseEncoder
from pythae.trainers import BaseTrainer, BaseTrainerConfig
from pythae.trainers.training_callbacks import CallbackHandler, TrainingCallback

__all__ = ["run_pythae"]

BATCH_SIZE = 128  # as bench_fit.BATCH_SIZE
LEARNING_RATE = 1e-3  # as bench_fit.LEARNING_RATE


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _Encoder(BaseEncoder):
    """x -> ModelOutput(embedding=mean, log_covariance=log_var) from a (mean, log_var) net."""

    def __init__(self, net):
        BaseEncoder.__init__(self)
        self.net = net

    def forward(self, x):
        mean, log_var = self.net(x).chunk(2, dim=-1)
        return ModelOutput(embedding=mean, log_covariance=log_var)


class _Decoder(BaseDecoder):
    """z -> ModelOutput(reconstruction=sigmoid(logits)): pythae's "bce" wants probabilities."""

    def __init__(self, net):
        BaseDecoder.__init__(self)
        self.net = net

    def forward(self, z):
        return ModelOutput(reconstruction=torch.sigmoid(self.net(z)))


class _QuietTrainer(BaseTrainer):
    """pythae's BaseTrainer without the tqdm bars and console metric printer."""

    def _setup_callbacks(self):
        if self.callbacks is None:
            self.callbacks = [TrainingCallback()]
        self.callback_handler = CallbackHandler(callbacks=self.callbacks, model=self.model)


class _EpochTimer(TrainingCallback):
    """Per-epoch wall seconds (epoch begin -> epoch end) and pythae's epoch loss."""

    def __init__(self, device):
        self.device = device
        self.epoch_seconds = []
        self.train_loss = []
        self._t0 = None
        self.t_last_log = None
        self.t_saved = None

    def on_epoch_begin(self, training_config, **kwargs):
        _sync(self.device)
        self._t0 = time.perf_counter()

    def on_epoch_end(self, training_config, **kwargs):
        # Called after the train step, the (absent) scheduler step and the
        # "best model" deepcopy; before the checkpoint save and on_log.
        _sync(self.device)
        self.epoch_seconds.append(time.perf_counter() - self._t0)

    def on_log(self, training_config, logs, **kwargs):
        loss = logs.get("train_epoch_loss")
        self.train_loss.append(float("nan") if loss is None else float(loss))
        self.t_last_log = time.perf_counter()

    def on_save(self, training_config, **kwargs):
        self.t_saved = time.perf_counter()


@contextlib.contextmanager
def _quiet_pythae():
    """pythae's loggers at WARNING; undo pythae's global side effects on exit."""
    manager = logging.Logger.manager
    levels = {}
    for name, lg in list(manager.loggerDict.items()):
        if (name == "pythae" or name.startswith("pythae.")) and isinstance(lg, logging.Logger):
            levels[name] = lg.level
            lg.setLevel(logging.WARNING)
    env = {key: os.environ.get(key) for key in ("MASTER_ADDR", "MASTER_PORT")}
    registered = set(cloudpickle.list_registry_pickle_by_value())
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        for module_name in set(cloudpickle.list_registry_pickle_by_value()) - registered:
            module = sys.modules.get(module_name)
            if module is not None:
                cloudpickle.unregister_pickle_by_value(module)


def run_pythae(
    X_train,
    X_test,
    epochs,
    device,
    seed,
    build_nets=None,
    held_out_elbo=None,
    *,
    batch_size=BATCH_SIZE,
    learning_rate=LEARNING_RATE,
):
    """Train bench_fit's VAE with pythae's ``VAE`` + ``BaseTrainer``; bench_fit's result dict.

    ``build_nets(n_features, seed, device) -> (encoder, decoder)`` and
    ``held_out_elbo(encoder, decoder, X, device) -> float`` are bench_fit's
    helpers; when None they are imported from ``bench_fit`` (which must then
    be importable, e.g. ``benchmarks/`` on ``sys.path``).

    Returns ``{"epoch_seconds", "wall_seconds", "train_loss", "elbo",
    "save_seconds"}``: per-epoch wall seconds (pythae's on_epoch_begin to
    on_epoch_end), the whole call up to the end of training (net and model
    construction, trainer set-up, training and pythae's final model save;
    not the ELBO), pythae's per-epoch training loss (mean of the batch mean
    losses), the held-out ELBO and the seconds of pythae's final save.
    """
    if build_nets is None or held_out_elbo is None:
        import bench_fit

        build_nets = build_nets or bench_fit.build_nets
        held_out_elbo = held_out_elbo or bench_fit.held_out_elbo
    device = torch.device(device)
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"pythae's trainer runs on cpu or cuda only, not {device}")
    # pythae places everything on "cuda" (the current device): make it ours.
    cuda_context = torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()

    with _quiet_pythae(), cuda_context, tempfile.TemporaryDirectory(
        prefix="skvae-bench-pythae-"
    ) as output_dir:
        _sync(device)
        t_start = time.perf_counter()
        n, n_features = X_train.shape
        encoder_net, decoder_net = build_nets(n_features, seed, device)
        with torch.no_grad():
            latent_dim = encoder_net(torch.zeros((1, n_features), device=device)).shape[-1] // 2
        model = VAE(
            VAEConfig(input_dim=(n_features,), latent_dim=latent_dim, reconstruction_loss="bce"),
            encoder=_Encoder(encoder_net),
            decoder=_Decoder(decoder_net),
        )
        train_dataset = BaseDataset(
            torch.from_numpy(np.ascontiguousarray(X_train, dtype=np.float32)),
            torch.zeros(n),  # BaseDataset wants labels
        )
        config = BaseTrainerConfig(
            output_dir=output_dir,
            num_epochs=epochs,
            learning_rate=learning_rate,
            per_device_train_batch_size=batch_size,
            optimizer_cls="Adam",
            optimizer_params=None,
            scheduler_cls=None,
            steps_saving=None,
            steps_predict=None,
            keep_best_on_train=True,  # what pythae forces anyway without an eval set
            seed=seed,
            no_cuda=device.type != "cuda",
            amp=False,
        )
        timer = _EpochTimer(device)
        trainer = _QuietTrainer(
            model=model,
            train_dataset=train_dataset,
            eval_dataset=None,
            training_config=config,
            callbacks=[timer],
        )
        trainer.train()
        _sync(device)
        wall = time.perf_counter() - t_start

    if len(timer.epoch_seconds) != epochs:
        raise RuntimeError(f"pythae ran {len(timer.epoch_seconds)} epochs, expected {epochs}")
    save_seconds = (
        timer.t_saved - timer.t_last_log
        if timer.t_saved is not None and timer.t_last_log is not None
        else float("nan")
    )
    train_loss = timer.train_loss if len(timer.train_loss) == epochs else [math.nan] * epochs
    return {
        "epoch_seconds": timer.epoch_seconds,
        "wall_seconds": wall,
        "train_loss": train_loss,
        "elbo": held_out_elbo(encoder_net, decoder_net, X_test, device),
        "save_seconds": save_seconds,
    }
