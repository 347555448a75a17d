"""Render deploy/kubernetes as ``kubectl kustomize`` does, for the parts of Kustomize that the manifests use, so
the tests check the objects a cluster would receive without a kustomize binary. A kustomization using anything
else fails here, naming it (and the tests compare with ``kubectl kustomize`` where it is installed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["SUPPORTED", "render"]

SUPPORTED = {"apiVersion", "kind", "labels", "resources", "configMapGenerator", "generatorOptions", "images"}


def render(directory: Path) -> list[dict[str, Any]]:
    """The objects the kustomization in ``directory`` produces."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    unknown = set(kustomization) - SUPPORTED
    if unknown:
        raise ValueError(f"kustomization.yaml uses {sorted(unknown)}, which tests/deploy/kustomize.py does not render")
    objects: list[dict[str, Any]] = []
    for resource in kustomization.get("resources", []):
        text = (directory / resource).read_text(encoding="utf-8")
        objects += [document for document in yaml.safe_load_all(text) if document]
    options = kustomization.get("generatorOptions", {})
    if not options.get("disableNameSuffixHash"):
        raise ValueError("generated names with a hash suffix are not rendered here")
    for generator in kustomization.get("configMapGenerator", []):
        data: dict[str, str] = {}
        for name in generator.get("files", []):
            data[Path(name).name] = (directory / name).read_text(encoding="utf-8")
        for literal in generator.get("literals", []):
            key, _, value = literal.partition("=")
            data[key] = value
        objects.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": generator["name"]}, "data": data})
    for entry in kustomization.get("labels", []):
        if entry.get("includeSelectors") or entry.get("includeTemplates"):
            raise ValueError("labels on selectors and templates are not rendered here")
        for obj in objects:
            obj["metadata"].setdefault("labels", {}).update(entry["pairs"])
    for image in kustomization.get("images", []):
        for container in _containers(objects):
            if container["image"] == image["name"]:
                container["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"
    return objects


def _containers(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for obj in objects:
        template = obj.get("spec", {}).get("template")
        if template is not None:
            found += template["spec"].get("containers", []) + template["spec"].get("initContainers", [])
    return found
