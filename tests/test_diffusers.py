"""diffusers models in and out, on tiny models built in-process with diffusers' own classes (random
weights): import, methods run a few steps, the output loads in diffusers and samples, unchanged
components stay bit-identical, and the conventions at the boundary are right."""

import filecmp
import json

import pytest
import torch
from diffusers import DDIMScheduler, DDPMPipeline, DDPMScheduler, FlowMatchEulerDiscreteScheduler, UNet2DModel

from genunlearn.data import load_dataset
from genunlearn.errors import GenUnlearnError
from genunlearn.families import open_model
from genunlearn.forget.request import ForgetRequest
from genunlearn.methods import get_method
from genunlearn.processes.diffusion import Diffusion

FORGET3 = ForgetRequest.of_classes(3)


def tiny_unet(classes: int | None = 11) -> UNet2DModel:
    torch.manual_seed(0)
    return UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        block_out_channels=(8, 16),
        layers_per_block=1,
        norm_num_groups=4,
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=4,
        num_class_embeds=classes,
    )


@pytest.fixture(scope="module")
def ddpm_pipe(tmp_path_factory):
    """A class-conditional DDPMPipeline folder (10 digits + a null class), cosine betas, v-prediction."""
    path = tmp_path_factory.mktemp("pipe") / "ddpm_pipe"
    scheduler = DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction"
    )
    DDPMPipeline(unet=tiny_unet(), scheduler=scheduler).save_pretrained(path)
    return path


def run(method, model, data=None, **values):
    data = data if data is not None else load_dataset("digits").resized(model.sample_shape)
    return get_method(method, values, family="generative").unlearn(model, FORGET3, data)


def test_pipeline_imports_with_its_conventions(ddpm_pipe):
    family, model = open_model(ddpm_pipe, task="digits")
    assert family.name == "generative" and model.kind == "diffusion" and model.conditional and model.net.has_null
    p = model.process
    assert (p.beta_schedule, p.prediction_type) == ("squaredcos_cap_v2", "v_prediction")
    ref = DDPMScheduler.from_pretrained(ddpm_pipe / "scheduler").alphas_cumprod
    assert torch.equal(p.alphas_cumprod, ref.float())  # diffusers' own schedule
    # the view feeds diffusers' integer timestep and the class (10 = null) unchanged
    x, t, labels = torch.randn(3, 1, 8, 8), torch.tensor([0, 250, 999]), torch.tensor([[1], [10], [3]])
    direct = model.net.unet(x, t.float(), class_labels=labels[:, 0]).sample
    assert torch.allclose(p.predict(model.net, x, t, labels), direct, atol=1e-5)


def test_salun_round_trip_loads_in_diffusers(ddpm_pipe, tmp_path):
    _, model = open_model(ddpm_pipe, task="digits")
    out = run("salun", model, steps=2, batch_size=8, mask_batch_size=64)
    out.save_pretrained(tmp_path / "u")
    pipe = DDPMPipeline.from_pretrained(tmp_path / "u")  # the user's own code, unchanged
    before = UNet2DModel.from_pretrained(ddpm_pipe / "unet")
    moved = [n for (n, a), b in zip(before.named_parameters(), pipe.unet.parameters()) if not torch.equal(a, b)]
    assert moved and len(moved) < len(list(before.parameters()))  # SalUn's mask: some weights move, not all
    assert filecmp.cmp(
        ddpm_pipe / "scheduler" / "scheduler_config.json",
        tmp_path / "u" / "scheduler" / "scheduler_config.json",
        shallow=False,
    )
    assert filecmp.cmp(ddpm_pipe / "model_index.json", tmp_path / "u" / "model_index.json", shallow=False)
    record = json.loads((tmp_path / "u" / "genunlearn.json").read_text())
    assert record["copied"] == ["scheduler"] and record["info"]["method"] == "salun"
    _, again = open_model(tmp_path / "u")  # no --task needed: the record says it
    assert again.info["task"] == "digits" and again.info["role"] == "unlearned"
    sched = DDIMScheduler.from_config(pipe.scheduler.config)  # a plain diffusers loop samples it
    sched.set_timesteps(2)
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    for t in sched.timesteps:
        x = sched.step(pipe.unet(x, t, class_labels=torch.tensor([0, 4])).sample, t, x).prev_sample
    assert x.shape == (2, 1, 8, 8) and torch.isfinite(x).all()


def test_salun_without_a_null_class_masks_unguided_and_says_so(tmp_path, capsys):
    """A UNet with exactly 10 class embeddings has no null input: SalUn's guided saliency loss falls
    back to w = 0 (one line on stderr, recorded in info) instead of failing."""
    DDPMPipeline(unet=tiny_unet(classes=10), scheduler=DDPMScheduler(num_train_timesteps=1000)).save_pretrained(
        tmp_path / "p"
    )
    _, model = open_model(tmp_path / "p", task="digits")
    assert not model.net.has_null and model.process.cond_dropout == 0.0
    out = run("salun", model, steps=2, batch_size=8, mask_batch_size=64)
    assert out.info["unlearn"]["mask_guidance"] == 0.0
    assert capsys.readouterr().err.count("salun: mask_guidance 2.0 -> 0.0 (this model has no null class") == 1
    with pytest.raises(GenUnlearnError, match="sample with --guidance 1"):
        model.process.predict(
            model.net, torch.randn(2, 1, 8, 8), torch.tensor([5, 5]), torch.tensor([[3], [4]]), guidance=2.0
        )


