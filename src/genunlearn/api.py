"""The Python API: the same steps as the CLI, as functions (``import genunlearn as gu``).

    model = gu.pretrained("digits", "flow")                  # released, cached or trained
    request = gu.request("classes=3")
    result = gu.unlearn(model, "continualflow", request)
    print(gu.evaluate(result, request))
    gu.save(result, "runs/cf-forget3")

Each function checks its inputs before any work and fails with a ``GenUnlearnError`` of one line.
The functions that run networks take ``device`` (auto, cpu, cuda, mps), ``precision`` (fp32, bf16,
fp16) and ``batch_size`` (samples per network call when sampling and judging), as the CLI's
``--device/--precision/--batch-size``; left None they keep the current placement
(``gu.use_device(...)`` sets one for a block; default: auto, fp32, 1000).
"""

from __future__ import annotations

import functools
from pathlib import Path

from genunlearn.errors import GenUnlearnError


def request(spec: str):
    """A ``ForgetRequest`` from a spec: ``classes=3``, ``classes=3,5``, ``samples=4,17``,
    ``concept=circle;anchor=square`` or ``energy=region:quadrant``."""
    from genunlearn.forget.request import parse_forget

    return parse_forget(spec)


def _as_request(value):
    return request(value) if isinstance(value, str) else value


def _placed(fn):
    """Give an API function ``device=``, ``precision=`` and ``batch_size=`` (checked before any
    work); it runs on that placement, and the models it is handed are moved onto its device."""

    @functools.wraps(fn)
    def run(*args, device: str | None = None, precision: str | None = None, batch_size: int | None = None, **kwargs):
        from genunlearn.device import use
        from genunlearn.io.model_folder import ModelFolder

        with use(device=device, precision=precision, batch_size=batch_size) as placement:
            for value in (*args, *kwargs.values()):
                if isinstance(value, ModelFolder):  # the model to unlearn, judge or sample, or a reference
                    value.to(placement.device)
            return fn(*args, **kwargs)

    return run


@_placed
def pretrained(
    task: str = "digits",
    kind: str = "flow",
    *,
    forget=None,
    steps: int | None = None,
    seed: int = 0,
    use_cache: bool = True,
):
    """The base model of ``task`` (``kind``: a ``train --model`` value: flow, diffusion, sd,
    classifier, i2i) by its recipe, or with ``forget`` (a spec or request) the retrain-from-scratch
    gold standard: a released model where one matches, else the cache, else trained (and cached)."""
    from genunlearn.data import load_dataset
    from genunlearn.data.fingerprint import canonical_task
    from genunlearn.device import current
    from genunlearn.families import family_for_kind

    forget = _as_request(forget)
    task = canonical_task(task)
    family = family_for_kind(kind)
    job = family.job(task, kind, forget=forget, steps=steps, seed=seed)
    if forget is not None:
        load_dataset(task).split(forget)  # a bad request fails before any training
    return family.train(job, use_cache=use_cache).to(current().device)


@_placed
def load(path, *, task: str | None = None, scheduler: str | None = None):
    """A saved model folder (genunlearn or diffusers; ``task``/``scheduler`` describe a diffusers one)."""
    from genunlearn.families import open_model

    return open_model(path, task=task, scheduler=scheduler)[1]


def family_of(model):
    """The model family (``families.Family``) a model belongs to."""
    from genunlearn.families import get_family

    return get_family(model.family)


@_placed
def unlearn(model, method, request, *, steps: int | None = None, callbacks=(), **options):
    """``model`` with ``request`` forgotten by ``method`` (a name from ``gu.list_methods()`` or a
    ``Method``); ``options`` are the method's config values, ``steps`` its budget; ``callbacks`` go to
    its training loop (``(step, record)`` functions, ``Snapshots``, a ``RunFolder`` to checkpoint in).
    The result's ``info`` records the method and the request, as ``genunlearn unlearn`` does."""
    from genunlearn.catalogue import CATALOGUE
    from genunlearn.data.fingerprint import model_dataset
    from genunlearn.methods import get_method
    from genunlearn.progress import StepBar, stage

    request = _as_request(request)
    m = get_method(method, options, family=model.family, model=model) if isinstance(method, str) else method
    m.check(model, request)
    data = None  # a method that reads no images (a closed-form edit; a prompt-only erasure) gets none
    if m.reads_data(model, request):
        if not getattr(model, "has_task", True):
            raise GenUnlearnError(
                f"{m.name} trains on the model's images and this pipeline has no task: pass --task (its data), or use a method that needs none (esd, concept_ablation, fdiv, uce, rece)"
            )
        data = model.in_model_space(
            model_dataset(model)
        )  # the model's data (fingerprint checked), as the model consumes it
        data.split(request)
    unit = (
        "epochs" if m.family == "classifier" else "steps"
    )  # a classifier's budget counts epochs; the bar counts loop steps
    count = steps or getattr(m.config, unit, None)
    what = next((e.summary for e in CATALOGUE if (e.family, e.name) == (m.family, m.name)), None)
    stage(f"{m.name}: forgetting {request.spec()}" + (f" in {count} {unit}" if count else ""), what)
    with StepBar(count if unit == "steps" else None, m.name) as bar:
        result = m.unlearn(model, request, data, budget=steps, callbacks=(bar, *callbacks))
    result.info = {**result.info, "method": m.name, "forget": request.spec()}
    return result


