"""PNG figures of a leaderboard (matplotlib, in the [eval] extra): ratings with their 95%
intervals as whiskers, and the observed win-rate matrix as a heatmap."""

from __future__ import annotations

from pathlib import Path

from .ratings import Leaderboard

__all__ = ["plot_leaderboard"]


def plot_leaderboard(board: Leaderboard, folder: str | Path) -> list[Path]:
    """Write ``ratings.png`` and ``win_rate.png`` into ``folder``; return their paths."""
    try:
        import matplotlib
    except ImportError:
        from ..errors import InvalidParameter

        raise InvalidParameter("--plot needs matplotlib: pip install 'genstack[eval]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    models = board.models
    x = range(len(models))
    r = [board.ratings[m] for m in models]
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(models)), 4))
    if board.lower:
        lo = [board.ratings[m] - board.lower[m] for m in models]
        hi = [board.upper[m] - board.ratings[m] for m in models]
        ax.errorbar(x, r, yerr=[lo, hi], fmt="o", capsize=4)
    else:
        ax.plot(x, r, "o")
    for i, v in zip(x, r):
        ax.annotate(f"{v:.0f}", (i, v), textcoords="offset points", xytext=(8, 0), fontsize=8)
    ax.set_xticks(list(x), models, rotation=30, ha="right")
    ax.set_ylabel(f"rating ({board.method}, 95% bootstrap interval)" if board.lower else f"rating ({board.method})")
    ax.set_title(f"{board.n_battles} battles")
    fig.tight_layout()
    ratings_png = folder / "ratings.png"
    fig.savefig(ratings_png, dpi=120)
    plt.close(fig)

    import numpy as np

    m = np.array([[np.nan if board.win_rate[a][b] is None else board.win_rate[a][b] for b in models] for a in models])
    fig, ax = plt.subplots(figsize=(1.2 * len(models) + 2, 1.0 * len(models) + 1.5))
    im = ax.imshow(m, cmap="RdBu", vmin=0, vmax=1)
    for i in range(len(models)):
        for j in range(len(models)):
            if not np.isnan(m[i, j]):
                ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(models)), models, rotation=30, ha="right")
    ax.set_yticks(range(len(models)), models)
    ax.set_xlabel("model B")
    ax.set_ylabel("model A (row beats column)")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    heat_png = folder / "win_rate.png"
    fig.savefig(heat_png, dpi=120)
    plt.close(fig)
    return [ratings_png, heat_png]
