"""What a model needs to be served: replicas, CPUs and GPUs per replica (the models file's
`resources:`), the GPU-only backend options, and the checks that a machine or Ray cluster has
them. Checked before anything loads: a GPU setting on a machine without GPUs is exit 2, not a
stack trace from CUDA ten minutes into a run (nor a Ray run that waits forever for a GPU)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from harness.config.models import ModelsFile, ResourcesSpec, lineage
from harness.errors import ConfigError

GPU_BACKENDS = frozenset({"vllm"})
"""Backends that run on CUDA only."""


@dataclass(frozen=True)
class Resources:
    """A model's resources, resolved (inheritance applied, GPU defaults from the backend)."""

    num_replicas: int | None
    """None: as many as the cluster fits."""
    num_cpus: float
    num_gpus: float
    gpus_per_engine: int = 0
    """GPUs one engine spans (vLLM tensor x pipeline parallel); 0 for a CPU backend."""
    gpu_options: tuple[str, ...] = ()
    """The backend options that need a GPU, as `key: value` (for the error message)."""

    def replicas_on(self, cluster: dict, n_shards: int) -> int:
        """How many replicas to start on a cluster with `cluster` resources for `n_shards` shards."""
        if self.num_replicas is not None:
            return self.num_replicas
        fit = int(cluster.get("CPU", 1) // self.num_cpus) if self.num_cpus else n_shards
        if self.num_gpus:
            fit = min(fit, int(cluster.get("GPU", 0) // self.num_gpus))
        return max(1, min(fit, n_shards))

    @property
    def needs_gpu(self) -> bool:
        return bool(self.num_gpus or self.gpus_per_engine or self.gpu_options)


def resources_of(spec: ModelsFile, name: str, backend: str, options: dict) -> Resources:
    """`name`'s resources: its own `resources:`, else its nearest ancestor's, else the base's."""
    declared: ResourcesSpec = spec.base.resources
    by_name = {v.name: v for v in spec.variants}
    for step in reversed(lineage(spec, name)):
        own = by_name[step].resources if step in by_name else None
        if own is not None:
            declared = own
            break
    engine = 0
    if backend in GPU_BACKENDS:
        engine = int(options.get("tensor_parallel_size", 1)) * int(options.get("pipeline_parallel_size", 1))
    gpus = declared.num_gpus if declared.num_gpus is not None else float(engine)
    return Resources(None if declared.num_replicas == "auto" else int(declared.num_replicas), declared.num_cpus, gpus,
                     engine, _gpu_options(options))


def _gpu_options(options: dict) -> tuple[str, ...]:
    """hf options that place weights on GPUs: `max_memory` with a GPU key, `device_map` naming one."""
    out = []
    memory = options.get("max_memory") or {}
    if any(_is_gpu_device(k) for k in memory):
        out.append(f"max_memory: {memory}")
    device_map = options.get("device_map")
    if isinstance(device_map, str) and device_map not in ("auto", "cpu", "balanced", "balanced_low_0", "sequential"):
        if _is_gpu_device(device_map):
            out.append(f"device_map: {device_map}")
    elif isinstance(device_map, dict) and any(_is_gpu_device(v) for v in device_map.values()):
        out.append("device_map: (places modules on GPUs)")
    return tuple(out)


def _is_gpu_device(key) -> bool:
    return isinstance(key, int) and not isinstance(key, bool) or str(key).startswith(("cuda", "gpu")) or str(key).isdigit()


def local_gpus() -> int:
    """CUDA devices visible to this process (0 without torch: the core install has no GPU work)."""
    if importlib.util.find_spec("torch") is None:
        return 0
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def check_cluster(res: Resources, cluster: dict | None, where: str) -> None:
    """The machine (cluster None) or the Ray cluster (its `ray.cluster_resources()`) has what `res`
    asks for; ConfigError otherwise. Only a model that declares a GPU setting pays for the check."""
    if cluster is None:
        if not res.needs_gpu:
            return
        have = local_gpus()
        need = max(res.num_gpus, res.gpus_per_engine, 1 if res.gpu_options else 0)
        if have < need:
            raise ConfigError(f"{where}: {_asked(res)} but this machine has {have or 'no'} CUDA GPU{'s' if have != 1 else ''}",
                              hint="run it where the GPUs are (harness run --ray ADDRESS on a cluster that has them), or "
                                   "drop the GPU settings to serve it on CPU (backend: hf)")
        return
    gpus, cpus = cluster.get("GPU", 0.0), cluster.get("CPU", 0.0)
    if res.needs_gpu and gpus < max(res.num_gpus, res.gpus_per_engine, 1):
        raise ConfigError(f"{where}: {_asked(res)} but the Ray cluster has {gpus:g} GPU(s)",
                          hint="join a cluster with GPUs (harness run --ray ADDRESS), or drop the GPU settings")
    if res.gpus_per_engine and res.num_gpus < res.gpus_per_engine:
        raise ConfigError(f"{where}: resources.num_gpus {res.num_gpus:g} is less than the {res.gpus_per_engine} GPUs one vLLM "
                          "engine spans (tensor_parallel_size x pipeline_parallel_size)",
                          hint=f"set resources.num_gpus: {res.gpus_per_engine} (or leave it out)")
    if res.num_replicas is not None:
        if res.num_replicas * res.num_gpus > gpus:
            raise ConfigError(f"{where}: {res.num_replicas} replicas x {res.num_gpus:g} GPU(s) need more than the cluster's "
                              f"{gpus:g} GPU(s): the run would wait for them forever",
                              hint="lower resources.num_replicas, or set it to auto")
        if res.num_replicas * res.num_cpus > cpus:
            raise ConfigError(f"{where}: {res.num_replicas} replicas x {res.num_cpus:g} CPU(s) need more than the cluster's "
                              f"{cpus:g} CPU(s): the run would wait for them forever",
                              hint="lower resources.num_replicas or resources.num_cpus, or set num_replicas: auto")
    elif res.num_cpus > cpus:
        raise ConfigError(f"{where}: one replica needs {res.num_cpus:g} CPU(s); the Ray cluster has {cpus:g}",
                          hint="lower resources.num_cpus")


def _asked(res: Resources) -> str:
    parts = []
    if res.num_gpus:
        parts.append(f"resources.num_gpus {res.num_gpus:g}")
    if res.gpus_per_engine > 1:
        parts.append(f"a vLLM engine over {res.gpus_per_engine} GPUs")
    parts += list(res.gpu_options)
    return "it asks for " + (", ".join(parts) or "a GPU")
