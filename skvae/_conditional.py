"""Models that learn from labels: a conditional VAE and a VAE with an auxiliary classifier.

Both are :class:`~skvae.VAETransformer` subclasses that take ``y`` in ``fit``:

- :class:`ConditionalVAETransformer` feeds the one-hot label to the encoder
  and to the decoder, q(z | x, c) and p(x | z, c), and generates a chosen
  class. Label dropout trains an "unknown" (all-zero) condition too, so that
  ``transform(X)`` works without labels, as scikit-learn pipelines need.
- :class:`AuxiliaryClassifierVAE` is a VAE with an auxiliary classifier: a classifier
  predicts the label from x, its softmax is appended to z at the decoder, and
  its cross-entropy joins the loss. It needs labels in ``fit`` only; it is a
  scikit-learn classifier (``predict``, ``predict_proba``) and a transformer.
"""

from numbers import Integral, Real

import numpy as np
import torch
from scipy.special import log_softmax
from sklearn.base import ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets, unique_labels
from sklearn.utils.validation import check_consistent_length, check_is_fitted, column_or_1d

from . import _io
from ._data import TrainingData
from ._estimator import VAETransformer, _mask_width, _missing_likelihood, validate_data
from ._model import VAEModule
from ._plugin_check import check_vae_module
from .base import ACTIVATIONS, check_layer_sizes, dense_stack



def _with_vae_parameters(doc):
    """Insert VAETransformer's parameter descriptions at ``{vae_parameters}``."""
    base = VAETransformer.__doc__
    start = base.index("    n_components : int")
    end = base.index("\n    Attributes\n")
    return doc.replace("    {vae_parameters}\n", base[start:end].rstrip("\n") + "\n")


