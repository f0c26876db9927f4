"""Tasks: samples prepared from a suite's task spec, prompts, answer extraction, checkpoints, scoring."""
