"""Concept erasure on free-text prompts: a Stable-Diffusion-layout pipeline with no task behind it,
built here with diffusers' and transformers' own classes (random weights, a character-level CLIP
vocabulary), is unlearned from the CLI by esd and concept_ablation; prompts are the pipeline's own
text encoding; bad requests are one line before any work."""

import filecmp
import json
import string

import pytest
import torch
from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from genunlearn.cli import main
from genunlearn.errors import GenUnlearnError
from genunlearn.families import open_model
from genunlearn.forget.request import ForgetRequest, erase_prompts, parse_forget

MAX_TOKENS = 24


def char_tokenizer(folder) -> CLIPTokenizer:
    """A CLIP tokenizer whose vocabulary is single characters (no merges): any lower-case text tokenizes."""
    chars = string.ascii_lowercase + string.digits + ".,'!?{}-"
    vocab = ["<|startoftext|>", "<|endoftext|>", *chars, *(c + "</w>" for c in chars)]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=MAX_TOKENS)


@pytest.fixture(scope="module")
def pipe_dir(tmp_path_factory):
    """A StableDiffusionPipeline folder with no task: it has only ever seen prompts."""
    root = tmp_path_factory.mktemp("free")
    tokenizer = char_tokenizer(root / "vocab")
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=MAX_TOKENS,
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
    scheduler = PNDMScheduler(
        beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, skip_prk_steps=True, steps_offset=1
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


def run(argv, capsys):
    """(exit code, stdout, stderr) of one CLI call."""
    try:
        main(argv)
        code = 0
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def eps(unet, states, seed=0):
    """The UNet's outputs on fixed latents at a spread of timesteps, for one prompt's hidden states."""
    g = torch.Generator().manual_seed(seed)
    z, t = torch.randn(6, 4, 8, 8, generator=g), torch.tensor([50, 200, 400, 600, 800, 950])
    with torch.no_grad():
        return unet(z, t, encoder_hidden_states=states.expand(6, -1, -1)).sample


def test_any_prompt_is_the_pipelines_own_text_encoding(pipe_dir):
    family, model = open_model(pipe_dir)  # no --task: prompts only
    assert family.name == "generative" and model.conditional and not model.has_task
    cond = model.prompt_cond(["a round shape", "", "a photo of a cat", "a round shape"])
    assert cond.tolist() == [[-2], [0], [-3], [-2]]  # the empty prompt is the null row; new prompts are added once
    pipe = StableDiffusionPipeline.from_pretrained(pipe_dir)
    states = pipe.encode_prompt(["a round shape", "", "a photo of a cat"], "cpu", 1, False)[0]
    z, t = torch.randn(3, 4, 8, 8), torch.tensor([10, 500, 900])
    direct = pipe.unet(z, t.float(), encoder_hidden_states=states).sample
    assert torch.allclose(model.process.predict(model.net, z, t, cond[:3]), direct, atol=1e-5)
    copy = __import__("copy").deepcopy(
        model.net
    )  # a method's copy shares the table: prompts added later are known to both
    assert (
        copy.table is model.net.table
        and model.prompt_cond(["a square"]).tolist() == copy.prompt_cond(["a square"]).tolist()
    )


def test_prompt_file_and_templates_expand_into_pairs(tmp_path):
    csv = tmp_path / "prompts.csv"
    csv.write_text(
        "prompt,concept,split\nA Circle on a table,circle,train\ntwo circles,circle,test\na square,square,train\n"
    )
    request = ForgetRequest(
        "concept",
        concept="circle",
        anchor="shape",
        preserve="square",
        prompts=str(csv),
        templates="a photo of {}; a painting of {}",
    )
    p = erase_prompts(request)
    assert p.target == ("circle", "a photo of circle", "a painting of circle", "A Circle on a table")
    assert p.anchor == ("shape", "a photo of shape", "a painting of shape", "A shape on a table")
    assert p.preserve == ("square", "a photo of square", "a painting of square", "a square")
    assert erase_prompts(request, "test").target[-1] == "two circles"
    again = parse_forget(request.spec())
    assert (
        again.concepts == ("circle",)
        and again.template_list == request.template_list
        and again.prompts == str(csv.resolve())
    )
    several = parse_forget("concept=circle|striped;anchor=a shape;preserve=square|triangle")
    assert several.concepts == ("circle", "striped") and several.preserved == ("square", "triangle")
    with pytest.raises(GenUnlearnError, match="is in no train prompt"):
        erase_prompts(ForgetRequest("concept", concept="triangle", anchor="shape", prompts=str(csv)))


@pytest.mark.parametrize(
    ("method", "sets"),
    [
        ("esd", ["guide=anchor", "batch_size=4", "sample_steps=4"]),
        ("concept_ablation", ["params=conditioning", "batch_size=8", "anchor_images=4", "anchor_sampler_steps=3"]),
    ],
)
def test_cli_unlearns_a_pipeline_with_no_task(pipe_dir, tmp_path, capsys, method, sets):
    concept, anchor = "a round shape", "a shape"
    argv = [
        "unlearn",
        str(pipe_dir),
        "--method",
        method,
        "--concept",
        concept,
        "--anchor",
        anchor,
        "--steps",
        "8",
        *(a for s in sets for a in ("--set", s)),
        "--out",
        str(tmp_path / "u"),
    ]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    assert "rewrote unet/, copied scheduler/, text_encoder/, tokenizer/, vae/ unchanged" in out
    for part in ("vae", "text_encoder", "tokenizer", "scheduler"):  # byte-identical
        cmp = filecmp.dircmp(pipe_dir / part, tmp_path / "u" / part)
        assert not (cmp.left_only or cmp.right_only) and all(
            filecmp.cmp(pipe_dir / part / f, tmp_path / "u" / part / f, shallow=False) for f in cmp.common_files
        )
    record = json.loads((tmp_path / "u" / "genunlearn.json").read_text())
    assert record["rewritten"] == ["unet"] and record["info"]["method"] == method and "task" not in record["info"]
    before = StableDiffusionPipeline.from_pretrained(pipe_dir)
    after = StableDiffusionPipeline.from_pretrained(tmp_path / "u")  # the user's own code loads it
    c_states, a_states = before.encode_prompt([concept, anchor], "cpu", 1, False)[0].chunk(2)
    concept_before, anchor_before = eps(before.unet, c_states), eps(before.unet, a_states)
    moved, toward = (eps(after.unet, c_states) - concept_before).flatten(), (anchor_before - concept_before).flatten()
    assert moved @ toward > 0.5 * moved.norm() * toward.norm()  # the concept's prediction moved toward the anchor's
    if method == "concept_ablation":  # its target is the anchor's prediction itself (ESD's lies beyond it)
        assert (eps(after.unet, c_states) - anchor_before).pow(2).mean() < 0.8 * toward.pow(2).mean()
    images = after("a round shape", height=16, width=16, num_inference_steps=2, output_type="np").images
    assert images.shape == (1, 16, 16, 3)
    _, again = open_model(tmp_path / "u")  # genunlearn reads its own output back, still with no task
    assert not again.has_task and again.info["forget"] == f"concept={concept};anchor={anchor}"


def test_several_concepts_and_preserved_prompts_in_one_run(pipe_dir, tmp_path, capsys):
    argv = [
        "unlearn",
        str(pipe_dir),
        "--method",
        "esd",
        "--concept",
        "circle; striped",
        "--anchor",
        "shape",
        "--preserve",
        "square",
        "--templates",
        "a photo of {}",
        "--steps",
        "2",
        "--set",
        "batch_size=4",
        "--set",
        "sample_steps=3",
        "--out",
        str(tmp_path / "u"),
    ]
    code, _, err = run(argv, capsys)
    assert code == 0, err
    conditions = json.loads((tmp_path / "u" / "genunlearn.json").read_text())["info"]["unlearn"]["conditions"]
    assert conditions["erase"] == ["circle", "a photo of circle", "striped", "a photo of striped"]
    assert conditions["preserve"] == ["square", "a photo of square"]
    (tmp_path / "u" / "notes.txt").write_text("mine")
    code, _, err = run(argv, capsys)  # the same command again: genunlearn's own pipeline folder is replaced
    assert code == 0, err
    assert (tmp_path / "u" / "notes.txt").read_text() == "mine"  # the user's file is kept


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--method", "esd", "--concept", "", "--anchor", "a shape"], "--concept is empty"),
        (["--method", "esd", "--concept", "circle; ", "--anchor", "a shape"], "empty item in 'circle; '"),
        (
            ["--method", "esd", "--concept", "circle", "--anchor", "shape", "--templates", "a photo of"],
            "must hold one {}",
        ),
        (
            ["--method", "esd", "--concept", "a triangle", "--anchor", "a shape", "--prompts", "PROMPTS"],
            "'a triangle' is in no train prompt",
        ),
        (
            ["--method", "concept_ablation", "--concept", "a very long prompt about circles", "--anchor", "a shape"],
            "tokens; this pipeline's tokenizer takes at most 24",
        ),
        (["--method", "salun", "--concept", "circle", "--anchor", "shape"], "does not accept 'concept'"),
        (["--method", "finetune", "--concept", "circle", "--anchor", "shape"], "has no task: pass --task"),
        (["--method", "esd", "--preserve", "square"], "--preserve belong to a concept request"),
    ],
)
def test_bad_requests_are_one_line_before_any_work(pipe_dir, tmp_path, capsys, args, match):
    csv = tmp_path / "p.csv"
    csv.write_text("prompt,concept\na circle,a circle\n")
    args = [str(csv) if a == "PROMPTS" else a for a in args]
    code, _, err = run(["unlearn", str(pipe_dir), *args, "--out", str(tmp_path / "u")], capsys)
    assert code == 2 and err.startswith("error: ") and match in err and err.count("\n") == 1, err
    assert not (tmp_path / "u").exists()