class _LabelledVAE(VAETransformer):
    """Label handling shared by the estimators that take y in fit."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags

    def fit(self, X, y=None):
        """Fit the model on X with labels y; y == -1 marks an unlabelled row.

        Parameters
        ----------
        X : array-like or pandas DataFrame of shape (n_samples, n_features)
            Training data (float32 stays float32). A DataFrame may be a
            table of numeric, boolean, category and string columns (see
            :doc:`/tables`).
        y : array-like of shape (n_samples,)
            Class labels (any hashable values: integers, strings, ...).
            Required. -1 marks an unlabelled row (scikit-learn's
            semi-supervised convention, as in
            :class:`~sklearn.semi_supervised.LabelSpreading`); -1 is never a
            class. With string labels, use an object array holding the
            integer -1 for the unlabelled rows. At least one row must be
            labelled.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, n_epochs=None, incremental=False, y=y)

    def partial_fit(self, X, y=None, classes=None):
        """Train for one more epoch on X and y (initialising the model on the first call).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Class labels, -1 for an unlabelled row (see :meth:`fit`).
            Required. Every row may be unlabelled once the classes are
            known (from ``classes`` or an earlier call).
        classes : array-like of shape (n_classes,), default=None
            Every class of the problem (never -1). On the first call it
            fixes ``classes_`` (None: the labels in this ``y``); later
            calls may omit it, and labels outside ``classes_`` are an error.

        Returns
        -------
        self : object
            The updated estimator.
        """
        return self._fit(X, n_epochs=1, incremental=True, y=y, classes=classes)

    def _training_data(self, X, reset, y=None, classes=None):
        """Validate X and y; return the rows with their one-hot conditions.

        An unlabelled row (y == -1) gets the all-zero condition.
        """
        setting = self.data_on_device
        streams = isinstance(X, np.memmap) if isinstance(setting, str) else not setting
        if streams or self._reads_table(X, reset):
            # a table, or rows read batch by batch (_training_rows); the labels, small, in memory
            if y is None:
                raise ValueError(
                    f"This {type(self).__name__} estimator requires y to be passed, but the "
                    "target y is None."
                )
            X = self._training_rows(X, reset)
            y = column_or_1d(np.asarray(y), warn=True)
            check_consistent_length(X, y)
        else:
            if reset:
                self.__dict__.pop("table_schema_", None)  # an array model now
            X, y = validate_data(
                self, X, y, dtype=[np.float32, np.float64], reset=reset, ensure_min_features=1,
                ensure_all_finite=self._finite_rule(),
            )
        data = TrainingData(X, self._conditions_of_training_labels(y, reset, classes),
                            labelled_share=self._labelled_share())
        if data.has_unlabelled:
            self._check_unlabelled_fit()
        return data

    def _conditions_of_training_labels(self, y, reset, classes):
        """Set ``classes_`` and the class counts from training labels; return their one-hot rows.

        Unlabelled rows (y == -1) get rows of zeros; they count in no class.
        """
        unlabelled = unlabelled_rows(y)
        labelled_y = y[~unlabelled]
        if labelled_y.size:
            check_classification_targets(labelled_y)
        if classes is not None:
            classes = column_or_1d(np.asarray(classes))
            if unlabelled_rows(classes).any():
                raise ValueError(
                    "classes contains -1, which marks unlabelled rows and is never a class; "
                    "list the real classes only."
                )
        if reset:
            if classes is None and not labelled_y.size:
                raise ValueError(
                    f"y has no labelled row: all {y.shape[0]} entries are -1, the mark of "
                    f"an unlabelled row. {type(self).__name__} needs at least one labelled "
                    "row to know the classes (or, with partial_fit, classes=[...])."
                )
            self.classes_ = unique_labels(labelled_y if classes is None else classes)
            self.class_count_ = np.zeros(len(self.classes_))
        elif classes is not None and not np.array_equal(unique_labels(classes), self.classes_):
            raise ValueError(
                f"classes={np.asarray(classes).tolist()} differs from the fitted "
                f"classes_ {self.classes_.tolist()}; set warm_start=False or start "
                "partial_fit on a new estimator to change the classes."
            )
        index = self._label_index(labelled_y, "y")
        self.class_count_ = self.class_count_ + np.bincount(index, minlength=len(self.classes_))
        total = self.class_count_.sum()
        n_classes = len(self.classes_)
        self.class_prior_ = (
            self.class_count_ / total if total else np.full(n_classes, 1.0 / n_classes)
        )
        conditions = np.zeros((y.shape[0], n_classes), dtype=np.float32)
        conditions[~unlabelled] = self._one_hot(index)
        return conditions

    def _labelled_share(self):
        """The share of labelled rows in a training epoch with unlabelled rows (None:
        the rows as given); see :class:`AuxiliaryClassifierVAE`."""
        return None

    def _check_unlabelled_fit(self):
        """Raise if this estimator's settings cannot train on unlabelled rows (none here)."""

    def _label_index(self, y, name):
        """Indices into ``classes_`` of labels ``y``; ValueError for unknown labels."""
        y = column_or_1d(np.asarray(y), warn=True)
        encoder = LabelEncoder()
        encoder.classes_ = self.classes_
        try:
            return encoder.transform(y).astype(np.intp, copy=False)  # float when y is empty
        except (ValueError, TypeError):
            known = set(self.classes_.tolist())
            unknown = sorted({label for label in y.tolist() if label not in known}, key=repr)
            raise ValueError(
                f"{name} contains labels not seen in fit: {unknown}. "
                f"{type(self).__name__} was fitted on classes_ = {self.classes_.tolist()}."
            ) from None

    def _one_hot(self, index):
        return np.eye(len(self.classes_), dtype=np.float32)[index]

    def _conditions_of(self, y, n_rows, name="y", unlabelled=False):
        """One-hot conditions of ``y`` for ``n_rows`` rows: a label or one per row.

        With ``unlabelled``, -1 (an unlabelled row) gives the all-zero
        condition; otherwise it is an error that says so.
        """
        y = np.asarray(y)
        if y.ndim == 0:
            y = np.repeat(y, n_rows)
        elif y.ndim != 1 or y.shape[0] != n_rows:
            raise ValueError(
                f"{name} must be one label or an array of {n_rows} labels (one per "
                f"row); got shape {y.shape}."
            )
        missing = unlabelled_rows(y)
        if not missing.any():
            return self._one_hot(self._label_index(y, name))
        if not unlabelled:
            raise ValueError(
                f"{name} contains -1, the mark of an unlabelled training row, which is "
                f"never a class of {type(self).__name__}: pass labels from classes_ = "
                f"{self.classes_.tolist()}, or y=None."
            )
        conditions = np.zeros((n_rows, len(self.classes_)), dtype=np.float32)
        conditions[~missing] = self._one_hot(self._label_index(y[~missing], name))
        return conditions


def unlabelled_rows(y):
    """Boolean mask of the entries of ``y`` equal to -1 (unlabelled rows).

    scikit-learn's semi-supervised convention
    (:class:`~sklearn.semi_supervised.SelfTrainingClassifier`): -1 marks an
    unlabelled row, in a numeric array or, among string labels, in an
    object array. A numpy string array (dtype ``U`` or ``S``) cannot hold
    the integer -1; the string ``"-1"`` in it is refused as ambiguous.

    Examples
    --------
    >>> import numpy as np
    >>> unlabelled_rows(np.array([3, -1, 0])).tolist()
    [False, True, False]
    >>> unlabelled_rows(np.array(["cat", -1], dtype=object)).tolist()
    [False, True]
    """
    y = np.asarray(y)
    if y.dtype.kind in "US":
        if np.any(y == y.dtype.type("-1")):
            raise ValueError(
                "y holds the string '-1'. Unlabelled rows are marked by the integer -1: "
                "with string labels, pass an object array (y.astype(object)) with -1 for "
                "the unlabelled rows, as SelfTrainingClassifier asks."
            )
        return np.zeros(y.shape, dtype=bool)
    if y.dtype.kind not in "iufbO":
        return np.zeros(y.shape, dtype=bool)
    return np.asarray(y == -1, dtype=bool).reshape(y.shape)


