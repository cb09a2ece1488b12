"""``genunlearn classify train|unlearn|evaluate``: classifier unlearning from the command line.

Import-light on purpose (torch is imported inside the commands) so ``genunlearn --help`` stays fast.
A forget set is ``--forget classes=3`` / ``samples=...`` or ``--random FRACTION`` (seeded).
"""

from __future__ import annotations

import click

from genunlearn.errors import GenUnlearnError

METHOD_NAMES = ("salun", "rl", "ft", "ga", "l1_sparse", "retrain")


def _request(data, forget_spec, fraction, seed):
    from genunlearn.classify.model import check_request, random_request
    from genunlearn.forget import parse_forget

    if (forget_spec is None) == (fraction is None):
        raise GenUnlearnError("give exactly one of --forget (e.g. classes=3) or --random FRACTION")
    request = parse_forget(forget_spec) if forget_spec else random_request(data, fraction, seed)
    check_request(request)
    data.split(request)  # unknown classes / empty splits fail here, before any work
    return request


def _forget_options(f):
    f = click.option("--seed", type=int, default=0, show_default=True, help="Seed (also picks the --random forget set).")(f)
    f = click.option("--random", "fraction", type=float, default=None, help="Forget a seeded random fraction of the training set, e.g. 0.1.")(f)
    return click.option("--forget", "forget_spec", default=None, help="What to forget: classes=3 or samples=4,17,...")(f)


@click.group()
def classify():
    """Classifier unlearning (SalUn and baselines) on an image task's classes."""


@classify.command()
@click.option("--task", default="digits", show_default=True, help="Image task or data folder/.npz.")
@click.option("--out", required=True, help="Output classifier folder.")
@click.option("--epochs", type=int, default=None, help="Training epochs (default: the recipe's).")
@_forget_options
def train(task, out, epochs, forget_spec, fraction, seed):
    """Train the original classifier (or, with a forget set, the retrain gold standard)."""
    from genunlearn.classify.model import Recipe, save_classifier, train_classifier, with_epochs
    from genunlearn.cli import _check_out_dir
    from genunlearn.data import load_dataset

    path = _check_out_dir(out)
    data = load_dataset(task)
    request = None if forget_spec is None and fraction is None else _request(data, forget_spec, fraction, seed)
    train_data = data if request is None else data.split(request)[1]
    net, seconds = train_classifier(train_data, seed, with_epochs(Recipe(), epochs))
    info = {"task": task, "seed": seed, "role": "retrain" if request else "original", "forget": request.spec() if request else None, "seconds": seconds}
    save_classifier(path, net, info)
    click.echo(f"saved {info['role']} classifier to {path} ({seconds:.1f}s)")


@classify.command()
@click.argument("model_dir")
@click.option("--method", type=click.Choice(METHOD_NAMES), default="salun", show_default=True)
@click.option("--out", required=True, help="Output folder for the unlearned classifier.")
@click.option("--set", "sets", multiple=True, help="Option override key=value (lr, epochs, mask_ratio, alpha, l1, ...).")
@_forget_options
def unlearn(model_dir, method, out, sets, forget_spec, fraction, seed):
    """Unlearn a forget set from a saved classifier."""
    from genunlearn.classify.model import load_classifier, save_classifier
    from genunlearn.classify.unlearn import UnlearnConfig, unlearn_request
    from genunlearn.cli import _check_out_dir
    from genunlearn.config import build_config, parse_overrides
    from genunlearn.data import load_dataset

    path = _check_out_dir(out)
    net, info = load_classifier(model_dir)
    data = load_dataset(info.get("task", "digits"))
    request = _request(data, forget_spec, fraction, seed)
    cfg = build_config(UnlearnConfig, {**parse_overrides(sets), "method": method, "seed": seed})
    net, run = unlearn_request(net, data, request, cfg)
    save_classifier(path, net, {**info, "role": "unlearned", "forget": request.spec(), "unlearn": run})
    click.echo(f"saved unlearned classifier ({method}, {run['seconds']:.1f}s) to {path}")


@classify.command()
@click.argument("model_dir")
@click.option("--retrain", "retrain_dir", default=None, help="Retrain classifier folder: also report the Avg. Gap.")
@_forget_options
def evaluate(model_dir, retrain_dir, forget_spec, fraction, seed):
    """UA, RA, TA, MIA-Efficacy (in %), and Avg. Gap to a retrained classifier."""
    from genunlearn.classify.model import eval_splits, load_classifier
    from genunlearn.data import load_dataset
    from genunlearn.eval.classification import avg_gap, classification_metrics

    net, info = load_classifier(model_dir)
    task = info.get("task", "digits")
    data = load_dataset(task)
    request = _request(data, forget_spec, fraction, seed)
    splits = eval_splits(data, load_dataset(task, "test"), request)
    m = classification_metrics(net, *splits)
    if retrain_dir:
        m["AvgGap"] = avg_gap(m, classification_metrics(load_classifier(retrain_dir)[0], *splits))
    click.echo("  ".join(f"{k} {v:.2f}" for k, v in m.items()))
