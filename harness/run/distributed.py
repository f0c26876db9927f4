"""`harness run --ray`: a variant's tasks evaluated by model replicas on a Ray cluster.

Ray does the scheduling (actors placed by their declared resources, a crashed actor restarted and
its call retried, `ray.util.ActorPool` handing shards to idle replicas); the harness does not
grow its own. What the harness keeps:

- The driver is the only writer of the store. A replica (a Ray actor holding the model loaded)
  gets a shard of a task's items and returns the finished work units (an item's option
  log-likelihoods, a generated output) exactly as the item-level checkpoint stores them; the
  driver commits each shard's units to the task's checkpoint as it arrives. A killed replica
  loses at most its shard in flight (Ray retries it on the restarted actor, or the next run
  finds it missing from the checkpoint), and no unit is stored twice.
- Results are the single-process results: once every unit is in the checkpoint, the driver runs
  the task exactly as `harness run` does without Ray, on a stand-in backend that answers nothing
  (every unit is stored, so none is asked), and writes the run. Shards are cut from the items in
  the order a single process batches them (longest prompt first) in whole batches, so a
  per-call seed and a batch's padding see the same batches as one process would.
- Kinds whose work units are not items (latency's timed chunks, perplexity, lm-eval's own
  loop) run whole on one replica, which returns the task's rows.
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
import time
from dataclasses import dataclass, field, replace
from typing import Any

from harness import registry
from harness.backends.base import BackendInfo
from harness.errors import BackendError, ConfigError, HarnessError, require
from harness.models import serving
from harness.models.resources import Resources, check_cluster
from harness.stats.metricspec import TaskRun
from harness.tasks.checkpoint import Checkpoint

log = logging.getLogger(__name__)

DEFAULT_SHARD_ITEMS = 32
"""Items per shard unless --shard-items says otherwise (rounded up to whole generation batches)."""
NAMESPACE = "harness"
"""The Ray namespace the replicas are named in (`harness-<variant>-<k>`), so an operator (or a
test) can find one with `ray.get_actor`."""
MAX_RESTARTS = 3
"""A crashed replica is restarted (model loaded again) this many times, and its call retried."""


@dataclass(frozen=True)
class RayOptions:
    """`--ray [ADDRESS]` and `--shard-items N` of `harness run`."""

    address: str | None = None
    """None: a local Ray instance with this machine's CPUs and GPUs; else an existing cluster
    (`host:port` of `ray start --head`, `ray://host:port`, or `auto`)."""
    shard_items: int = DEFAULT_SHARD_ITEMS
    """Items per shard: a killed replica loses at most this many items' work."""


def connect(options: RayOptions) -> dict:
    """Join (or start) the Ray cluster, after checking that the address answers: Ray itself would
    retry an unreachable address for minutes. Returns the cluster's resources. ConfigError (exit
    2) before anything is loaded or written."""
    ray = require("ray", "harness run --ray", "ray")
    address = options.address
    if address not in (None, "auto", "local"):
        _probe(address)
    if ray.is_initialized():  # a caller's own cluster (a notebook, a test): it must be the one asked for
        current = ray.get_runtime_context().gcs_address
        if address not in (None, "auto", "local") and address.split("://", 1)[-1] != current:
            raise ConfigError(f"--ray {address}: this process is already connected to the Ray cluster at {current}")
        return ray.cluster_resources()
    try:
        ray.init(address=None if address in (None, "local") else address, namespace=NAMESPACE, log_to_driver=False,
                 include_dashboard=False, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError(f"--ray {address or ''}: cannot join the Ray cluster: {exc}".replace("  ", " "),
                          hint="start one with `ray start --head` and pass its address, or give --ray no address for a "
                               "local instance") from None
    return ray.cluster_resources()


def _probe(address: str, timeout_s: float = 5.0) -> None:
    """A TCP connection to the cluster's head, so a wrong address is an error in seconds."""
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--ray {address}: expected host:port (the address `ray start --head` prints), ray://host:port or auto")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ConfigError(f"--ray {address}: no Ray cluster answers there ({exc.strerror or exc})",
                          hint="check the address `ray start --head` printed, or give --ray no address for a local "
                               "instance") from None


def joined() -> bool:
    """Whether this process is already part of a Ray cluster (a caller's own `ray.init`)."""
    ray = require("ray", "harness run --ray", "ray")
    return bool(ray.is_initialized())


def shutdown() -> None:
    """Leave the cluster (a local instance this process started stops with it)."""
    ray = require("ray", "harness run --ray", "ray")
    if ray.is_initialized():
        ray.shutdown()


class MemoryCheckpoint:
    """A replica's checkpoint: the units the driver already has (not asked again) and the new ones
    (returned to the driver, which commits them). Same interface the task kinds use."""

    def __init__(self, done: dict[str, Any]):
        self.done, self.new = dict(done), {}

    def get(self, unit: str):
        return self.done.get(unit)

    def add(self, unit: str, payload) -> None:
        self.done[unit] = payload
        self.new[unit] = payload