class ConditionalVAETransformer(_LabelledVAE):
    """Conditional variational autoencoder (CVAE): encoder and decoder see the label.

    ``fit(X, y)`` learns q(z | x, c) and p(x | z, c), where c is the one-hot
    vector of the label y among ``classes_`` (Sohn et al. 2015). With label
    dropout, each training row's c is replaced, with probability
    ``label_dropout`` (drawn anew at every step from the estimator's seeded
    generator), by the all-zero "unknown" condition, so that one network also
    learns an unconditional model. Every method that takes ``y`` conditions
    on it when given and uses the unknown condition otherwise:

    - ``transform(X)`` encodes without labels, as scikit-learn pipelines and
      checks need (``fit_transform(X, y)`` is ``fit(X, y).transform(X)``,
      the same unconditional code at fit and at predict time);
      ``transform(X, y)`` gives the posterior mean of q(z | x, c), a code
      freed of the label (the decoder holds the class);
    - ``score_samples(X, y)`` is the ELBO of log p(x | y), and
      ``score_samples(X)`` that of the unconditional model;
    - ``sample(n, y=label)`` generates the chosen class; ``sample(n)`` draws
      from the unconditional model.

    The objective, per sample, is the negative conditional ELBO with a KL
    weight::

        loss = -log p(x | z, c) + beta * KL(q(z | x, c) || p(z))

    with c the one-hot label, zeroed with probability ``label_dropout``;
    minibatches average it, and the validation loss (no dropout) is the same.

    **Unlabelled rows.** ``y == -1`` marks an unlabelled row (scikit-learn's
    semi-supervised convention): it trains with the all-zero unknown
    condition, the one label dropout trains, and ``classes_`` leaves it
    out; -1 in the ``y`` of any method means that condition for that row.
    See :doc:`/semi_supervised`.

    The architecture must accept condition widths in ``build``
    (``encoder_conditions``, ``decoder_conditions``), as ``"mlp"`` does;
    others are refused with a ValueError.

    Parameters
    ----------
    {vae_parameters}
    label_dropout : float, default=0.2
        Probability, per training row and step, that its label is replaced
        by the unknown condition. 0 trains the conditional model only; the
        methods called without ``y`` then use a condition never seen in
        training.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    class_count_ : ndarray of shape (n_classes,)
        Labelled training rows per class (added up over ``partial_fit``
        calls and warm starts).
    class_prior_ : ndarray of shape (n_classes,)
        Proportion of each class among the labelled training rows (uniform
        while there is none).
    module_ : torch.nn.Module
        The trained VAE; its network takes the condition.
    architecture_, likelihood_, prior_ : Plugin
        The resolved plugin configurations.
    optimizer_ : torch.optim.Optimizer
        The optimizer, kept for ``warm_start`` and ``partial_fit``.
    history_ : list of dict
        One dict per epoch, as in :class:`~skvae.VAETransformer`.
    n_iter_ : int
        Number of epochs run.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    VAETransformer : The unconditional model.
    AuxiliaryClassifierVAE : Learns the label from x instead of taking it.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skvae import ConditionalVAETransformer
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X / 16
    >>> cvae = ConditionalVAETransformer(n_components=4, max_iter=5,
    ...                                  random_state=0).fit(X, y)
    >>> cvae.classes_
    array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    >>> cvae.transform(X[:3]).shape  # without labels: the unknown condition
    (3, 4)
    >>> cvae.transform(X[:3], y[:3]).shape  # conditioned on the labels
    (3, 4)
    >>> cvae.sample(5, random_state=0, y=7).shape  # five sevens
    (5, 64)
    >>> bool(cvae.score_samples(X[:50], y[:50]).mean()
    ...      > cvae.score_samples(X[:50], (y[:50] + 1) % 10).mean())
    True
    """

    _parameter_constraints = {
        **VAETransformer._parameter_constraints,
        "label_dropout": [Interval(Real, 0, 1, closed="left")],
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
        label_dropout=0.2,
    ):
        super().__init__(
            n_components,
            architecture=architecture,
            likelihood=likelihood,
            prior=prior,
            beta=beta,
            kl_warmup=kl_warmup,
            kl_cycles=kl_cycles,
            free_bits=free_bits,
            n_importance=n_importance,
            max_iter=max_iter,
            batch_size=batch_size,
            learning_rate=learning_rate,
            optimizer=optimizer,
            lr_schedule=lr_schedule,
            clip_grad_norm=clip_grad_norm,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            tol=tol,
            device=device,
            precision=precision,
            compile=compile,
            random_state=random_state,
            verbose=verbose,
            warm_start=warm_start,
            on_divergence=on_divergence,
            checkpoint_path=checkpoint_path,
            data_on_device=data_on_device,
            missing_values=missing_values,
        )
        self.label_dropout = label_dropout

    def _module_config(self):
        width = len(self.classes_)
        return {**self._missing_config(), "encoder_conditions": width, "decoder_conditions": width}

    def _trainer_options(self):
        return {"condition_dropout": float(self.label_dropout)}

    def transform(self, X, y=None):
        """Encode X: the posterior mean of q(z | x, c), deterministic.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to encode.
        y : label or array-like of shape (n_samples,), default=None
            Labels to condition on; None, or -1 for a row, uses the unknown
            condition.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components)
            Posterior means, in the dtype of X (float32 or float64).
        """
        check_is_fitted(self)
        X, memmap = self._validate_inference_data(X)
        C = None if y is None else self._conditions_of(y, X.shape[0], unlabelled=True)
        return self._encode_batches(X, C, memmap=memmap)

    def inverse_transform(self, X, y=None):
        """Decode latent codes to the mean of p(x | z, c) in input space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Latent codes, such as the output of :meth:`transform`.
        y : label or array-like of shape (n_samples,), default=None
            Labels to condition on; None, or -1 for a row, uses the unknown
            condition.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features_in_) or DataFrame
            Decoded means, in the dtype of the input; for a model fitted on
            a table, a DataFrame with its columns and dtypes.
        """
        check_is_fitted(self)
        Z = self._check_latent(X)
        C = None if y is None else self._conditions_of(y, Z.shape[0], unlabelled=True)
        return self._as_table(self._decode_batches(Z, C))

    def score_samples(self, X, y=None, *, method="elbo", n_importance=None):
        """Per-sample log-likelihood bound, in nats: of log p(x | y), or of log p(x).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.
        y : label or array-like of shape (n_samples,), default=None
            Labels: the bound is then on log p(x | y). None (or -1 for a
            row) scores under the unknown condition (the unconditional
            model).
        method : {"elbo", "iwae"}, default="elbo"
            As in :meth:`VAETransformer.score_samples`.
        n_importance : int, default=None
            Draws per sample (default 16 for "elbo", 1000 for "iwae").

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Higher is better; deterministic.
        """
        check_is_fitted(self)
        k = self._check_score_args(method, n_importance)
        X, memmap = self._validate_inference_data(X)
        C = None if y is None else self._conditions_of(y, X.shape[0], unlabelled=True)
        return self._score_bound(X, method, k, C, memmap=memmap)

    def score(self, X, y=None):
        """Mean ELBO in nats per sample: of log p(x | y) given y, else of log p(x).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.
        y : array-like of shape (n_samples,), default=None
            Labels to condition on (grid search passes them).

        Returns
        -------
        score : float
            Mean of :meth:`score_samples`.
        """
        return float(np.mean(self.score_samples(X, y)))

    def sample(self, n_samples=1, random_state=None, *, y=None, decode="mean"):
        """Generate samples of a chosen class: z ~ p(z), decoded with p(x | z, c).

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples.
        random_state : int, RandomState instance or None, default=None
            Seeds the draws; None gives new draws at every call.
        y : label or array-like of shape (n_samples,), default=None
            The class to generate (one label for all samples, or one label
            per sample); None, or -1 for a sample, uses the unknown condition.
        decode : {"mean", "draw"}, default="mean"
            "mean" returns the mean of p(x | z, c); "draw" one draw from it.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features_in_) or DataFrame
            Generated samples, float32; for a model fitted on a table, a
            DataFrame with its columns, order, dtypes and categories.
        """
        check_is_fitted(self)
        self._check_sample_args(n_samples, decode)
        C = None if y is None else self._conditions_of(y, n_samples, unlabelled=True)
        return self._as_table(self._generate(n_samples, random_state, decode, C))


