"""Install llama.cpp's converters and tools beside the environment (the `gguf` and `gguf_lora`
recipes use them).

llama-cpp-python installs llama.cpp's library and quantizer but not its Python converters nor its
command-line tools; both ship in the same sdist (vendor/llama.cpp). This fetches the sdist of the
installed llama-cpp-python version through pip (its cache makes a second run free) and

- extracts convert_hf_to_gguf.py, convert_lora_to_gguf.py (PEFT adapters as GGUF LoRA files), its
  `conversion` package and its `gguf-py` into <sys.prefix>/share/harness/llama.cpp, where
  harness.models.gguf looks for them;
- builds llama-imatrix and llama-quantize (importance-matrix quantization) with CMake into
  <sys.prefix>/share/harness/llama.cpp/bin. The build (about 3-5 minutes on 2 cores) is kept in
  ~/.cache/harness/llama.cpp-tools, keyed by version and CPU, so a fresh environment copies it.

    python scripts/install_llama_cpp_converter.py
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

WANTED = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "conversion/", "gguf-py/")
TOOLS = ("llama-imatrix", "llama-quantize")


def main() -> int:
    try:
        import llama_cpp
    except ImportError:
        print("llama-cpp-python is not installed: pip install 'harness[llama-cpp]' first", file=sys.stderr)
        return 2
    version = llama_cpp.__version__
    dest = Path(sys.prefix) / "share" / "harness" / "llama.cpp"
    stamp = dest / "VERSION"
    converters = stamp.is_file() and stamp.read_text().strip() == version and \
        all((dest / f).is_file() for f in WANTED if f.endswith(".py"))
    cached = tools_cache(version)
    if converters and all((dest / "bin" / t).is_file() for t in TOOLS):
        print(f"llama.cpp converter and tools {version} already installed in {dest}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                        f"llama-cpp-python=={version}", "-d", tmp], check=True)
        sdist = next(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        source = Path(tmp) / "src"
        prefix = f"{sdist.name.removesuffix('.tar.gz')}/vendor/llama.cpp/"
        with tarfile.open(sdist) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith(prefix) and (m.isfile() or m.isdir())]
            for m in members:
                m.name = m.name[len(prefix):]
            tar.extractall(source, members=members, filter="data")
        if not (source / "convert_hf_to_gguf.py").is_file():
            print(f"{sdist.name} has no vendor/llama.cpp/convert_hf_to_gguf.py", file=sys.stderr)
            return 1
        if not all((cached / t).is_file() for t in TOOLS):
            build_tools(source, cached)
        staging = Path(tmp) / "out"
        staging.mkdir()
        for name in (n.rstrip("/") for n in WANTED):
            if (source / name).is_dir():
                shutil.copytree(source / name, staging / name)
            elif (source / name).is_file():
                shutil.copy2(source / name, staging / name)
        shutil.copytree(cached, staging / "bin")
        (staging / "VERSION").write_text(version + "\n")
        shutil.rmtree(dest, ignore_errors=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(staging, dest)
    print(f"installed llama.cpp's converters and {', '.join(TOOLS)} ({version}) in {dest}")
    return 0


def tools_cache(version: str) -> Path:
    """Where a build of the tools for this llama.cpp version and this CPU is kept: the build is
    native (-march=native), so the CPU's flags are part of the key."""
    flags = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        flags = next((line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")), "")
    key = hashlib.sha256(f"{platform.machine()} {flags}".encode()).hexdigest()[:12]
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "harness" / "llama.cpp-tools"
    return root / f"{version}-{platform.machine()}-{key}"


def build_tools(source: Path, out: Path) -> None:
    """Build TOOLS from llama.cpp's source, statically linked, into `out`."""
    cmake = shutil.which("cmake")
    if cmake is None:  # the PyPI wheel of CMake, into this environment
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "cmake"], check=True)
        cmake = str(Path(sys.executable).parent / "cmake")
    build = source / "build"
    print(f"building {', '.join(TOOLS)} from llama.cpp's source (a few minutes, once per version)", flush=True)
    for step in ([cmake, "-S", str(source), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=OFF",
                  "-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
                  "-DLLAMA_BUILD_SERVER=OFF", "-DGGML_NATIVE=ON"],
                 [cmake, "--build", str(build), "-j", str(os.cpu_count() or 1), "--target", *TOOLS]):
        # the compiler's warnings are not the user's business: shown only when a step fails
        proc = subprocess.run(step, capture_output=True, text=True)
        if proc.returncode != 0:
            print("\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:]), file=sys.stderr)
            raise SystemExit(f"building llama.cpp's tools failed at: {' '.join(step[:3])}")
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for tool in TOOLS:
        shutil.copy2(build / "bin" / tool, staging / tool)
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)  # whole or not at all: a cut build is never taken for a finished one


if __name__ == "__main__":
    sys.exit(main())
