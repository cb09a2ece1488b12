"""Stable Diffusion v1.x layout in and out, on a tiny pipeline built in-process with diffusers' and
transformers' own classes (random weights): prompts reach the UNet as the pipeline's own text
encoding, every applicable method runs a few steps, the output loads in diffusers and generates,
unchanged components stay bit-identical, and ``train --model sd`` writes a pipeline diffusers runs."""

import filecmp
import json

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file
from diffusers import AutoencoderKL, DDIMScheduler, DiffusionPipeline, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from genunlearn.cli import cli
from genunlearn.data import load_dataset
from genunlearn.errors import GenUnlearnError
from genunlearn.families import open_model
from genunlearn.forget.request import ForgetRequest, parse_forget
from genunlearn.methods import get_method
from genunlearn.interop.diffusers.text_unet import row_prompts
from genunlearn.generative.sd_recipe import build_tokenizer

CIRCLE = ForgetRequest("concept", concept="a circle", anchor="a shape")


@pytest.fixture(scope="module")
def sd_pipe(tmp_path_factory):
    """A StableDiffusionPipeline folder: CLIP tokenizer + text encoder, AutoencoderKL (16 → 8), cross-attention UNet."""
    root = tmp_path_factory.mktemp("sd")
    attributes = load_dataset("shapes").attributes
    (root / "tok").mkdir()
    tokenizer = build_tokenizer([p for p in row_prompts(attributes) if p], root / "tok")
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=tokenizer.model_max_length,
        )
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
        block_out_channels=[8, 16],
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=16,
    )
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=[16, 32],
        layers_per_block=1,
        down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"],
        up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"],
        cross_attention_dim=16,
        attention_head_dim=4,
        norm_num_groups=8,
    )
    scheduler = DDIMScheduler(
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(root / "pipe")
    return root / "pipe"


def test_prompts_reach_the_unet_as_the_pipelines_text_encoding(sd_pipe):
    family, model = open_model(sd_pipe, task="shapes")
    assert family.name == "generative" and model.kind == "diffusion" and model.conditional
    assert model.sample_shape == (4, 8, 8) and model.image_shape == (3, 16, 16)
    pipe = StableDiffusionPipeline.from_pretrained(sd_pipe)
    z, t = torch.randn(2, 4, 8, 8), torch.tensor([100, 700])
    rows = torch.stack(
        [load_dataset("shapes").prompt_to_cond("a red circle"), torch.tensor([4, 4])]
    )  # (4, 4): the null row
    states = pipe.encode_prompt(["a red circle", ""], "cpu", 1, False)[0]  # the pipeline's own text encoding
    direct = pipe.unet(z, t.float(), encoder_hidden_states=states).sample
    assert torch.allclose(model.process.predict(model.net, z, t, rows), direct, atol=1e-5)
    images = model.sample(2, rows, steps=2)
    assert images.shape == (2, 3, 16, 16) and images.abs().max() <= 1
    data = model.in_model_space(load_dataset("shapes").subset(torch.arange(3)))
    assert data.x.shape == (3, 4, 8, 8)  # training-based methods see latents


@pytest.mark.parametrize(
    ("method", "request_", "values"),
    [
        ("esd", CIRCLE, {"steps": 2, "batch_size": 2, "sample_steps": 3}),
        ("concept_ablation", CIRCLE, {"steps": 2, "batch_size": 4, "anchor_images": 2, "anchor_sampler_steps": 2}),
        (
            "fdiv",
            CIRCLE,
            {"steps": 2, "batch_size": 4, "anchor_images": 2, "anchor_sampler_steps": 2, "divergence": "hellinger"},
        ),
        ("finetune", CIRCLE, {"steps": 2, "batch": 8}),
        ("salun", ForgetRequest.of_classes("circle"), {"steps": 2, "batch_size": 4, "mask_batch_size": 16}),
        ("random_label", ForgetRequest.of_classes("circle"), {"steps": 2, "batch_size": 4}),
        ("sfd", ForgetRequest.of_classes("circle"), {"steps": 2, "batch_size": 2}),
    ],
)
def test_methods_write_a_pipeline_diffusers_loads(sd_pipe, tmp_path, method, request_, values):
    _, model = open_model(sd_pipe, task="shapes")
    data = model.in_model_space(load_dataset("shapes").subset(torch.arange(400)))
    out = get_method(method, values, family="generative").unlearn(model, request_, data)
    out.save_pretrained(tmp_path / "u")
    for part in ("vae", "text_encoder", "tokenizer", "scheduler"):  # only the UNet is rewritten
        cmp = filecmp.dircmp(sd_pipe / part, tmp_path / "u" / part)
        assert not (cmp.left_only or cmp.right_only or cmp.diff_files)
    record = json.loads((tmp_path / "u" / "genunlearn.json").read_text())
    assert record["rewritten"] == ["unet"] and record["info"]["method"] == method
    before = UNet2DConditionModel.from_pretrained(sd_pipe / "unet")
    after = UNet2DConditionModel.from_pretrained(tmp_path / "u" / "unet")
    assert any(not torch.equal(a, b) for a, b in zip(before.parameters(), after.parameters()))
    pipe = DiffusionPipeline.from_pretrained(tmp_path / "u")  # the user's own code, unchanged
    if method != "sfd":  # a one-step generator is sampled at its recorded t* (test_diffusers)
        images = pipe("a red square", height=16, width=16, num_inference_steps=2, output_type="np").images
        assert images.shape == (1, 16, 16, 3)
    _, again = open_model(tmp_path / "u")  # the record names the task
    assert again.sample(
        1, again.cond_for_labels(torch.tensor([1])), **({} if method == "sfd" else {"steps": 2})
    ).shape == (1, 3, 16, 16)


def test_parameter_choices_of_the_papers(sd_pipe):
    """ESD-x (cross-attention K/V: params=conditioning) moves only attn2.to_k/to_v; ESD-u
    (params=non_conditioning) moves weights outside the cross-attention only; the text encoder never moves."""
    _, model = open_model(sd_pipe, task="shapes")
    moved = {}
    for group in ("conditioning", "non_conditioning"):
        out = get_method(
            "esd", {"steps": 2, "batch_size": 2, "sample_steps": 3, "params": group}, family="generative"
        ).unlearn(model, CIRCLE, load_dataset("shapes"))
        moved[group] = {
            n
            for (n, a), b in zip(model.net.unet.named_parameters(), out.net.unet.parameters())
            if not torch.equal(a, b)
        }
        assert not [
            n for n, _ in out.net.named_parameters() if "text_encoder" in n
        ]  # frozen: a buffer of hidden states
    assert moved["conditioning"] and all(".attn2.to_k." in n or ".attn2.to_v." in n for n in moved["conditioning"])
    assert moved["non_conditioning"] and not any(".attn2." in n for n in moved["non_conditioning"])
    assert any(".attn1." in n for n in moved["non_conditioning"])  # self-attention trains in ESD-u
    with pytest.raises(GenUnlearnError, match="params must be one of all, conditioning, non_conditioning"):
        get_method("fdiv", {"params": "cross"}, family="generative")


def test_concept_text_and_bad_layouts(sd_pipe, tmp_path):
    assert parse_forget("concept=a circle;anchor=a shape").concept == "a circle"
    data = load_dataset("shapes")
    assert (
        data.forget_mask(CIRCLE).sum()
        == data.forget_mask(ForgetRequest("concept", concept="circle", anchor="shape")).sum()
    )
    with pytest.raises(GenUnlearnError, match="a concept is one word"):
        data.forget_mask(ForgetRequest("concept", concept="a red circle", anchor="shape"))
    index = json.loads((sd_pipe / "model_index.json").read_text())
    del index["vae"]
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(GenUnlearnError, match="missing vae"):
        open_model(tmp_path / "p", task="shapes")


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--task", "ring8"], "needs an image task"),
        (["--task", "shapes", "--unconditional"], "cannot be --unconditional"),
    ],
)
def test_train_sd_bad_input_one_line_before_work(tmp_path, capsys, args, match):
    from genunlearn.cli import main

    with pytest.raises(SystemExit) as e:
        main(["train", *args, "--model", "sd", "--out", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("error: ") and match in err and err.count("\n") == 1, err
    assert not (tmp_path / "m").exists()


def test_train_sd_writes_a_pipeline_diffusers_runs(tmp_path):
    result = CliRunner().invoke(
        cli, ["train", "--task", "shapes", "--model", "sd", "--steps", "2", "--out", str(tmp_path / "sd"), "--no-cache"]
    )
    assert result.exit_code == 0, result.output
    pipe = DiffusionPipeline.from_pretrained(tmp_path / "sd")
    assert (
        type(pipe).__name__ == "StableDiffusionPipeline" and pipe.vae.config.scaling_factor != 0.18215
    )  # set from the latents' std
    assert pipe.tokenizer.tokenize("a red circle") == ["a</w>", "red</w>", "circle</w>"]  # one token per task word
    images = pipe("a blue cross", height=16, width=16, num_inference_steps=2, output_type="np").images
    assert images.shape == (1, 16, 16, 3)
    _, model = open_model(tmp_path / "sd")
    assert model.info["role"] == "base" and model.info["layout"] == "sd" and model.sample_shape == (4, 8, 8)
    again = CliRunner().invoke(
        cli,
        ["train", "--task", "shapes", "--model", "sd", "--steps", "2", "--out", str(tmp_path / "sd2"), "--no-cache"],
    )
    assert again.exit_code == 0, again.output
    for part in ("unet", "vae", "text_encoder"):  # a seeded training is bit-identical
        first, second = (load_file(next((tmp_path / d / part).glob("*.safetensors"))) for d in ("sd", "sd2"))
        assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first), (
            part,
            [k for k in first if not torch.equal(first[k], second[k])][:3],
        )


def test_task_words_and_free_text_on_a_task_pipeline(sd_pipe):
    """The task's row prompts keep their rows (so earlier numbers stand); other text is a prompt of
    its own; esd takes the words route for "circle" and the text route for "a circle shape"."""
    from genunlearn.methods.concepts import as_text

    _, model = open_model(sd_pipe, task="shapes")
    data = load_dataset("shapes")
    cond = model.prompt_cond(["a red circle", "", "a circle shape"])
    assert cond[0].tolist() == data.prompt_to_cond("a red circle").tolist() and cond[1].tolist() == [4, 4]
    assert cond[2, 0] < 0 and cond[2, 1] == 4
    words, text = (
        ForgetRequest("concept", concept="circle", anchor="shape"),
        ForgetRequest("concept", concept="a circle shape", anchor="a shape"),
    )
    assert not as_text(model, words) and as_text(model, text)
    cfg = {"steps": 1, "batch_size": 2, "sample_steps": 2}
    by_words = get_method("esd", cfg, family="generative").unlearn(model, words, data)
    by_text = get_method("esd", cfg, family="generative").unlearn(model, text, None)  # reads no data
    assert [4, 4] not in by_words.info["unlearn"]["conditions"] and [0, 4] in by_words.info["unlearn"]["conditions"]
    assert by_text.info["unlearn"]["conditions"]["erase"] == ["a circle shape"]