@pytest.fixture(scope="module")
def judges(tmp_path_factory):
    """A tiny CLIP folder (CLIPModel + CLIPProcessor) and a genunlearn classifier folder, random weights."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    from genunlearn.classify.model import ClassifierModel
    from genunlearn.models.classifier import ConvClassifier

    root = tmp_path_factory.mktemp("judges")
    tokenizer = char_tokenizer(root / "vocab")
    torch.manual_seed(0)
    text = {
        "vocab_size": len(tokenizer),
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "max_position_embeddings": MAX_TOKENS,
    }
    vision = {
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "image_size": 16,
        "patch_size": 8,
    }
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=8)).save_pretrained(root / "clip")
    CLIPProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16}),
        tokenizer=tokenizer,
    ).save_pretrained(root / "clip")
    data = {
        "name": "my-shapes",
        "kind": "images",
        "sample_shape": [3, 16, 16],
        "attributes": [{"name": "shape", "values": ["circle", "square", "triangle"]}],
    }
    ClassifierModel(
        ConvClassifier(in_channels=3, channels=(4, 8), heads=(3,), feature_dim=8), data, {"task": "my-shapes"}
    ).save_pretrained(root / "classifier")
    return root


@pytest.mark.parametrize("judge", ["clip", "classifier"])
def test_evaluate_a_pipeline_on_prompts_with_the_users_judge(pipe_dir, judges, tmp_path, capsys, judge):
    argv = [
        "evaluate",
        str(pipe_dir),
        "--concept",
        "circle; square",
        "--anchor",
        "a shape",
        "--preserve",
        "triangle",
        "--judge",
        str(judges / judge),
        "--n-per-prompt",
        "2",
        "--out",
        str(tmp_path / "m.json"),
    ]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert (
        set(metrics["concept_still_shown_by_concept"]) == {"circle", "square"}
        and 0 <= metrics["concept_still_shown"] <= 1
        and 0 <= metrics["preserved_rate"] <= 1
    )
    assert (
        metrics["base_concept_still_shown"] == metrics["concept_still_shown"]
        and metrics["concept_still_shown_change_points"] == 0
    )  # a base pipeline is its own reference
    assert (metrics["anchor_rate"] is None) == (judge == "classifier")  # "a shape" is no class of the classifier
    assert "concept_still_shown" in out and metrics["judge"].endswith(str(judges / judge))


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (
            ["--concept", "a cat", "--anchor", "a shape", "--judge", "classifier"],
            "'a cat' is not a class of this classifier judge (classes: circle, square, triangle)",
        ),
        (["--concept", "a circle", "--anchor", "a shape", "--judge", "PIPE/vae"], "not a judge (found AutoencoderKL)"),
        (["--concept", "a circle", "--anchor", "a shape"], "no built-in judge: pass --judge"),
    ],
)
def test_bad_judges_are_one_line_before_any_work(pipe_dir, judges, tmp_path, capsys, args, match):
    args = [str(pipe_dir / "vae") if a == "PIPE/vae" else str(judges / a) if a == "classifier" else a for a in args]
    code, _, err = run(["evaluate", str(pipe_dir), *args, "--out", str(tmp_path / "m.json")], capsys)
    assert code == 2 and err.startswith("error: ") and match in err and err.count("\n") == 1, err
    assert not (tmp_path / "m.json").exists()


def test_sample_a_free_text_prompt(pipe_dir, tmp_path, capsys):
    import numpy as np

    code, out, err = run(
        [
            "sample",
            str(pipe_dir),
            "--prompt",
            "a photo of a cat",
            "--n",
            "2",
            "--steps",
            "2",
            "--out",
            str(tmp_path / "s.npz"),
        ],
        capsys,
    )
    assert code == 0, err
    arrays = np.load(tmp_path / "s.npz")
    assert arrays["images"].shape == (2, 16, 16, 3) and arrays["labels"].tolist() == [
        -1,
        -1,
    ]  # a free prompt has no class
