"""The options of ``nextloc preprocess``: defaults of Hong et al. (2023), a YAML file, flags.

Every threshold of the pipeline is here, with its unit; ``nextloc preprocess --help`` shows the
same text. Kept free of heavy imports, so that the command line can build its flags quickly.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nextloc.core.errors import ConfigError

HELP = {
    "dist_threshold": "m; a staypoint's GPS fixes stay within this distance (200)",
    "time_threshold": "min; ... for at least this long (30)",
    "gap_threshold": "min; a longer gap between two fixes ends a staypoint (1440 = 24 h)",
    "activity_time": "min; staypoints at least this long are activities, the rest are "
                     "dropped (25)",
    "min_days": "days; users tracked for fewer days are dropped (50)",
    "quality_window": "weeks of the sliding tracking-quality window; users without one full "
                      "window are dropped; 0 measures the whole period instead (10)",
    "epsilon": "m; DBSCAN radius that joins staypoints into one location (20)",
    "min_samples": "DBSCAN: staypoints a location needs; staypoints in none are dropped (2)",
    "merge_gap": "min; consecutive stays at one location this close become one (1)",
    "previous_day": "days of history for the valid-id rule (7)",
    "min_history": "earlier stays within previous_day that a valid target needs (3)",
    "timezone": "time zone of start_day, start_min and weekday (UTC, as published)",
    "n_jobs": "trackintel worker processes inside a shard; -1 uses every core (1)",
    "shard_users": "users per shard of the per-user steps (reading, staypoints, quality); "
                   "memory grows with the largest shard, not with the dataset (4)",
}


@dataclass
class PreprocessConfig:
    dist_threshold: float = 200.0
    time_threshold: float = 30.0
    gap_threshold: float = 1440.0
    activity_time: float = 25.0
    min_days: float = 50.0
    quality_window: int = 10
    epsilon: float = 20.0
    min_samples: int = 2
    merge_gap: float = 1.0
    previous_day: int = 7
    min_history: int = 3
    timezone: str = "UTC"
    n_jobs: int = 1
    shard_users: int = 4

    def __post_init__(self):
        for f in fields(self):
            _check_type(f.name, f.type, getattr(self, f.name))
        positive = ("dist_threshold", "time_threshold", "gap_threshold", "epsilon",
                    "min_samples", "previous_day", "shard_users")
        wrong = [n for n in positive if getattr(self, n) <= 0]
        wrong += [n for n in ("activity_time", "min_days", "quality_window", "merge_gap",
                              "min_history") if getattr(self, n) < 0]
        if self.n_jobs == 0 or self.n_jobs < -1:
            wrong.append("n_jobs")
        if wrong:
            raise ConfigError(f"preprocess option(s) {wrong} out of range: thresholds must be "
                              f"> 0, or >= 0 where 0 turns a step off; n_jobs >= 1 or -1.")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ConfigError(f"unknown time zone {self.timezone[:40]!r} (e.g. UTC, "
                              f"Asia/Shanghai).") from err


def _check_type(name: str, kind: str, value) -> None:
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"preprocess option {name} must be text, got {value!r:.40}.")
        return
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or value != value or value in (float("inf"), float("-inf")):
        raise ConfigError(f"preprocess option {name} must be a finite number, "
                          f"got {value!r:.40}.")
    if kind == "int" and value != int(value):
        raise ConfigError(f"preprocess option {name} must be a whole number, got {value!r}.")


def option_type(name: str):
    """The Python type of an option, for the command line's flags."""
    kind = {f.name: f.type for f in fields(PreprocessConfig)}[name]
    return {"float": float, "int": int, "str": str}[kind]


def load_config(path: str | Path | None = None, **overrides) -> PreprocessConfig:
    """Defaults, then the YAML file's keys, then ``overrides`` that are not None."""
    settings = {}
    if path is not None:
        from nextloc.core.config_file import read_yaml  # YAML 1.2 numbers: 1e-3 is a float

        try:
            settings = read_yaml(path, "options file") or {}
        except (OSError, UnicodeDecodeError, ConfigError) as err:
            first_line = (str(err).splitlines() or [type(err).__name__])[0]
            raise ConfigError(f"{path}: cannot read the preprocess options "
                              f"({first_line[:160]}).") from err
        if not isinstance(settings, dict):
            raise ConfigError(f"{path}: must be a mapping of option: value.")
    settings.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in fields(PreprocessConfig)}
    unknown = sorted(str(k)[:40] for k in set(settings) - known)
    if unknown:
        raise ConfigError(f"unknown preprocess option(s) {unknown[:5]}; options are "
                          f"{sorted(known)}.")
    return PreprocessConfig(**settings)
