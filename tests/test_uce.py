"""UCE / RECE closed-form cross-attention edits on a tiny Stable-Diffusion-layout pipeline built
in-process (``test_sd.sd_pipe``): the edit is the least-squares optimum, only attn2 K/V move,
preserved prompts keep their keys and values in null-space mode, RECE erases what still regenerates
the concept, only unet/ is rewritten, and ``export --delta`` reproduces the edited UNet bit for bit."""

import dataclasses
import filecmp
import json
from types import SimpleNamespace

import pytest
import torch
from diffusers import DiffusionPipeline, StableDiffusionPipeline, UNet2DConditionModel
from safetensors.torch import load_file
from test_sd import sd_pipe  # noqa: F401  (the tiny pipeline fixture)

from genunlearn.errors import GenUnlearnError
from genunlearn.families import open_model
from genunlearn.forget.request import ForgetRequest
from genunlearn.methods import closed_form, get_method
from genunlearn.methods.edit_embeddings import edit_embeddings, encode

TWO = ForgetRequest("concept", concept="circle; cross", anchor="shape")


@pytest.fixture(scope="module")
def model(sd_pipe):  # noqa: F811
    return open_model(sd_pipe, task="shapes")[1]


def run(model, method="uce", request=TWO, preserve=None, **values):
    """``method`` on ``request``, with ``preserve`` ("a; b") as the request's preserved concepts."""
    request = dataclasses.replace(request, preserve=preserve) if preserve else request
    return get_method(method, values, family="generative").unlearn(model, request, None)


def kv(model) -> dict[str, torch.Tensor]:
    """attn2 to_k / to_v weights in float64, by parameter name."""
    return {f"{n}.weight": p.weight.detach().double() for n, p in closed_form.kv_projections(model.net.unet).items()}


def rows(model, concepts, guides, preserve, tokens):
    c = model.components
    return [x.double() for x in edit_embeddings(c["tokenizer"], c["text_encoder"], concepts, guides, preserve, tokens)]


def test_prompts_are_encoded_as_the_pipeline_encodes_them(sd_pipe, model):  # noqa: F811
    pipe = StableDiffusionPipeline.from_pretrained(sd_pipe)
    hidden, ids = encode(model.components["tokenizer"], model.components["text_encoder"], ["a red circle", ""])
    assert torch.allclose(hidden, pipe.encode_prompt(["a red circle", ""], "cpu", 1, False)[0], atol=1e-6)
    assert [len(i) for i in ids] == [5, 2]  # start, three words, end; start, end


@pytest.mark.parametrize("tokens", ["last", "tail", "all"])
def test_the_edit_is_the_least_squares_optimum_and_moves_only_cross_attention_kv(model, tokens):
    lam, a_e, a_p = 0.5, 2.0, 0.7
    out = run(model, lam=lam, erase_scale=a_e, preserve_scale=a_p, preserve="square; a red triangle", tokens=tokens)
    moved = {
        n for (n, a), b in zip(model.net.unet.named_parameters(), out.net.unet.parameters()) if not torch.equal(a, b)
    }
    assert moved == set(kv(model)) and len(moved) == 8  # two attn2 blocks × to_k, to_v (and nothing else)
    E, G, P = rows(model, ["circle", "cross"], ["shape", "shape"], ["square", "a red triangle"], tokens)
    assert len(E) == (2 if tokens == "last" else 8) and out.info["unlearn"]["erase_vectors"] == len(E)
    assert len(P) == {"last": 2, "all": 8, "tail": 15}[tokens]  # tail: every position, the empty prompt kept too
    for name, W0 in kv(model).items():
        W = kv(out)[name]
        grad = a_e * (W @ E.T - W0 @ G.T) @ E + a_p * (W - W0) @ P.T @ P + lam * (W - W0)  # ∂/∂W of the UCE objective
        assert grad.norm() < 1e-5 * (lam + a_e * E.norm() ** 2) * W0.norm(), name


def test_tail_positions_run_from_the_last_word_to_the_end_right_trimmed_to_one_length():
    from genunlearn.methods.edit_embeddings import aligned_positions

    # [start, w1, w2, end] sent to [start, g1, end] in a tokenizer of 6 positions (UCE's erasing script)
    assert aligned_positions([0, 5, 6, 1], [0, 7, 1], 6, "tail") == ([2, 3, 4, 5], [1, 2, 3, 4])
    assert aligned_positions([0, 5, 1], [0, 1], 6, "tail") == ([1, 2, 3, 4, 5], [0, 1, 2, 3, 4])  # empty guide