class ModelReplica:
    """One model replica (a Ray actor): loads the model once, evaluates shards until released."""

    def __init__(self, spec, model):
        self.backend = serving.open_model(spec, model)

    def info(self) -> BackendInfo:
        return self.backend.info

    def pid(self) -> int:
        return os.getpid()

    def units(self, task, seed: int, run_id: str, done: dict) -> tuple[dict, float]:
        """The new work units of `task` (a shard) and the seconds they took. Scorers run on the
        driver, over all items, so none runs here."""
        t0 = time.perf_counter()
        ckpt = MemoryCheckpoint(done)
        kind = registry.resolve("task_kind", task.spec.type)
        kind.rows(self.backend, task, TaskRun(run_id, seed, ckpt, []))
        return ckpt.new, time.perf_counter() - t0

    def rows(self, task, seed: int, run_id: str, done: dict):
        """A whole task's rows (kinds whose units are not items)."""
        kind = registry.resolve("task_kind", task.spec.type)
        return kind.rows(self.backend, task, TaskRun(run_id, seed, MemoryCheckpoint(done), list(task.scorers)))

    def generate(self, prompts: list[str], config):
        return self.backend.generate(prompts, config)

    def loglikelihood(self, requests: list[tuple[str, str]]):
        return self.backend.loglikelihood(requests)

    def close(self) -> None:
        self.backend.close()


class SpreadBackend:
    """A backend whose every call is split across a model's replicas (contiguous parts, one per
    replica, requests with one context kept together) and joined in order: how a local judge's
    calls are spread. Caching and storing stay with the caller, on the driver."""

    def __init__(self, replicas: Replicas):
        self.replicas = replicas
        self.info = replicas.for_task(len(replicas.actors) or 1 << 16)

    def _spread(self, method: str, items: list, args: tuple, cut) -> list:
        ray = require("ray", "harness run --ray", "ray")
        actors = self.replicas.actors
        parts = _split(items, len(actors), cut)
        refs = [getattr(actor, method).remote(part, *args) for actor, part in zip(actors, parts) if part]
        return [x for got in ray.get(refs) for x in got]

    def generate(self, prompts: list[str], config):
        return self._spread("generate", prompts, (config,), lambda a, b: True)

    def loglikelihood(self, requests: list[tuple[str, str]], on_done=None):
        out = self._spread("loglikelihood", requests, (), lambda a, b: a[0] != b[0])
        if on_done is not None:
            on_done(dict(enumerate(out)))
        return out

    def close(self) -> None:
        self.replicas.close()


