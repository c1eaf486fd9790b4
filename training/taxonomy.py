"""The versioned class list (``datasets/taxonomy.yaml``) and source-label mapping."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

DEFAULT_TAXONOMY = Path(__file__).resolve().parent.parent / "datasets" / "taxonomy.yaml"


class TaxonomyError(ValueError):
    """The taxonomy file is unreadable or a label cannot be mapped."""


@dataclass(frozen=True)
class Taxonomy:
    """Class names in model order, the taxonomy version and per-source label maps."""

    version: int
    names: tuple[str, ...]
    source_maps: dict[str, dict[str, str]]

    def index(self, name: str) -> int:
        """Class id of ``name``; raises TaxonomyError for a name outside the taxonomy."""
        try:
            return self.names.index(name)
        except ValueError:
            raise TaxonomyError(f"class {name!r} is not in taxonomy v{self.version}: {', '.join(self.names)}") from None

    def map_label(self, label: str, source: str | None = None) -> str | None:
        """Map a source label onto a taxonomy class name (case-insensitive); None when it has no mapping."""
        if label in self.names:
            return label
        lowered = {n.lower(): n for n in self.names}
        if label.lower() in lowered:
            return lowered[label.lower()]
        maps = [self.source_maps[source]] if source in self.source_maps else list(self.source_maps.values())
        for mapping in maps:
            for key, value in mapping.items():
                if key.lower() == label.lower():
                    return value
        return None


def load_taxonomy(path: Path = DEFAULT_TAXONOMY) -> Taxonomy:
    """Read and check a taxonomy YAML file."""
    try:
        raw = yaml.safe_load(path.read_text())
        names = tuple(str(c["name"]) for c in raw["classes"])
        version = int(raw["version"])
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError) as exc:
        raise TaxonomyError(f"{path}: not a valid taxonomy file ({exc})") from exc
    if len(set(names)) != len(names):
        raise TaxonomyError(f"{path}: duplicate class names in {names}")
    maps = {str(k): {str(a): str(b) for a, b in (v.get("map") or {}).items()} for k, v in (raw.get("sources") or {}).items()}
    for source, mapping in maps.items():
        bad = sorted(set(mapping.values()) - set(names))
        if bad:
            raise TaxonomyError(f"{path}: source {source!r} maps onto unknown classes {bad}")
    return Taxonomy(version=version, names=names, source_maps=maps)
