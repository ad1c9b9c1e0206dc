"""The table steps of the preprocessing that need no geometry: user tracking quality, the time
columns of the staypoint table, and the valid-id rule. Plain pandas/numpy, so each is tested on
hand-made tables; :mod:`nextloc.preprocess.pipeline` chains them with the trackintel steps."""
from __future__ import annotations

import numpy as np
import pandas as pd

from nextloc.data.split import history_window, split_and_encode

WEEK_SECONDS = 7 * 24 * 3600


def _seconds(times: pd.Series) -> np.ndarray:
    """Seconds since the epoch (float) of tz-aware or naive timestamps."""
    times = pd.to_datetime(times)
    if times.dt.tz is not None:
        times = times.dt.tz_convert("UTC").dt.tz_localize(None)
    return times.astype("datetime64[ns]").to_numpy().astype(np.int64) / 1e9


def covered_seconds(start: np.ndarray, finish: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Seconds of the records ``[start, finish)`` that lie before each time in ``at``.

    C(t) = sum over records of clip(t - start, 0, finish - start), from sorted starts and
    finishes: n_started(t) * t - sum(started starts) + sum(finished finishes) - n_finished(t) * t.
    """
    starts, finishes = np.sort(start), np.sort(np.maximum(finish, start))
    start_sum = np.concatenate([[0.0], np.cumsum(starts)])
    finish_sum = np.concatenate([[0.0], np.cumsum(finishes)])
    n_started = np.searchsorted(starts, at, side="left")
    n_finished = np.searchsorted(finishes, at, side="right")
    return (n_started * at - start_sum[n_started] + finish_sum[n_finished] - n_finished * at)


def user_quality(records: pd.DataFrame, min_days: float, window_weeks: int) -> pd.DataFrame:
    """Tracking quality per user from the time its staypoints and triplegs cover.

    ``records`` has ``user_id, started_at, finished_at``. A user's tracked days are the whole
    days from the first start to the last finish. With ``window_weeks`` > 0 (Hong et al. 2023
    use 10), windows of that many weeks slide by one week from the midnight before the first
    record, and the quality is the mean covered share over windows that hold any record; a user
    with no complete window has no quality and is dropped. With 0, the quality is the covered
    share of the whole tracked period. A user is kept when tracked for at least ``min_days``
    and given a quality. Returns ``source_user, tracked_days, quality, kept`` per user.
    """
    rows = []
    for user, group in records.groupby("user_id", sort=True):
        start, finish = _seconds(group["started_at"]), _seconds(group["finished_at"])
        days = int((finish.max() - start.min()) // 86400)
        rows.append((user, days, _quality(start, finish, days, window_weeks)))
    table = pd.DataFrame(rows, columns=["source_user", "tracked_days", "quality"])
    table["kept"] = (table["tracked_days"] >= min_days) & table["quality"].notna()
    return table


def _quality(start: np.ndarray, finish: np.ndarray, days: int, window_weeks: int) -> float:
    first_midnight = start.min() // 86400 * 86400
    if window_weeks == 0:
        span = finish.max() - start.min()
        covered = covered_seconds(start, finish, np.array([start.min(), finish.max()]))
        return float(np.diff(covered)[0] / span) if span > 0 else float("nan")
    windows = days // 7 - window_weeks + 1
    if windows < 1:
        return float("nan")
    edges = first_midnight + WEEK_SECONDS * np.arange(windows + window_weeks)
    covered = covered_seconds(start, finish, edges)
    per_window = (covered[window_weeks:] - covered[:windows]) / (window_weeks * WEEK_SECONDS)
    # Windows without any record are left out (a gap in tracking, not zero quality).
    started = np.searchsorted(np.sort(start), edges, side="left")
    occupied = started[window_weeks:] > started[:windows]
    return float(per_window[occupied].mean()) if occupied.any() else float("nan")


def time_table(staypoints: pd.DataFrame, timezone: str) -> pd.DataFrame:
    """The time columns of the staypoint table, per staypoint, in ``timezone``.

    ``start_day``/``end_day`` count days since the midnight before the user's first staypoint,
    ``start_min``/``end_min`` are minutes of the day (an end at midnight is 1440, as published),
    ``weekday`` 0 = Monday, ``duration`` whole minutes. Sorted by user, start_day, start_min.
    """
    started = pd.to_datetime(staypoints["started_at"]).dt.tz_convert(timezone).dt.tz_localize(None)
    finished = (pd.to_datetime(staypoints["finished_at"]).dt.tz_convert(timezone)
                .dt.tz_localize(None))
    user = staypoints["user_id"].to_numpy()
    first_midnight = started.groupby(user).transform("min").dt.floor("D")
    end_min = finished.dt.hour * 60 + finished.dt.minute
    table = pd.DataFrame({
        "user_id": staypoints["user_id"].to_numpy(),
        "location_id": staypoints["location_id"].to_numpy(np.int64),
        "duration": ((finished - started).dt.total_seconds() // 60).astype(np.int64).to_numpy(),
        "start_day": (started - first_midnight).dt.days.to_numpy(),
        "end_day": (finished - first_midnight).dt.days.to_numpy(),
        "start_min": (started.dt.hour * 60 + started.dt.minute).to_numpy(),
        "end_min": end_min.where(end_min != 0, 1440).to_numpy(),
        "weekday": started.dt.day_of_week.to_numpy(),
    })
    for extra in ("lon", "lat"):
        if extra in staypoints:
            table[extra] = staypoints[extra].to_numpy()
    return table.sort_values(["user_id", "start_day", "start_min"], kind="stable",
                             ignore_index=True)


def valid_targets(table: pd.DataFrame, previous_day: int, min_history: int) -> np.ndarray:
    """Per row of ``table`` (sorted by user, day, minute), whether it may be a prediction target:
    in its split (the standard per-user 60/20/20 split by day) it lies at least
    ``previous_day`` days after the user's first record and has at least ``min_history`` earlier
    stays of the user within ``previous_day`` days. Hong et al. (2023) use 7 days and 3 stays."""
    frame = split_and_encode(table.assign(id=np.arange(len(table))))
    valid = np.zeros(len(table), dtype=bool)
    for code in range(3):
        rows = frame[frame["split"] == code]
        _, history_length, old_enough = history_window(rows, previous_day)
        valid[rows["id"].to_numpy()] = old_enough & (history_length >= min_history)
    return valid


def users_with_targets_in_every_split(table: pd.DataFrame, valid: np.ndarray) -> np.ndarray:
    """The users that have a valid target in each of the three splits (as published)."""
    split = split_and_encode(table.assign(id=np.arange(len(table))))
    split = split.sort_values("id")["split"].to_numpy()
    per_user = pd.DataFrame({"user": table["user_id"].to_numpy(), "split": split})[valid]
    counts = per_user.groupby("user")["split"].nunique()
    return counts.index[counts == 3].to_numpy()
