"""The Kubernetes manifests of deploy/kubernetes, loaded as the API server would see them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
KUBE = REPO / "deploy" / "kubernetes"
KUSTOMIZATION = KUBE / "kustomization.yaml"
EXAMPLES = ("secrets.example.yaml",)  # validated, but created by the operator, not applied
Resource = dict[str, Any]
_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|Ti|k|M|G)?$")
_FACTOR = {
    None: 1.0,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
}


@dataclass(frozen=True, slots=True)
class Manifest:
    file: str
    resource: Resource

    @property
    def kind(self) -> str:
        return str(self.resource["kind"])

    @property
    def name(self) -> str:
        return str(self.resource["metadata"]["name"])


def load(path: Path) -> list[Resource]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def manifests() -> list[Manifest]:
    """Every resource of every file, the example Secrets included, the kustomization not."""
    return [
        Manifest(path.name, resource)
        for path in sorted(KUBE.glob("*.yaml"))
        if path != KUSTOMIZATION
        for resource in load(path)
    ]


def of_kind(kind: str) -> list[Manifest]:
    return [m for m in manifests() if m.kind == kind]


def one(kind: str, name: str) -> Resource:
    (found,) = [m.resource for m in of_kind(kind) if m.name == name]
    return found


def container(deployment: Resource) -> Resource:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(only)


def quantity(text: str | int | float) -> float:
    """A Kubernetes quantity (`500m`, `1Gi`, `2`) as a number of cores or bytes."""
    match = _QUANTITY.match(str(text))
    assert match, f"{text!r} is not a quantity"
    return float(match.group(1)) * _FACTOR[match.group(2)]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())
