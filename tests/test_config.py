"""The pipeline config: presets are data and valid; overrides are checked and named."""

import pytest

from components.config import (
    ConfigError,
    PipelineConfig,
    apply_overrides,
    build_config,
    load_preset,
    preset_names,
)


@pytest.mark.parametrize("domain", ["finance", "healthcare", "custom"])
def test_every_preset_is_valid(domain):
    config = load_preset(domain)
    assert config.domain == domain
    assert config.registry.model_name == f"peftops-{domain}"


def test_domain_presets_declare_labels_and_domain_rules():
    finance, health = load_preset("finance"), load_preset("healthcare")
    assert len(finance.data.labels) >= 6 and len(health.data.labels) >= 6
    assert health.validation.check_phi and not finance.validation.check_phi
    assert health.registry.min_class_recall is not None
    assert preset_names() == [
        "custom",
        "finance",
        "finance-assistant",
        "healthcare",
        "healthcare-assistant",
    ]


def test_overrides_parse_yaml_values():
    config = apply_overrides(
        load_preset("finance"),
        ["training.epochs=5", "training.learning_rate=2e-4", "data.labels=[a, b]", "data.rev=null"],
    )
    assert config.training.epochs == 5
    assert config.training.learning_rate == pytest.approx(2e-4)
    assert config.data.labels == ["a", "b"]
    assert config.data.rev is None


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("training.epochz=3", "training.epochz"),
        ("nope=1", "nope"),
        ("training.learning_rate=-0.1", "training.learning_rate"),
        ("method.r=0", "method.r"),
        ("method.name=qlora", "method.name"),
        ("selection.budget=1.5", "selection.budget"),
        ("training.epochs=many", "training.epochs"),
    ],
)
def test_bad_overrides_are_rejected_naming_the_key(override, named):
    with pytest.raises(ConfigError) as err:
        apply_overrides(load_preset("finance"), [override])
    assert named in str(err.value)


def test_malformed_override_and_unknown_nested_key():
    with pytest.raises(ConfigError, match=r"key\.path=value"):
        apply_overrides(PipelineConfig(), ["training.epochs"])
    with pytest.raises(ConfigError, match=r"unknown key 'registry\.colour'"):
        build_config({"registry": {"colour": "red"}})


def test_adapter_methods_cannot_take_parameter_only_strategies():
    with pytest.raises(ConfigError, match=r"method\.name=full"):
        apply_overrides(PipelineConfig(), ["selection.strategy=bias_only"])
    config = apply_overrides(PipelineConfig(), ["method.name=full", "selection.strategy=bias_only"])
    assert config.selection.strategy == "bias_only"


def test_flow_parameters_render_as_a_typed_form():
    """Prefect's UI form comes from this schema: descriptions, bounds and dropdowns."""
    from prefect.utilities.callables import parameter_schema

    from flows.pipeline import finance

    schema = parameter_schema(finance.fn).model_dump()
    definitions = schema["definitions"]
    method = definitions["MethodConfig"]["properties"]
    assert method["name"]["enum"] == [
        "lora",
        "qlora",
        "rslora",
        "dora",
        "adalora",
        "ia3",
        "loha",
        "lokr",
        "vera",
        "prompt_tuning",
        "prefix_tuning",
        "full",
        "bitfit",
        "layer_freeze",
        "head_only",
    ]
    assert method["r"]["minimum"] == 1 and method["r"]["description"]
    task = schema["properties"]["config"]
    assert definitions["PipelineConfig"]["properties"]["task"]["enum"] == [
        "classification",
        "generation",
    ], task
    generation = definitions["GenerationConfig"]["properties"]
    assert generation["max_new_tokens"]["minimum"] == 1 and generation["few_shot"]["description"]
    training = definitions["TrainingConfig"]["properties"]
    assert training["learning_rate"]["exclusiveMinimum"] == 0
    assert schema["properties"]["config"]["default"]["domain"] == "finance"


def test_generation_config_defaults_and_refusals():
    from components.config import DEFAULT_GENERATIVE_MODEL, ConfigError, build_config

    config = build_config({"task": "generation", "registry": {"metric": "token_f1"}})
    assert config.model.base_model == DEFAULT_GENERATIVE_MODEL  # not the encoder default
    with pytest.raises(ConfigError, match="not a classification metric"):
        build_config({"registry": {"metric": "rouge_l"}})
    with pytest.raises(ConfigError, match="qlora"):
        build_config({"method": {"name": "qlora"}})
    for preset in ("finance-assistant", "healthcare-assistant"):
        assert load_preset(preset).task == "generation"
