"""The ASGI entry: Streamlit's own st.App serving app.py, with Liaison's public routes (crmcore.web) beside it.

`python -m crmcore serve` runs it under uvicorn; so can a service manager: `uvicorn server:app`.
"""

from pathlib import Path

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from crmcore.web.routes import routes

# app.py's st.navigation is the only way to a page. Streamlit takes a `pages/` folder beside the main script
# for the old multipage mode until the first run calls st.navigation: in a freshly started server the very
# first request for /segments would run pages/segments.py without the sign-in gate. Say so from the start.
PagesManager.uses_pages_directory = False

app = st.App(Path(__file__).resolve().parent / "app.py", routes=routes())
