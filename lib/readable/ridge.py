"""Ridge regression in closed form from sufficient statistics, scored on held-out tokens.

A probe here is a linear map (with intercept) from a predictor x (d wide) to a target y (m wide),
fitted on one block of tokens and scored on another. Everything a fit or a score needs of a block
is in its `Moments`: the count, the means and the centred cross-products. Blocks pool exactly, so
the data are read once per block and every later step works on d × d and d × m matrices.

The penalty is λ = α · tr(XᵀX) / d (α times the mean eigenvalue of the centred Gram matrix, so
α does not depend on the predictor's scale). On SmolLM2 a fixed α would reorder the readable
probe and its ceiling at some layers, so α is not fixed: it is the one of ALPHAS with the least
error on a validation block; then the probe is refitted on fit + validation with that α and
scored on the held-out block.
The score is R² summed over target dimensions: 1 − Σ‖y − ŷ‖² / Σ‖y − ȳ‖², all tokens and all m
dimensions together, so wide-varying dimensions weigh more.

Precision: the sums over the data (n × d by n × m products) are float32, the model's own
precision, taken on centred data so that no large mean is carried through them; the fit and
the score are float64. Choosing α uses float32 products too: it only ranks the candidates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

ALPHAS = tuple(10.0 ** (power / 2) for power in range(-8, 5))  # 1e-4 … 1e2, half decades
ALL = (slice(None),)  # one group: every target column


@dataclass(frozen=True)
class Moments:
    """Sufficient statistics of n (x, y) pairs, centred on their own means."""

    n: int
    x_mean: torch.Tensor  # (d,)
    y_mean: torch.Tensor  # (m,)
    xx: torch.Tensor  # (d, d): Σ (x − x̄)(x − x̄)ᵀ
    xy: torch.Tensor  # (d, m): Σ (x − x̄)(y − ȳ)ᵀ
    yy: torch.Tensor  # (m,): Σ (y − ȳ)², per target column

    def __add__(self, other: Moments) -> Moments:
        """The moments of both blocks together (the parallel-axis correction of the means)."""
        n = self.n + other.n
        weight = self.n * other.n / n
        dx, dy = self.x_mean - other.x_mean, self.y_mean - other.y_mean  # (d,), (m,)
        return Moments(
            n=n,
            x_mean=(self.n * self.x_mean + other.n * other.x_mean) / n,
            y_mean=(self.n * self.y_mean + other.n * other.y_mean) / n,
            xx=self.xx + other.xx + weight * torch.outer(dx, dx),
            xy=self.xy + other.xy + weight * torch.outer(dx, dy),
            yy=self.yy + other.yy + weight * dy**2,
        )

    def around(self, x_mean: torch.Tensor, y_mean: torch.Tensor) -> Moments:
        """The same block centred on other means (those a probe predicts with): the means
        become the given ones and the sums gain n · (offset)(offset)ᵀ."""
        dx, dy = self.x_mean - x_mean, self.y_mean - y_mean  # (d,), (m,)
        return Moments(
            n=self.n,
            x_mean=x_mean,
            y_mean=y_mean,
            xx=self.xx + self.n * torch.outer(dx, dx),
            xy=self.xy + self.n * torch.outer(dx, dy),
            yy=self.yy + self.n * dy**2,
        )

    def targets(self, columns: slice) -> Moments:
        """The same predictor with some of the target columns."""
        return Moments(
            self.n,
            self.x_mean,
            self.y_mean[columns],
            self.xx,
            self.xy[:, columns],
            self.yy[columns],
        )


def moments(x: torch.Tensor, y: torch.Tensor) -> Moments:
    """Moments of the rows of x (n, d) paired with the rows of y (n, m)."""
    if x.shape[0] != y.shape[0] or x.shape[0] < 2:
        raise ValueError(f"need at least two paired rows, got {x.shape[0]} and {y.shape[0]}")
    x, y = x.float(), y.float()
    x_mean, y_mean = x.mean(dim=0), y.mean(dim=0)  # (d,), (m,)
    xc, yc = x - x_mean, y - y_mean  # (n, d), (n, m)
    return Moments(
        n=x.shape[0],
        x_mean=x_mean.double(),
        y_mean=y_mean.double(),
        xx=(xc.T @ xc).double(),
        xy=(xc.T @ yc).double(),
        yy=(yc * yc).sum(dim=0).double(),
    )


@dataclass(frozen=True)
class Readout:
    """A fitted probe kept for later prompts: float32, read-only."""

    weights: np.ndarray  # (d, m)
    x_mean: np.ndarray  # (d,)
    y_mean: np.ndarray  # (m,)
    heldout_variance: float  # mean over held-out tokens of ‖y − ȳ‖²: the scale of an error

    def relative_errors(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """‖y − ŷ‖² of each row ÷ the held-out variance: 1 errs as much as the mean would. (n,)"""
        predicted = self.y_mean + (x - self.x_mean) @ self.weights  # (n, m)
        return ((y - predicted) ** 2).sum(axis=1) / self.heldout_variance


def frozen(tensor: torch.Tensor) -> np.ndarray:
    """A read-only numpy copy; floating point values as float32."""
    array = (tensor.float() if tensor.is_floating_point() else tensor).numpy().copy()
    array.flags.writeable = False
    return array


@dataclass(frozen=True)
class RidgeProbe:
    """A fitted probe: ŷ = y_mean + (x − x_mean) @ weights, and its held-out score."""

    alpha: float  # the chosen α of λ = α · tr(XᵀX) / d
    weights: torch.Tensor  # (d, m)
    x_mean: torch.Tensor  # (d,)
    y_mean: torch.Tensor  # (m,)
    r2: float  # held-out variance explained, summed over target dimensions
    heldout_variance: float

    def readout(self) -> Readout:
        return Readout(
            frozen(self.weights), frozen(self.x_mean), frozen(self.y_mean), self.heldout_variance
        )


def penalty(xx: torch.Tensor, alpha: float) -> float:
    return alpha * float(xx.trace()) / xx.shape[0]


def squared_error(weights: torch.Tensor, block: Moments) -> float:
    """Σ ‖y − ŷ‖² over a block centred on the probe's means: yy − 2 tr(Wᵀ xy) + tr(Wᵀ xx W)."""
    return float(
        block.yy.sum() - 2 * (weights * block.xy).sum() + (weights * (block.xx @ weights)).sum()
    )


