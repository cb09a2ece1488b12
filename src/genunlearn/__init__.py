"""genunlearn: machine unlearning for generative models.

    import genunlearn as gu
    model = gu.pretrained("digits", "flow")          # a released, cached or freshly trained base model
    request = gu.request("classes=3")
    result = gu.unlearn(model, "continualflow", request, steps=200)
    print(gu.evaluate(result, request))
    gu.save(result, "runs/cf-forget3")

Kept import-light: the names below load on first use (module ``__getattr__``), so the CLI's
``--help`` and error paths never pay for torch. See ``docs/python.md``.
"""

__version__ = "0.1.0"

from genunlearn.errors import GenUnlearnError  # noqa: E402  (pure Python, cheap)

# public name → "module:attribute", imported on first access
_LAZY = {
    **{
        name: f"genunlearn.api:{name}"
        for name in (
            "pretrained",
            "load",
            "request",
            "unlearn",
            "evaluate",
            "sample",
            "save",
            "list_methods",
            "family_of",
        )
    },
    "use_device": "genunlearn.device:use",
    "ForgetRequest": "genunlearn.forget.request:ForgetRequest",
    "GenerativeModel": "genunlearn.generative.model:GenerativeModel",
    "ClassifierModel": "genunlearn.classify.model:ClassifierModel",
    "get_method": "genunlearn.methods:get_method",
    "load_dataset": "genunlearn.data:load_dataset",
    "describe_data": "genunlearn.data.describe:describe_data",
    "run_demo": "genunlearn.demo:run_demo",
}

__all__ = ["GenUnlearnError", "__version__", *_LAZY]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'genunlearn' has no attribute {name!r}")
    import importlib

    module, attr = _LAZY[name].split(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
