"""Mixed-type tables for ``bench_synthetic.py``: the data, the metrics, a Gaussian copula.

Everything here works on pandas DataFrames whose columns are either
*numeric* (integer or float dtypes) or *categorical* (``category``,
``bool``, ``object`` or string dtypes); :func:`column_kinds` tells which.

Metrics (lower is better for the first two):

:func:`marginal_distances`
    per column, the Kolmogorov-Smirnov statistic (the largest gap between
    the two empirical CDFs, in [0, 1]) of a numeric column, or the total
    variation distance ``0.5 * sum_c |p(c) - q(c)|`` (over the union of the
    categories seen in either frame, in [0, 1]) of a categorical one.
:func:`association_error`
    the mean, over all pairs of columns, of the absolute difference between
    the real and the synthetic association: Pearson's r for two numeric
    columns (in [-1, 1]), Cramer's V (no bias correction, in [0, 1]) for two
    categorical columns, the correlation ratio eta (in [0, 1]) for a numeric
    and a categorical column. A constant column has association 0.
:func:`tstr_accuracy`
    the accuracy on the real test rows of a random forest trained on the
    given rows (synthetic: train on synthetic, test on real; the real
    training rows: train on real) to predict a categorical column from the
    others, one-hot encoded.
"""

import numpy as np
import pandas as pd

# --------------------------------------------------------------- the data
DATASETS = ("penguins", "anes96", "fair", "breast_cancer", "wine")

_PID = {
    0: "strong Democrat", 1: "weak Democrat", 2: "independent-Democrat",
    3: "independent", 4: "independent-Republican", 5: "weak Republican",
    6: "strong Republican",
}
_EDUC = {
    1: "1-8 grades", 2: "some high school", 3: "high school", 4: "some college",
    5: "community college", 6: "BA", 7: "postgraduate",
}
_OCCUPATION = {
    1: "student", 2: "farming, semi-/unskilled", 3: "white collar",
    4: "teacher, nurse, skilled", 5: "managerial, business", 6: "professional",
}


def _penguins():
    from palmerpenguins import load_penguins

    df = load_penguins().dropna().reset_index(drop=True)
    for col in ("species", "island", "sex"):
        df[col] = df[col].astype("category")
    for col in ("flipper_length_mm", "body_mass_g", "year"):
        df[col] = df[col].astype(np.int64)
    return df, "species"


def _anes96():
    from statsmodels.datasets import anes96

    df = anes96.load_pandas().data.drop(columns="logpopul")  # log of popul
    df["PID"] = pd.Categorical(df["PID"].map(_PID), categories=list(_PID.values()))
    df["educ"] = pd.Categorical(df["educ"].map(_EDUC), categories=list(_EDUC.values()))
    df["vote"] = pd.Categorical(df["vote"].map({0.0: "Clinton", 1.0: "Dole"}))
    for col in ("TVnews", "selfLR", "ClinLR", "DoleLR", "age", "income"):
        df[col] = df[col].astype(np.int64)
    return df, "vote"


def _fair():
    from statsmodels.datasets import fair

    df = fair.load_pandas().data
    df["affair"] = df.pop("affairs") > 0  # the usual binary target of this table
    for col in ("occupation", "occupation_husb"):
        df[col] = pd.Categorical(
            df[col].astype(int).map(_OCCUPATION), categories=list(_OCCUPATION.values())
        )
    for col in ("rate_marriage", "religious", "educ"):
        df[col] = df[col].astype(np.int64)
    return df, "affair"


def _sklearn(name):
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")(as_frame=True)
    df = bunch.frame.copy()
    target = "diagnosis" if name == "breast_cancer" else "cultivar"
    df[target] = pd.Categorical(
        np.asarray(bunch.target_names)[df.pop("target").to_numpy()],
        categories=list(bunch.target_names),
    )
    for col in df.columns:  # columns that hold whole numbers only (wine's magnesium, proline)
        if df[col].dtype.kind == "f" and np.all(df[col] == np.round(df[col])):
            df[col] = df[col].astype(np.int64)
    return df, target


def load_table(name):
    """Return ``(frame, target)``: a complete table and the column TSTR predicts.

    ``penguins``: the ``palmerpenguins`` table, the 11 rows with a missing
    value dropped (333 x 8). ``anes96``: statsmodels' 1996 American National
    Election Study extract (944 x 10; ``logpopul`` dropped, party id,
    education and vote as labelled categories). ``fair``: statsmodels'
    affairs table (6366 x 9; ``affairs`` > 0 as the boolean ``affair``,
    occupations as labelled categories). ``breast_cancer`` (569 x 31) and
    ``wine`` (178 x 14): scikit-learn's tables with their target as a
    categorical column. Columns that hold whole numbers are int64.
    """
    if name == "penguins":
        return _penguins()
    if name == "anes96":
        return _anes96()
    if name == "fair":
        return _fair()
    if name in ("breast_cancer", "wine"):
        return _sklearn(name)
    raise ValueError(f"unknown data set {name!r}; choose from {DATASETS}")


