"""What a data source holds, as ``genunlearn data SOURCE`` prints it: every attribute's values
with their ids (what ``--forget classes=ID`` means) and counts, the sample shape, the split sizes
and the content fingerprint that cache keys use. Folder classes take ids in alphabetical order."""

from __future__ import annotations


def describe_data(source: str) -> dict:
    """``{source, name, kind, sample_shape, train, test, fingerprint, attributes: [{name, values:
    [{id, name, train, test}]}]}`` for a built-in task, an image folder or an ``.npz``."""
    from genunlearn.data import load_dataset
    from genunlearn.data.fingerprint import canonical_task, data_identity

    task = canonical_task(source)
    splits = {s: load_dataset(task, s) for s in ("train", "test")}
    train = splits["train"]
    attributes = []
    for a, attr in enumerate(train.attributes):
        counts = {s: d.cond()[:, a].bincount(minlength=len(attr.values)).tolist() for s, d in splits.items()}
        attributes.append(
            {
                "name": attr.name,
                "values": [
                    {"id": i, "name": v, **{s: counts[s][i] for s in splits}} for i, v in enumerate(attr.values)
                ],
            }
        )
    identity = data_identity(task)
    return {
        "source": identity["source"],
        "name": train.name,
        "kind": train.kind,
        "sample_shape": list(train.sample_shape),
        "train": len(train),
        "test": len(splits["test"]),
        "fingerprint": identity["fingerprint"],
        "attributes": attributes,
    }


def format_description(d: dict) -> str:
    shape = "×".join(map(str, d["sample_shape"]))
    what = f"{d['kind']} of shape {shape}" if d["kind"] == "images" else f"{shape}-D points"
    lines = [
        f"{d['name']}: {what}; {d['train']} train, {d['test']} test",
        f"  source       {d['source']}",
        f"  fingerprint  {d['fingerprint']}  (cache keys use it)",
    ]
    for attr in d["attributes"]:
        lines.append(f"  {attr['name']:<12} {'id':>3}  {'name':<16} {'train':>6} {'test':>6}")
        lines += [f"  {'':<12} {v['id']:>3}  {v['name']:<16} {v['train']:>6} {v['test']:>6}" for v in attr["values"]]
    return "\n".join(lines)