def test_esd_without_a_null_class_samples_unguided_and_guides_towards_other_classes(tmp_path, capsys, monkeypatch):
    """ESD's sampler and its negatively guided target need a null input: on a UNet with exactly 10
    class embeddings the sampler runs unguided and ∅ becomes a random other class (one line on
    stderr, recorded in info), and no call ever asks the network for the missing null class."""
    DDPMPipeline(unet=tiny_unet(classes=10), scheduler=DDPMScheduler(num_train_timesteps=1000)).save_pretrained(
        tmp_path / "p"
    )
    _, model = open_model(tmp_path / "p", task="digits")
    seen = []
    forward = type(model.net).forward
    monkeypatch.setattr(
        type(model.net),
        "forward",
        lambda net, x, t, cond=None: seen.append(cond[:, 0].clone()) or forward(net, x, t, cond),
    )
    out = run("esd", model, steps=2, batch_size=4, sample_steps=3)
    assert (out.info["unlearn"]["sample_guidance"], out.info["unlearn"]["guide"]) == (1.0, "others")
    err = capsys.readouterr().err
    assert err.count("esd: sample_guidance 3.0 -> 1.0, guide null -> others (this model has no null class") == 1
    labels = torch.cat(seen)
    assert (
        labels.max() < 10 and (labels == 3).any() and (labels != 3).any()
    )  # the forget class and its guides, never a null
    moved = [n for (n, a), b in zip(model.net.named_parameters(), out.net.parameters()) if not torch.equal(a, b)]
    assert moved


def test_esd_guide_is_one_of_three():
    from genunlearn.config import build_config
    from genunlearn.methods.esd import ESDConfig

    with pytest.raises(GenUnlearnError, match="guide must be one of null, anchor, others, not 'void'"):
        build_config(ESDConfig, {"guide": "void"})


def test_sfd_one_step_generator_at_recorded_t_star(ddpm_pipe, tmp_path):
    _, model = open_model(ddpm_pipe, task="digits")
    out = run("sfd", model, steps=2, batch_size=4)
    out.save_pretrained(tmp_path / "g")
    record = json.loads((tmp_path / "g" / "genunlearn.json").read_text())
    assert record["process"]["name"] == "one_step" and record["process"]["prediction_type"] == "v_prediction"
    _, gen = open_model(tmp_path / "g")
    z = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 5])
    ours = gen.sample(2, gen.cond_for_labels(labels), z=z)
    # the same one call in plain diffusers: y = b_{t*} z, x0 = a y − b v̂ (v-prediction)
    unet, t_star = UNet2DModel.from_pretrained(tmp_path / "g" / "unet"), record["process"]["t_star"]
    ab = DDPMScheduler.from_pretrained(tmp_path / "g" / "scheduler").alphas_cumprod[t_star]
    a, b = ab.sqrt(), (1 - ab).sqrt()
    y = b * z
    x0 = a * y - b * unet(y, float(t_star), class_labels=labels).sample
    assert torch.allclose(ours, x0, atol=1e-4)


def test_unconditional_sample_prediction_finetune(tmp_path):
    DDPMPipeline(
        unet=tiny_unet(classes=None), scheduler=DDIMScheduler(prediction_type="sample", beta_schedule="scaled_linear")
    ).save_pretrained(tmp_path / "p")
    _, model = open_model(tmp_path / "p", task="digits")
    assert not model.conditional and model.process.cond_dropout == 0.0 and model.process.clip_sample
    out = run("finetune", model, steps=2, batch=16)
    out.save_pretrained(tmp_path / "f")
    assert UNet2DModel.from_pretrained(tmp_path / "f" / "unet").config.num_class_embeds is None


