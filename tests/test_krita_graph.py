"""The Krita custom graph (``example_workflows/krita_soft_inpainting.json``) stays loadable and valid.

The Krita AI Diffusion plugin loads a custom graph in ComfyUI's API format as it is, replaces its
Krita nodes (canvas, selection, parameters) with the canvas, the selection and the parameter values,
and runs the rest on the ComfyUI server. These tests check, without a server, that every node the
graph names exists with the inputs it uses: this pack's nodes against the pack itself (loaded in the
ComfyUI stand-in, V3 and V1), the Krita and ComfyUI core nodes against a recorded list of their
inputs and outputs (``tests/data/krita_graph_nodes.json``, which says which versions it mirrors);
that every link joins matching types; that each exposed parameter is one the plugin shows (its
type, default and range fit the input it feeds); and that a broken copy is caught.
"""

from __future__ import annotations

import copy
import json
import numbers
from pathlib import Path
from typing import Any

import pytest
from comfy_harness import ROOT, load_pack

from lib_soft_inpainting.settings import SETTINGS

GRAPH_PATH = ROOT / "example_workflows" / "krita_soft_inpainting.json"
RECORDED_PATH = Path(__file__).resolve().parent / "data" / "krita_graph_nodes.json"

# What a Parameter node of each type gives, as the plugin reads it (ai_diffusion/model/custom_workflow.py).
PARAMETER_FEEDS = {
    "number": {"FLOAT", "INT"},
    "number (integer)": {"INT", "FLOAT"},
    "toggle": {"BOOLEAN"},
    "choice": {"COMBO"},
    "text": {"STRING"},
    "prompt (positive)": {"STRING"},
    "prompt (negative)": {"STRING"},
}
PLACEHOLDERS = {"ETN_KritaCanvas", "ETN_KritaSelection", "ETN_Parameter"}  # replaced by the plugin


def load_graph() -> dict[str, Any]:
    return json.loads(GRAPH_PATH.read_text())


def recorded() -> dict[str, Any]:
    return json.loads(RECORDED_PATH.read_text())


def _pack_table(version: str) -> dict[str, dict[str, Any]]:
    """The pack's nodes in the recorded list's shape, read from the classes ComfyUI would load."""
    table = {}
    for node_id, cls in load_pack(version).items():
        inputs = {}
        types = cls.INPUT_TYPES()
        for group in ("required", "optional"):
            for name, info in types.get(group, {}).items():
                kind, extra = info[0], (info[1] if len(info) > 1 else {})
                entry: dict[str, Any] = {"optional": group == "optional"}
                if isinstance(kind, (list, tuple)):
                    entry.update(type="COMBO", options=list(kind))
                elif kind == "COMBO":
                    entry.update(type="COMBO", options=list(extra["options"]))
                else:
                    entry["type"] = kind
                entry.update({k: extra[k] for k in ("default", "min", "max") if k in extra})
                inputs[name] = entry
        if hasattr(cls, "RETURN_TYPES"):
            outputs = list(cls.RETURN_TYPES)
        else:
            outputs = [o.io_type for o in cls.GET_SCHEMA().outputs]
        table[node_id] = {"inputs": inputs, "outputs": outputs}
    return table


@pytest.fixture(scope="module", params=["0.3.64", "0.3.40"], ids=["v3", "v1"])
def table(request) -> dict[str, dict[str, Any]]:
    data = recorded()
    return {**data["krita"], **data["core"], **_pack_table(request.param)}


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _consumers(graph: dict[str, Any], node_id: str) -> list[tuple[str, str]]:
    return [(nid, name) for nid, node in graph.items() for name, value in node["inputs"].items()
            if isinstance(value, list) and value[0] == node_id]


def _check_value(where: str, spec: dict[str, Any], value: Any) -> list[str]:
    kind = spec["type"]
    if kind == "COMBO":
        if spec["options"] != "files" and value not in spec["options"]:
            return [f"{where}: {value!r} is not one of its options"]
    elif kind in ("INT", "FLOAT"):
        if not _is_number(value) or (kind == "INT" and float(value) != int(value)):
            return [f"{where}: {value!r} is not a {kind}"]
        if value < spec.get("min", value) or value > spec.get("max", value):
            return [f"{where}: {value!r} is outside {spec.get('min')}..{spec.get('max')}"]
    elif kind == "STRING" and not isinstance(value, str):
        return [f"{where}: {value!r} is not a STRING"]
    elif kind == "BOOLEAN" and not isinstance(value, bool):
        return [f"{where}: {value!r} is not a BOOLEAN"]
    elif kind not in ("STRING", "BOOLEAN"):
        return [f"{where}: a {kind} input needs a link, not {value!r}"]
    return []


