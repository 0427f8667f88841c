"""The ASGI entry: Streamlit's own st.App serving app.py, with Liaison's public routes (crmcore.web) beside it.

`python -m crmcore serve` runs it under uvicorn; so can a service manager: `uvicorn server:app`.
"""

from pathlib import Path

import streamlit as st

from crmcore.web.routes import routes

app = st.App(Path(__file__).resolve().parent / "app.py", routes=routes())