def split_table(frame, target, seed, test_size=0.3):
    """A seeded train/test split of the rows, stratified on ``target``."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(
        frame, test_size=test_size, random_state=seed, stratify=frame[target]
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)


def cast_like(frame, reference):
    """``frame`` with the columns, order and dtypes of ``reference`` (categories kept).

    For frames read back from CSV (the SDV subprocess): integer columns are
    rounded, booleans parsed from text, categorical columns take the
    reference's categories (a value outside them becomes NaN).
    """
    out = {}
    for col in reference.columns:
        ref, values = reference[col], frame[col]
        if isinstance(ref.dtype, pd.CategoricalDtype):
            cats = ref.cat.categories
            values = values.map(lambda v, cats=cats: _match_category(v, cats))
            out[col] = pd.Categorical(values, categories=cats)
        elif ref.dtype == bool:
            out[col] = values.map(lambda v: str(v).strip().lower() in ("true", "1", "1.0"))
        elif ref.dtype.kind in "iu":
            out[col] = np.round(pd.to_numeric(values)).astype(ref.dtype)
        else:
            out[col] = pd.to_numeric(values).astype(ref.dtype)
    return pd.DataFrame(out, columns=reference.columns)


def _match_category(value, categories):
    """The category equal to ``value`` or to its text, else NaN."""
    if value in categories:
        return value
    text = str(value)
    for cat in categories:
        if str(cat) == text:
            return cat
    return np.nan


# ------------------------------------------------------------ the metrics
def column_kinds(frame):
    """``{column: "numeric" | "categorical"}``: bool, category and text are categorical."""
    kinds = {}
    for col in frame.columns:
        dtype = frame[col].dtype
        numeric = dtype.kind in "iuf" and not isinstance(dtype, pd.CategoricalDtype)
        kinds[col] = "numeric" if numeric else "categorical"
    return kinds


def ks_statistic(a, b):
    """Two-sample Kolmogorov-Smirnov statistic of two numeric samples (NaN dropped)."""
    a = np.sort(np.asarray(a, dtype=np.float64))
    b = np.sort(np.asarray(b, dtype=np.float64))
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / len(a)
    cdf_b = np.searchsorted(b, grid, side="right") / len(b)
    return float(np.max(np.abs(cdf_a - cdf_b)))


def total_variation(a, b):
    """Total variation distance of the value frequencies of two samples (NaN a value)."""
    p = pd.Series(np.asarray(a, dtype=object)).value_counts(normalize=True, dropna=False)
    q = pd.Series(np.asarray(b, dtype=object)).value_counts(normalize=True, dropna=False)
    p, q = p.align(q, fill_value=0.0)
    return float(0.5 * np.abs(p.to_numpy() - q.to_numpy()).sum())


def marginal_distances(real, synthetic):
    """``{column: distance}``: KS for numeric columns, total variation for categorical."""
    kinds = column_kinds(real)
    return {
        col: ks_statistic(real[col], synthetic[col]) if kind == "numeric"
        else total_variation(real[col], synthetic[col])
        for col, kind in kinds.items()
    }


def pearson(x, y):
    """Pearson's r; 0 when either column is constant."""
    x = np.asarray(x, dtype=np.float64) - np.mean(x)
    y = np.asarray(y, dtype=np.float64) - np.mean(y)
    denom = np.sqrt(np.sum(x * x) * np.sum(y * y))
    return float(np.sum(x * y) / denom) if denom > 0 else 0.0


def cramers_v(a, b):
    """Cramer's V of two categorical samples (no bias correction); 0 if either is constant."""
    table = pd.crosstab(
        pd.Series(np.asarray(a, dtype=object)).fillna("<NA>"),
        pd.Series(np.asarray(b, dtype=object)).fillna("<NA>"),
    ).to_numpy(dtype=np.float64)
    k = min(table.shape) - 1
    if k == 0:
        return 0.0
    n = table.sum()
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / n
    chi2 = np.sum((table - expected) ** 2 / expected)
    return float(np.sqrt(chi2 / (n * k)))


def correlation_ratio(categories, values):
    """The correlation ratio eta of a numeric sample grouped by a categorical one."""
    values = np.asarray(values, dtype=np.float64)
    groups = pd.Series(np.asarray(categories, dtype=object)).fillna("<NA>")
    means = pd.Series(values).groupby(groups.to_numpy()).agg(["mean", "size"])
    total = np.sum((values - values.mean()) ** 2)
    if total <= 0:
        return 0.0
    between = np.sum(means["size"] * (means["mean"] - values.mean()) ** 2)
    return float(np.sqrt(min(between / total, 1.0)))