def test_flow_matching_model_folder_with_scheduler(tmp_path):
    """A bare UNet2DModel folder + a FlowMatchEulerDiscreteScheduler folder (shift 3): σ = 1 − t,
    velocity = −output; the output is a model folder again."""
    tiny_unet().save_pretrained(tmp_path / "unet")
    FlowMatchEulerDiscreteScheduler(shift=3.0).save_pretrained(tmp_path / "sched")
    with pytest.raises(GenUnlearnError, match="pass --scheduler"):
        open_model(tmp_path / "unet", task="digits")
    _, model = open_model(tmp_path / "unet", task="digits", scheduler=str(tmp_path / "sched"))
    assert model.kind == "flow" and model.process.shift == 3.0
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([0.25, 0.75])
    direct = model.net.unet(x, (1 - t) * 1000, class_labels=torch.tensor([2, 10])).sample
    assert torch.allclose(model.net(x, t, torch.tensor([[2], [10]])), -direct, atol=1e-5)
    # the sampler's grid is diffusers' shifted sigmas
    sched = FlowMatchEulerDiscreteScheduler(shift=3.0)
    sched.set_timesteps(4)
    assert [round(1 - model.process.grid_time(i, 4), 5) for i in range(4)] == [
        round(float(s), 5) for s in sched.sigmas[:4]
    ]
    out = run("finetune", model, steps=2, batch=16)  # continualflow on this format: benchmarks/diffusers_interop.py
    out.save_pretrained(tmp_path / "cf")
    assert (tmp_path / "cf" / "diffusion_pytorch_model.safetensors").is_file() and not (
        tmp_path / "cf" / "model_index.json"
    ).exists()
    _, again = open_model(tmp_path / "cf")  # the record holds the scheduler and the task
    assert again.kind == "flow" and again.info["method"] == "finetune"


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_prediction_type_conversions(prediction_type):
    """predict_eps / predict_x0 recover ε and x0 from an oracle network in each parameterisation."""
    process = Diffusion(prediction_type=prediction_type, beta_schedule="squaredcos_cap_v2")
    x0, noise, t = torch.randn(4, 3), torch.randn(4, 3), torch.tensor([5, 200, 600, 990])
    xt, _, _, target = process.corrupt(x0, t=t, noise=noise)
    oracle = lambda x, tt, c: target  # noqa: E731  (predicts exactly the training target)
    assert torch.allclose(process.predict_eps(oracle, xt, t), noise, atol=1e-4)
    assert torch.allclose(process.predict_x0(oracle, xt, t), x0, atol=1e-3)


def test_unsupported_layouts_fail_in_one_line(tmp_path, ddpm_pipe):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "model_index.json").write_text(
        json.dumps(
            {
                "_class_name": "DiTPipeline",
                "transformer": ["diffusers", "DiTTransformer2DModel"],
                "scheduler": ["diffusers", "DDPMScheduler"],
            }
        )
    )
    with pytest.raises(GenUnlearnError, match="no supported denoiser .*DiTTransformer2DModel"):
        open_model(tmp_path / "t", task="digits")
    with pytest.raises(GenUnlearnError, match="pass --task"):
        open_model(ddpm_pipe)
    with pytest.raises(GenUnlearnError, match="14 class embeddings; the data has 10 classes"):
        tiny_unet(14).save_pretrained(tmp_path / "u14")
        DDPMScheduler().save_pretrained(tmp_path / "s")
        open_model(tmp_path / "u14", task="digits", scheduler=str(tmp_path / "s"))
    tiny_unet(None).save_pretrained(tmp_path / "plain")
    DDPMScheduler(beta_schedule="sigmoid").save_pretrained(tmp_path / "sig")
    with pytest.raises(GenUnlearnError, match="unsupported beta_schedule 'sigmoid'"):
        open_model(tmp_path / "plain", task="digits", scheduler=str(tmp_path / "sig"))


def test_own_unet2d_model_exports_as_a_diffusers_pipeline(tmp_path, cli):
    """``train --network unet2d`` then ``export``: diffusers opens the folder, and genunlearn reads it
    back sampling bit-identically to the model it came from."""
    from diffusers import DiffusionPipeline

    from genunlearn.generative.model import GenerativeModel

    assert (
        cli(
            "train",
            "--task",
            "digits",
            "--model",
            "diffusion",
            "--network",
            "unet2d",
            "--steps",
            "2",
            "--out",
            str(tmp_path / "m"),
            "--no-cache",
        )[0]
        == 0
    )
    code, out, err = cli("export", str(tmp_path / "m"), "--out", str(tmp_path / "d"))
    assert code == 0, err
    pipe = DiffusionPipeline.from_pretrained(tmp_path / "d")
    assert type(pipe).__name__ == "DDPMPipeline" and pipe.unet.config.num_class_embeds == 11
    assert pipe.scheduler.config.prediction_type == "epsilon"
    own = GenerativeModel.from_pretrained(tmp_path / "m")
    _, back = open_model(tmp_path / "d")  # the task comes from genunlearn.json
    cond = torch.arange(10)[:, None]
    a = own.sample(10, cond, generator=torch.Generator().manual_seed(0))
    b = back.sample(10, cond, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    # what cannot be represented is refused in one line, before anything is written
    assert (
        cli("train", "--task", "digits", "--model", "flow", "--steps", "2", "--out", str(tmp_path / "f"), "--no-cache")[
            0
        ]
        == 0
    )
    code, _, err = cli("export", str(tmp_path / "f"), "--out", str(tmp_path / "x"))
    assert (
        code == 2 and err.count("\n") == 1 and "only diffusion models export" in err and not (tmp_path / "x").exists()
    )
    code, _, err = cli(
        "train", "--task", "ring8", "--network", "unet2d", "--steps", "2", "--out", str(tmp_path / "r"), "--no-cache"
    )
    assert code == 2 and err.count("\n") == 1 and "--network unet2d is an image network; ring8 holds 2D points" in err
