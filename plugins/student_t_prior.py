"""Prior ``student_t``: independent standard Student-t latents, Monte Carlo KL."""

import math
from numbers import Real

import torch

from skvae.base import Prior, PriorModule
from skvae.hookspecs import hookimpl


def student_t_log_prob(z, df):
    """Element-wise log density of the standard Student-t with ``df`` degrees of freedom.

    log p(z) = lgamma((df+1)/2) - lgamma(df/2) - log(df*pi)/2
    - (df+1)/2 * log(1 + z**2/df).

    Examples
    --------
    >>> import torch
    >>> round(float(student_t_log_prob(torch.tensor(0.0), 1.0)), 4)  # Cauchy: -log(pi)
    -1.1447
    """
    half = 0.5 * (df + 1.0)
    const = math.lgamma(half) - math.lgamma(0.5 * df) - 0.5 * math.log(df * math.pi)
    return const - half * torch.log1p(z.pow(2) / df)


def student_t_draws(shape, df, generator=None, device=None, dtype=None):
    """Draws from the standard Student-t, using only ``generator``'s randomness.

    Bailey's polar method (Math. Comp. 62, 1994), exact for any ``df > 0``:
    draw U, V uniform on (-1, 1) until 0 < W = U**2 + V**2 <= 1, then
    T = U * sqrt(df * (W**(-2/df) - 1) / W). The rejection loop is vectorised
    and every uniform comes from ``generator``, so the draws are a function
    of the generator's state (torch's global RNG is not touched), on any
    device. The square root is taken in log space so that small ``df`` cannot
    overflow before it.

    Parameters
    ----------
    shape : tuple of int
    df : float
        Degrees of freedom, positive.
    generator : torch.Generator, optional
    device : torch.device, optional
        Defaults to the generator's device.
    dtype : torch.dtype, optional
        Defaults to torch's default dtype.

    Returns
    -------
    draws : Tensor of the given shape

    Examples
    --------
    >>> import torch
    >>> t = student_t_draws((2, 3), 4.0, torch.Generator().manual_seed(0))
    >>> t.shape, bool(torch.equal(t, student_t_draws((2, 3), 4.0,
    ...                                              torch.Generator().manual_seed(0))))
    (torch.Size([2, 3]), True)
    """
    if device is None and generator is not None:
        device = generator.device
    dtype = dtype or torch.get_default_dtype()
    n = math.prod(shape)
    out = torch.empty(n, device=device, dtype=dtype)
    filled = 0
    while filled < n:
        # pi/4 of the candidates are accepted; draw a few more than needed.
        m = int(1.3 * (n - filled)) + 16
        u = 2.0 * torch.rand(m, generator=generator, device=device, dtype=dtype) - 1.0
        v = 2.0 * torch.rand(m, generator=generator, device=device, dtype=dtype) - 1.0
        w = u * u + v * v
        keep = (w > 0) & (w <= 1)
        u, w = u[keep][: n - filled], w[keep][: n - filled]
        a = (-2.0 / df) * torch.log(w)  # >= 0
        # log(W**(-2/df) - 1) = a + log(1 - exp(-a)), stable for small and large a.
        log_r2 = math.log(df) + a + torch.log(-torch.expm1(-a))
        t = (u / torch.sqrt(w)) * torch.exp(0.5 * log_r2)
        finite = torch.finfo(dtype).max
        out[filled : filled + t.numel()] = t.clamp(-finite, finite)
        filled += t.numel()
    return out.view(tuple(shape))


class StudentTPriorModule(PriorModule):
    """Torch side of :class:`StudentTPrior`: holds no learned parameters.

    Examples
    --------
    >>> import torch
    >>> module = StudentTPriorModule(n_components=2, df=5.0)
    >>> module.log_prob(torch.zeros(4, 2)).shape
    torch.Size([4])
    """

    def __init__(self, n_components, df):
        super().__init__()
        self.n_components = n_components
        self.df = df

    def extra_repr(self):
        return f"n_components={self.n_components}, df={self.df}"

    # kl: the default one-sample Monte Carlo estimate of PriorModule,
    # log q(z|x) - log p(z) at the reparameterised draw z.

    def log_prob(self, z):
        return student_t_log_prob(z, self.df).sum(-1)

    def sample(self, n_samples, generator=None, device=None):
        return student_t_draws((n_samples, self.n_components), self.df, generator, device)


class StudentTPrior(Prior):
    """Heavy-tailed prior: an independent standard Student-t per latent dimension.

    p(z) = prod_j t_df(z_j), with location 0, scale 1 and fixed degrees of
    freedom ``df``; as ``df`` grows it approaches the standard normal prior.
    Its heavier tails let outlying samples sit far from the bulk of the
    latent space without a large KL penalty.

    The KL term has no closed form: it is estimated by **one-sample Monte
    Carlo**, KL(q(z|x) || p(z)) ~ log q(z|x) - log p(z) at the
    reparameterised draw z ~ q(z|x) of the objective. It is unbiased, and
    ``score_samples`` averages it over its 16 draws.

    Draws use Bailey's polar method with uniforms taken only from the given
    :class:`torch.Generator`, so ``sample(random_state=...)`` is reproducible
    and torch's global random state is left alone.

    Parameters
    ----------
    df : float, default=5.0
        Degrees of freedom, a positive number (fixed, not learned). Variances
        are finite (df / (df - 2)) only for df > 2.

    Examples
    --------
    >>> import torch
    >>> from skvae_plugins.student_t_prior import StudentTPrior
    >>> prior = StudentTPrior(df=1.0).build(n_components=2, n_features=4)
    >>> round(float(prior.log_prob(torch.zeros(1, 2))), 4)  # 2 * log(1 / pi)
    -2.2895
    >>> prior.sample(3, generator=torch.Generator().manual_seed(0)).shape
    torch.Size([3, 2])
    """

    name = "student_t"

    def __init__(self, df=5.0):
        self.df = df

    def build(self, n_components, n_features):
        df = self.df
        if not (
            isinstance(df, Real)
            and not isinstance(df, bool)
            and math.isfinite(df)
            and df > 0
        ):
            raise ValueError(
                f"StudentTPrior df must be a finite positive number (e.g. 5.0); "
                f"got {df!r}. For df = inf use prior='normal'."
            )
        return StudentTPriorModule(n_components, float(df))


@hookimpl
def skvae_register_priors():
    return [StudentTPrior]