def test_a_small_lambda_sends_the_concepts_to_their_guides(model):
    out = run(model, lam=1e-7, request=ForgetRequest("concept", concept="circle; cross", anchor="shape; square"))
    E, G, _ = rows(model, ["circle", "cross"], ["shape", "square"], [], "last")
    for name, W0 in kv(model).items():
        assert torch.allclose(kv(out)[name] @ E.T, W0 @ G.T, rtol=0, atol=1e-4 * (W0 @ G.T).abs().max()), name
    assert out.info["unlearn"]["erase_residual"] < 1e-4 and out.info["unlearn"]["guides"] == ["shape", "square"]


def test_nullspace_mode_keeps_the_preserved_keys_and_values(model):
    preserve = ["square", "a red triangle", "a blue cross"]
    plain = run(model, tokens="all")
    kept = run(model, tokens="all", preserve="; ".join(preserve), preserve_mode="nullspace")
    weighted = run(model, tokens="all", preserve="; ".join(preserve), preserve_scale=5.0)
    _, _, P = rows(model, ["circle"], ["shape"], preserve, "all")
    drift = {}
    for label, out in (("plain", plain), ("kept", kept), ("weighted", weighted)):
        drift[label] = max(
            float((kv(out)[n] @ P.T - W0 @ P.T).norm() / (W0 @ P.T).norm()) for n, W0 in kv(model).items()
        )
    assert drift["kept"] < 1e-5 < drift["weighted"] < drift["plain"]
    assert (
        kept.info["unlearn"]["preserve_drift"] < 1e-5 and kept.info["unlearn"]["erase_residual"] < 0.9
    )  # still an edit


def test_rece_erases_the_embeddings_that_still_regenerate_the_concept(model):
    reg = 0.1
    E, _, _ = rows(model, ["circle", "cross"], ["shape", "shape"], [], "last")
    G = closed_form.gram(kv(model).values())

    def regeneration(out):
        """RECE's inner optimum under an edited model: its objective value, and its gradient (≈ 0)."""
        M = torch.linalg.lstsq(
            torch.cat(list(kv(model).values())), torch.cat(list(kv(out).values()))
        ).solution  # W = W₀ M
        C = E @ closed_form.regeneration_map(M, G, reg).T
        grad = (C @ M.T - E) @ G @ M + reg * C
        value = torch.einsum("nd,de,ne->", C @ M.T - E, G, C @ M.T - E) + reg * C.pow(2).sum()
        return float(value), float(grad.norm() / (G.norm() * E.norm()))

    uce, rece = regeneration(run(model)), regeneration(run(model, "rece", reg=reg, rounds=3))
    assert uce[1] < 1e-6 and rece[1] < 1e-6
    assert rece[0] > 1.5 * uce[0]  # what regenerated the concept after UCE no longer does
    assert run(model, "rece", rounds=2).info["unlearn"]["erase_vectors"] == 2 * 3


def test_only_the_unet_is_rewritten_and_the_delta_reproduces_it(sd_pipe, model, tmp_path, cli):  # noqa: F811
    out = run(model, preserve="square")
    out.save_pretrained(tmp_path / "u")
    for part in ("vae", "text_encoder", "tokenizer", "scheduler"):
        cmp = filecmp.dircmp(sd_pipe / part, tmp_path / "u" / part)
        assert not (cmp.left_only or cmp.right_only or cmp.diff_files)
    assert json.loads((tmp_path / "u" / "genunlearn.json").read_text())["rewritten"] == ["unet"]
    code, printed, err = cli(
        "export", str(tmp_path / "u"), "--delta", str(sd_pipe), "--out", str(tmp_path / "d.safetensors")
    )
    assert code == 0 and "wrote 8 changed UNet tensors" in printed, err
    delta = load_file(tmp_path / "d.safetensors")
    assert set(delta) == set(kv(model))
    unet = UNet2DConditionModel.from_pretrained(sd_pipe / "unet")
    assert not unet.load_state_dict(delta, strict=False).unexpected_keys
    edited = UNet2DConditionModel.from_pretrained(tmp_path / "u" / "unet").state_dict()
    assert all(torch.equal(v, edited[k]) for k, v in unet.state_dict().items())
    images = DiffusionPipeline.from_pretrained(tmp_path / "u")(
        "a red circle", height=16, width=16, num_inference_steps=2, output_type="np"
    ).images
    assert images.shape == (1, 16, 16, 3)


