"""The zone map, drawn from the zones' GeoJSON on plain axes: nothing is fetched from another server.

Plotly's geographic maps (`px.choropleth`) load a world outline from cdn.plot.ly even when it is hidden,
so a staff app offline or behind a strict proxy shows no map, and every view leaves the library's network.
Here each zone is a filled outline on ordinary x/y axes (longitude, latitude scaled to look right).
"""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

NO_VALUE = "#d9d9d9"  # suppressed or missing: grey, and the hover says so


def _rings(geometry: dict) -> list[list[list[float]]]:
    """The outer rings of a Polygon or MultiPolygon (holes are left out: a zone map does not need them)."""
    if geometry.get("type") == "Polygon":
        return [geometry["coordinates"][0]]
    if geometry.get("type") == "MultiPolygon":
        return [polygon[0] for polygon in geometry["coordinates"]]
    return []


def zone_map(frame: pd.DataFrame, *, shapes: dict, code: str, value: str, name: str, title: str, label: str | None = None, colorscale: str = "Blues") -> go.Figure:
    """Each zone of `shapes` (a FeatureCollection whose feature ids are zone codes) filled by `frame[value]`
    for the row whose `frame[code]` is its code; `frame[name]` is shown on hover, `label` names the scale."""
    rows = frame.set_index(code)
    numbers = pd.to_numeric(rows[value], errors="coerce")
    low, high = (numbers.min(), numbers.max()) if numbers.notna().any() else (0.0, 1.0)
    figure = go.Figure()
    latitudes = []
    for feature in shapes.get("features", []):
        zone = feature.get("id")
        number = numbers.get(zone) if zone in numbers.index else None
        shown = rows[value].get(zone) if zone in rows.index else None
        colour = NO_VALUE if number is None or pd.isna(number) else sample_colorscale(colorscale, [0.5 if high == low else (number - low) / (high - low)])[0]
        zone_name = rows[name].get(zone, zone) if zone in rows.index else zone
        for ring in _rings(feature.get("geometry") or {}):
            lon, lat = [p[0] for p in ring], [p[1] for p in ring]
            latitudes += lat
            figure.add_trace(go.Scatter(
                x=lon, y=lat, mode="lines", fill="toself", fillcolor=colour, line=dict(color="white", width=1),
                name=str(zone_name), hoveron="fills", text=f"{zone_name}: {'no figure' if shown is None else shown}", hoverinfo="text", showlegend=False,
            ))
    # A colour bar for the scale: one invisible point carries it.
    figure.add_trace(go.Scatter(x=[None], y=[None], mode="markers", hoverinfo="skip", showlegend=False,
                                marker=dict(colorscale=colorscale, cmin=low, cmax=high, color=[low], showscale=True, colorbar=dict(title=label or value))))
    middle = (min(latitudes) + max(latitudes)) / 2 if latitudes else 0.0
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False, scaleanchor="x", scaleratio=1 / max(math.cos(math.radians(middle)), 0.1))
    figure.update_layout(title=title, plot_bgcolor="rgba(0,0,0,0)")
    return figure
