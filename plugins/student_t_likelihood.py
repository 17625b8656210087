"""Likelihood ``student_t``: Student's t, for heavy-tailed real-valued data."""

import math

import torch
from torch import nn
from torch.nn import functional as F

from skvae.base import Likelihood, LikelihoodModule
from skvae.hookspecs import hookimpl

from ._scale import (
    ScaleModule,
    check_scale,
    is_positive_real,
    n_params_for_scale,
    softplus_inverse,
    standard_gamma,
    warn_if_unscaled,
)

#: A learned ``df`` is ``MIN_DF + softplus(raw)``: above 1, so the mean exists.
MIN_DF = 1.0
#: Starting value of a learned ``df``.
INITIAL_DF = 5.0
_LOG_PI = math.log(math.pi)


class StudentTModule(LikelihoodModule):
    """Torch side of :class:`StudentT`: the decoder outputs the location (and scale)."""

    def __init__(self, n_features, scale, min_scale, df):
        super().__init__()
        self.scale = ScaleModule(n_features, scale, min_scale)
        if isinstance(df, str):  # "learned"
            init = softplus_inverse(INITIAL_DF - MIN_DF)
            self.raw_df = nn.Parameter(torch.full((n_features,), init))
            self.fixed_df = None
        else:
            self.raw_df = None
            self.fixed_df = float(df)  # a Python float: exact in any dtype

    def df(self, like=None):
        """Degrees of freedom: a scalar (fixed) or one per feature (learned).

        A fixed df comes in the dtype and on the device of ``like``.
        """
        if self.raw_df is None:
            like = torch.empty(()) if like is None else like
            return torch.full((), self.fixed_df, dtype=like.dtype, device=like.device)
        return MIN_DF + F.softplus(self.raw_df)

    def extra_repr(self):
        return "df=learned" if self.raw_df is not None else f"df={self.fixed_df:g}"

    def log_prob_features(self, x, params):
        loc, log_scale = self.scale.split(params)
        df = self.df(loc)
        y = (x - loc) * torch.exp(-log_scale)
        log_norm = (
            torch.lgamma(0.5 * (df + 1.0))
            - torch.lgamma(0.5 * df)
            - 0.5 * (torch.log(df) + _LOG_PI)
        )
        log_kernel = -0.5 * (df + 1.0) * torch.log1p(y * y / df)
        return log_norm - log_scale + log_kernel

    def mean(self, params):
        return self.scale.split(params)[0]

    def sample(self, params, generator=None):
        # t = normal / sqrt(chi2(df) / df), with chi2(df) = 2 * Gamma(df / 2, 1).
        loc, log_scale = self.scale.split(params)
        df = self.df(loc).to(loc.dtype)
        normal = torch.randn(loc.shape, generator=generator, device=loc.device, dtype=loc.dtype)
        gamma = standard_gamma((0.5 * df).expand(loc.shape).contiguous(), generator)
        return loc + torch.exp(log_scale) * normal * torch.rsqrt(2.0 * gamma / df)


class StudentT(Likelihood):
    """Student's t likelihood, for real-valued data with heavy tails or outliers.

    p(x_j | z) = t_df((x_j - mu_j(z)) / s_j) / s_j: the decoder outputs the
    location mu(z); the scale s is fixed, learned per feature or predicted by
    the decoder, and the degrees of freedom df are fixed or learned per
    feature. Small df gives heavy tails (robust to outliers); large df
    approaches the Gaussian. Standardise the data first.

    Parameters
    ----------
    scale : float, "learned" or "predicted", default="learned"
        The scale s (not the standard deviation, which is
        s * sqrt(df / (df - 2)) for df > 2): a fixed positive number,
        "learned" for one scale per feature, or "predicted" for a scale output
        by the decoder per sample and feature (two decoder outputs per
        feature: the locations, then the raw scales).
    min_scale : float, default=1e-3
        Lower bound of a learned or predicted scale.
    df : float or "learned", default="learned"
        Degrees of freedom: a fixed positive number, or "learned" for one per
        feature, starting at 5 and kept above 1 (``1 + softplus(raw)``) so
        that the mean exists. With a fixed df <= 1 the mean does not exist
        and ``mean`` returns the location (the median).

    Attributes
    ----------
    n_params_per_feature : int
        Decoder outputs per feature: 2 with ``scale="predicted"``, else 1.

    Examples
    --------
    >>> import torch
    >>> from skvae_plugins.student_t_likelihood import StudentT
    >>> module = StudentT(scale=1.0, df=1.0).build(n_features=1)  # Cauchy
    >>> round(float(module.log_prob(torch.zeros(1, 1), torch.zeros(1, 1))), 4)
    -1.1447
    >>> StudentT(scale="predicted").n_params_per_feature
    2
    """

    name = "student_t"
    #: In a table, skvae standardises the columns it models (and undoes it on output).
    standardize = True

    def __init__(self, scale="learned", min_scale=1e-3, df="learned"):
        self.scale = scale
        self.min_scale = min_scale
        self.df = df

    @property
    def n_params_per_feature(self):
        return n_params_for_scale(self.scale)

    def check_training_data(self, X):
        warn_if_unscaled(self.name, X)

    def build(self, n_features):
        check_scale("StudentT", self.scale, self.min_scale)
        learned = isinstance(self.df, str) and self.df == "learned"
        if not (learned or is_positive_real(self.df)):
            raise ValueError(
                "StudentT df (degrees of freedom) must be a positive number or "
                f"'learned' (one per feature, kept above {MIN_DF:g}); got {self.df!r}."
            )
        return StudentTModule(n_features, self.scale, self.min_scale, self.df)


@hookimpl
def skvae_register_likelihoods():
    return [StudentT]