def test_unlearn_command_erases_several_free_text_concepts_without_data(sd_pipe, tmp_path, cli):  # noqa: F811
    code, printed, err = cli(
        "unlearn",
        str(sd_pipe),
        "--task",
        "shapes",
        "--method",
        "uce",
        "--concept",
        "circle; a cross",
        "--anchor",
        "shape",
        "--preserve",
        "square;triangle",
        "--out",
        str(tmp_path / "u"),
    )
    assert code == 0 and "rewrote unet/" in printed, err
    info = json.loads((tmp_path / "u" / "genunlearn.json").read_text())["info"]
    assert (
        info["method"] == "uce"
        and info["unlearn"]["concepts"] == ["circle", "a cross"]
        and info["unlearn"]["preserve"] == ["square", "triangle"]
    )


def test_without_an_anchor_the_concept_goes_to_the_empty_prompt_and_other_methods_refuse(sd_pipe, model, tmp_path, cli):  # noqa: F811
    """UCE's default guide: a style or colour has no generic word in a pipeline's vocabulary."""
    bare = ForgetRequest("concept", concept="circle")
    edited = run(model, request=bare)
    assert edited.info["unlearn"]["guides"] == [""]
    explicit_rows = rows(model, ["circle"], [""], [], "last")
    moved = {k: v for k, v in kv(edited).items() if not v.equal(kv(model)[k])}
    assert moved and all(torch.isfinite(v).all() for v in moved.values())
    assert explicit_rows[1].abs().sum() > 0  # the empty prompt's last-token state is a real guide
    code, _, err = cli("unlearn", str(sd_pipe), "--method", "esd", "--concept", "circle", "--out", str(tmp_path / "e"))
    assert code != 0 and "method 'esd' needs an anchor: --anchor WORD" in err and not (tmp_path / "e").exists()


@pytest.mark.parametrize(
    ("method", "values", "match"),
    [
        ("uce", {"tokens": "mid"}, "tokens must be one of last, tail, all, not 'mid'"),
        ("uce", {"preserve_mode": "exact"}, "preserve_mode must be one of weighted, nullspace"),
        ("uce", {"lam": 0}, "lam must satisfy 0 < lam"),
        ("uce", {"nullspace_tol": 1}, "nullspace_tol must satisfy 0 < nullspace_tol < 1"),
        ("rece", {"rounds": 0}, "rounds must satisfy 1 <= rounds"),
        ("rece", {"reg": -1}, "reg must satisfy 0 < reg"),
    ],
)
def test_bad_options_fail_in_one_line(method, values, match):
    with pytest.raises(GenUnlearnError, match=match):
        get_method(method, values, family="generative")


@pytest.mark.parametrize(
    ("request_", "values", "match"),
    [
        (
            ForgetRequest("concept", concept="circle; cross", anchor="shape; square; triangle"),
            {},
            "2 concepts and 3 anchors",
        ),
        (ForgetRequest("concept", concept="shape", anchor="shape"), {}, "'shape' is its own guide"),
        (
            ForgetRequest("concept", concept="a red circle square cross", anchor="shape"),
            {},
            "is 7 tokens; the pipeline's tokenizer holds at most 5",
        ),
        (TWO, {"budget": 5}, "--steps does not apply"),
    ],
)
def test_bad_requests_fail_in_one_line(model, request_, values, match):
    with pytest.raises(GenUnlearnError, match=match):
        get_method("uce", family="generative").unlearn(model, request_, None, **values)


def test_an_empty_concept_is_refused_by_the_request():
    with pytest.raises(GenUnlearnError, match="empty item in ' ; '"):
        ForgetRequest("concept", concept=" ; ", anchor="shape")


def test_models_without_a_text_encoder_are_refused():
    uce = get_method("uce", family="generative")
    with pytest.raises(GenUnlearnError, match="works on diffusion models, not 'flow'"):
        uce.check(SimpleNamespace(kind="flow"), TWO)
    with pytest.raises(GenUnlearnError, match="Stable-Diffusion-layout pipeline"):
        uce.check(SimpleNamespace(kind="diffusion", components={}), TWO)


def test_bad_delta_exports_fail_in_one_line(sd_pipe, tmp_path, cli):  # noqa: F811
    code, _, err = cli("export", str(sd_pipe), "--delta", str(sd_pipe), "--out", str(tmp_path / "d.bin"))
    assert code == 2 and "name it *.safetensors" in err and err.count("\n") == 1
    code, _, err = cli("export", str(sd_pipe), "--delta", str(sd_pipe), "--out", str(tmp_path / "d.safetensors"))
    assert (
        code == 2
        and "hold the same UNet weights" in err
        and err.count("\n") == 1
        and not (tmp_path / "d.safetensors").exists()
    )
    code, _, err = cli("export", str(sd_pipe), "--delta", str(tmp_path), "--out", str(tmp_path / "d.safetensors"))
    assert code == 2 and "not a diffusers pipeline" in err