def validation_errors(
    eigen: tuple[torch.Tensor, torch.Tensor], fit: Moments, val: Moments
) -> torch.Tensor:
    """The validation error of the fit on `fit` with each α of ALPHAS: (A,).

    `eigen` is (s, V) of fit.xx = V diag(s) Vᵀ, and `val` is centred on the fit's means. With
    Q = Vᵀ xy and D = 1 / (s + λ) the weights are V D Q, so the error is
    yy − 2 Dᵀ r + Dᵀ (M ∘ QQᵀ) D with r = rowsum(Q ∘ Vᵀ xy_val) and M = Vᵀ xx_val V. The
    d × d × m products are float32: they only rank the α, the score is refitted in float64.
    """
    s, v = eigen  # (d,), (d, d)
    v32 = v.float()
    q = v32.T @ fit.xy.float()  # (d, m)
    r = (q * (v32.T @ val.xy.float())).sum(dim=1).double()  # (d,)
    quadratic = (v.T @ val.xx @ v) * (q @ q.T).double()  # (d, d)
    lams = torch.tensor([penalty(fit.xx, alpha) for alpha in ALPHAS], dtype=s.dtype)
    d = 1 / (s.clamp_min(0)[None, :] + lams[:, None])  # (A, d)
    return val.yy.sum() - 2 * d @ r + ((d @ quadratic) * d).sum(dim=1)


def fit_ridges(
    fit: Moments, val: Moments, test: Moments, groups: Sequence[slice] = ALL
) -> list[RidgeProbe]:
    """One probe per group of target columns, from the same predictor: choose α on `val`,
    refit on fit + val, score on `test`. Groups share the predictor's eigendecomposition."""
    eigen = torch.linalg.eigh(fit.xx)
    train = fit + val
    val_around, test_around = (
        val.around(fit.x_mean, fit.y_mean),
        test.around(train.x_mean, train.y_mean),
    )
    eye = torch.eye(train.xx.shape[0], dtype=train.xx.dtype)
    probes = []
    for columns in groups:
        errors = validation_errors(eigen, fit.targets(columns), val_around.targets(columns))
        alpha = ALPHAS[int(errors.argmin())]
        factor = torch.linalg.cholesky(train.xx + penalty(train.xx, alpha) * eye)  # (d, d)
        weights = torch.cholesky_solve(train.xy[:, columns], factor)  # (d, m)
        scored = test_around.targets(columns)
        probes.append(
            RidgeProbe(
                alpha=alpha,
                weights=weights,
                x_mean=train.x_mean,
                y_mean=train.y_mean[columns],
                r2=1 - squared_error(weights, scored) / float(test.yy[columns].sum()),
                heldout_variance=float(test.yy[columns].sum()) / test.n,
            )
        )
    return probes
