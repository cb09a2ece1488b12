"""Command-line interface. Heavy imports happen inside commands so ``--help`` stays instant.

Every user error is printed as one line (``error: ...``) with exit code 2; nothing on disk is
written until the inputs have been checked, and outputs are written atomically.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click

from genunlearn.api import check_out_dir
from genunlearn.distributed import is_main_process
from genunlearn.errors import GenUnlearnError
from genunlearn.families import KINDS

TASKS = "ring8|checkerboard|moons|circles|digits|shapes|canvas, a folder of class sub-folders, or an .npz"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="genunlearn")
def cli():
    """genunlearn: make a trained generative model forget, and prove it."""


MODEL_KINDS = tuple(KINDS)  # the families' table (torch-free)
NETWORKS = ("builtin", "unet2d")  # recipes.NETWORKS, likewise
PROBES = ("relearn", "cond", "noise", "complete", "prompt")  # eval.probes.PROBES, likewise (a test checks both)
DEVICES = ("auto", "cpu", "cuda", "mps")  # device.DEVICES, likewise
PRECISIONS = ("fp32", "bf16", "fp16")  # device.PRECISIONS, likewise


def placement_options(f):
    """--device, --precision and --batch-size for a command that runs networks: checked (one line)
    before any work, then the command runs on that placement (``genunlearn.device.use``)."""

    @click.option(
        "--device",
        type=click.Choice(DEVICES),
        default="auto",
        show_default=True,
        help="Where networks run: auto picks CUDA, then MPS, else the CPU.",
    )
    @click.option(
        "--precision",
        type=click.Choice(PRECISIONS),
        default="fp32",
        show_default=True,
        help="Mixed precision through accelerate, for training, sampling and judging; fp16 needs a GPU (not on the CPU).",
    )
    @click.option(
        "--batch-size",
        type=int,
        default=None,
        help="Samples per network call when sampling and evaluating (default 1000); lower it if the device runs out of memory.",
    )
    @functools.wraps(f)
    def run(*args, device, precision, batch_size, **kwargs):
        from genunlearn.device import resolve, use

        with use(resolve(device, precision, batch_size)):
            return f(*args, **kwargs)

    return run


def foreign_model_options(f):
    """--task and --scheduler: what a diffusers folder that genunlearn did not write models, and
    its scheduler when it has no pipeline."""
    f = click.option(
        "--scheduler",
        default=None,
        help="diffusers model folders without a pipeline: the scheduler folder (scheduler_config.json).",
    )(f)
    return click.option(
        "--task",
        "foreign_task",
        default=None,
        help="diffusers models: the data they model (built-in task, image folder or .npz); recorded in genunlearn.json afterwards.",
    )(f)


def request_options(*, required: bool):
    """--forget, or --concept/--anchor with --preserve, --prompts and --templates: one forget request,
    parsed and checked before any work and passed as ``request`` (None if not ``required`` and
    nothing is named). ``required``: the command acts on the request (unlearn), else judges by it."""
    erased = "to erase" if required else "the model should have erased"

    def wrap(f):
        @click.option(
            "--forget",
            "forget_spec",
            default=None,
            help=f"What {'to forget' if required else 'the model should have forgotten'}, e.g. classes=3 (or use --concept/--anchor).",
        )
        @click.option(
            "--concept",
            default=None,
            help=f"Concept(s) {erased}: a word of the task (circle) or, on a text-to-image pipeline, any text ('a round shape'); several separated by ';'.",
        )
        @click.option(
            "--anchor",
            default=None,
            help="What the concept should become, e.g. shape (generic), square (sibling) or 'a shape'; uce and rece may leave it out (the concept then goes to the empty prompt).",
        )
        @click.option(
            "--preserve",
            default=None,
            help="Text-to-image pipelines: concepts to keep, separated by ';' (e.g. 'square; triangle').",
        )
        @click.option(
            "--prompts",
            "prompt_file",
            default=None,
            help="Text-to-image pipelines: a prompt CSV (columns prompt, optional concept and split) naming each concept's prompts.",
        )
        @click.option(
            "--templates",
            default=None,
            help="Text-to-image pipelines: prompt templates the concepts are written into, separated by ';' (e.g. 'a photo of {}; a painting of {}').",
        )
        @functools.wraps(f)
        def run(*args, forget_spec, concept, anchor, preserve, prompt_file, templates, **kwargs):
            request = _unlearn_request(
                forget_spec,
                concept,
                anchor,
                required=required,
                preserve=preserve,
                prompts=prompt_file,
                templates=templates,
            )
            return f(*args, request=request, **kwargs)

        return run

    return wrap


@cli.command()
@click.option("--task", required=True, help=f"Data: {TASKS}.")
@click.option(
    "--model",
    "kind",
    type=click.Choice(MODEL_KINDS),
    default="flow",
    show_default=True,
    help="sd: a Stable-Diffusion-format pipeline (text encoder, VAE, cross-attention UNet; prompt tasks); i2i: an inpainting/outpainting encoder-decoder; classifier: an image classifier.",
)
@click.option("--out", required=True, help="Output model folder.")
@click.option(
    "--forget",
    "forget_spec",
    default=None,
    help="Train on the retain split only (retrain gold standard), e.g. classes=3.",
)
@click.option(
    "--steps", type=int, default=None, help="Training steps (epochs for classifiers; default: the task's recipe)."
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--unconditional", is_flag=True, help="Ignore labels (generative image tasks are class-conditional by default)."
)
@click.option(
    "--network",
    type=click.Choice(NETWORKS),
    default="builtin",
    show_default=True,
    help="flow/diffusion image models: unet2d trains diffusers' UNet2DModel instead of the recipe's network (diffusion models then export to a diffusers pipeline).",
)
@click.option("--no-cache", is_flag=True, help="Train even if an identical model is cached.")
@placement_options
def train(task, kind, out, forget_spec, steps, seed, unconditional, network, no_cache):
    """Train a base model (or, with --forget, the retrain-from-scratch gold standard)."""
    from genunlearn.forget.request import parse_forget

    options = {"unconditional": unconditional, **({"network": network} if network != "builtin" else {})}
    train_model(
        task, kind, out, parse_forget(forget_spec), steps=steps, seed=seed, options=options, use_cache=not no_cache
    )


def train_model(task, kind, out, request, *, steps=None, seed=0, options=None, use_cache=True) -> None:
    """``train`` for every family: inputs checked before any work; only the main process saves."""
    from genunlearn.data import load_dataset
    from genunlearn.data.fingerprint import canonical_task
    from genunlearn.families import family_for_kind

    out_path = check_out_dir(out)
    _check_int("--steps", steps, 1)
    _check_int("--seed", seed, 0)
    task = canonical_task(task)  # user data: its absolute path (the model records it with a fingerprint)
    family = family_for_kind(kind)
    job = family.job(task, kind, forget=request, steps=steps, seed=seed, options=options)
    data = load_dataset(task)
    if request is not None:
        data.split(request)  # validate the request before any training
    model = family.train(job, use_cache=use_cache)
    _check_ranks(model)
    if is_main_process():
        model.save_pretrained(out_path)
        click.echo(
            f"saved {model.info['role']} model ({family.name}) to {out_path} (trained {model.info['train_seconds']:.1f}s, key {model.info['key']})"
        )


@cli.command()
@click.argument("model_dir")
@click.option("--n", type=int, default=64, show_default=True, help="Number of samples.")
@click.option("--out", required=True, help="Output .npz file.")
@click.option(
    "--labels",
    default=None,
    help="Class ids or names, comma-separated, cycled over the samples (default: all classes evenly).",
)
@click.option("--prompt", default=None, help='A prompt for multi-attribute models, e.g. "a red circle".')
@click.option("--steps", type=int, default=None, help="Sampler steps (default: the model's).")
@click.option("--guidance", type=float, default=None, help="Classifier-free guidance scale s.")
@click.option(
    "--mask",
    type=click.Choice(["inpaint", "outpaint"]),
    default=None,
    help="I2I models: complete held-out images with the centre hidden (inpaint, default) or only the centre kept (outpaint).",
)
@foreign_model_options
@click.option("--seed", type=int, default=0, show_default=True)
@placement_options
def sample(model_dir, n, out, labels, prompt, steps, guidance, mask, seed, foreign_task, scheduler):
    """Draw samples into an .npz: images uint8 (N,H,W,C) or samples float32 (N,2), plus labels.

    On an I2I model: completions of seeded held-out images (of --labels classes), with their
    originals, masked inputs and hidden-pixel masks."""
    from genunlearn.io.weights import check_writable
    from genunlearn.io.samples import check_sample_request, write_npz

    _check_int("--n", n, 1)
    _check_int("--steps", steps, 1)
    _check_int("--seed", seed, 0)
    if guidance is not None and not (guidance == guidance and abs(guidance) != float("inf")):
        raise GenUnlearnError(f"--guidance must be a finite number, got {guidance}")
    if not out.endswith(".npz"):
        raise GenUnlearnError(f"--out must be an .npz file, got {out!r}")
    check_writable(out, folder=False)
    if not is_main_process():
        return
    family, model = _open_model(model_dir, task=foreign_task, scheduler=scheduler)
    check_sample_request(model, n, out)
    arrays = family.sample(model, n, seed=seed, labels=labels, prompt=prompt, steps=steps, guidance=guidance, mask=mask)
    path = write_npz(out, arrays)
    what = f"{mask or 'inpaint'} completions (with originals and masked inputs)" if "originals" in arrays else "samples"
    click.echo(f"wrote {n} {what} to {path}")


@cli.command()
@click.argument("model_dir")
@request_options(required=False)
@click.option(
    "--judge",
    default=None,
    help="Text-to-image pipelines: judge the request's prompts with a genunlearn classifier folder or a CLIP folder (CLIPModel + CLIPProcessor, zero-shot on the concept names) instead of the task's judge; needed without a task.",
)
@click.option("--n-per-prompt", type=int, default=100, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--split",
    type=click.Choice(["test", "val"]),
    default="test",
    show_default=True,
    help="Held-out data the real references come from: test to report, val to tune settings on.",
)
@click.option("--out", default=None, help="Metrics JSON (default: MODEL_DIR/metrics.json).")
@click.option(
    "--reference",
    "--original",
    "reference",
    default=None,
    help="The base (original) model this one is judged against: concept collateral, I2I S_noise (default: the model's base, from the cache).",
)
@foreign_model_options
@placement_options
def evaluate(model_dir, request, judge, n_per_prompt, seed, split, out, reference, foreign_task, scheduler):
    """Judge a model against a forget request with its family's judge and metrics (the same
    numbers `genunlearn bench` reports), or a text-to-image pipeline on prompts with --judge."""
    evaluate_model(
        model_dir,
        request,
        n_per_prompt=n_per_prompt,
        seed=seed,
        split=split,
        out=out,
        reference=reference,
        task=foreign_task,
        scheduler=scheduler,
        judge=judge,
    )


def evaluate_model(
    model_dir,
    request,
    *,
    n_per_prompt=100,
    seed=0,
    split="test",
    out=None,
    reference=None,
    task=None,
    scheduler=None,
    judge=None,
) -> dict | None:
    """``evaluate`` for every family; the main process alone evaluates and writes."""
    from genunlearn.api import evaluate as api_evaluate
    from genunlearn.io.weights import check_writable, write_json

    _check_int("--n-per-prompt", n_per_prompt, 1)
    _check_int("--seed", seed, 0)
    if not is_main_process():
        return None
    if judge is not None:
        from genunlearn.eval.concept import judge_kind

        judge_kind(judge)  # the wrong kind of folder is one line before any model is loaded
    family, model = _open_model(model_dir, task=task, scheduler=scheduler)
    check_writable(out or Path(model_dir) / "metrics.json", folder=False)
    ref = None
    if family.uses_reference(request):  # load a base model only where the family judges against one
        ref = _open_model(reference, family)[1] if reference else family.reference(model)
        if ref is None:
            click.echo(
                "note: this model's base model is not in the cache; it is its own reference (pass --reference BASE)",
                err=True,
            )
    elif reference:
        click.echo(
            f"note: --reference is not used when judging a {family.name} model on a {request.kind if request else 'missing'} request",
            err=True,
        )
    metrics = api_evaluate(
        model, request, reference=ref, n_per_prompt=n_per_prompt, seed=seed, split=split, judge=judge
    )
    write_json(
        out or Path(model_dir) / "metrics.json",
        {**metrics, "family": family.name, "forget": request.spec() if request else None},
    )
    click.echo(family.format(metrics))
    return metrics


@cli.command()
@click.argument("model_dir")
@click.option("--method", required=True, help="Unlearning method (see `genunlearn methods`).")
@request_options(required=True)
@click.option("--out", required=True, help="Output folder for the unlearned model.")
@click.option("--config", "config_file", default=None, help="TOML/YAML file with method options.")
@click.option("--set", "sets", multiple=True, help="Method option override key=value (repeatable).")
@click.option("--steps", type=int, default=None, help="Step budget (epochs for classifiers).")
@click.option(
    "--override",
    default=None,
    help="Safe class that forget prompts should produce instead (methods with an override option, e.g. sfd).",
)
@click.option(
    "--divergence",
    default=None,
    help="f-divergence for --method fdiv: kl, jeffreys, hellinger, chi2, alpha:A (closed form); with --set form=variational also rkl, js, tv.",
)
@foreign_model_options
@placement_options
def unlearn(model_dir, method, request, out, config_file, sets, steps, override, divergence, foreign_task, scheduler):
    """Run an unlearning method on a saved model and save the result in the same format."""
    from genunlearn.config import parse_overrides, read_config_file

    values = read_config_file(config_file) if config_file else {}
    values.update(parse_overrides(sets))
    if override is not None:
        values["override"] = override
    if divergence is not None:
        values["divergence"] = divergence
    unlearn_model(model_dir, method, request, out, values, steps=steps, task=foreign_task, scheduler=scheduler)


def unlearn_model(model_dir, method, request, out, values: dict, *, steps=None, task=None, scheduler=None) -> None:
    """``unlearn`` for every family: the folder says its family, whose registered method runs."""
    from genunlearn.api import unlearn as api_unlearn
    from genunlearn.methods import get_method
    from genunlearn.families import folder_family
    from genunlearn.training.loop import resumable_run

    out_path = check_out_dir(out)
    _check_int("--steps", steps, 1)
    get_method(method, values, family=folder_family(model_dir))  # the options, checked before the model is read
    _, model = _open_model(model_dir, task=task, scheduler=scheduler)
    m = get_method(method, values, family=model.family, model=model)  # over the defaults picked for this model kind
    m.check(model, request)  # a bad request is one line, before the note below
    _say_picked_defaults(m, model, {**values, "steps": steps} if steps else values)
    with resumable_run("unlearn", model_dir, method, values, request.spec(), steps) as run:  # a rerun resumes
        result = api_unlearn(model, m, request, steps=steps, callbacks=(run,))
    _check_ranks(result, trained=not m.closed_form)
    if is_main_process():
        result.save_pretrained(out_path)
        click.echo(f"saved unlearned model ({method}, {request.spec()}) to {out_path}")
        _describe_foreign_save(out_path)


def _say_picked_defaults(method, model, values: dict) -> None:
    """One line naming the defaults this model's kind got from a benchmark's validation pick (those the
    user's options leave in force), so the settings of a run are never a surprise."""
    from genunlearn.methods.base import defaults_kind, kind_defaults, picks

    kind = defaults_kind(model)
    kept = {k: v for k, v in kind_defaults(method.name, kind).items() if k not in values}
    if kept and is_main_process():
        entry = picks()[kind][method.name]
        settings = ", ".join(f"{k}={v}" for k, v in kept.items())
        click.echo(
            f"{method.name} defaults for {kind} models: {settings} (picked by {entry['by']}; --set overrides)",
            err=True,
        )


def _describe_foreign_save(path) -> None:
    """For a diffusers-format result: which components were rewritten and which copied."""
    from genunlearn.interop.diffusers.folders import describe_save

    line = describe_save(path)
    if line:
        click.echo(line)


def _check_int(flag: str, value, low: int, high: int = 2**31 - 1) -> None:
    """A number from the command line, checked where it enters (None: the default)."""
    if value is not None and not low <= value <= high:
        raise GenUnlearnError(f"{flag} must be between {low} and {high}, got {value}")


def _open_model(model_dir, family=None, **options):
    """(family, model) of a saved folder; a config.json the network cannot be built from is one line."""
    from genunlearn.families import open_model

    try:
        fam, model = open_model(model_dir, **options)
    except GenUnlearnError:
        raise
    except (TypeError, ValueError, RuntimeError, KeyError, AttributeError, IndexError) as e:
        raise GenUnlearnError(
            f"{model_dir}: config.json holds values no model can be built from ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
        ) from None
    if family is not None and fam.name != family.name:
        raise GenUnlearnError(f"{model_dir} holds a {fam.name} model; expected a {family.name} one")
    solver = getattr(getattr(model, "process", None), "solver", None)
    if solver is not None:
        from genunlearn.processes.flow_matching import SOLVERS

        if solver not in SOLVERS:
            raise GenUnlearnError(
                f"{model_dir}/config.json: unknown solver {solver!r}; expected one of {', '.join(SOLVERS)}"
            )
    return fam, model


def _check_ranks(model, *, trained: bool = True) -> None:
    """Under ``accelerate launch``: every process must end with the same weights before one saves.
    ``trained``: the result came from training steps (else from a closed-form edit, which draws no
    batches)."""
    from genunlearn.distributed import num_processes, ranks_agree

    n = num_processes()
    if n > 1:
        if not ranks_agree(model.net):
            raise GenUnlearnError(f"the {n} processes ended with different weights; nothing was saved")
        model.info = {**model.info, "processes": n}
        if is_main_process():
            how = (
                f"each drew its own batches and their gradients were averaged: an effective batch {n}× larger, so the weights differ from a one-process run"
                if trained
                else "a closed-form edit: no batches drawn, no gradients averaged, so each process computed the edit a one-process run makes"
            )
            click.echo(f"{n} processes agree on the result ({how})")


def _unlearn_request(forget_spec, concept, anchor, *, required=True, **prompts):
    """The forget request from either --forget or --concept/--anchor (not both), with the concept
    request's --preserve, --prompts and --templates; None when nothing is named and not ``required``."""
    from genunlearn.forget.request import ForgetRequest, parse_forget

    if forget_spec and (concept is not None or anchor is not None):
        raise GenUnlearnError("give either --forget or --concept/--anchor, not both")
    if concept is not None or anchor is not None:
        if concept is not None and not concept.strip():
            raise GenUnlearnError(
                "--concept is empty: name what to erase (a word of the task, or text on a text-to-image pipeline)"
            )
        if concept is None:
            raise GenUnlearnError("--anchor needs a --concept: what to erase (e.g. --concept circle --anchor shape)")
        return ForgetRequest("concept", concept=concept, anchor=anchor, **prompts)
    if any(v is not None for v in prompts.values()):
        raise GenUnlearnError(
            f"--{'/--'.join(k for k, v in prompts.items() if v is not None)} belong to a concept request: add --concept"
        )
    if not forget_spec:
        if not required:
            return None
        raise GenUnlearnError("say what to forget: --forget SPEC (e.g. classes=3) or --concept WORD --anchor WORD")

    return parse_forget(forget_spec)


@cli.command()
@click.argument("model_dir")
@click.option(
    "--out",
    required=True,
    help="Output folder: a diffusers DDPMPipeline (model_index.json, unet/, scheduler/) plus genunlearn.json; with --delta, a .safetensors file.",
)
@click.option(
    "--delta",
    "delta_base",
    default=None,
    metavar="BASE",
    help="Write only the UNet weights MODEL_DIR changed from the diffusers folder BASE, as one safetensors file that unet.load_state_dict(delta, strict=False) applies to BASE's UNet.",
)
def export(model_dir, out, delta_base):
    """Write a genunlearn diffusion model trained with --network unet2d as a diffusers pipeline, so
    DiffusionPipeline.from_pretrained / UNet2DModel.from_pretrained open it (genunlearn reads it too);
    or, with --delta BASE, an edited diffusers model as the UNet weights it changed."""
    if delta_base is not None:
        return _export_delta(model_dir, delta_base, out)
    from genunlearn.interop.diffusers.export import check_exportable, export_diffusers

    out_path = check_out_dir(out)
    model = _open_model(model_dir)[1]
    check_exportable(model)
    if is_main_process():  # under accelerate launch, one process writes
        export_diffusers(model, out_path)
        click.echo(f"exported {model_dir} as a diffusers DDPMPipeline to {out_path}")


def _export_delta(model_dir, base, out) -> None:
    from genunlearn.io.weights import check_writable
    from genunlearn.interop.diffusers.delta import write_delta

    if not str(out).endswith(".safetensors"):
        raise GenUnlearnError(f"--out {out}: a delta is one file; name it *.safetensors")
    check_writable(out, folder=False)
    if is_main_process():
        delta = write_delta(model_dir, base, out)
        size = sum(v.numel() * v.element_size() for v in delta.values())
        click.echo(
            f"wrote {len(delta)} changed UNet tensors ({size / 2**20:.2f} MiB) of {model_dir} against {base} to {out}; apply with unet.load_state_dict(safetensors.torch.load_file(...), strict=False)"
        )


@cli.command()
@click.argument("source")
def data(source):
    """Show what SOURCE holds: classes with their ids (what --forget classes=ID means) and counts,
    image size, and the fingerprint cache keys use. SOURCE: a built-in task, a folder of class
    sub-folders (ids in alphabetical order of the folder names) or an .npz."""
    from genunlearn.data.describe import describe_data, format_description

    click.echo(format_description(describe_data(source)))


@cli.command()
def methods():
    """List the unlearning methods: name, family, model kinds, the requests they accept, what they do."""
    from genunlearn.catalogue import CATALOGUE

    for m in sorted(CATALOGUE, key=lambda m: (m.name, m.family)):
        click.echo(
            f"{m.name:>18}  {m.family:<10}  models {'/'.join(m.model_kinds):<16}  accepts {', '.join(m.accepts):<34}  {m.summary}"
        )


@cli.command()
@click.option("--suite", type=click.Choice(["quick", "full"]), default="quick", show_default=True)
@click.option("--out", default="runs", show_default=True, help="Runs folder (resumable: finished cells are skipped).")
@click.option(
    "--no-probes", is_flag=True, help="Skip the robustness probes (relearning and the family's attack) on each cell."
)
@placement_options
def bench(suite, out, no_probes):
    """Run every registered method on every task of a suite against base and retrain, then report."""
    from genunlearn.bench.report import build_report
    from genunlearn.bench.runner import run_suite

    run_suite(suite, out, probes=not no_probes)
    click.echo(f"report: {build_report(out)}")


@cli.command()
@click.argument("runs", default="runs")
def report(runs):
    """Rebuild RUNS/report.md (tables and figures) from the run folders' metrics.json."""
    from genunlearn.bench.report import build_report

    if not Path(runs).is_dir():
        raise GenUnlearnError(f"{runs}: no such runs folder")
    click.echo(f"report: {build_report(runs)}")


@cli.command()
@click.option("--out", default="runs/demo", show_default=True, help="Folder for the demo's models and report.")
@placement_options
def demo(out):
    """Digits, forget class 3: the released base and retrain models and the two fastest methods,
    judged; prints the leaderboard and where the report is (about 90 s on 2 cores)."""
    from genunlearn.demo import run_demo

    run_demo(Path(out))


@cli.command()
@click.argument("model_dir")
@click.option(
    "--forget",
    "forget_spec",
    required=True,
    help="What the model should have forgotten, e.g. classes=3 or energy=region:quadrant.",
)
@click.option(
    "--probe",
    "probe_name",
    type=click.Choice(PROBES),
    default=None,
    help="relearn: fine-tune on k forget samples (I2I: the encoder); cond: optimised conditioning attack; noise: initial-noise search; complete (I2I): completion from a larger visible area; prompt (text-to-image pipelines): soft prompt tokens optimised to bring the concept back (default: complete on I2I models, cond on conditional models, else noise).",
)
@click.option(
    "--reference",
    default=None,
    help="The retrain model (never saw the forget data): its curve / ASR beside the model's; relearn's AUC ratio. prompt: the original pipeline, which draws the concept images and is attacked too.",
)
@click.option(
    "--judge",
    default=None,
    help="prompt: a genunlearn classifier or CLIP folder judging the samples (as evaluate --judge); default: the task's judge.",
)
@click.option(
    "--out", default=None, help="Output folder for <probe>.json and <probe>_samples.npz (default: MODEL_DIR/probes)."
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    help="Probe option key=value (cond: space (mix or free), steps, lr, batch_size, n, seed; noise: rounds, n, step, seed; relearn: k, checkpoints, n, batch_size, lr, seed; complete: visible, n, seed; prompt: steps, lr, tokens, n, images, batch_size, seed).",
)
@placement_options
def probe(model_dir, forget_spec, probe_name, reference, judge, out, sets):
    """Attack a model's forgetting: relearning, a white-box conditioning attack, or a noise search;
    prints a table, writes JSON and the attack's samples (.npz, the `sample` format)."""
    from genunlearn.io.weights import check_writable, write_json
    from genunlearn.config import parse_overrides
    from genunlearn.data.fingerprint import model_dataset
    from genunlearn.eval.probes import check_applicable, default_probe, format_probe, probe_config, run_probe
    from genunlearn.forget.request import parse_forget
    from genunlearn.io.samples import write_npz

    request = parse_forget(forget_spec)
    values = parse_overrides(sets)
    out_dir = Path(out) if out else Path(model_dir) / "probes"
    if out_dir.exists() and not out_dir.is_dir():
        raise GenUnlearnError(f"{out_dir} exists and is not a folder")
    if not is_main_process():
        return
    if judge is not None:
        from genunlearn.eval.concept import judge_kind

        judge_kind(judge)  # the wrong kind of folder is one line before any model is loaded
    family, model = _open_model(model_dir)
    name = probe_name or default_probe(model, request)
    if judge is not None and name != "prompt":
        raise GenUnlearnError(f"--judge judges the prompt probe's samples; the {name} probe uses the task's judge")
    check_applicable(name, model, request)
    if name != "prompt":  # the prompt attack resolves its own request (a pipeline may have no data)
        model_dataset(model).split(request)  # the request resolves against the model's data
    cfg = probe_config(name, values)
    ref = _open_model(reference, family)[1] if reference else None
    if ref is not None:
        check_applicable(name, ref, request)
    check_writable(out_dir / f"{name}.json", folder=False)
    result = run_probe(name, model, request, reference=ref, config=values, judge=judge)
    arrays = result.pop("arrays", None)
    result.update(
        {
            "model_dir": str(model_dir),
            "reference_dir": reference,
            "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(cfg).items()},
        }
    )
    click.echo(format_probe(result))
    write_json(out_dir / f"{name}.json", result)
    if arrays is not None:
        write_npz(out_dir / f"{name}_samples.npz", arrays)
    click.echo(
        f"wrote {out_dir / f'{name}.json'}"
        + (
            f" and {out_dir / f'{name}_samples.npz'} ({len(arrays['labels'])} attacked samples)"
            if arrays is not None
            else ""
        )
    )


# --- `genunlearn classify ...`: an alias of train/unlearn/evaluate for classifiers ----------------
CLASSIFY_NAMES = {"rl": "random_label", "ft": "finetune", "ga": "grad_ascent"}  # SalUn's short names


def _classify_request(task, forget_spec, fraction, seed):
    """--forget SPEC or a seeded --random FRACTION of the training set (exactly one)."""
    from genunlearn.classify.model import random_request
    from genunlearn.data import load_dataset
    from genunlearn.forget.request import parse_forget

    if (forget_spec is None) == (fraction is None):
        raise GenUnlearnError("give exactly one of --forget (e.g. classes=3) or --random FRACTION")
    return parse_forget(forget_spec) if forget_spec else random_request(load_dataset(task), fraction, seed)


def _forget_options(f):
    f = click.option(
        "--seed", type=int, default=0, show_default=True, help="Seed (also picks the --random forget set)."
    )(f)
    f = click.option(
        "--random",
        "fraction",
        type=float,
        default=None,
        help="Forget a seeded random fraction of the training set, e.g. 0.1.",
    )(f)
    return click.option("--forget", "forget_spec", default=None, help="What to forget: classes=3 or samples=4,17,...")(
        f
    )


@cli.group()
def classify():
    """Classifier unlearning (SalUn and baselines): `train/unlearn/evaluate` for classifier models."""


@classify.command("train")
@click.option("--task", default="digits", show_default=True, help="Image task or data folder/.npz.")
@click.option("--out", required=True, help="Output classifier folder.")
@click.option("--epochs", type=int, default=None, help="Training epochs (default: the recipe's).")
@_forget_options
@placement_options
def classify_train(task, out, epochs, forget_spec, fraction, seed):
    """Train the original classifier (or, with a forget set, the retrain gold standard)."""
    request = None if forget_spec is None and fraction is None else _classify_request(task, forget_spec, fraction, seed)
    train_model(task, "classifier", out, request, steps=epochs, seed=seed)


@classify.command("unlearn")
@click.argument("model_dir")
@click.option(
    "--method",
    type=click.Choice(["salun", "rl", "ft", "ga", "l1_sparse", "retrain", "random_label", "finetune", "grad_ascent"]),
    default="salun",
    show_default=True,
)
@click.option("--out", required=True, help="Output folder for the unlearned classifier.")
@click.option(
    "--set", "sets", multiple=True, help="Option override key=value (lr, epochs, mask_ratio, alpha, l1, ...)."
)
@_forget_options
@placement_options
def classify_unlearn(model_dir, method, out, sets, forget_spec, fraction, seed):
    """Unlearn a forget set from a saved classifier."""
    from genunlearn.config import parse_overrides
    from genunlearn.families import get_family

    task = get_family("classifier").load(model_dir).info.get("task", "digits")
    values = parse_overrides(sets)
    if method != "retrain":
        values.setdefault("seed", seed)
    unlearn_model(
        model_dir, CLASSIFY_NAMES.get(method, method), _classify_request(task, forget_spec, fraction, seed), out, values
    )


@classify.command("evaluate")
@click.argument("model_dir")
@click.option("--retrain", "retrain_dir", default=None, help="Retrain classifier folder: also report the Avg. Gap.")
@_forget_options
@placement_options
def classify_evaluate(model_dir, retrain_dir, forget_spec, fraction, seed):
    """UA, RA, TA, MIA-Efficacy (in %), and Avg. Gap to a retrained classifier."""
    from genunlearn.eval.classification import avg_gap
    from genunlearn.data.fingerprint import model_dataset
    from genunlearn.families import get_family

    family = get_family("classifier")
    model = family.load(model_dir)
    task = model.info.get("task", "digits")
    request = _classify_request(task, forget_spec, fraction, seed)
    model_dataset(model).split(request)  # the model's data (fingerprint checked) and the request, before any work
    retrain = family.load(retrain_dir) if retrain_dir else None
    evaluate = family.evaluator(task, request)
    m = evaluate(model)
    if retrain is not None:
        m["AvgGap"] = avg_gap(m, evaluate(retrain))
    click.echo("  ".join(f"{k} {v:.2f}" for k, v in m.items()))


def main(argv=None) -> None:
    try:
        cli.main(args=argv, prog_name="genunlearn", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:  # bad option or argument: one line, like every other bad input
        hint = (
            f" (see genunlearn {e.ctx.info_name} --help)"
            if getattr(e, "ctx", None) is not None and e.ctx.parent is not None
            else " (see genunlearn --help)"
        )
        click.echo(
            f"error: {e.format_message()}{hint if isinstance(e, click.UsageError) else ''}".replace("\n", " "), err=True
        )
        sys.exit(2)
    except GenUnlearnError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except OSError as e:  # the disk said no (full, read-only, permissions): one line, what and where
        where = f": {e.filename}" if getattr(e, "filename", None) else ""
        click.echo(f"error: {e.strerror or e}{where}", err=True)
        sys.exit(2)
    except MemoryError:
        click.echo("error: out of memory (ask for fewer samples or a smaller batch)", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
