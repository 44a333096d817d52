"""params.yaml and --set: typed, validated once, clear errors naming the bad value."""

from __future__ import annotations

import dataclasses

import pytest

from fsmc.config import Params, load_params, params_from_dict
from fsmc.errors import FsmcError
from tests.conftest import REPO


def test_shipped_params_yaml_loads_and_matches_defaults():
    """Every key of params.yaml is the dataclass default: one source of truth, documented in the YAML."""
    params = load_params(REPO / "params.yaml")
    assert params == Params()
    assert (params.recover.method, params.recover.oe) == ("mir", True)


def test_overrides_accept_section_key_and_unique_leaf():
    params = load_params(None, ["recover.method=kd", "k_max=10", "imbalance_ratio=5", "ratio=0.25"])
    assert params.recover.method == "kd"
    assert params.sample_few_shot.k_max == 10
    assert params.sample_few_shot.imbalance_ratio == 5.0
    assert params.compress.ratio == 0.25


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("k_max=0", "k_max=0"),
        ("imbalance_ratio=0.5", "imbalance_ratio=0.5"),
        ("imbalance_ratio=50", "exceeds k_max=20"),
        ("dataset=imagenet", "'imagenet'"),
        ("method=magic", "'magic'"),
        ("ratio=1.0", "compress.ratio=1.0"),
        ("ratio=0", "compress.ratio=0"),
        ("nonsense=1", "'nonsense'"),
        ("k_max=ten", "'ten'"),
        ("seed=1", "ambiguous"),
        ("budget=lots", "'lots'"),
        ("temperature=inf", "temperature='inf'"),
        ("recover.lr=nan", "recover.lr='nan'"),
        ("recover.lr=-1", "recover.lr=-1.0 must be positive"),
        # Checked whatever the scheme: a typo must not wait for scheme=distill to surface.
        ("compress.student=resnet99", "compress.student='resnet99' is unknown"),
        # MLflow refuses these only when logging, after the whole run trained.
        ("tracking.experiment=", "tracking.experiment='' is not a valid MLflow experiment name"),
        ("tracking.registered_model=my model", "tracking.registered_model='my model' is not a valid registered model name"),
        ("tracking.registered_model=", "tracking.registered_model='' is not a valid registered model name"),
    ],
)
def test_bad_values_are_refused_naming_the_value(override, named):
    with pytest.raises(FsmcError) as error:
        load_params(REPO / "params.yaml", [override])
    assert named in str(error.value)


def test_wrong_type_in_yaml_is_refused(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("sample_few_shot:\n  k_max: [1, 2]\n")
    with pytest.raises(FsmcError, match="sample_few_shot.k_max"):
        load_params(path)


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (b"data: [unclosed\n", "is not valid YAML (expected ',' or ']'"),
        (b"data:\n  dataset: digits\n   teacher: x\n", "is not valid YAML"),
        (b"\xff\xfe\x00binary", "is not a UTF-8 text file"),
    ],
)
def test_unreadable_params_file_is_named_not_a_traceback(tmp_path, content, named):
    path = tmp_path / "params.yaml"
    path.write_bytes(content)
    with pytest.raises(FsmcError) as error:
        load_params(path)
    assert named in str(error.value) and str(path) in str(error.value)


def test_unknown_section_is_refused():
    with pytest.raises(FsmcError, match="Unknown section 'trainer'"):
        params_from_dict({"trainer": {"epochs": 3}})


