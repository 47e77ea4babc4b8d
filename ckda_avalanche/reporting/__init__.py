"""Reports from the tidy CSV only: leaderboard (CSV + markdown) with confidence intervals, ablation table, and
figures."""
from .ablation import build_ablation, split_variant, write_ablation
from .leaderboard import build_leaderboard, leaderboard_markdown, per_run_table, write_leaderboard
from .plots import method_color, plot_runs
from .precision import MixedPrecisionError
from .stats import Interval, mean_interval, paired_difference, t_quantile
from .tidy_data import load_tidy, run_scores

__all__ = [
    "build_leaderboard", "leaderboard_markdown", "per_run_table", "write_leaderboard", "method_color", "plot_runs",
    "load_tidy", "run_scores", "build_ablation", "split_variant", "write_ablation", "MixedPrecisionError",
    "Interval", "mean_interval", "paired_difference", "t_quantile",
]
