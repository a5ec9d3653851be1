"""Instruction tuning of causal LMs: models, chat templating and (elsewhere) decoding/metrics.

Plain building blocks, no prefect: the tasks layer wires them into the pipeline.
"""
