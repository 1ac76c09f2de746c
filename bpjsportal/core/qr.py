"""QR codes drawn on the server as SVG (the qrcode package; no script, no CDN): the KPJ card,
the authenticator set-up, a bill's payment code."""

from __future__ import annotations

import base64
import io

import qrcode
import qrcode.image.svg


def svg(text: str) -> str:
    """`text` as an inline <svg> element (paths only)."""
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue().decode()


def data_uri(text: str) -> str:
    """`text` as a data: URI of the SVG, for an <img src> or a JSON field."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg(text).encode()).decode("ascii")