@_placed
def evaluate(
    model, request=None, *, reference=None, n_per_prompt: int = 100, seed: int = 0, split: str = "test", judge=None
) -> dict:
    """The family's metrics for ``model`` against ``request`` (what ``genunlearn evaluate`` and
    ``bench`` report); ``reference`` is the base model where the family judges against one
    (default: the model's base, from the cache). Real references come from the held-out ``split``:
    ``"test"`` to report, ``"val"`` to tune settings on. ``judge``: a judge folder (a genunlearn
    classifier or a CLIP model) that judges a text-to-image pipeline on the request's prompts
    instead of the task's built-in judge; a pipeline with no task needs one."""
    from genunlearn.data.fingerprint import model_dataset
    from genunlearn.progress import stage

    request = _as_request(request)
    family = family_of(model)
    if judge is not None or not getattr(model, "has_task", True):
        from genunlearn.eval.concept import prompt_evaluator

        if judge is None:
            raise GenUnlearnError(
                "this pipeline has no task, so no built-in judge: pass --judge (a genunlearn classifier folder or a CLIP folder)"
            )
        if not hasattr(model, "prompt_cond"):
            raise GenUnlearnError(
                "--judge judges a text-to-image pipeline on prompts; this model has a built-in judge (drop --judge)"
            )
        evaluator = prompt_evaluator(
            judge, request, reference=reference, n_per_prompt=n_per_prompt, seed=seed, split=split
        )
        stage(
            f"evaluating the {model.info.get('role', model.kind)} model",
            f"{n_per_prompt} samples per prompt, judged by {judge}",
        )
        return {**evaluator(model), "reference_split": split}

    data = model_dataset(model)  # the model's data, checked against its fingerprint
    if request is not None:
        data.split(request)
    ref = None
    if family.uses_reference(request):
        ref = reference or family.reference(model)
    task = model.info.get("task", model.data["name"])
    judge = family.evaluator(task, request, reference=ref, n_per_prompt=n_per_prompt, seed=seed, split=split)
    from genunlearn.data import caption_pool
    from genunlearn.eval.erasure import RETAINED_ROWS, ROWS_PER_CONCEPT

    protocol = request is not None and request.kind == "concept" and caption_pool(task) is not None
    how = f"UnlearnCanvas's protocol: {ROWS_PER_CONCEPT} prompts per erased concept, {RETAINED_ROWS} retained, one sample each"
    stage(
        f"evaluating the {model.info.get('role', model.kind)} model",
        f"{how if protocol else f'{n_per_prompt} samples per prompt'}, judged by the {task} judge",
    )
    return {**judge(model), "reference_split": split}


@_placed
def sample(
    model,
    n: int,
    *,
    seed: int = 0,
    labels: str | None = None,
    prompt: str | None = None,
    steps: int | None = None,
    guidance: float | None = None,
    mask: str | None = None,
) -> dict:
    """``n`` seeded samples as the arrays ``genunlearn sample`` writes: images uint8 ``(N, H, W, C)``
    or points float32 ``(N, 2)`` with their labels; an I2I model's completions with originals,
    masked inputs and masks (``mask``: inpaint or outpaint)."""
    from genunlearn.errors import GenUnlearnError

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise GenUnlearnError(f"n must be a whole number >= 1, got {n!r}")
    return family_of(model).sample(
        model, n, seed=seed, labels=labels, prompt=prompt, steps=steps, guidance=guidance, mask=mask
    )


def check_out_dir(out) -> Path:
    """An output folder must be new, empty, or a model genunlearn wrote (its own format, or a
    diffusers folder listed in its manifest) that we may replace (its other entries are kept);
    checked, writable, before any work."""
    from genunlearn.io.weights import MANIFEST, check_writable, read_config

    path = Path(out)
    check_writable(out, folder=True)
    if path.exists():
        if not path.is_dir():
            raise GenUnlearnError(f"{path} exists and is not a folder; refusing to overwrite it")
        if (path / MANIFEST).is_file() and not (path / "config.json").is_file():
            return path  # a diffusers folder genunlearn saved
        if any(path.iterdir()) and not (path / "config.json").is_file():
            raise GenUnlearnError(
                f"{path} is a non-empty folder that is not a genunlearn model; refusing to overwrite it"
            )
        if (path / "config.json").is_file():
            read_config(path)  # a foreign config.json: refuse
    return path


def save(model, path) -> Path:
    """Save ``model`` as a folder (``config.json`` + weights, atomically); refuses a folder that
    is not a genunlearn model. Returns the path."""
    path = check_out_dir(path)
    model.save_pretrained(path)
    return path


def list_methods():
    """The unlearning methods: ``(family, name, model_kinds, accepts, summary)`` rows."""
    from genunlearn.catalogue import CATALOGUE

    return CATALOGUE
