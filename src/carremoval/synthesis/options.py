"""How pairs are rendered: the `synthesize.render` parameters as a checked, frozen value."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any

from carremoval.io import InputError
from carremoval.synthesis.paste import JitterOptions
from carremoval.synthesis.shadow import ShadowOptions
from carremoval.synthesis.weather import WeatherOptions

NESTED = {"jitter": JitterOptions, "shadow": ShadowOptions, "weather": WeatherOptions}


@dataclass(frozen=True)
class RenderOptions:
    """`scale`: car height as a fraction of the canvas height; `max_width`: widest car, fraction of the canvas
    width; `bottom`: band (fractions of the canvas height, from the top) where the car's bottom edge lands;
    `perspective`: how much smaller a car is at the band's top edge than at its bottom; `flip`: chance of a
    mirror image; `edge_feather`: alpha edge softening, sigma in pixels; `harmonize`: strength of the LAB
    mean/std transfer toward the background; `mask_dilation`: pixels the hole grows by."""

    scale: tuple[float, float] = (0.23, 0.6)
    max_width: float = 0.73
    bottom: tuple[float, float] = (0.72, 0.98)
    perspective: float = 0.4
    flip: float = 0.5
    edge_feather: float = 0.7
    harmonize: float = 0.35
    mask_dilation: int = 2
    jitter: JitterOptions = field(default_factory=JitterOptions)
    shadow: ShadowOptions = field(default_factory=ShadowOptions)
    weather: WeatherOptions = field(default_factory=WeatherOptions)

    def __post_init__(self) -> None:
        _check_range("scale", self.scale, 0.0, 1.0, open_low=True)
        _check_range("bottom", self.bottom, 0.0, 1.0)
        _check_range("shadow.opacity", self.shadow.opacity, 0.0, 1.0)
        for name in ("max_width", "perspective", "flip", "harmonize"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.edge_feather < 0 or self.mask_dilation < 0:
            raise ValueError("edge_feather and mask_dilation must not be negative")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, where: str = "render options") -> "RenderOptions":
        """Build from a params/recipe mapping; unknown keys and bad values raise InputError naming `where`."""
        try:
            return _build(cls, data or {}, where)
        except (TypeError, ValueError) as err:
            raise InputError(f"{where}: {err}") from None

    def to_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a mapping, got {type(data).__name__}")
    known = {item.name for item in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    values = {}
    for name, value in data.items():
        nested = NESTED.get(name) if cls is RenderOptions else None
        if nested is not None:
            values[name] = _build(nested, value, f"{where}.{name}")
        elif isinstance(value, list):
            values[name] = tuple(value)
        else:
            values[name] = value
    return cls(**values)


def _check_range(name: str, value: tuple[float, float], low: float, high: float, open_low: bool = False) -> None:
    if len(value) != 2 or not low <= value[0] <= value[1] <= high or (open_low and value[0] <= low):
        raise ValueError(f"{name} must be [min, max] with {low} {'<' if open_low else '<='} min <= max <= {high}")


def _plain(value: Any) -> Any:
    """Tuples to lists, recursively, so the options round-trip through JSON and YAML unchanged."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if is_dataclass(value):
        return _plain(asdict(value))
    return value
