"""The QR code of a survey's anonymous link, drawn on the server as SVG (for a poster or a desk card)."""

from __future__ import annotations

import io

import qrcode
import qrcode.image.svg


def svg(address: str) -> bytes:
    """An SVG image of a QR code holding `address` (medium error correction: survives a worn poster)."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4, image_factory=qrcode.image.svg.SvgPathImage)
    code.add_data(address)
    code.make(fit=True)
    out = io.BytesIO()
    code.make_image().save(out)
    return out.getvalue()