def _check_parameter(graph: dict[str, Any], table: dict[str, Any], node_id: str) -> list[str]:
    """A Parameter node as the plugin reads it: its type, a default of that type, a range that fits
    the input it feeds (and the default inside it)."""
    inputs = graph[node_id]["inputs"]
    where = f"parameter {inputs.get('name')!r}"
    kind = inputs.get("type")
    if kind not in PARAMETER_FEEDS:
        return [f"{where}: type {kind!r} is not one the plugin shows"]
    problems = []
    default = inputs.get("default")
    for target_id, target_input in _consumers(graph, node_id):
        spec = table[graph[target_id]["class_type"]]["inputs"][target_input]
        if spec["type"] not in PARAMETER_FEEDS[kind]:
            problems.append(f"{where}: a {kind} parameter cannot feed the {spec['type']} input "
                            f"{target_input!r}")
            continue
        if kind.startswith("number"):
            low, high = inputs.get("min"), inputs.get("max")
            if not (_is_number(default) and _is_number(low) and _is_number(high)):
                problems.append(f"{where}: default, min and max must be numbers (the plugin reads them so)")
                continue
            if kind == "number (integer)" and not all(float(v) == int(v) for v in (default, low, high)):
                problems.append(f"{where}: an integer parameter needs whole numbers")
            if not low <= default <= high:
                problems.append(f"{where}: default {default} is outside {low}..{high}")
            if low < spec.get("min", low) or high > spec.get("max", high):
                problems.append(f"{where}: range {low}..{high} exceeds {target_input!r}'s "
                                f"{spec.get('min')}..{spec.get('max')}")
        elif kind == "choice":
            if not isinstance(default, str):
                problems.append(f"{where}: a choice's default must be text")
            elif spec["options"] == "files":
                if default:
                    problems.append(f"{where}: a file list's default must be empty (the first file is shown)")
            elif default not in spec["options"]:
                problems.append(f"{where}: default {default!r} is not one of {target_input!r}'s options")
        elif not isinstance(default, str):
            problems.append(f"{where}: a {kind} parameter's default must be text")
    return problems


def graph_problems(graph: Any, table: dict[str, Any]) -> list[str]:
    """Everything that would stop the plugin loading the graph or ComfyUI running it (empty: valid)."""
    if not isinstance(graph, dict) or "nodes" in graph or "links" in graph:
        return ["not a graph in ComfyUI's API format ({node id: {class_type, inputs}})"]
    problems: list[str] = []
    for node_id, node in graph.items():
        kind = node.get("class_type")
        if kind not in table:
            problems.append(f"node {node_id}: unknown node type {kind!r}")
            continue
        spec = table[kind]
        for name, value in node.get("inputs", {}).items():
            where = f"node {node_id} ({kind}) input {name!r}"
            if name not in spec["inputs"]:
                problems.append(f"{where}: no such input")
                continue
            if isinstance(value, list):
                if len(value) != 2 or value[0] not in graph:
                    problems.append(f"{where}: link to a missing node {value!r}")
                    continue
                source = graph[value[0]].get("class_type")
                outputs = table.get(source, {}).get("outputs", [])
                if not isinstance(value[1], int) or not 0 <= value[1] < len(outputs):
                    problems.append(f"{where}: {source} has no output {value[1]!r}")
                    continue
                given, wanted = outputs[value[1]], spec["inputs"][name]["type"]
                if given != "*" and given != wanted:
                    problems.append(f"{where}: a {given} output linked to a {wanted} input")
            elif not (kind == "ETN_Parameter" and name == "default"):  # the plugin's value: checked below
                problems += _check_value(where, spec["inputs"][name], value)
        for name, entry in spec["inputs"].items():
            if not entry["optional"] and name not in node.get("inputs", {}) and "default" not in entry:
                problems.append(f"node {node_id} ({kind}): required input {name!r} is missing")
        if kind == "ETN_Parameter":
            problems += _check_parameter(graph, table, node_id)
    names = [n["inputs"].get("name") for n in graph.values() if n.get("class_type") == "ETN_Parameter"]
    twice = sorted({n for n in names if names.count(n) > 1})
    problems += [f"parameter name {name!r} is used twice" for name in twice]
    outputs = [nid for nid, n in graph.items() if n.get("class_type") == "ETN_KritaOutput"]
    if len(outputs) != 1:
        problems.append(f"{len(outputs)} Krita Output nodes (the plugin needs one)")
    if not problems and _has_loop(graph):
        problems.append("the graph has a loop (the plugin refuses it)")
    return problems


