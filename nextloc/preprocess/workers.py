"""Where the shards of :mod:`nextloc.preprocess.shards` run: in this process, on a local pool
of worker processes (``--workers N``), or on a Dask distributed cluster (``--scheduler
ADDRESS``; ``local`` starts a ``LocalCluster`` of ``--workers`` processes). A Dask cluster's
workers must see the raw folder at the same path (a shared file system); the results come back
to this process, which alone writes the scratch folder and the output."""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from nextloc.core.errors import ConfigError, shorten
from nextloc.preprocess.shards import Shard, ShardFailed

SCHEDULER_TIMEOUT_S = 10  # seconds to reach a scheduler before giving up


def run_one(folder: Path, users: list[str], config) -> dict:
    from nextloc.preprocess.tracks import quiet_shard_staypoints

    return quiet_shard_staypoints(folder, users, config)


def default_workers() -> int:
    return os.cpu_count() or 1


class LocalPool:
    """``workers`` processes (spawned: a clean interpreter each, whose memory is its shard's).
    One worker, or one shard to run, runs in this process, with no pool to start."""

    def __init__(self, workers: int | None = None):
        self.workers = workers or default_workers()

    def run(self, folder: Path, shards: list[Shard], config, on_done) -> None:
        if min(self.workers, len(shards)) == 1:
            for shard in shards:
                on_done(shard, _attempt(shard, run_one, folder, shard.users, config))
            return
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(self.workers, len(shards)), mp_context=context) as pool:
            futures = {pool.submit(run_one, folder, shard.users, config): shard
                       for shard in shards}
            _collect(futures, as_completed(futures), on_done)


def _collect(futures: dict, finishing, on_done) -> None:
    """Each result handed to ``on_done`` as it comes. After a failure no new shard starts, the
    running ones are let finish and kept, then the first failure is raised."""
    failure = None
    try:
        for future in finishing:
            if future.cancelled():
                continue
            try:
                on_done(futures[future], _attempt(futures[future], future.result))
            except ShardFailed as failed:
                failure = failure or failed
                for other in futures:
                    other.cancel()
    except BaseException:  # Ctrl-C: the finished shards are saved already
        for other in futures:
            other.cancel()
        raise
    if failure is not None:
        raise failure


class DaskPool:
    """The shards as tasks of a Dask distributed cluster."""

    def __init__(self, address: str, workers: int | None = None):
        self.address, self.workers = address, workers or default_workers()

    def run(self, folder: Path, shards: list[Shard], config, on_done) -> None:
        from distributed import as_completed as finishing

        cluster, client = self._connect()
        try:
            futures = {client.submit(run_one, folder, shard.users, config, pure=False): shard
                       for shard in shards}
            _collect(futures, finishing(futures), on_done)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()

    def _connect(self):
        from distributed import Client, LocalCluster

        if self.address == "local":
            cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1,
                                   processes=True, dashboard_address=None)
            return cluster, Client(cluster)
        try:
            return None, Client(self.address, timeout=SCHEDULER_TIMEOUT_S)
        except (OSError, ValueError, TimeoutError) as err:
            raise ConfigError(f"cannot reach the Dask scheduler at {shorten(self.address, 80)} "
                              f"({shorten(err, 160)}); start one (`dask scheduler`), or use "
                              f"--scheduler local or --workers N.") from err


def _attempt(shard: Shard, call, *args):
    """``call(*args)``, a failure turned into :class:`ShardFailed` naming the shard."""
    try:
        return call(*args)
    except Exception as err:
        raise ShardFailed(shard, err) from err


def make_pool(workers: int | None, scheduler: str | None):
    return DaskPool(scheduler, workers) if scheduler else LocalPool(workers)
