"""Reports from the tidy CSV only: leaderboard (CSV + markdown) and figures."""
from .leaderboard import build_leaderboard, leaderboard_markdown, per_run_table, write_leaderboard
from .plots import method_color, plot_runs
from .tidy_data import load_tidy, run_scores

__all__ = [
    "build_leaderboard", "leaderboard_markdown", "per_run_table", "write_leaderboard", "method_color", "plot_runs",
    "load_tidy", "run_scores",
]