def association_matrix(frame, kinds=None):
    """The symmetric matrix of pairwise associations (Pearson, Cramer's V, eta)."""
    kinds = column_kinds(frame) if kinds is None else kinds
    cols = list(frame.columns)
    A = np.eye(len(cols))
    for i, ci in enumerate(cols):
        for j in range(i + 1, len(cols)):
            cj = cols[j]
            pair = (kinds[ci], kinds[cj])
            if pair == ("numeric", "numeric"):
                value = pearson(frame[ci], frame[cj])
            elif pair == ("categorical", "categorical"):
                value = cramers_v(frame[ci], frame[cj])
            elif pair == ("categorical", "numeric"):
                value = correlation_ratio(frame[ci], frame[cj])
            else:
                value = correlation_ratio(frame[cj], frame[ci])
            A[i, j] = A[j, i] = value
    return A


def association_error(real, synthetic):
    """Mean absolute difference of the real and synthetic associations over column pairs."""
    kinds = column_kinds(real)
    A = association_matrix(real, kinds)
    B = association_matrix(synthetic[real.columns], kinds)
    upper = np.triu_indices(len(real.columns), k=1)
    return float(np.mean(np.abs(A[upper] - B[upper])))


def tstr_accuracy(train, test, target, seed):
    """Accuracy on ``test`` of a random forest fitted on ``train`` to predict ``target``."""
    from sklearn.ensemble import RandomForestClassifier

    forest = RandomForestClassifier(n_estimators=200, random_state=seed, n_jobs=1)
    predicted, truth = _train_and_predict(forest, train, test, target)
    return float(np.mean(predicted == truth))


def efficacy_classifiers(n_classes, seed):
    """``[(name, classifier), ...]``: the CTGAN paper's efficacy classifiers for ``n_classes``.

    For a binary target a decision tree (depth 20), AdaBoost, a logistic
    regression and an MLP (50 units); for more classes a decision tree
    (depth 30, balanced) and an MLP (100 units); iterations capped at 50, as
    in the paper's SDGym benchmark.
    """
    from sklearn.ensemble import AdaBoostClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.tree import DecisionTreeClassifier

    if n_classes <= 2:
        return [
            ("tree", DecisionTreeClassifier(max_depth=20, random_state=seed)),
            ("adaboost", AdaBoostClassifier(random_state=seed)),
            ("logistic", LogisticRegression(max_iter=50)),
            ("mlp", MLPClassifier(hidden_layer_sizes=(50,), max_iter=50, random_state=seed)),
        ]
    return [
        ("tree", DecisionTreeClassifier(max_depth=30, class_weight="balanced",
                                        random_state=seed)),
        ("mlp", MLPClassifier(hidden_layer_sizes=(100,), max_iter=50, random_state=seed)),
    ]


def efficacy_f1(train, test, target, seed):
    """Machine-learning efficacy as the CTGAN paper measures it: mean macro F1 on ``test``.

    Xu et al. (NeurIPS 2019), the paper of CTGAN and TVAE, score synthetic
    rows by classifiers fitted on them and tested on real rows, averaged over
    several classifiers (their SDGym benchmark's set,
    :func:`efficacy_classifiers`). Categorical features are one-hot encoded
    and numeric ones standardised. Macro F1 for every target (the paper's F1
    for binary targets needs a positive class).
    """
    scores = efficacy_by_classifier(train, test, target, seed)
    return float(np.mean([s["f1"] for s in scores.values()]))


def efficacy_by_classifier(train, test, target, seed):
    """``{name: {"f1", "accuracy", "minority_share"}}`` of each efficacy classifier.

    ``minority_share`` is the share of the test rows predicted as the
    rarest class of the real test rows: how far a classifier leans away from
    the majority class.
    """
    from sklearn.metrics import f1_score

    truth_counts = test[target].astype(str).value_counts()
    minority = truth_counts.index[-1]
    scores = {}
    for name, classifier in efficacy_classifiers(test[target].nunique(), seed):
        predicted, truth = _train_and_predict(classifier, train, test, target, scale=True)
        scores[name] = {"f1": float(f1_score(truth, predicted, average="macro")),
                        "accuracy": float(np.mean(predicted == truth)),
                        "minority_share": float(np.mean(predicted == minority))}
    return scores