def _has_loop(graph: dict[str, Any]) -> bool:
    """The plugin's import order: a node comes after its inputs; nodes left over sit in a loop."""
    done: set[str] = set()
    progress = True
    while progress:
        progress = False
        for node_id, node in graph.items():
            links = [v[0] for v in node["inputs"].values() if isinstance(v, list)]
            if node_id not in done and all(link in done for link in links):
                done.add(node_id)
                progress = True
    return len(done) != len(graph)


def expand_like_the_plugin(graph: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The plugin's ``expand_custom`` in short: the canvas and the selection become cached-image
    loaders, each parameter its value; every other node is copied with its links remapped."""
    prompt: dict[str, Any] = {}
    values: dict[tuple[str, int], Any] = {}
    for node_id, node in graph.items():
        kind = node["class_type"]
        if kind == "ETN_KritaCanvas":
            prompt[node_id] = {"class_type": "ETN_LoadImageCache", "inputs": {"id": "canvas"}}
            values.update({(node_id, 1): 512, (node_id, 2): 512, (node_id, 3): 1234,
                           (node_id, 4): [node_id, 1]})
        elif kind == "ETN_KritaSelection":
            prompt[node_id] = {"class_type": "ETN_LoadImageCache", "inputs": {"id": "selection"}}
            values.update({(node_id, 0): [node_id, 1], (node_id, 1): True, (node_id, 2): 0, (node_id, 3): 0})
        elif kind == "ETN_Parameter":
            values[(node_id, 0)] = params[node["inputs"]["name"]]
        else:
            prompt[node_id] = copy.deepcopy(node)
    for node in prompt.values():
        for name, value in node["inputs"].items():
            if isinstance(value, list):
                node["inputs"][name] = values.get((value[0], value[1]), value)
    return prompt


def parameters(graph: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["inputs"]["name"]: n["inputs"] for n in graph.values() if n["class_type"] == "ETN_Parameter"}


def test_the_graph_is_valid(table):
    assert graph_problems(load_graph(), table) == []


def test_the_recorded_list_says_what_it_mirrors():
    data = recorded()
    assert data["_mirrors"] == {"ComfyUI": "0.3.64 (a125cd84)", "comfyui-tooling-nodes": "3.3.0 (5d3194f)"}
    for kind in ("ETN_KritaCanvas", "ETN_KritaSelection", "ETN_KritaOutput", "ETN_Parameter"):
        assert kind in data["krita"]
    assert data["krita"]["ETN_KritaCanvas"]["outputs"] == ["IMAGE", "INT", "INT", "INT", "MASK"]


def test_the_graph_is_wired_for_soft_inpainting():
    graph = load_graph()
    by_type = {}
    for node_id, node in graph.items():
        by_type.setdefault(node["class_type"], []).append(node_id)
    canvas, = by_type["ETN_KritaCanvas"]
    selection, = by_type["ETN_KritaSelection"]
    loader, = by_type["CheckpointLoaderSimple"]
    encode, = by_type["VAEEncode"]
    noise_mask, = by_type["SetLatentNoiseMask"]
    settings, = by_type["SoftInpaintingSettings"]
    apply, = by_type["SoftInpaintingApply"]
    sampler, = by_type["KSampler"]
    decode, = by_type["VAEDecode"]
    composite, = by_type["SoftInpaintingComposite"]
    output, = by_type["ETN_KritaOutput"]
    inputs = {node_id: graph[node_id]["inputs"] for node_id in graph}
    assert inputs[encode]["pixels"] == [canvas, 0]
    assert inputs[noise_mask] == {"samples": [encode, 0], "mask": [selection, 0]}  # the grey selection
    assert inputs[apply] == {"model": [loader, 0], "settings": [settings, 0]}
    assert inputs[sampler]["model"] == [apply, 0] and inputs[sampler]["latent_image"] == [noise_mask, 0]
    assert inputs[sampler]["seed"] == [canvas, 3]  # the plugin's seed
    assert inputs[decode]["samples"] == [sampler, 0]
    assert inputs[composite] == {"settings": [settings, 0], "model": [loader, 0],
                                 "original_image": [canvas, 0], "decoded_image": [decode, 0],
                                 "original_latent": [encode, 0], "sampled_latent": [sampler, 0]}
    assert inputs[output]["images"] == [composite, 0]
    assert (inputs[output]["x"], inputs[output]["y"]) == ([selection, 2], [selection, 3])
    fed = {(graph[t]["class_type"], name): graph[p]["inputs"]["name"]
           for p in graph if graph[p]["class_type"] == "ETN_Parameter" for t, name in _consumers(graph, p)}
    for key in [("CheckpointLoaderSimple", "ckpt_name"), ("KSampler", "denoise"),
                ("SoftInpaintingSettings", "preset"), ("CLIPTextEncode", "text")]:
        assert key in fed, key
    for spec in SETTINGS:  # all six settings are exposed
        assert ("SoftInpaintingSettings", spec.snake_label) in fed, spec.label
    kinds = {p["type"] for p in parameters(graph).values()}
    assert {"prompt (positive)", "prompt (negative)"} <= kinds


def test_the_settings_parameters_match_the_settings_table():
    params = parameters(load_graph())
    for spec in SETTINGS:
        param = next(p for name, p in params.items() if name.endswith(f". {spec.label}"))
        assert (param["default"], param["min"], param["max"]) == (spec.default, spec.minimum, spec.maximum)
        assert param["name"].startswith("Soft inpainting/")  # one group in Krita


def test_the_expanded_prompt_is_valid(table):
    graph = load_graph()
    params = {name: p["default"] for name, p in parameters(graph).items()}
    params["1. Model"] = "model.safetensors"
    prompt = expand_like_the_plugin(graph, params)
    assert not {n["class_type"] for n in prompt.values()} & PLACEHOLDERS
    assert graph_problems(prompt, table) == []
    sampler = next(n for n in prompt.values() if n["class_type"] == "KSampler")
    assert (sampler["inputs"]["denoise"], sampler["inputs"]["seed"]) == (0.75, 1234)


def _param(graph, name):
    return next(n for n in graph.values()
                if n["class_type"] == "ETN_Parameter" and n["inputs"]["name"].endswith(name))


def _by_type(graph, kind):
    return next(n for n in graph.values() if n["class_type"] == kind)


def _breaks() -> dict[str, Any]:
    def unknown_type(g):
        _by_type(g, "SoftInpaintingApply")["class_type"] = "SoftInpaintingApplyV2"

    def renamed_input(g):
        node = _by_type(g, "SoftInpaintingComposite")
        node["inputs"]["decoded"] = node["inputs"].pop("decoded_image")

    def missing_input(g):
        del _by_type(g, "SoftInpaintingComposite")["inputs"]["original_latent"]

    def wrong_link_type(g):  # the mask where the sampler wants the latent
        mask = _by_type(g, "SetLatentNoiseMask")["inputs"]["mask"]
        _by_type(g, "KSampler")["inputs"]["latent_image"] = mask

    def missing_output(g):
        _by_type(g, "VAEDecode")["inputs"]["samples"][1] = 1

    def default_out_of_range(g):
        _param(g, "Preservation strength")["inputs"]["default"] = 9.0

    def range_beyond_the_input(g):
        _param(g, "Difference threshold")["inputs"]["max"] = 10.0

    def default_as_text(g):  # ComfyUI's widget is a STRING; the plugin wants a number
        _param(g, "Denoising strength")["inputs"]["default"] = "0.75"

    def unknown_preset(g):
        _param(g, "Preset")["inputs"]["default"] = "Softest"

    def wrong_parameter_type(g):
        _param(g, "Preset")["inputs"]["type"] = "number"

    def unknown_combo_value(g):
        _by_type(g, "ETN_KritaSelection")["inputs"]["context"] = "selection"

    def duplicate_name(g):
        _param(g, "Steps")["inputs"]["name"] = _param(g, "CFG scale")["inputs"]["name"]

    def no_output(g):
        for node_id in [k for k, n in g.items() if n["class_type"] == "ETN_KritaOutput"]:
            del g[node_id]

    def loop(g):
        sampler_id = next(k for k, n in g.items() if n["class_type"] == "KSampler")
        _by_type(g, "SetLatentNoiseMask")["inputs"]["samples"] = [sampler_id, 0]

    def ui_format(g):  # the plugin reads UI workflows too, less reliably; this one ships in API format
        g.clear()
        g.update(json.loads((ROOT / "example_workflows" / "soft_inpainting.json").read_text()))

    breaks = (unknown_type, renamed_input, missing_input, wrong_link_type, missing_output,
              default_out_of_range, range_beyond_the_input, default_as_text, unknown_preset,
              wrong_parameter_type, unknown_combo_value, duplicate_name, no_output, loop, ui_format)
    return {f.__name__: f for f in breaks}


@pytest.mark.parametrize("name", list(_breaks()))
def test_a_broken_copy_is_caught(table, name):
    graph = load_graph()
    _breaks()[name](graph)
    assert graph_problems(graph, table) != []
