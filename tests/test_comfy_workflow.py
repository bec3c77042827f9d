"""The example workflow kept in the repository (``example_workflows/``, ComfyUI's UI format): it uses
the pack's node ids, its links join matching types, and its widget values fit the nodes' widgets."""

from __future__ import annotations

import json

from comfy_harness import ROOT, load_pack

WORKFLOW = ROOT / "example_workflows" / "soft_inpainting.json"


def test_the_example_workflow_fits_the_nodes():
    graph = json.loads(WORKFLOW.read_text())
    nodes = {n["id"]: n for n in graph["nodes"]}
    pack = load_pack()
    for link_id, src, src_slot, dst, dst_slot, kind in graph["links"]:
        assert nodes[src]["outputs"][src_slot]["type"] == kind == nodes[dst]["inputs"][dst_slot]["type"]
        assert link_id in nodes[src]["outputs"][src_slot]["links"]
        assert nodes[dst]["inputs"][dst_slot]["link"] == link_id
    ours = [n for n in graph["nodes"] if n["type"] in pack]
    assert {n["type"] for n in ours} == set(pack)
    for node in ours:
        types = pack[node["type"]].INPUT_TYPES()
        inputs = {**types["required"], **types.get("optional", {})}
        widgets = [name for name, info in inputs.items() if info[0] == "FLOAT" or isinstance(info[0], list)]
        sockets = [name for name in inputs if name not in widgets]
        assert len(node.get("widgets_values", [])) == len(widgets)
        assert [i["name"] for i in node["inputs"]] == sockets
        assert [o["type"] for o in node["outputs"]] == [o for o in _return_types(pack[node["type"]])]
    settings = next(n for n in ours if n["type"] == "SoftInpaintingSettings")
    defaults = [
        info[1]["default"] for info in pack["SoftInpaintingSettings"].INPUT_TYPES()["required"].values()
    ]
    assert settings["widgets_values"] == defaults
    composite = next(n for n in ours if n["type"] == "SoftInpaintingComposite")
    assert (
        next(i for i in composite["inputs"] if i["name"] == "mask")["link"] is None
    )  # the noise_mask is used


def _return_types(cls):
    if hasattr(cls, "RETURN_TYPES"):
        return list(cls.RETURN_TYPES)
    return [o.io_type for o in cls.GET_SCHEMA().outputs]
