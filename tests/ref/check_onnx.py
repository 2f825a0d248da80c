#!/usr/bin/python3
"""Check an ONNX file that `cnnkit export` wrote, with Debian's python3-onnx.

Usage: /usr/bin/python3 tests/ref/check_onnx.py MODEL.onnx

1. onnx.checker.check_model(model, full_check=True), which also runs strict
   shape inference against the shapes the file declares;
2. value_info is complete: exactly one entry per intermediate tensor (every
   node output that is not a graph output), and nothing else;
3. onnx.shape_inference.infer_shapes on a copy without value_info and without
   the output's shape gives the same shape for every intermediate tensor and
   the output as cnnkit wrote (symbolic dimensions compared by name).

Prints one summary line; exits 0 when all hold, 1 (with the reasons) if not.
"""
import sys

import onnx
from onnx import shape_inference


def dims(value_info):
    """[6, 'N', ...] from a ValueInfoProto; None for a dim with neither."""
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return None
    out = []
    for d in t.shape.dim:
        if d.HasField("dim_value"):
            out.append(d.dim_value)
        elif d.HasField("dim_param"):
            out.append(d.dim_param)
        else:
            out.append(None)
    return out


def main(argv):
    if len(argv) != 2:
        print(__doc__.splitlines()[2], file=sys.stderr)
        return 2
    path = argv[1]
    model = onnx.load(path)
    problems = []
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:  # the checker raises several exception types
        problems.append("checker: %s" % str(e).strip().splitlines()[0])

    g = model.graph
    outputs = {o.name for o in g.output}
    produced = [o for n in g.node for o in n.output if o]
    intermediate = [t for t in produced if t not in outputs]
    declared = {}
    for v in g.value_info:
        if v.name in declared:
            problems.append("value_info %s appears twice" % v.name)
        declared[v.name] = dims(v)
    missing = [t for t in intermediate if t not in declared]
    extra = [t for t in declared if t not in intermediate]
    if missing:
        problems.append("no value_info for %s" % ", ".join(missing))
    if extra:
        problems.append("value_info for tensors no node produces: %s" % ", ".join(extra))
    if len(set(produced)) != len(produced):
        problems.append("a tensor is produced by more than one node")

    bare = onnx.ModelProto()
    bare.CopyFrom(model)
    del bare.graph.value_info[:]
    for o in bare.graph.output:
        o.type.tensor_type.ClearField("shape")
    inferred_model = shape_inference.infer_shapes(bare, strict_mode=True)
    inferred = {v.name: dims(v) for v in inferred_model.graph.value_info}
    inferred.update({o.name: dims(o) for o in inferred_model.graph.output})
    want = dict(declared)
    want.update({o.name: dims(o) for o in g.output})
    for name, shape in want.items():
        got = inferred.get(name)
        if got != shape:
            problems.append("%s: cnnkit says %s, onnx shape inference %s" % (name, shape, got))

    opset = ",".join("%s%d" % (o.domain + ":" if o.domain else "", o.version)
                     for o in model.opset_import)
    if problems:
        print("%s: FAIL: %s" % (path, "; ".join(problems)))
        return 1
    out = "[%s]" % ", ".join(str(d) for d in dims(g.output[0]))
    print("%s: checker ok (full_check), opset %s, %d nodes, value_info for all %d intermediate "
          "tensors, shapes equal onnx shape inference, output %s"
          % (path, opset, len(g.node), len(intermediate), out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
