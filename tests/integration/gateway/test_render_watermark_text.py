"""``wm_text`` is drawn as written: '&', '<' and '>' are characters, not Pango markup
(which read "a & b" as a broken image and ``<span size=...>`` as an instruction)."""

from __future__ import annotations

from urllib.parse import quote

import numpy as np
import pyvips
from fastapi.testclient import TestClient


def _marked(client: TestClient, auth: dict[str, str], image_id: str, text: str) -> np.ndarray:
    query = f"wm_text={quote(text, safe='')}&wm_scale=1&wm_opacity=1&wm_pos=centre&format=png"
    answer = client.get(f"/v1/images/{image_id}/render?{query}", headers=auth)
    assert answer.status_code == 200, answer.text
    return np.asarray(pyvips.Image.new_from_buffer(answer.content, "").numpy())


def test_watermark_text_is_literal_not_markup(client: TestClient, auth: dict[str, str]) -> None:
    grey = pyvips.Image.black(400, 100).new_from_image([40, 40, 40]).copy(interpretation="srgb")
    up = client.post("/v1/images", content=grey.write_to_buffer(".png"), headers=auth)
    assert up.status_code == 201, up.text
    image_id = up.json()["id"]
    special = _marked(client, auth, image_id, "a & b <i>")
    plain = _marked(client, auth, image_id, "a b")
    assert not np.array_equal(special, plain)  # '&', '<i>' are drawn
    # markup would make these two the same picture (bold "x" either way)
    tagged = _marked(client, auth, image_id, "<b>x</b>")
    assert not np.array_equal(tagged, _marked(client, auth, image_id, "x"))
    # a size instruction is drawn as text too (no 99999-point glyph)
    span = _marked(client, auth, image_id, '<span size="99999">x</span>')
    assert span.shape[:2] == (100, 400)