def _split(items: list, n: int, may_cut) -> list[list]:
    """`items` in at most `n` contiguous parts of about equal size, cut only where
    `may_cut(previous, next)` allows (so one context's options go to one replica)."""
    if n <= 1 or len(items) <= 1:
        return [list(items)]
    target = -(-len(items) // n)
    parts: list[list] = [[]]
    for i, item in enumerate(items):
        if len(parts[-1]) >= target and len(parts) < n and may_cut(items[i - 1], item):
            parts.append([])
        parts[-1].append(item)
    return parts


class FromReplicas:
    """The driver's stand-in backend once every unit of a task is in its checkpoint: it carries the
    replicas' BackendInfo for the run row and answers no call (a call would mean a unit was lost)."""

    def __init__(self, info: BackendInfo):
        self.info = info

    def generate(self, prompts, config):
        raise HarnessError(f"internal: {len(prompts)} output(s) missing after the Ray replicas finished")

    def loglikelihood(self, requests, on_done=None):
        raise HarnessError(f"internal: {len(requests)} log-likelihood(s) missing after the Ray replicas finished")

    def close(self) -> None:
        pass


@dataclass
class ShardStats:
    """What a task's shards cost: for the log, the run's backend details and the scale benchmark."""

    shards: int = 0
    replicas: int = 0
    first_commit_s: float | None = None
    compute_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0

    def record(self) -> dict:
        """The run's `backend_details.ray` entry."""
        return {"replicas": self.replicas, "shards": self.shards, "wall_s": round(self.wall_s, 3),
                "first_commit_s": None if self.first_commit_s is None else round(self.first_commit_s, 3),
                "replica_s": round(sum(self.compute_s), 3)}


def shard(samples: tuple, size: int) -> list[tuple]:
    """Items in the order one process batches them (longest prompt first, stable), cut into
    shards of `size`; each shard keeps that order."""
    order = sorted(samples, key=lambda s: -len(s.prompt))
    return [tuple(order[i:i + size]) for i in range(0, len(order), size)]


def shard_size(task, requested: int) -> int:
    """`requested` rounded up to whole generation batches, so shards batch as one process does."""
    gen = getattr(task.spec, "generation", None)
    batch = max(int(getattr(gen, "batch_size", 1) or 1), 1)
    return max(batch, -(-requested // batch) * batch)


def n_shards(task, options: RayOptions) -> int:
    """How many shards `task`'s items make (one for a kind whose units are not items)."""
    if not sharded(task.spec.type):
        return 1
    return -(-len(task.samples) // shard_size(task, options.shard_items))


def _units_of(done: dict, ids: set[str]) -> dict:
    """The stored units belonging to items `ids` (a unit is `<item>` or `<item>#<turn or draw>`)."""
    return {u: p for u, p in done.items() if u.split("#", 1)[0] in ids}


class Replicas:
    """The Ray actors of one model, started on its first task that is not reused."""

    def __init__(self, catalogue, name: str, resources: Resources, cluster: dict, options: RayOptions):
        self.catalogue, self.name, self.resources, self.cluster, self.options = catalogue, name, resources, cluster, options
        self.actors: list = []
        self._info: BackendInfo | None = None

    def _start(self, n_shards: int) -> None:
        ray = require("ray", "harness run --ray", "ray")
        model = self.catalogue.resolve(self.name)
        n = self.resources.replicas_on(self.cluster, n_shards)
        remote = ray.remote(ModelReplica)
        for k in range(n):
            self.actors.append(remote.options(num_cpus=self.resources.num_cpus, num_gpus=self.resources.num_gpus,
                                              max_restarts=MAX_RESTARTS, max_task_retries=MAX_RESTARTS,
                                              # a second thread answers pid()/info() while a shard runs
                                              max_concurrency=2,
                                              name=f"harness-{self.name}-{k}", namespace=NAMESPACE).remote(self.catalogue.spec, model))
        try:
            infos = ray.get([a.info.remote() for a in self.actors])
        except ray.exceptions.RayActorError as exc:
            raise BackendError(f"{self.name}: a Ray replica failed to load the model: {exc}") from None
        self._info = infos[0]
        log.info("%s: %d Ray replica(s) loaded (%s CPU, %s GPU each)", self.name, n, self.resources.num_cpus,
                 self.resources.num_gpus)

    def for_task(self, n_shards: int) -> BackendInfo:
        """The replicas' backend info, starting them on first use."""
        if not self.actors:
            self._start(n_shards)
        assert self._info is not None
        return self._info

    def fill(self, store, task, seed: int, run_id: str, run_key: str, force: bool) -> tuple[BackendInfo, ShardStats]:
        """Every work unit of `task` (the served task) into its checkpoint, shard by shard."""
        ray = require("ray", "harness run --ray", "ray")
        from ray.util import ActorPool

        ckpt = Checkpoint(store, run_key, fresh=force)
        ckpt.said_resumed(f"{self.name} / {task.spec.name}")
        shards = shard(task.samples, shard_size(task, self.options.shard_items))
        info = self.for_task(len(shards))
        stats = ShardStats(shards=len(shards), replicas=len(self.actors))
        t0 = time.perf_counter()
        pool = ActorPool(self.actors)
        for items in shards:
            ids = {s.id for s in items}
            pool.submit(lambda a, job: a.units.remote(*job),
                        (replace(task, samples=items, native=None), seed, run_id, _units_of(ckpt.done, ids)))
        try:
            while pool.has_next():
                units, compute_s = pool.get_next_unordered()
                for unit, payload in units.items():
                    ckpt.add(unit, payload)
                ckpt.flush()  # one commit per shard: what a crash can lose is what is in flight
                stats.compute_s.append(compute_s)
                if stats.first_commit_s is None:
                    stats.first_commit_s = time.perf_counter() - t0
        except ray.exceptions.RayActorError as exc:
            ckpt.flush()
            raise BackendError(f"{self.name} / {task.spec.name}: a Ray replica died more than {MAX_RESTARTS} times ({exc})",
                               hint="the finished shards are stored: run the same command again to finish the rest") from None
        stats.wall_s = time.perf_counter() - t0
        log.info("%s / %s: %d shard(s) on %d replica(s), %.1fs (first commit after %.1fs)", self.name, task.spec.name,
                 stats.shards, stats.replicas, stats.wall_s, stats.first_commit_s or 0.0)
        return info, stats

    def whole(self, store, task, seed: int, run_id: str, run_key: str, force: bool):
        """A task whose units are not items, run on one replica: its rows."""
        ray = require("ray", "harness run --ray", "ray")
        ckpt = Checkpoint(store, run_key, fresh=force)
        info = self.for_task(1)
        try:
            out = ray.get(self.actors[0].rows.remote(task, seed, run_id, dict(ckpt.done)))
        except (TypeError, pickle.PicklingError) as exc:  # the task can't be sent (e.g. an object lm-eval built)
            raise ConfigError(f"task '{task.spec.name}' ({task.spec.type}) can't be sent to a Ray replica: {exc}",
                              hint="run it without --ray") from None
        return info, out

    def close(self) -> None:
        ray = require("ray", "harness run --ray", "ray")
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []


def check_resources(catalogue, names: list[str], cluster: dict | None) -> dict[str, Resources]:
    """Each model's resources (variants and local judges), checked against the cluster (or this machine, without Ray)."""
    out = {}
    for name in names:
        res = catalogue.resources(name)
        check_cluster(res, cluster, f"{catalogue.path}: {name}")
        out[name] = res
    return out


def sharded(kind_name: str) -> bool:
    """Whether a task kind's work units are its items (so it can be spread over replicas)."""
    return bool(registry.resolve("task_kind", kind_name).shardable)