ConditionalVAETransformer.__doc__ = _with_vae_parameters(ConditionalVAETransformer.__doc__)


class AuxiliaryClassifierModule(VAEModule):
    """A VAE whose decoder also sees a classifier's softmax of x.

    Parameters
    ----------
    net : torch.nn.Module
        Encoder/decoder network whose decoder takes ``n_classes`` conditions.
    likelihood, prior : modules
        As in :class:`~skvae._model.VAEModule`.
    n_components : int
        Size of the latent space.
    classifier : torch.nn.Module
        Network from x to ``n_classes`` logits.
    n_classes : int
    classifier_hidden_sizes : tuple of int
    classifier_activation : str
        The classifier's structure, kept to rebuild it when unpickling.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from skvae.base import EncoderDecoder
    >>> from skvae._conditional import AuxiliaryClassifierModule
    >>> from skvae_plugins.bernoulli import Bernoulli
    >>> from skvae_plugins.normal import Normal
    >>> net = EncoderDecoder(nn.Linear(4, 2 * 2), nn.Linear(2 + 3, 4))
    >>> module = AuxiliaryClassifierModule(
    ...     net, Bernoulli().build(4), Normal().build(2, 4), 2,
    ...     nn.Linear(4, 3), 3, (), "sigmoid")
    >>> module.classifier_weight = 10.0
    >>> x, labels = torch.rand(5, 4), torch.eye(3)[[0, 1, 2, 0, 1]]
    >>> noise = lambda shape: torch.zeros(shape)
    >>> loss, nll, kl, extras = module.loss(x, noise, c=labels)
    >>> bool(torch.isclose(loss, (nll + kl + 10 * extras["classification"]).mean()))
    True
    """

    def __init__(
        self,
        net,
        likelihood,
        prior,
        n_components,
        classifier,
        n_classes,
        classifier_hidden_sizes,
        classifier_activation,
        missing_values=False,
        encoder_mask=False,
        encoder_label=False,
    ):
        super().__init__(
            net, likelihood, prior, n_components,
            encoder_conditions=n_classes if encoder_label else 0,
            decoder_conditions=n_classes,
            missing_values=missing_values, encoder_mask=encoder_mask,
        )
        #: Whether the encoder takes the label too, q(z | x, y) (model M2).
        self.encoder_label = bool(encoder_label)
        self.classifier = classifier
        self.n_classes = n_classes
        self.classifier_hidden_sizes = tuple(classifier_hidden_sizes)
        self.classifier_activation = classifier_activation
        self.classifier_weight = 1.0
        #: Whether the training data holds unlabelled rows (all-zero
        #: conditions): the loss then marginalises their label (M2). Set by
        #: the estimator for each fit; False runs the labelled objective only.
        self.semi_supervised = False

    @property
    def config(self):
        missing = (
            {"missing_values": True, "encoder_mask": self.encoder_mask}
            if self.missing_values else {}
        )
        return {
            **missing,
            **({"encoder_label": True} if self.encoder_label else {}),
            "n_classes": self.n_classes,
            "classifier_hidden_sizes": self.classifier_hidden_sizes,
            "classifier_activation": self.classifier_activation,
        }

    def encode(self, x, c=None):
        """The posterior q(z | x), or q(z | x, y) for an encoder that takes the label.

        Such an encoder (``encoder_label``) given no label ``c`` takes the
        classifier's softmax of x in its place, q(z | x, q(y | x)): what
        ``transform(X)`` encodes with.
        """
        if self.encoder_label and c is None:
            c = torch.softmax(self.classify(x), dim=-1)
        return super().encode(x, c)

    def classify(self, x):
        """The classifier's logits for ``x`` (NaN entries, missing values, read as 0)."""
        if self.missing_values:
            x = torch.where(torch.isnan(x), 0.0, x)
        return self.classifier(x)

    def _conditions(self, x, c):
        # The decoder's class part: the classifier's softmax unless given.
        if c is None:
            c = torch.softmax(self.classify(x), dim=-1)
        return None, c

    def loss(self, x, noise, beta=1.0, free_bits=0.0, n_importance=1, c=None):
        """Return the objective: the VAE's, with the weighted cross-entropy added.

        Per labelled sample, ``-log p(x | z, s) + beta * KL(q(z | x) || p(z))
        + classifier_weight * CE(c, s)`` with s = softmax(classifier(x)) fed
        to the decoder and c the one-hot labels. With ``n_importance > 1``
        the VAE part is the IWAE bound, as in :meth:`VAEModule.loss`.

        A row of zeros in ``c`` is an unlabelled row. It contributes no
        cross-entropy; with :attr:`semi_supervised` set, its label is
        marginalised as in Kingma et al.'s model M2 (see
        :meth:`semi_supervised_terms`), otherwise it is scored as a labelled
        row without the cross-entropy.

        Returns
        -------
        loss : Tensor (scalar)
        nll, kl : Tensor of shape (batch,) or None
        extras : dict
            ``{"classification": CE per sample}`` (unweighted), when ``c`` is
            given.
        """
        logits = self.classify(x)
        if c is not None and self.semi_supervised:
            nll, kl, kl_term, label_term = self.semi_supervised_terms(
                x, noise, logits, c, free_bits=free_bits
            )
            if kl_term is None:
                loss = (nll + beta * kl + label_term).mean()
            else:
                loss = (nll + label_term).mean() + beta * kl_term
        else:
            loss, nll, kl = super().loss(
                x,
                noise,
                beta=beta,
                free_bits=free_bits,
                n_importance=n_importance,
                c=torch.softmax(logits, dim=-1),
            )
        if c is None:
            return loss, nll, kl, {}
        ce = -(c * torch.log_softmax(logits, dim=-1)).sum(-1)
        return loss + self.classifier_weight * ce.mean(), nll, kl, {"classification": ce}

    def semi_supervised_terms(self, x, noise, logits, c, free_bits=0.0):
        """Per-sample terms of the M2 objective, labels marginalised where unknown.

        Kingma et al.'s model M2, with q(y | x) = softmax(``logits``). For a
        class part y, write ``l(x, y) = -log p(x | z, onehot(y)) + KL`` with
        one draw z ~ q(z | x, y) and ``KL = KL(q(z | x, y) || p(z))`` (with
        ``encoder_label``; otherwise z ~ q(z | x), one draw for every y). A
        labelled row (c one-hot) has the terms of its own label, ``l(x, y)``:
        its decoder sees the one-hot label, not the classifier's softmax. An
        unlabelled row (c all zero) has the expectation over its label::

            sum_y q(y | x) * l(x, y)

        together with the label term ``-H(q(y | x)) = sum_y q log q`` (0 for a
        labelled row). The encoder (with ``encoder_label``) and the decoder
        run once each, on the batch repeated ``n_classes`` times (static
        shapes, no host synchronisation).

        Returns
        -------
        nll, kl : Tensor of shape (batch,)
            The reconstruction term and the KL term.
        kl_term : Tensor (scalar) or None
            With ``free_bits > 0``, the KL term of the batch (per-dimension
            batch means floored at ``free_bits``, summed); None otherwise.
        label_term : Tensor of shape (batch,)
            -H(q(y | x)) for an unlabelled row, 0 for a labelled one.
        """
        if self._net_terms:
            raise ValueError(
                f"{type(self.net).__name__} has several stochastic layers; unlabelled "
                "rows need a single-layer architecture, such as 'mlp'."
            )
        rows, k = x.shape[0], self.n_classes
        log_q = torch.log_softmax(logits, dim=-1)
        q = log_q.exp()
        # Block j (rows j * rows ... (j + 1) * rows - 1): every row with class j.
        classes = torch.eye(k, dtype=x.dtype, device=x.device).repeat_interleave(rows, dim=0)
        x_all = x.repeat(k, 1)
        if self.encoder_label:  # q(z | x, y): one encoding and one draw of z per class
            mean, log_var = self.encode(x_all, classes)
            z = mean + torch.exp(0.5 * log_var) * noise(mean.shape)
            z_all = z
        else:  # q(z | x): one draw of z, decoded with every class
            mean, log_var = self.encode(x)
            z = mean + torch.exp(0.5 * log_var) * noise(mean.shape)
            z_all = z.repeat(k, 1)
        nll_all = self._parts[1](x_all, self.decode(z_all, classes)).view(k, rows).T
        # A labelled row's weights are its one-hot label, an unlabelled row's q(y | x).
        unlabelled = c.sum(-1) == 0
        weights = torch.where(unlabelled.unsqueeze(-1), q, c)
        nll = (weights * nll_all).sum(-1)
        label_term = torch.where(unlabelled, (q * log_q).sum(-1), 0.0)
        if free_bits > 0:
            kl_dims = self._per_class(self.prior.kl_per_dim(mean, log_var, z), weights)
            return nll, kl_dims.sum(-1), kl_dims.mean(dim=0).clamp(min=free_bits).sum(), label_term
        return nll, self._per_class(self.prior.kl(mean, log_var, z), weights), None, label_term

    def _per_class(self, values, weights):
        """Average per-class values (k blocks of rows) with each row's class weights.

        Without the label at the encoder, ``values`` has one entry per row
        (the same for every class) and is returned as it is.
        """
        if not self.encoder_label:
            return values
        k, rows = weights.shape[1], weights.shape[0]
        values = values.view(k, rows, *values.shape[1:]).movedim(0, -1)
        if values.dim() == 3:  # (rows, dims, k): per-dimension KL
            return (values * weights.unsqueeze(1)).sum(-1)
        return (values * weights).sum(-1)


