"""What a run prints besides its results: third-party warnings once each, and no progress bar
of any library when progress is off (harness.progress, configured by the CLI)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from tests.conftest import REPO


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter (the CLI configures logging once per process)."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", **env}
    for name in ("HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS", "TQDM_DISABLE"):
        if name not in env:
            full_env.pop(name, None)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full_env, capture_output=True, text=True,
                          timeout=300, check=True)


def test_a_repeated_third_party_warning_is_shown_once():
    out = _python("""
        import logging, warnings
        from harness.cli import build_parser
        from harness.progress import setup_logging

        setup_logging(build_parser().parse_args(["list", "recipes"]).verbose)  # as harness.cli.main does
        for i in range(1000):
            with warnings.catch_warnings():  # libraries do this all the time: it resets Python's once-per-place rule
                warnings.simplefilter("default")
            warnings.warn("MatMul8bitLt: inputs will be cast from torch.float32 to float16 during quantization")
            logging.getLogger("bitsandbytes.autograd").warning("the same message from a logger")
        warnings.warn("a different warning")
        logging.getLogger("harness.run").warning("harness's own messages are never deduplicated")
        logging.getLogger("harness.run").warning("harness's own messages are never deduplicated")
    """).stderr
    assert out.count("MatMul8bitLt: inputs will be cast") == 1
    assert "UserWarning: MatMul8bitLt" in out and "WARNING py.warnings" in out  # through logging, at WARNING
    assert out.count("the same message from a logger") == 1
    assert out.count("a different warning") == 1
    assert out.count("harness's own messages are never deduplicated") == 2
    assert len(out) < 1000


def test_a_library_handler_repeats_are_shown_once_too():
    # transformers prints through a handler of its own (created when it is imported), not the root's.
    err = _python("""
        from harness.progress import setup_logging

        setup_logging(0)
        from transformers.utils import logging as hf_logging

        for _ in range(200):
            hf_logging.get_logger("transformers.modeling_utils").warning("some weights were not initialized")
    """).stderr
    assert err.count("some weights were not initialized") == 1


def test_progress_off_covers_transformers_bars(tiny_model_dir):
    # Off from the start: transformers is imported after the CLI's setup.
    err = _python(f"""
        from harness.progress import setup_logging

        setup_logging(0)
        from transformers import AutoModelForCausalLM

        AutoModelForCausalLM.from_pretrained({str(tiny_model_dir)!r})
    """, HARNESS_PROGRESS="0").stderr
    assert "Loading weights" not in err and "it/s" not in err and "%|" not in err
    # On (what a bar looks like here), then off with transformers already imported.
    err = _python(f"""
        import os, sys
        from harness.progress import setup_logging

        setup_logging(0)
        from transformers import AutoModelForCausalLM

        AutoModelForCausalLM.from_pretrained({str(tiny_model_dir)!r})
        print("== progress off", file=sys.stderr, flush=True)
        os.environ["HARNESS_PROGRESS"] = "0"
        setup_logging(0)
        AutoModelForCausalLM.from_pretrained({str(tiny_model_dir)!r})
    """, HARNESS_PROGRESS="1").stderr
    on, off = err.split("== progress off")
    assert "Loading weights" in on and "it/s" in on
    assert "Loading weights" not in off and "it/s" not in off and "%|" not in off
