"""The arena: models compared side by side on the user's prompts, rated by votes.

- :mod:`.battles`: :class:`Arena` (balanced pairs, both sides in parallel, the same parameters);
- :mod:`.store`: :class:`ArenaDB` (votes in SQLite; Chatbot Arena export/import);
- :mod:`.ratings`: online Elo and Bradley–Terry with bootstrap intervals (:func:`leaderboard`);
- :mod:`.judge`: LLM-as-judge with swapped positions, agreement with human votes;
- :mod:`.plots`: PNG figures of a leaderboard.

Names load on first use: importing this package loads neither numpy nor scikit-learn.
"""

from .._lazy import lazy_names

_LAZY = {
    "Arena": "battles", "BattleResult": "battles", "stream_battle": "battles", "balanced_pair": "battles",
    "check_arena_models": "battles", "load_prompts": "battles",
    "ArenaDB": "store", "parse_winner": "store",
    "Leaderboard": "ratings", "leaderboard": "ratings", "elo_ratings": "ratings", "bt_ratings": "ratings",
    "predicted_win_rate": "ratings", "simulate_battles": "ratings", "WINNERS": "ratings", "METHODS": "ratings",
    "judge_battle": "judge", "run_judge": "judge", "agreement": "judge", "Verdict": "judge",
    "Agreement": "judge", "JudgeReport": "judge",
    "plot_leaderboard": "plots",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_names(__name__, _LAZY)
