"""Run llama.cpp's convert_hf_to_gguf.py, in a child process (see harness.models.gguf.convert_hf):

    python -m harness.models.gguf_convert CONVERTER TOKENIZER_PRE MODEL_DIR [converter arguments...]

TOKENIZER_PRE (may be empty) names the llama.cpp pre-tokenizer to record for a BPE tokenizer the
converter does not recognise (it recognises published tokenizers by a hash of their output and
refuses any other): the tokenizer itself is converted as usual, only the name of its splitting
rule is given instead of guessed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    converter, pre, args = Path(argv[0]), argv[1], argv[2:]
    sys.path.insert(0, str(converter.parent))
    spec = importlib.util.spec_from_file_location("convert_hf_to_gguf", converter)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if pre:
        from conversion import base  # the converter's package, beside it

        original = base.TextModel.get_vocab_base_pre

        def get_vocab_base_pre(self, tokenizer) -> str:
            try:
                return original(self, tokenizer)
            except NotImplementedError:
                return pre

        base.TextModel.get_vocab_base_pre = get_vocab_base_pre
    sys.argv = [str(converter), *args]
    module.main()


if __name__ == "__main__":
    main(sys.argv[1:])
