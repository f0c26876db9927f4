"""Install llama.cpp's HF -> GGUF converter beside the environment (the `gguf` recipe uses it).

llama-cpp-python installs llama.cpp's library and quantizer but not its Python converter; the
converter ships in the same sdist (vendor/llama.cpp). This fetches the sdist of the installed
llama-cpp-python version through pip (its cache makes a second run free) and extracts
convert_hf_to_gguf.py, convert_lora_to_gguf.py (PEFT adapters as GGUF LoRA files), its
`conversion` package and its `gguf-py` into
<sys.prefix>/share/harness/llama.cpp, where harness.models.gguf looks for them.

    python scripts/install_llama_cpp_converter.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

WANTED = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "conversion/", "gguf-py/")


def main() -> int:
    try:
        import llama_cpp
    except ImportError:
        print("llama-cpp-python is not installed: pip install 'harness[llama-cpp]' first", file=sys.stderr)
        return 2
    version = llama_cpp.__version__
    dest = Path(sys.prefix) / "share" / "harness" / "llama.cpp"
    stamp = dest / "VERSION"
    if stamp.is_file() and stamp.read_text().strip() == version and all((dest / f).is_file() for f in WANTED if f.endswith(".py")):
        print(f"llama.cpp converter {version} already installed in {dest}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                        f"llama-cpp-python=={version}", "-d", tmp], check=True)
        sdist = next(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        staging = Path(tmp) / "out"
        with tarfile.open(sdist) as tar:
            prefix = f"{sdist.name.removesuffix('.tar.gz')}/vendor/llama.cpp/"
            members = [m for m in tar.getmembers()
                       if m.name.startswith(prefix) and m.name[len(prefix):].startswith(WANTED) and (m.isfile() or m.isdir())]
            for m in members:
                m.name = m.name[len(prefix):]
            tar.extractall(staging, members=members, filter="data")
        if not (staging / "convert_hf_to_gguf.py").is_file():
            print(f"{sdist.name} has no vendor/llama.cpp/convert_hf_to_gguf.py", file=sys.stderr)
            return 1
        (staging / "VERSION").write_text(version + "\n")
        shutil.rmtree(dest, ignore_errors=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(staging, dest)
    print(f"installed llama.cpp's converter ({version}) in {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
