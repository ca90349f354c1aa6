"""Hidden-state capture and the projection router, on tiny random llama models."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
import yaml
from mlx.utils import tree_flatten
from mlx_lm.models.cache import make_prompt_cache
from mlx_lm.models.llama import Model, ModelArgs

from lazarus_cot_router.adapters import model_hash
from lazarus_cot_router.decoding import SharedPrefix
from lazarus_cot_router.hidden import find_layers, install_capture, prefill_hidden
from lazarus_cot_router.hidden_route import (
    CALIBRATION_FILE,
    CalibrationError,
    HiddenRouter,
    IdentityMismatchError,
    check_identity,
    model_identity,
)


def tiny_model(layers: int = 4, hidden: int = 32, vocab: int = 64, seed: int = 0) -> Model:
    mx.random.seed(seed)
    args = ModelArgs(
        model_type="llama",
        hidden_size=hidden,
        num_hidden_layers=layers,
        intermediate_size=2 * hidden,
        num_attention_heads=4,
        num_key_value_heads=2,
        rms_norm_eps=1e-5,
        vocab_size=vocab,
        tie_word_embeddings=True,
    )
    model = Model(args)
    mx.eval(model.parameters())
    return model


def manual_hidden(model: Model, tokens: list[int]) -> list[mx.array]:
    """Outputs ``[T, D]`` of every decoder layer, running the layers by hand."""
    h = model.model.embed_tokens(mx.array(tokens)[None])
    outs = []
    for layer in model.model.layers:
        h = layer(h, "causal" if len(tokens) > 1 else None, cache=None)
        outs.append(h[0])
    return outs


def test_find_layers():
    model = tiny_model()
    assert find_layers(model) == list(model.model.layers)
    with pytest.raises(TypeError):
        find_layers(object())


def test_wrapper_is_transparent():
    model = tiny_model()
    x = mx.array([[1, 2, 3, 4, 5, 6]])
    ref = model(x)
    keys = [k for k, _ in tree_flatten(model.parameters())]
    classes = [type(layer) for layer in model.layers]
    capture = install_capture(model, "all")
    assert [k for k, _ in tree_flatten(model.parameters())] == keys
    assert mx.array_equal(model(x), ref)
    with capture.recording():
        assert mx.array_equal(model(x), ref)
    model.load_weights(list(tree_flatten(model.parameters())))  # names still load
    capture.remove()
    assert [type(layer) for layer in model.layers] == classes
    assert mx.array_equal(model(x), ref)


def test_generation_identical_with_capture():
    model = tiny_model()
    prompt = mx.array([[3, 1, 4, 1, 5, 9, 2]])

    def greedy(n=5):
        cache = make_prompt_cache(model)
        logits = model(prompt, cache=cache)
        out = []
        for _ in range(n):
            tok = logits[:, -1].argmax(-1)
            out.append(logits[:, -1])
            logits = model(tok[:, None], cache=cache)
        return out

    ref = greedy()
    capture = install_capture(model, [1, 3])
    with capture.recording() as rec:
        got = greedy()
    assert all(mx.array_equal(a, b) for a, b in zip(ref, got))
    assert len(rec) == 6  # prefill + 5 decode steps
    capture.remove()


def test_capture_matches_manual_forward_at_both_positions():
    model = tiny_model()
    prompt = [5, 7, 11, 13, 17, 19]
    first = 23
    manual = manual_hidden(model, prompt + [first])
    capture = install_capture(model, "all")
    cache = make_prompt_cache(model)
    with capture.recording() as rec:
        logits = model(mx.array([prompt]), cache=cache)
        model(mx.array([[first]]), cache=cache)
    for i in range(len(model.layers)):
        np.testing.assert_allclose(np.array(rec.hidden(i, 0)[0]), np.array(manual[i][len(prompt) - 1]), atol=1e-5)
        np.testing.assert_allclose(np.array(rec.hidden(i, 1)[0]), np.array(manual[i][len(prompt)]), atol=1e-5)
    assert rec.stacked(0).shape == (1, 2, 32)
    assert logits.shape[1] == len(prompt)
    capture.remove()


def test_prefill_hidden_shared_prefix_and_padding():
    model = tiny_model()
    prefix_ids = [1, 2, 3, 4, 5]
    rows = [[10, 11, 12], [20, 21, 22, 23, 24, 25], [30, 31]]
    capture = install_capture(model, "all")
    hidden = prefill_hidden(model, capture, rows, prefix=SharedPrefix(model, prefix_ids), last=2)
    capture.remove()
    for b, row in enumerate(rows):
        manual = manual_hidden(model, prefix_ids + row)
        for i in range(len(model.layers)):
            np.testing.assert_allclose(np.array(hidden[i][b]), np.array(manual[i][-2:]), atol=1e-4)


def test_no_recording_stores_nothing():
    model = tiny_model()
    capture = install_capture(model, "all")
    model(mx.array([[1, 2, 3]]))
    assert capture._recording is None
    with capture.recording() as rec:
        pass
    model(mx.array([[1, 2, 3]]))
    assert all(steps == [] for steps in rec.steps.values())
    capture.remove()
    with pytest.raises(RuntimeError):
        with capture.recording():
            pass


def test_double_install_refused_and_layer_range():
    model = tiny_model()
    capture = install_capture(model, [0])
    with pytest.raises(RuntimeError, match="already"):
        install_capture(model, [0])
    capture.remove()
    with pytest.raises(IndexError):
        install_capture(model, [99])
    with install_capture(model, [-1]) as cap:
        assert cap.layers == [3]
    assert type(model.layers[3]).__dict__.get("_capture_owner") is None


def make_router(identity=None) -> HiddenRouter:
    directions = np.eye(3, 8, dtype=np.float32)
    return HiddenRouter(
        experts=["add", "chat", "time"],
        directions=directions,
        scales=[2.0, 1.0, 0.5],
        biases=[-1.0, 0.0, -0.5],
        thresholds=[0.5, 0.0, 1.0],
        layer=7,
        position="prompt_last",
        identity=identity or {"model": "tiny", "model_hash": "a" * 16, "adapter": None, "adapter_sha256": None},
    )


def test_router_project_and_route():
    router = make_router()
    h = np.zeros(8, dtype=np.float32)
    h[0] = 3.0
    scores = router.project(h)
    assert scores == pytest.approx({"add": 5.0, "chat": 0.0, "time": -0.5})
    assert router.route(h)[0] == "add"
    assert router.route(mx.array(h)[None])[0] == "add"
    assert router.route(np.zeros(8) - 1)[0] is None
    assert router.logits(np.ones((4, 8))).shape == (4, 3)
    fields = router.to_virtual_router_fields()
    assert fields["directions"].shape == (3, 8) and list(fields["scales"]) == [2.0, 1.0, 0.5]
    with pytest.raises(ValueError):
        router.project(np.zeros(5))


def test_router_save_load_round_trip(tmp_path):
    router = make_router()
    router.save(tmp_path)
    loaded = HiddenRouter.load(tmp_path, model_identity=router.identity)
    assert loaded.experts == router.experts and loaded.layer == 7 and loaded.position == "prompt_last"
    for name in ("directions", "scales", "biases", "thresholds"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(router, name))
    assert not list(tmp_path.glob(".*.tmp"))


def test_identity_mismatch_refused(tmp_path):
    make_router().save(tmp_path)
    other = {"model": "tiny", "model_hash": "b" * 16, "adapter": None, "adapter_sha256": None}
    with pytest.raises(IdentityMismatchError, match="model weights differ"):
        HiddenRouter.load(tmp_path, model_identity=other)
    with_adapter = {"model": "tiny", "model_hash": "a" * 16, "adapter": "runs/a", "adapter_sha256": "c" * 64}
    with pytest.raises(IdentityMismatchError, match="adapter differs"):
        HiddenRouter.load(tmp_path, model_identity=with_adapter)
    with pytest.raises(IdentityMismatchError, match="adapter weights differ"):
        check_identity(with_adapter, dict(with_adapter, adapter_sha256="d" * 64))
    older = {"model": "tiny", "model_sha256": "a" * 64, "adapter": None, "adapter_sha256": None}
    with pytest.raises(IdentityMismatchError, match="older version"):
        check_identity(older, {"model": "tiny", "model_hash": "a" * 16, "adapter": None, "adapter_sha256": None})


def test_model_identity_hashes_files(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapters.safetensors").write_bytes(b"lora")
    a = model_identity("m", adapter, model_dir=tmp_path)
    (adapter / "adapters.safetensors").write_bytes(b"lora2")
    b = model_identity("m", adapter, model_dir=tmp_path)
    assert a["model_hash"] == model_hash(tmp_path) and a["model_hash"] == b["model_hash"]
    assert a["adapter_sha256"] != b["adapter_sha256"]
    with pytest.raises(IdentityMismatchError):
        check_identity(a, b)
    with pytest.raises(FileNotFoundError):
        model_identity("m", tmp_path / "nope", model_dir=tmp_path)


@pytest.mark.parametrize(
    "text, match",
    [
        ("layer: [unclosed", "not valid YAML"),
        ("- just\n- a list\n", "expected a mapping"),
        ("version: 1\nlayer: 3\n", "lacks"),
    ],
)
def test_corrupted_calibration_yaml(tmp_path, text, match):
    make_router().save(tmp_path)
    (tmp_path / CALIBRATION_FILE).write_text(text)
    with pytest.raises(CalibrationError, match=match):
        HiddenRouter.load(tmp_path)


def test_inconsistent_calibration(tmp_path):
    make_router().save(tmp_path)
    meta = yaml.safe_load((tmp_path / CALIBRATION_FILE).read_text())
    meta["experts"].append("ghost")
    (tmp_path / CALIBRATION_FILE).write_text(yaml.safe_dump(meta))
    with pytest.raises(CalibrationError, match="inconsistent"):
        HiddenRouter.load(tmp_path)
    with pytest.raises(CalibrationError, match="not found"):
        HiddenRouter.load(tmp_path / "missing")


def test_route_prompts_matches_single_route():
    model = tiny_model()
    rng = np.random.default_rng(0)
    router = HiddenRouter(
        experts=["a", "b"],
        directions=rng.normal(size=(2, 32)).astype(np.float32),
        scales=[1.0, 1.0],
        biases=[0.0, 0.1],
        thresholds=[0.0, -0.1],
        layer=2,
    )
    prefix = SharedPrefix(model, [1, 2, 3])
    suffixes = [[4, 5], [6, 7, 8, 9]]
    with install_capture(model, [router.layer]) as capture:
        routed = router.route_prompts(model, capture, suffixes, prefix=prefix)
        with pytest.raises(ValueError, match="first token"):
            HiddenRouter(**{**router.__dict__, "position": "expert_token"}).route_prompts(model, capture, suffixes, prefix)
    for (expert, scores), suffix in zip(routed, suffixes):
        h = manual_hidden(model, [1, 2, 3] + suffix)[2][-1]
        want, want_scores = router.route(np.array(h))
        assert expert == want
        assert scores == pytest.approx(want_scores, abs=1e-4)


def test_lora_layers_convert_with_capture_installed():
    from mlx_lm.tuner.utils import linear_to_lora_layers

    config = {"rank": 4, "scale": 10.0, "dropout": 0.0}
    plain, captured = tiny_model(), tiny_model()
    linear_to_lora_layers(plain, 2, config)
    capture = install_capture(captured, "all")
    linear_to_lora_layers(captured, 2, config)
    assert [k for k, _ in tree_flatten(captured.parameters())] == [k for k, _ in tree_flatten(plain.parameters())]
    captured.update(plain.parameters())
    x = mx.array([[1, 2, 3, 4]])
    with capture.recording() as rec:
        assert mx.allclose(captured(x), plain(x))
    assert len(rec) == 1
    capture.remove()
