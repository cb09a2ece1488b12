"""Command-line interface. Heavy imports happen inside commands so ``--help`` stays instant.

Every user error is printed as one line (``error: ...``) with exit code 2; nothing on disk is
written until the inputs have been checked, and outputs are written atomically.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from genunlearn.errors import GenUnlearnError

TASKS = "ring8|checkerboard|moons|circles|digits|shapes, a folder of class sub-folders, or an .npz"


def _check_out_dir(out: str) -> Path:
    """An output folder must be new, empty, or a genunlearn checkpoint we may replace."""
    path = Path(out)
    if path.exists():
        if not path.is_dir():
            raise GenUnlearnError(f"{path} exists and is not a folder; refusing to overwrite it")
        if any(path.iterdir()) and not (path / "config.json").is_file():
            raise GenUnlearnError(f"{path} is a non-empty folder that is not a genunlearn model; refusing to overwrite it")
        if (path / "config.json").is_file():
            from genunlearn.checkpoint import read_config

            read_config(path)  # a foreign config.json: refuse
    return path


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="genunlearn")
def cli():
    """genunlearn: make a trained generative model forget, and prove it."""


@cli.command()
@click.option("--task", required=True, help=f"Data: {TASKS}.")
@click.option("--model", "kind", type=click.Choice(["flow", "diffusion", "i2i"]), default="flow", show_default=True, help="i2i: an inpainting/outpainting encoder-decoder.")
@click.option("--out", required=True, help="Output model folder.")
@click.option("--forget", "forget_spec", default=None, help="Train on the retain split only (retrain gold standard), e.g. classes=3.")
@click.option("--steps", type=int, default=None, help="Training steps (default: the task's recipe).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--unconditional", is_flag=True, help="Ignore labels (image tasks are class-conditional by default).")
@click.option("--no-cache", is_flag=True, help="Train even if an identical model is cached.")
def train(task, kind, out, forget_spec, steps, seed, unconditional, no_cache):
    """Train a base model (or, with --forget, the retrain-from-scratch gold standard)."""
    from genunlearn.data import load_dataset
    from genunlearn.forget import parse_forget

    out_path = _check_out_dir(out)
    request = parse_forget(forget_spec)
    data = load_dataset(task)
    if request is not None:
        data.split(request)  # validate the request before any training
    if steps is not None and steps < 1:
        raise GenUnlearnError("--steps must be >= 1")
    if kind == "i2i":
        from genunlearn.i2i.recipe import I2IJob, train_cached as train_i2i_cached

        if unconditional:
            raise GenUnlearnError("--unconditional does not apply to i2i models (they are unconditional)")
        model = train_i2i_cached(I2IJob(task, forget=request, steps=steps, seed=seed), use_cache=not no_cache)
    else:
        from genunlearn.recipes import TrainJob, train_cached

        overrides = {"conditional": False} if unconditional else {}
        model = train_cached(TrainJob(task, kind, forget=request, steps=steps, seed=seed, overrides=overrides), use_cache=not no_cache)
    model.save_pretrained(out_path)
    click.echo(f"saved {model.info['role']} model to {out_path} (trained {model.info['train_seconds']:.1f}s, key {model.info['key']})")


@cli.command()
@click.argument("model_dir")
@click.option("--n", type=int, default=64, show_default=True, help="Number of samples.")
@click.option("--out", required=True, help="Output .npz file.")
@click.option("--labels", default=None, help="Class ids or names, comma-separated, cycled over the samples (default: all classes evenly).")
@click.option("--prompt", default=None, help='A prompt for multi-attribute models, e.g. "a red circle".')
@click.option("--steps", type=int, default=None, help="Sampler steps (default: the model's).")
@click.option("--guidance", type=float, default=None, help="Classifier-free guidance scale s.")
@click.option("--mask", type=click.Choice(["inpaint", "outpaint"]), default=None, help="I2I models: complete held-out images with the centre hidden (inpaint, default) or only the centre kept (outpaint).")
@click.option("--seed", type=int, default=0, show_default=True)
def sample(model_dir, n, out, labels, prompt, steps, guidance, mask, seed):
    """Draw samples into an .npz: images uint8 (N,H,W,C) or samples float32 (N,2), plus labels.

    On an I2I model: completions of seeded held-out images (of --labels classes), with their
    originals, masked inputs and hidden-pixel masks."""
    from genunlearn.sampling import sample_to_npz

    if n < 1:
        raise GenUnlearnError("--n must be >= 1")
    if not out.endswith(".npz"):
        raise GenUnlearnError(f"--out must be an .npz file, got {out!r}")
    if _is_i2i(model_dir):
        from genunlearn.i2i.sampling import completions_to_npz

        if prompt or steps is not None or guidance is not None:
            raise GenUnlearnError("--prompt/--steps/--guidance do not apply to i2i models")
        path = completions_to_npz(model_dir, n, out, mask=mask or "inpaint", labels=labels, seed=seed)
        click.echo(f"wrote {n} {mask or 'inpaint'} completions (with originals and masked inputs) to {path}")
        return
    if mask is not None:
        raise GenUnlearnError("--mask applies to i2i models only")
    path = sample_to_npz(model_dir, n, out, labels=labels, prompt=prompt, steps=steps, guidance=guidance, seed=seed)
    click.echo(f"wrote {n} samples to {path}")


@cli.command()
@click.argument("model_dir")
@click.option("--forget", "forget_spec", default=None, help="What the model should have forgotten, e.g. classes=3.")
@click.option("--n-per-prompt", type=int, default=100, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", default=None, help="Metrics JSON (default: MODEL_DIR/metrics.json).")
@click.option("--original", default=None, help="I2I models: the original model, whose completions of noise give S_noise (default: MODEL_DIR itself).")
def evaluate(model_dir, forget_spec, n_per_prompt, seed, out, original):
    """Judge a model: forget metrics, retained quality (accuracy, FD/KID with floor) or 2D mass/MMD;
    for I2I models, completion similarity / FD / judge accuracy / S_noise per mask and split."""
    from genunlearn.checkpoint import write_json
    from genunlearn.data import load_dataset
    from genunlearn.forget import parse_forget

    request = parse_forget(forget_spec)
    if _is_i2i(model_dir):
        from genunlearn.eval.i2i import evaluate_i2i, format_i2i
        from genunlearn.i2i.model import I2IModel
        from genunlearn.i2i.unlearn import proxy_classes

        if request is None:
            raise GenUnlearnError("I2I evaluation compares forget and retain classes: give --forget classes=...")
        model = I2IModel.from_pretrained(model_dir)
        reference = I2IModel.from_pretrained(original) if original else None
        metrics = evaluate_i2i(model, request, reference=reference, exclude_classes=proxy_classes(model.info.get("unlearn", {})), seed=seed)
        write_json(out or Path(model_dir) / "metrics.json", {**metrics, "forget": request.spec()})
        click.echo(format_i2i(metrics))
        return
    if original is not None:
        raise GenUnlearnError("--original applies to i2i models only")
    from genunlearn.eval.evaluate import evaluate as run_eval
    from genunlearn.generative import GenerativeModel

    model = GenerativeModel.from_pretrained(model_dir)
    if request is not None:
        load_dataset(model.info.get("task", model.data["name"])).split(request)
    metrics = run_eval(model, request, n_per_prompt=n_per_prompt, seed=seed)
    metrics["forget"] = request.spec() if request else None
    write_json(out or Path(model_dir) / "metrics.json", metrics)
    click.echo(format_metrics(metrics))


def _is_i2i(model_dir) -> bool:
    from genunlearn.i2i.model import is_i2i

    return is_i2i(model_dir)


def format_metrics(metrics: dict) -> str:
    lines = []
    for k, v in metrics.items():
        if isinstance(v, dict):
            v = ", ".join(f"{kk}: {vv:.3f}" if isinstance(vv, float) else f"{kk}: {vv}" for kk, vv in v.items())
        elif isinstance(v, list):
            v = "[" + ", ".join(f"{x:.3f}" for x in v) + "]"
        elif isinstance(v, float):
            v = f"{v:.4f}"
        lines.append(f"{k:>22}: {v}")
    return "\n".join(lines)


@cli.command()
@click.argument("model_dir")
@click.option("--method", required=True, help="Unlearning method (see `genunlearn methods`).")
@click.option("--forget", "forget_spec", default=None, help="What to forget, e.g. classes=3 (or use --concept/--anchor).")
@click.option("--concept", default=None, help="Concept word to erase, e.g. circle (same as --forget 'concept=circle;anchor=...').")
@click.option("--anchor", default=None, help="What the concept should become, e.g. shape (generic) or square (sibling).")
@click.option("--out", required=True, help="Output folder for the unlearned model.")
@click.option("--config", "config_file", default=None, help="TOML/YAML file with method options.")
@click.option("--set", "sets", multiple=True, help="Method option override key=value (repeatable).")
@click.option("--steps", type=int, default=None, help="Step budget.")
@click.option("--override", default=None, help="Safe class that forget prompts should produce instead (methods with an override option, e.g. sfd).")
@click.option("--divergence", default=None, help="f-divergence for --method fdiv: kl, jeffreys, hellinger, chi2, alpha:A (closed form); with --set form=variational also rkl, js, tv.")
def unlearn(model_dir, method, forget_spec, concept, anchor, out, config_file, sets, steps, override, divergence):
    """Run an unlearning method on a saved model and save the result in the same format."""
    from genunlearn.config import parse_overrides, read_config_file
    from genunlearn.data import load_dataset
    from genunlearn.methods import get_method

    out_path = _check_out_dir(out)
    values = read_config_file(config_file) if config_file else {}
    values.update(parse_overrides(sets))
    if override is not None:
        values["override"] = override
    if divergence is not None:
        values["divergence"] = divergence
    request = _unlearn_request(forget_spec, concept, anchor)
    m = get_method(method, values)
    if _is_i2i(model_dir):
        from genunlearn.i2i.model import I2IModel as loader
    else:
        from genunlearn.generative import GenerativeModel as loader
    model = loader.from_pretrained(model_dir)
    m.check(model, request)
    data = load_dataset(model.info.get("task", model.data["name"]))
    data.split(request)
    result = m.unlearn(model, request, data, budget=steps)
    result.info = {**result.info, "method": method, "forget": request.spec()}
    result.save_pretrained(out_path)
    click.echo(f"saved unlearned model ({method}, {request.spec()}) to {out_path}")


def _unlearn_request(forget_spec, concept, anchor):
    """The forget request from either --forget or --concept/--anchor (not both)."""
    from genunlearn.forget import ForgetRequest, parse_forget

    if forget_spec and (concept or anchor):
        raise GenUnlearnError("give either --forget or --concept/--anchor, not both")
    if concept or anchor:
        if not (concept and anchor):
            raise GenUnlearnError("--concept and --anchor go together (e.g. --concept circle --anchor shape)")
        return ForgetRequest("concept", concept=concept, anchor=anchor)
    if not forget_spec:
        raise GenUnlearnError("say what to forget: --forget SPEC (e.g. classes=3) or --concept WORD --anchor WORD")
    return parse_forget(forget_spec)


@cli.command()
def methods():
    """List the registered unlearning methods and the requests they accept."""
    from genunlearn.methods import REGISTRY, load_all

    load_all()
    for name, cls in sorted(REGISTRY.items()):
        click.echo(f"{name:>18}: accepts {', '.join(cls.accepts)}; models {', '.join(cls.model_kinds)}")


@cli.command()
@click.option("--suite", type=click.Choice(["quick", "full"]), default="quick", show_default=True)
@click.option("--out", default="runs", show_default=True, help="Runs folder (resumable: finished cells are skipped).")
def bench(suite, out):
    """Run every registered method on every task of a suite against base and retrain, then report."""
    from genunlearn.bench.report import build_report
    from genunlearn.bench.runner import run_suite

    run_suite(suite, out)
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
def demo(out):
    """Digits, forget class 3: base, retrain and the two fastest methods, judged; prints the leaderboard."""
    from genunlearn.demo import run_demo

    run_demo(Path(out))


from genunlearn.classify.cli import classify  # noqa: E402
cli.add_command(classify)


def main(argv=None) -> None:
    try:
        cli.main(args=argv, prog_name="genunlearn", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except GenUnlearnError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