def test_oe_plug_in_is_a_switch_on_any_method():
    plain = load_params(None, ["method=bp", "oe=false"]).recover
    plugged = load_params(None, ["method=mir", "oe=true"]).recover
    assert (plain.label, plain.oe) == ("bp", False)
    assert (plugged.label, plugged.oe) == ("mir+oe", True)
    with pytest.raises(FsmcError, match="'maybe' is not a valid bool"):
        load_params(None, ["oe=maybe"])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["scheme=pruning"], r"compress.scheme='pruning' is unknown; valid schemes: channel, unstructured, int8-ptq"),
        (["method=distil"], r"recover.method='distil' is unknown; valid methods: none, bp, kd, fskd, cd, mir"),
        (["importance=random"], r"compress.importance='random' is unknown; valid: l1, l2, bn-scale, taylor"),
        (["scheme=int8-ptq", "method=fskd"], r"'fskd' does not apply to compress.scheme='int8-ptq': int8-ptq yields an integer"),
        (["scheme=int8-qat", "method=mir"], r"'mir' does not apply to compress.scheme='int8-qat'.*Methods that do: bp, kd\."),
        (["scheme=unstructured", "method=fskd"], r"makes its weights dense"),
        (["scheme=distill", "method=cd"], r"no layer-by-layer counterpart"),
        (["mu=1.5"], r"recover.mu=1.5 must lie in \[0, 1\]"),
        (["target.long_factor=1"], r"target.long_factor=1 must be 0 \(no third round\) or lie in 2..16"),
        (["recover.threads=-1"], r"recover.threads=-1 must be 0 \(torch.s own thread count\) or a positive number"),
        (["scheme=int8-qat", "method=kd", "precision=bf16"], r"recover.precision=bf16 cannot train compress.scheme=int8-qat"),
        (["temperature=0"], r"recover.temperature=0.0 must be positive"),
        (["early_stopping=sometimes"], r"recover.early_stopping='sometimes' is unknown; valid: auto, on, off"),
        (["dataset=cifar10", "teacher=resnet20", "scheme=distill"], r"not a smaller architecture for teacher 'resnet20'"),
        (
            ["scheme=distill", "student=resnet20"],
            r"compress.student='resnet20' is not a smaller architecture for teacher 'digits-cnn'; valid: auto, small-cnn-half",
        ),
    ],
)
def test_bad_scheme_method_and_hyperparameters_are_named(overrides, message):
    with pytest.raises(FsmcError, match=message):
        load_params(None, overrides)


def test_every_scheme_has_a_method_and_distill_resolves_a_student():
    from fsmc.config import SCHEMES, applicable_methods

    for scheme in SCHEMES:
        assert applicable_methods(scheme), scheme
    params = load_params(None, ["dataset=cifar10", "teacher=resnet56", "scheme=distill"])
    assert params.compress.resolved_student("resnet56") == "resnet20"


def test_unquoted_on_off_in_yaml_reads_as_the_word(tmp_path):
    """YAML 1.1 (and DVC when it rewrites params.yaml for `dvc exp run -S`) turns a bare off into False."""
    path = tmp_path / "params.yaml"
    path.write_text("recover:\n  early_stopping: off\n")
    assert load_params(path).recover.early_stopping == "off"
    path.write_text("recover:\n  early_stopping: on\n")
    assert load_params(path).recover.early_stopping == "on"


def test_lr_zero_means_each_methods_own_rate_and_a_set_rate_applies_to_all():
    from fsmc.recover.pipeline import with_method_defaults

    shipped = load_params(REPO / "params.yaml").recover
    assert shipped.lr == 0
    assert with_method_defaults(dataclasses.replace(shipped, method="mir")).lr == 0.1
    assert with_method_defaults(dataclasses.replace(shipped, method="kd")).lr == 0.02
    assert with_method_defaults(dataclasses.replace(shipped, method="mir", lr=0.05)).lr == 0.05


def test_each_method_and_scheme_declares_itself_once_and_the_docs_follow():
    """A declaration module per method and scheme (fsmc/config/methods/, fsmc/config/schemes/): registered, naming
    real params, and the choices params.yaml and the schema document are exactly the declared ones."""
    import pkgutil
    import re

    import fsmc.config.methods
    import fsmc.config.schemes
    from fsmc.config import METHOD_DECLARATIONS, SCHEME_DECLARATIONS, CompressParams, RecoverParams

    def module_name(name: str) -> str:  # "channel+int8-ptq" is declared in channel_int8_ptq.py
        return name.replace("-", "_").replace("+", "_")

    modules = {m.name for m in pkgutil.iter_modules(fsmc.config.methods.__path__)}
    assert modules == set(map(module_name, METHOD_DECLARATIONS)), "a declaration module not registered in fsmc/config/methods/__init__.py"
    modules = {m.name for m in pkgutil.iter_modules(fsmc.config.schemes.__path__)}
    assert modules == set(map(module_name, SCHEME_DECLARATIONS)), "a declaration module not registered in fsmc/config/schemes/__init__.py"
    recover_keys = {f.name for f in dataclasses.fields(RecoverParams)}
    compress_keys = {f.name for f in dataclasses.fields(CompressParams)}
    assert all(set(m.params) <= recover_keys for m in METHOD_DECLARATIONS.values())
    assert all(set(s.params) <= compress_keys for s in SCHEME_DECLARATIONS.values())
    for text in ((REPO / "params.yaml").read_text(), (REPO / "fsmc/config/schema.py").read_text()):
        for key, declared in (("method", METHOD_DECLARATIONS), ("scheme", SCHEME_DECLARATIONS)):
            documented = re.search(rf"^\s+{key}:[^#\n]*#\s*([\w+-]+(?: \| [\w+-]+)+)", text, flags=re.M)
            assert documented and documented.group(1).split(" | ") == list(declared), (key, documented and documented.group(1))
