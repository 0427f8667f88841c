"""The zone map is drawn on plain axes from the zones' own shapes: no geographic trace (which fetches a world
outline from cdn.plot.ly), one filled outline per zone, its colour from its figure, grey when suppressed."""

import json

import pandas as pd

from crmcore.demo.library import ZONES, _zone_shape
from ui.maps import NO_VALUE, zone_map


def test_each_zone_is_a_filled_outline_coloured_by_its_figure_and_nothing_needs_a_world_map():
    shapes = {"type": "FeatureCollection", "features": [{"type": "Feature", "id": z[0], "properties": {}, "geometry": _zone_shape(i)} for i, z in enumerate(ZONES)]}
    shapes["features"][0]["geometry"] = {"type": "MultiPolygon", "coordinates": [shapes["features"][0]["geometry"]["coordinates"], shapes["features"][1]["geometry"]["coordinates"]]}
    frame = pd.DataFrame({"code": [z[0] for z in ZONES], "zone": [z[1] for z in ZONES], "active_per_1000": [100.0 + 10 * i if i != 3 else "<5" for i in range(len(ZONES))]})
    figure = zone_map(frame, shapes=shapes, code="code", value="active_per_1000", name="zone", title="Market penetration by zone", label="active per 1,000 residents")
    data = json.loads(figure.to_json())["data"]
    assert {trace["type"] for trace in data} == {"scatter"}  # no choropleth or scattergeo: nothing for plotly to download
    zones = [t for t in data if t.get("fill") == "toself"]
    assert len(zones) == len(ZONES) + 1  # the first zone has two parts
    colours = {t["name"]: t["fillcolor"] for t in zones}
    assert colours[ZONES[3][1]] == NO_VALUE and "no figure" not in zones[4]["text"] and zones[4]["text"] == f"{ZONES[3][1]}: <5"
    assert colours[ZONES[0][1]] != colours[ZONES[-1][1]] and len(set(colours.values())) == len(ZONES)
    scale = data[-1]["marker"]
    assert (scale["cmin"], scale["cmax"], scale["colorbar"]["title"]["text"]) == (100.0, 210.0, "active per 1,000 residents")
    assert json.loads(figure.to_json())["layout"]["yaxis"]["scaleanchor"] == "x"