def _train_and_predict(classifier, train, test, target, scale=False):
    """Fit ``classifier`` on ``train``'s features; return (predicted, true) ``target`` of ``test``.

    Categorical features are one-hot encoded; numeric ones are passed as
    they are, or standardised with ``scale``. Labels are compared as text.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    kinds = column_kinds(test)
    features = [c for c in test.columns if c != target]
    categorical = [c for c in features if kinds[c] == "categorical"]
    numeric = [c for c in features if kinds[c] == "numeric"]
    encode = ColumnTransformer(
        [("onehot", OneHotEncoder(handle_unknown="ignore"), categorical),
         ("numeric", StandardScaler() if scale else "passthrough", numeric)],
    )
    truth = test[target].astype(str).to_numpy()
    labels = train[target].astype(str)
    if labels.nunique() < 2:  # a degenerate table of one class: what it teaches any classifier
        return np.full(len(test), labels.iloc[0], dtype=object), truth
    model = make_pipeline(encode, classifier)
    model.fit(_as_features(train[features], categorical), labels)
    return model.predict(_as_features(test[features], categorical)), truth


def _as_features(frame, categorical):
    """The categorical columns as text (one encoder for bool, category and NaN)."""
    frame = frame.copy()
    for col in categorical:
        frame[col] = frame[col].astype(object).astype(str)
    return frame


# --------------------------------------------------- the Gaussian copula
class GaussianCopula:
    """A Gaussian copula for mixed tables: the baseline of ``bench_synthetic.py``.

    Each column is mapped to normal scores ``z = Phi^-1(u)``: a numeric
    column by its ranks, ``u = rank / (n + 1)`` (ties broken at random); a
    categorical column by its frequencies, each category owning an interval
    of [0, 1] as wide as its frequency (categories in their order of
    frequency, most frequent first) and ``u`` drawn uniformly inside it.
    The correlation matrix of the scores is the whole model of dependence.
    Sampling draws ``z ~ N(0, R)`` and maps ``u = Phi(z)`` back: a numeric
    column by its empirical quantile function (linear interpolation between
    the training values for floats, the training values themselves for
    integers), a categorical column by the interval ``u`` falls into.

    Parameters
    ----------
    random_state : int or None
        Seeds the uniform draws of ``fit``.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"x": [1.0, 2.5, 3.0, 4.5], "c": pd.Categorical(list("abab"))})
    >>> GaussianCopula(random_state=0).fit(df).sample(3, random_state=0).dtypes.tolist()
    [dtype('float64'), CategoricalDtype(categories=['a', 'b'], ordered=False, categories_dtype=str)]
    """

    def __init__(self, random_state=None):
        self.random_state = random_state

    def fit(self, frame):
        from scipy.stats import norm

        rng = np.random.default_rng(self.random_state)
        self.reference_ = frame.iloc[:0]
        self.kinds_ = column_kinds(frame)
        self.columns_ = {}
        scores = []
        for col in frame.columns:
            values = frame[col]
            if self.kinds_[col] == "numeric":
                x = values.to_numpy(dtype=np.float64)
                order = np.lexsort((rng.random(len(x)), x))  # ties at random
                ranks = np.empty(len(x))
                ranks[order] = np.arange(1, len(x) + 1)
                u = ranks / (len(x) + 1)
                self.columns_[col] = np.sort(x)
            else:
                freq = pd.Series(values.astype(object)).value_counts(normalize=True)
                upper = np.cumsum(freq.to_numpy())
                lower = upper - freq.to_numpy()
                pos = freq.index.get_indexer(values.astype(object))
                u = lower[pos] + rng.random(len(values)) * freq.to_numpy()[pos]
                self.columns_[col] = (list(freq.index), np.minimum(upper, 1.0))
            scores.append(norm.ppf(np.clip(u, 1e-6, 1 - 1e-6)))
        Z = np.column_stack(scores)
        self.correlation_ = np.atleast_2d(np.corrcoef(Z, rowvar=False))
        return self

    def sample(self, n_samples, random_state=None):
        from scipy.stats import norm

        rng = np.random.default_rng(random_state)
        k = len(self.columns_)
        R = self.correlation_ + 1e-9 * np.eye(k)
        U = norm.cdf(rng.multivariate_normal(np.zeros(k), R, size=n_samples, method="eigh"))
        out = {}
        for i, (col, model) in enumerate(self.columns_.items()):
            u = U[:, i]
            if self.kinds_[col] == "numeric":
                integer = self.reference_[col].dtype.kind in "iu"
                method = "inverted_cdf" if integer else "linear"
                out[col] = np.quantile(model, u, method=method)
            else:
                categories, upper = model
                idx = np.minimum(np.searchsorted(upper, u, side="right"), len(categories) - 1)
                out[col] = np.asarray(categories, dtype=object)[idx]
        return cast_like(pd.DataFrame(out), self.reference_)
