"""The UnlearnCanvas protocol (eval/erasure.py) on stand-ins whose answers are known: a "pipeline"
that draws exactly the row its caption names (with an edit applied) and a "judge" that reads it."""

import pytest
import torch

from genunlearn.data import canvas, canvas_paraphrases
from genunlearn.errors import GenUnlearnError
from genunlearn.eval.erasure import ErasureEvaluator

FULL = [(o, s, c) for o in range(8) for s in range(6) for c in range(6)]
UNNAMED = [  # one attribute left unnamed: "a striped red object", "a red circle", "a striped circle"
    tuple(n if a == k else v for a, v in enumerate(row)) for row in FULL for k, n in enumerate((8, 6, 6))
]
TRAIN = {cap: row for row in FULL + UNNAMED for cap in canvas.captions(row)}
PARAPHRASE = {cap: row for row in FULL for cap in canvas_paraphrases.captions(row, "paraphrase")}


class Pipeline:
    """Draws the row of its caption as a (3, 1, 1) "image", after ``edit(row, paraphrased)``; an
    unnamed object is drawn as a circle (a prior leaning to circles, as the canvas base's does)."""

    attributes = canvas.ATTRIBUTES
    info = {"task": "canvas"}

    def __init__(self, edit=lambda row, paraphrased: row):
        self.edit = edit

    def prompt_cond(self, captions):
        return torch.tensor(
            [[*self.edit(TRAIN.get(c) or PARAPHRASE[c], c in PARAPHRASE), int(c in PARAPHRASE)] for c in captions]
        )

    def sample(self, n, cond, generator):
        cond = cond.clone()
        cond[cond[:, 0] == 8, 0] = 0
        return cond[:, :3].float().view(n, 3, 1, 1) + 0.01 * torch.randn((n, 3, 1, 1), generator=generator)


class Judge:
    net = type("Net", (), {"num_features": 20})

    def predict(self, x):
        return x.view(len(x), 3).round().long()

    def features(self, x):
        ids = self.predict(x)
        onehot = torch.cat([torch.nn.functional.one_hot(ids[:, a], n) for a, n in enumerate((8, 6, 6))], 1).float()
        return onehot + 0.05 * torch.randn(
            onehot.shape, generator=torch.Generator().manual_seed(0)
        )  # full-rank covariance


def circles_become_squares(paraphrases_too=True):
    return lambda row, p: (1, *row[1:]) if row[0] == 0 and (paraphrases_too or not p) else row


def test_the_base_keeps_everything_and_erases_nothing():
    ev = ErasureEvaluator(Pipeline(), ["circle"], Judge(), rows_per_concept=12, retained_rows=30, n_per_row=1)
    assert (ev.base["UA"], ev.base["IRA"], ev.base["CRA"], ev.base["generality"]) == (0.0, 1.0, 1.0, 0.0)
    assert len(ev.target.captions) == 12 and all(r[0] == 0 for r in ev.target.rows.tolist())
    assert all(r[0] != 0 for r in ev.kept.rows.tolist()) and set(ev.paraphrase.captions) <= set(PARAPHRASE)
    assert ev.base["UA_unnamed"] == 0.0 and all(("object" in c or "shape" in c) for c in ev.unnamed.captions)


def test_ua_unnamed_is_the_most_an_edit_to_the_generic_word_reaches():
    """Sending circles to "object" erases them only where the prior does not draw circles for "object";
    a model whose generic prompt no longer draws circles reaches it."""
    ev = ErasureEvaluator(Pipeline(), ["circle"], Judge(), rows_per_concept=12, retained_rows=30, n_per_row=1)
    to_generic = ev(Pipeline(lambda row, p: (8, *row[1:]) if row[0] == 0 else row))
    assert to_generic["UA"] == 0.0 and to_generic["UA_unnamed"] == 0.0  # "object" still draws a circle
    prior_fixed = ev(Pipeline(lambda row, p: (1, *row[1:]) if row[0] in (0, 8) else row))
    assert prior_fixed["UA"] == 1.0 and prior_fixed["UA_unnamed"] == 1.0


def test_ua_ira_cra_and_generality_read_what_they_say():
    ev = ErasureEvaluator(Pipeline(), ["circle"], Judge(), rows_per_concept=12, retained_rows=30, n_per_row=1)
    m = ev(Pipeline(circles_become_squares()))
    assert (m["UA"], m["IRA"], m["CRA"], m["generality"]) == (1.0, 1.0, 1.0, 1.0) and m["UA_by_concept"] == {
        "circle": 1.0
    }
    assert ev(Pipeline(circles_become_squares(paraphrases_too=False)))["generality"] == 0.0  # erased only as trained
    broke_colour = ev(Pipeline(lambda row, p: (1 if row[0] == 0 else row[0], row[1], 0)))  # everything red
    assert (
        broke_colour["IRA"] == 1.0 and broke_colour["CRA"] < 0.8 and broke_colour["fd_vs_base"] > 1 > 100 * ev.fd_floor
    )
    broke_objects = ev(Pipeline(lambda row, p: (1, *row[1:])))  # every object a square
    assert broke_objects["UA"] == 1.0 and broke_objects["IRA"] < 0.3 and broke_objects["CRA"] == 1.0


def test_evaluate_judges_a_canvas_pipeline_by_the_protocol(monkeypatch):
    """``genunlearn evaluate --concept`` on a captioned task reads UA, IRA, CRA and generality."""
    from genunlearn.eval import judge as judge_module
    from genunlearn.families import get_family
    from genunlearn.forget.request import ForgetRequest

    monkeypatch.setattr(judge_module, "load_judge", lambda task, **kw: Judge())
    request = ForgetRequest("concept", concept="circle", anchor="object")
    evaluate = get_family("generative").evaluator("canvas", request, reference=Pipeline())
    m = evaluate(Pipeline(circles_become_squares()))
    assert (m["UA"], m["IRA"], m["CRA"], m["generality"]) == (1.0, 1.0, 1.0, 1.0) and m["base"]["UA"] == 0.0
    assert "UA" in get_family("generative").format(m) and "↑" in get_family("generative").format(m)


def test_many_concepts_and_the_splits():
    ev = ErasureEvaluator(Pipeline(), ["circle", "red"], Judge(), rows_per_concept=8, retained_rows=20, n_per_row=2)
    assert ev.in_domain == [0, 2] and ev.cross_domain == [1] and len(ev.target.captions) == 32
    assert all(r[0] != 0 and r[2] != 0 for r in ev.kept.rows.tolist())
    none_left = ErasureEvaluator(
        Pipeline(), ["circle", "striped", "red"], Judge(), rows_per_concept=4, retained_rows=8, n_per_row=1
    )
    assert none_left.base["CRA"] is None
    val = ErasureEvaluator(
        Pipeline(), ["circle"], Judge(), split="val", rows_per_concept=12, retained_rows=30, n_per_row=1
    )
    assert (
        val.kept.captions
        != ErasureEvaluator(
            Pipeline(), ["circle"], Judge(), rows_per_concept=12, retained_rows=30, n_per_row=1
        ).kept.captions
    )


@pytest.mark.parametrize(
    "concepts,split,match",
    [
        (["object"], "test", "generic"),
        (["disk"], "test", "unknown concept word"),
        (["circle"], "train", "unknown split"),
    ],
)
def test_bad_requests_are_one_line(concepts, split, match):
    with pytest.raises(GenUnlearnError, match=match):
        ErasureEvaluator(Pipeline(), concepts, Judge(), split=split)
