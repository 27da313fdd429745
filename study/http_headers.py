"""HTTP response headers the deployment's reverse proxy adds to every answer of the app (one list, here).

Streamlit cannot set response headers itself, so ``skingen-study deploy nginx`` writes these as
``add_header NAME "VALUE" always;`` lines (``always``: error answers too); HSTS (``TLS_HEADERS``) only where the
proxy terminates TLS (docs/deployment.md). Why each one:
- ``Referrer-Policy: no-referrer``: participants' and raters' links carry their token; a page that links
  out (the completion redirect to the recruiting platform) must not hand the token over in ``Referer``.
- ``X-Frame-Options`` / CSP ``frame-ancestors``: no other site may frame the app (clickjacking a consent).
- ``X-Content-Type-Options: nosniff``: served files are only what their type says.
- the rest of the CSP restricts what needs no scripts (plugins, ``<base>``, form targets): Streamlit's own
  frontend relies on inline styles and scripts, so ``script-src`` is left to the browser's default.
"""

from __future__ import annotations

SECURITY_HEADERS: dict[str, str] = {
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'",
    # the explorer may take a skin photo with the camera (st.camera_input), on this site only
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=(), payment=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}

TLS_HEADERS: dict[str, str] = {
    # only where the proxy terminates TLS: tells browsers never to use plain HTTP for this host again
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
}