class AuxiliaryClassifierVAE(ClassifierMixin, _LabelledVAE):
    """VAE with an auxiliary classifier whose softmax joins z at the decoder.

    A classifier network predicts the label from x; its softmax s is
    concatenated to the latent code at the decoder, p(x | z, s), and its
    cross-entropy against the label joins the loss. The decoder thus learns
    to draw the class that the class part of its input names, while the
    encoder q(z | x) is left with the rest (style). Labels are needed in
    ``fit`` only:

    - ``transform(X)`` returns the posterior mean of z (no label);
    - ``predict(X)``, ``predict_proba(X)`` classify with the classifier;
    - ``sample(n, y=label)`` generates the chosen class: z ~ p(z), the class
      part set to the label's one-hot vector (as the seed does);
      ``sample(n)`` first draws each sample's class from ``class_prior_``
      (the training proportions), so that the class part is a one-hot
      vector as in training, not a blurry average.

    The objective, per sample::

        loss = -log p(x | z, s) + beta * KL(q(z | x) || p(z))
               + classifier_weight * CE(y, s),     s = softmax(classifier(x))

    minibatches average it (``history_`` records the unweighted
    cross-entropy as ``classification``). It is a scikit-learn classifier:
    ``score(X, y)`` is the accuracy (``ClassifierMixin``), cross-validation
    stratifies; ``score_samples(X)`` is still the per-sample ELBO of x, with
    the decoder given the classifier's softmax of x.

    **Unlabelled rows** (``y == -1``, scikit-learn's semi-supervised
    convention) make the fit Kingma et al.'s model M2: the encoder takes the
    label too, q(z | x, y), and an unlabelled row's loss is the expected
    negative ELBO over q(y | x) minus its entropy; ``transform(X)`` then
    encodes with the classifier's softmax in place of the label. A fully
    labelled fit keeps the objective above. See :doc:`/semi_supervised`.

    The architecture must accept a decoder condition width in ``build``
    (``decoder_conditions``), as ``"mlp"`` does. Close to the seed's model:
    ``n_components=10``, ``architecture=MLP(hidden_sizes=(128,),
    activation="sigmoid")``, ``likelihood=Gaussian(scale=0.5)``,
    ``batch_size=100``, ``max_iter=20`` and the default classifier (the
    seed's decoder also ends in a sigmoid, which the ``sigmoid_mlp`` preset
    has but cannot yet condition).

    Parameters
    ----------
    {vae_parameters}
    classifier_weight : float, default=10.0
        Weight of the classifier's cross-entropy in the loss (the seed's
        ``digit_classification_weight``).
    classifier_hidden_sizes : tuple of int, default=(128,)
        Widths of the classifier's hidden layers; () gives a linear
        (softmax regression) classifier.
    classifier_activation : {"relu", "leaky_relu", "elu", "gelu", "silu", \
"tanh", "sigmoid"}, default="sigmoid"
        Activation after each hidden layer of the classifier.
    labelled_share : float in (0, 1) or None, default=0.25
        With unlabelled rows (y == -1): the share of labelled rows in each
        training epoch. Every unlabelled row is seen once an epoch and the
        labelled rows in turn, repeated until they make up this share (as
        Kingma et al. pair unlabelled batches with labelled ones), so that a
        few labels still reach the classifier in most batches. An epoch then
        has more rows than the data. None, or a share the labelled rows
        already reach, trains on every row once an epoch.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    class_count_ : ndarray of shape (n_classes,)
        Training rows per class (added up over ``partial_fit`` calls and
        warm starts).
    class_prior_ : ndarray of shape (n_classes,)
        Proportion of each class in the training data; ``sample`` without
        ``y`` draws classes from it.
    module_ : torch.nn.Module
        The trained model; ``module_.classifier`` is the classifier.
    architecture_, likelihood_, prior_ : Plugin
        The resolved plugin configurations.
    optimizer_ : torch.optim.Optimizer
        The optimizer, kept for ``warm_start`` and ``partial_fit``.
    history_ : list of dict
        One dict per epoch, as in :class:`~skvae.VAETransformer`, plus
        ``classification``: the mean cross-entropy per sample. ``loss``
        includes it, weighted.
    n_iter_ : int
        Number of epochs run.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    ConditionalVAETransformer : Takes the label as an input instead.
    VAETransformer : The unsupervised model.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skvae import AuxiliaryClassifierVAE
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X / 16
    >>> model = AuxiliaryClassifierVAE(n_components=4, max_iter=10, batch_size=32,
    ...                                random_state=0).fit(X, y)
    >>> bool(model.score(X, y) > 0.8)  # accuracy of the classifier
    True
    >>> model.transform(X[:3]).shape  # no labels needed
    (3, 4)
    >>> model.predict_proba(X[:3]).shape
    (3, 10)
    >>> model.sample(4, random_state=0, y=3).shape  # four threes
    (4, 64)

    The seed's picture, one z drawn with each digit:

    >>> import numpy as np
    >>> z = np.random.RandomState(0).normal(size=(1, 4)).repeat(10, axis=0)
    >>> model.inverse_transform(z, y=model.classes_).shape
    (10, 64)
    """

    _parameter_constraints = {
        **VAETransformer._parameter_constraints,
        "classifier_weight": [Interval(Real, 0, None, closed="left")],
        "classifier_hidden_sizes": ["array-like", Integral],
        "classifier_activation": [StrOptions(set(ACTIVATIONS))],
        "labelled_share": [Interval(Real, 0, 1, closed="neither"), None],
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
        classifier_weight=10.0,
        classifier_hidden_sizes=(128,),
        classifier_activation="sigmoid",
        labelled_share=0.25,
    ):
        super().__init__(
            n_components,
            architecture=architecture,
            likelihood=likelihood,
            prior=prior,
            beta=beta,
            kl_warmup=kl_warmup,
            kl_cycles=kl_cycles,
            free_bits=free_bits,
            n_importance=n_importance,
            max_iter=max_iter,
            batch_size=batch_size,
            learning_rate=learning_rate,
            optimizer=optimizer,
            lr_schedule=lr_schedule,
            clip_grad_norm=clip_grad_norm,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            tol=tol,
            device=device,
            precision=precision,
            compile=compile,
            random_state=random_state,
            verbose=verbose,
            warm_start=warm_start,
            on_divergence=on_divergence,
            checkpoint_path=checkpoint_path,
            data_on_device=data_on_device,
            missing_values=missing_values,
        )
        self.classifier_weight = classifier_weight
        self.classifier_hidden_sizes = classifier_hidden_sizes
        self.classifier_activation = classifier_activation
        self.labelled_share = labelled_share

    def _labelled_share(self):
        return self.labelled_share

    def _module_config(self):
        # A new fit on data with unlabelled rows builds the encoder with the
        # label, q(z | x, y) (model M2); a fully labelled fit, q(z | x).
        return {
            **self._missing_config(),
            **({"encoder_label": True} if getattr(self, "_encoder_label", False) else {}),
            "n_classes": len(self.classes_),
            "classifier_hidden_sizes": check_layer_sizes(self.classifier_hidden_sizes, "classifier_hidden_sizes"),
            "classifier_activation": self.classifier_activation,
        }

    def _make_module(
        self,
        architecture,
        likelihood,
        prior,
        n_features,
        n_components,
        seed,
        n_classes,
        classifier_hidden_sizes,
        classifier_activation,
        missing_values=False,
        encoder_mask=None,
        encoder_label=False,
    ):
        label_width = n_classes if encoder_label else 0
        mask_width = _mask_width(architecture, n_features, label_width, missing_values, encoder_mask)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = architecture.build_conditional(
                n_features=likelihood.n_inputs(n_features),
                n_components=n_components,
                n_outputs=likelihood.n_params(n_features),
                encoder_conditions=label_width + mask_width,
                decoder_conditions=n_classes,
            )
            classifier = dense_stack(
                n_features, classifier_hidden_sizes, n_classes, classifier_activation
            )
            module = AuxiliaryClassifierModule(
                net,
                _missing_likelihood(likelihood, n_features, missing_values),
                prior.build(n_components, n_features),
                n_components,
                classifier,
                n_classes,
                classifier_hidden_sizes,
                classifier_activation,
                missing_values=missing_values,
                encoder_mask=bool(mask_width),
                encoder_label=encoder_label,
            )
        # A plugin that builds the wrong shapes fails here, by name, not in torch.
        check_vae_module(module, architecture, likelihood, prior, n_features)
        return module

    def _new_fit(self, data, n_epochs, likelihood=None):
        self._encoder_label = data.has_unlabelled
        try:
            return super()._new_fit(data, n_epochs, likelihood)
        finally:
            del self._encoder_label

    def _prepare_module(self, module):
        module.classifier_weight = float(self.classifier_weight)

    def _train(self, fit, data, *args, **kwargs):
        # Whether the loss marginalises unknown labels: decided per fit, from its data.
        fit.module.semi_supervised = data.has_unlabelled
        return super()._train(fit, data, *args, **kwargs)

    def _check_unlabelled_fit(self):
        if self.n_importance > 1:
            raise ValueError(
                f"n_importance={self.n_importance} (the IWAE bound) cannot be trained on "
                "unlabelled rows (y == -1), whose label the ELBO marginalises; use "
                "n_importance=1, or fit on the labelled rows only."
            )

    # ------------------------------------------------------------ classifier
    def _logits(self, X):
        check_is_fitted(self)
        X, memmap = self._validate_inference_data(X)
        logits = self._map_batches(
            self.module_.classify, X, len(self.classes_), memmap=memmap
        )
        return logits.astype(np.float64)

    def predict(self, X):
        """Predict class labels with the classifier.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Predicted labels, from ``classes_``.
        """
        logits = self._logits(X)
        return self.classes_[np.argmax(logits, axis=1)]

    def predict_log_proba(self, X):
        """Log of the class probabilities (log-softmax of the classifier's logits).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``.
        """
        return log_softmax(self._logits(X), axis=1)

    def predict_proba(self, X):
        """Class probabilities (softmax of the classifier's logits).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``; rows sum to 1.
        """
        return np.exp(self.predict_log_proba(X))

    # ------------------------------------------------------------ generation
    def inverse_transform(self, X, y=None):
        """Decode latent codes with a class part: the mean of p(x | z, s).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Latent codes, such as the output of :meth:`transform`.
        y : label or array-like of shape (n_samples,), default=None
            The class part, as one-hot vectors; ``y=model.predict(X_orig)``
            reconstructs. None uses ``class_prior_`` as the class part (an
            average over classes: a blurry decoding).

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features_in_) or DataFrame
            Decoded means, in the dtype of the input; for a model fitted on
            a table, a DataFrame with its columns and dtypes.
        """
        check_is_fitted(self)
        Z = self._check_latent(X)
        if y is None:
            C = np.tile(self.class_prior_.astype(np.float32), (Z.shape[0], 1))
        else:
            C = self._conditions_of(y, Z.shape[0])
        return self._as_table(self._decode_batches(Z, C))

    def sample(self, n_samples=1, random_state=None, *, y=None, decode="mean"):
        """Generate samples: z ~ p(z), the class part a one-hot label, decoded.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples.
        random_state : int, RandomState instance or None, default=None
            Seeds the draws; None gives new draws at every call.
        y : label or array-like of shape (n_samples,), default=None
            The class to generate (one label for all samples, or one per
            sample). None draws each sample's class from ``class_prior_``;
            ``predict`` tells which class a sample got.
        decode : {"mean", "draw"}, default="mean"
            "mean" returns the mean of p(x | z, s); "draw" one draw from it.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features_in_) or DataFrame
            Generated samples, float32; for a model fitted on a table, a
            DataFrame with its columns, order, dtypes and categories.
        """
        check_is_fitted(self)
        self._check_sample_args(n_samples, decode)
        rng = check_random_state(random_state)
        if y is None:
            index = rng.choice(len(self.classes_), size=n_samples, p=self.class_prior_)
            C = self._one_hot(index)
        else:
            C = self._conditions_of(y, n_samples)
        return self._as_table(self._generate(n_samples, rng, decode, C))


AuxiliaryClassifierVAE.__doc__ = _with_vae_parameters(AuxiliaryClassifierVAE.__doc__)


#: Fitted attributes of the estimators that learn from labels.
_LABEL_ATTRIBUTES = ("classes_", "class_count_", "class_prior_")
_io.register_estimator(ConditionalVAETransformer, extra_fitted=_LABEL_ATTRIBUTES)
_io.register_estimator(AuxiliaryClassifierVAE, extra_fitted=_LABEL_ATTRIBUTES)
