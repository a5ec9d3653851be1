"""Building blocks of the generation task type: causal-LM loading (the packaged default is
dequantized once into a cache), chat templating and loss masks, decoding, metrics, few-shot
prompting, the bundle and the serving pyfunc. Plain Python; wired by
`components.objectives.generation`."""
