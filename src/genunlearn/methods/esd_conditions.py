"""ESD's conditions: the rows (or prompts) to erase, each one's guide (∅, its anchor, or another class
or value drawn per step) and the rows to keep, from the data's condition rows (class labels, a task's
words) or, on a text-to-image pipeline, the request's prompts (``methods.concepts``)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from genunlearn.errors import GenUnlearnError
from genunlearn.methods.concepts import as_text, text_conditions, word_slots


def forget_conditions(data, request) -> torch.Tensor:
    """Distinct condition rows that carry what is forgotten: every row of the forget items, plus the
    row naming only the class/concept (other attributes unspecified)."""
    forget, _ = data.split(request)
    if request.kind == "classes":
        words = [data.class_names[data.class_id(c)] for c in request.classes]
    elif request.kind == "concept":
        words = list(request.concepts)
    else:
        raise GenUnlearnError(f"esd needs a 'classes' or 'concept' request, not {request.kind!r}")
    alone = torch.stack([data.prompt_to_cond(w) for w in words])
    return torch.unique(torch.cat([forget.cond(), alone]), dim=0)


@dataclass
class ESDConditions:
    """Rows to erase (``erase``), each one's guide row (∅, its anchor or another class), and rows to keep."""

    erase: torch.Tensor
    guide: torch.Tensor | None  # None: the null condition (classic ESD) or, with ``others``, a random other class
    keep: torch.Tensor
    record: list  # what info["unlearn"]["conditions"] records: rows, or the prompts
    others: tuple[int, torch.Tensor] | None = None  # guide=others: (attribute, the values a guide row draws from)

    def guides(self, i: torch.Tensor, c: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """The guide row of each batch row ``c`` (indices ``i`` into erase + keep rows): its anchor or
        a random other class; a kept row is its own guide."""
        if self.others is None:
            a = self.guide[i.clamp_max(len(self.erase) - 1)]
        else:
            attr, values = self.others
            a = c.clone()
            a[:, attr] = values[torch.randint(len(values), (len(c),), generator=g)]
        return torch.where((i < len(self.erase))[:, None], a, c)


def other_values(model, data, request) -> tuple[int, torch.Tensor]:
    """(attribute, its values that are not forgotten): what ``guide="others"`` guides towards."""
    if request.kind == "classes":
        attr, forgotten = 0, [data.class_id(c) for c in request.classes]
    else:
        attr, forgotten, _ = word_slots(model.attributes, request)
    others = [v for v in range(len(model.attributes[attr].values)) if v not in forgotten]
    if not others:
        raise GenUnlearnError(
            f"guide=others: every {model.attributes[attr].name} is forgotten, so there is no other to guide towards"
        )
    return attr, torch.tensor(others)


def esd_conditions(model, data, request, guide: str) -> ESDConditions:
    """The words route: the data's rows (anchor rows: the concept's value replaced by the anchor's);
    the text route: the request's prompts and anchor prompts, encoded by the model's text encoder."""
    if guide == "anchor" and request.kind != "concept":
        raise GenUnlearnError("guide=anchor needs a concept request with an anchor (--concept ... --anchor ...)")
    if as_text(model, request):
        c = text_conditions(model, request)
        return ESDConditions(
            c.target,
            c.anchor if guide == "anchor" else None,
            c.preserve,
            {"erase": list(c.prompts.target), "anchor": list(c.prompts.anchor), "preserve": list(c.prompts.preserve)},
        )
    if data is None:
        raise GenUnlearnError("esd on class ids needs the model's data: pass --task")
    conds = forget_conditions(data, request)
    anchors = None
    if guide == "anchor":
        attr, _, a_value = word_slots(model.attributes, request)
        anchors = conds.clone()
        anchors[:, attr] = len(model.attributes[attr].values) if a_value is None else a_value
    others = other_values(model, data, request) if guide == "others" else None
    return ESDConditions(conds, anchors, conds[:0], conds.tolist(), others)
