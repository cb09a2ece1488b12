"""The prompt attack (UnlearnDiffAtk) and AdvUnlearn on the tiny task-free pipeline of test_prompts
(random weights): a soft prefix of vocabulary rows is exactly the prompt with those words; the attack
lowers its own loss and repeats itself under a seed; the ``probe`` command judges before and after
with the user's judge; advunlearn trains the text encoder alone and writes only ``text_encoder/``;
bad input is one line before any work."""

import filecmp
import json

import pytest
import torch
from diffusers import StableDiffusionPipeline, UNet2DConditionModel
from safetensors.torch import load_file

from genunlearn.eval.probes.prompt_attack import AttackTarget, held_out_loss, optimise_prefix
from genunlearn.families import open_model
from genunlearn.models.soft_prompt import encode_with_prefix, random_prefix
from test_prompts import judges, pipe_dir  # noqa: F401  (the tiny pipeline and judge fixtures)

CONCEPT = ["--forget", "concept=circle;anchor=a shape"]


@pytest.fixture(scope="module")
def model(pipe_dir):  # noqa: F811
    return open_model(pipe_dir)[1]


def test_a_prefix_of_vocabulary_rows_is_the_prompt_with_those_words(model):
    view = model.net
    tokenizer, encoder = view.table.tokenizer, view.table.text_encoder
    words = tokenizer("ab x").input_ids[1:3]  # the tokens of "ab"
    prefix = encoder.get_input_embeddings().weight[words].detach()
    prefixed = view.prompt_states(["x"], prefix)
    assert torch.allclose(prefixed, encode_with_prefix(tokenizer, encoder, ["ab x"], None), atol=1e-6)
    rows = view.states_cond(prefixed)  # states as a condition row: the sampler and guidance take them
    assert rows[0, 0] < 0 and torch.allclose(view.encoder_hidden_states(rows, 1, "cpu"), prefixed)


def attack(model, seed, steps=6):
    view, g = model.net, torch.Generator().manual_seed(seed)
    target = AttackTarget(
        model.generate(4, model.prompt_cond(["circle"] * 4), generator=torch.Generator().manual_seed(1), steps=3),
        ["circle"],
    )
    start = random_prefix(view.table.tokenizer, view.table.text_encoder, 3, g)
    return target, start, optimise_prefix(view, model.process, target, start, steps=steps, lr=0.3, batch=4, generator=g)


def test_the_attack_lowers_its_own_loss_and_repeats_under_a_seed(model):
    target, start, prefix = attack(model, 0)
    loss = lambda p: held_out_loss(model.net, model.process, target, p, seed=5)  # noqa: E731
    assert loss(prefix) < loss(start)
    assert torch.equal(prefix, attack(model, 0)[2]) and not torch.equal(prefix, attack(model, 1)[2])
    assert not any(p.grad is not None for p in model.net.parameters())  # no weight collected a gradient


def test_probe_command_judges_plain_and_attacked_prompts(pipe_dir, judges, tmp_path, cli):  # noqa: F811
    args = [
        "probe",
        str(pipe_dir),
        *CONCEPT,
        "--probe",
        "prompt",
        "--reference",
        str(pipe_dir),
        "--judge",
        str(judges / "classifier"),
        "--set",
        "steps=2",
        "--set",
        "n=2",
        "--set",
        "images=2",
        "--out",
        str(tmp_path),
    ]
    code, out, err = cli(*args)
    assert code == 0, err
    result = json.loads((tmp_path / "prompt.json").read_text())
    assert (
        set(result["by_concept"]) == {"circle"} and result["tokens"] == 5 and result["judge"].startswith("classifier")
    )
    for r in (result, result["reference"]):
        assert all(0 <= r[k] <= 1 for k in ("asr_no_attack", "asr_attack"))
    assert result["asr_no_attack"] == result["reference"]["asr_no_attack"]  # the reference is the model itself here
    assert "ref. attack" in out and (tmp_path / "prompt_samples.npz").is_file()


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (
            ["--probe", "prompt", "--judge", "JUDGE", "--set", "tokens=0"],
            "tokens must satisfy 1 <= tokens <= 64, got 0",
        ),
        (["--probe", "prompt", "--judge", "JUDGE", "--set", "lr=0"], "lr must satisfy 0 < lr <= 10, got 0"),
        (
            ["--probe", "prompt", "--judge", "JUDGE", "--set", "steps=0"],
            "steps must satisfy 1 <= steps <= 10000, got 0",
        ),
        (
            ["--probe", "prompt", "--judge", "JUDGE", "--reference", "PIPE", "--set", "tokens=20"],
            "with 20 soft tokens in front this pipeline's tokenizer holds prompts of at most 4",
        ),
        (["--probe", "prompt", "--judge", "JUDGE"], "needs images of 'circle': pass --reference BASE"),
        (["--probe", "prompt", "--judge", "PIPE/vae", "--reference", "PIPE"], "not a judge (found AutoencoderKL)"),
        (["--probe", "prompt", "--reference", "PIPE"], "no built-in judge: pass --judge FOLDER"),
        (["--probe", "relearn", "--judge", "JUDGE"], "--judge judges the prompt probe's samples"),
    ],
)
def test_bad_probe_input_is_one_line_before_any_work(pipe_dir, judges, tmp_path, cli, args, match):  # noqa: F811
    places = {"PIPE": pipe_dir, "PIPE/vae": pipe_dir / "vae", "JUDGE": judges / "classifier"}
    code, _, err = cli(
        "probe", str(pipe_dir), *CONCEPT, *(str(places.get(a, a)) for a in args), "--out", str(tmp_path / "p")
    )
    assert code == 2 and err.startswith("error: ") and match in err and err.count("\n") == 1, err
    assert not (tmp_path / "p").exists()


def test_advunlearn_trains_the_text_encoder_alone(pipe_dir, tmp_path, cli):  # noqa: F811
    sets = ["--set", "batch_size=2", "--set", "sample_steps=3", "--set", "images=2", "--set", "lr=1e-2"]
    code, out, err = cli(
        "unlearn",
        str(pipe_dir),
        "--method",
        "advunlearn",
        "--concept",
        "circle",
        "--anchor",
        "a shape",
        "--preserve",
        "square",
        "--steps",
        "3",
        *sets,
        "--out",
        str(tmp_path / "u"),
    )
    assert code == 0, err
    assert "rewrote text_encoder/, copied scheduler/, tokenizer/, unet/, vae/ unchanged" in out
    for part in ("unet", "vae", "tokenizer", "scheduler"):  # byte-identical
        cmp = filecmp.dircmp(pipe_dir / part, tmp_path / "u" / part)
        assert not (cmp.left_only or cmp.right_only) and all(
            filecmp.cmp(pipe_dir / part / f, tmp_path / "u" / part / f, shallow=False) for f in cmp.common_files
        )
    before, after = (load_file(p / "text_encoder" / "model.safetensors") for p in (pipe_dir, tmp_path / "u"))
    assert before.keys() == after.keys() and any(not torch.equal(before[k], after[k]) for k in before)
    record = json.loads((tmp_path / "u" / "genunlearn.json").read_text())
    assert record["rewritten"] == ["text_encoder"] and record["info"]["unlearn"]["preserve"] == ["square"]
    pipe = StableDiffusionPipeline.from_pretrained(tmp_path / "u")  # the user's own code loads it
    assert all(
        torch.equal(a, b)
        for a, b in zip(UNet2DConditionModel.from_pretrained(pipe_dir / "unet").parameters(), pipe.unet.parameters())
    )
    assert pipe("circle", height=16, width=16, num_inference_steps=2, output_type="np").images.shape == (1, 16, 16, 3)
    _, again = open_model(tmp_path / "u")  # genunlearn conditions on the new encoder's states
    states = pipe.encode_prompt(["circle"], "cpu", 1, False)[0]
    assert torch.allclose(again.net.encoder_hidden_states(again.prompt_cond(["circle"]), 1, "cpu"), states, atol=1e-5)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ([], "advunlearn keeps other prompts' outputs: pass --preserve"),
        (["--preserve", "square", "--set", "attack_tokens=22"], "with 22 soft tokens in front"),
        (
            ["--preserve", "square", "--set", "attack_steps=0"],
            "attack_steps must satisfy 1 <= attack_steps <= 1000, got 0",
        ),
        (["--preserve", "square", "--set", "lr=2"], "lr must satisfy 0 < lr < 1, got 2"),
    ],
)
def test_bad_advunlearn_input_is_one_line_before_any_work(pipe_dir, tmp_path, cli, args, match):  # noqa: F811
    code, _, err = cli(
        "unlearn",
        str(pipe_dir),
        "--method",
        "advunlearn",
        "--concept",
        "circle",
        "--anchor",
        "a shape",
        *args,
        "--out",
        str(tmp_path / "u"),
    )
    assert code == 2 and err.startswith("error: ") and match in err and err.count("\n") == 1, err
    assert not (tmp_path / "u").exists()


def test_a_text_pipeline_is_attacked_through_its_prompts_by_default(model):
    from genunlearn.eval.probes import default_probe
    from genunlearn.forget.request import parse_forget

    request = parse_forget("concept=circle;anchor=a shape")
    assert default_probe(model, request) == "prompt"
    assert default_probe(model, parse_forget("classes=circle")) != "prompt"


def test_soft_tokens_default_to_what_fits_the_tokenizer_and_say_so(model, capsys):
    import copy

    from genunlearn.errors import GenUnlearnError
    from genunlearn.models.soft_prompt import soft_tokens

    tokenizer = copy.deepcopy(model.net.table.tokenizer)
    n = len(tokenizer("circle").input_ids)
    tokenizer.model_max_length = n + 8
    assert soft_tokens(tokenizer, ["circle"], None, "advunlearn") == 5  # UnlearnDiffAtk's 5 fit: nothing said
    assert capsys.readouterr().err == ""
    tokenizer.model_max_length = n + 2  # a tiny pipeline's tokenizer: its longest prompt and little more
    assert soft_tokens(tokenizer, ["circle"], None, "advunlearn") == 2
    assert "advunlearn: 2 soft tokens in front of the prompts (UnlearnDiffAtk's 5 do not fit" in capsys.readouterr().err
    assert soft_tokens(tokenizer, ["circle"], None, "advunlearn", say=False) == 2 and not capsys.readouterr().err
    assert soft_tokens(tokenizer, ["circle"], 1, "advunlearn") == 1  # asked for: used as asked
    with pytest.raises(GenUnlearnError, match="with 3 soft tokens in front this pipeline's tokenizer holds"):
        soft_tokens(tokenizer, ["circle"], 3, "advunlearn")
    tokenizer.model_max_length = n
    with pytest.raises(GenUnlearnError, match="advunlearn: no room for a soft token: this pipeline's tokenizer holds"):
        soft_tokens(tokenizer, ["circle"], None, "advunlearn")
